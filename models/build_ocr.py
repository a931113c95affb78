"""Copy the PP-OCRv4 text detection and recognition models that framescan's OCR runs into models/.

They are the ONNX files inside the ``rapidocr-onnxruntime`` 1.4.4 wheel (Apache-2.0; the models are
PaddleOCR's PP-OCRv4 mobile, Apache-2.0, converted by RapidAI). framescan ships them itself because
that wheel requires the GUI ``opencv-python``, which overwrites the ``cv2`` package of the headless
build framescan and NudeNet require; the OCR engine is now ``rapidocr`` 3.10.0, which requires the
headless build and loads these files (see ``framescan.ocr.OcrReader``).

    python models/build_ocr.py      # downloads the pinned wheel with pip, checks every sha256

The wheel and each file are checked against the sha256 below before anything is written.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "rapidocr_onnxruntime-1.4.4-py3-none-any.whl"
WHEEL_SHA256 = "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf"
FILES = {
    "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx": "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
    "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx": "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
}
OUT = Path(__file__).resolve().parent


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", tmp,
                        "rapidocr-onnxruntime==1.4.4"], check=True)  # fmt: skip
        wheel = Path(tmp) / WHEEL
        if sha256(wheel.read_bytes()) != WHEEL_SHA256:
            raise SystemExit(f"{WHEEL}: sha256 differs from the pinned one")
        with zipfile.ZipFile(wheel) as z:
            for name, digest in FILES.items():
                data = z.read(name)
                if sha256(data) != digest:
                    raise SystemExit(f"{name}: sha256 differs from the pinned one")
                (OUT / Path(name).name).write_bytes(data)
                print(f"wrote {OUT / Path(name).name} ({len(data):,} bytes, sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
