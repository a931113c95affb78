"""Validate a trimmed-canvas variant of a model manifest and write its manifest.

    python models/build_trim.py [--manifest models/nudenet-320n.json] [--multiple 32]
    python models/build_trim.py --manifest models/nudenet-320n-int8.json --reference models/nudenet-320n.json

A detector that pads frames to a square canvas (``pad_bottom_right``: NudeNet's own
preprocessing) spends most of its work on padding for portrait or landscape video: a 9:16
frame covers 180 of 320 columns. When the graph accepts any input height and width that is
a multiple of its largest stride (the Ultralytics export of NudeNet does: its anchors are
computed from the input shape), the canvas can be cut down to the smallest multiple that
holds the frame (``InputSpec.trim_multiple``; 320x192 for 9:16): same weights, same scale,
same geometry, ~40% less compute. The model then sees less padding, which moves its scores a
little, so the variant is offered only after the same validation as the int8 model
(``models/build_int8.py``): on generated clips of several sizes and aspect ratios (the int8
build's calibration, selection and reference clips: none of them tunes anything here; for
the int8 model only the reference clips, as its build chose on the others), every
detection of the full canvas must be matched by one of the trimmed canvas (same class, IoU
>= 0.5); ``agreement = matched / (matched + missed + extra)`` must reach ``--min-agreement``
(0.95). The manifest (``<manifest>-trim.json``) points at the same ONNX file and records the
figures in its ``validation`` field; below the bar nothing is written (a stale one is removed).
``--reference``: validate against another model on the full canvas (the int8 variant on a
trimmed canvas is checked against the float32 model, not against the int8 model).

For NudeNet's own float32 file (``NUDENET_FILE``) both canvases are also validated against
NudeNet's own pipeline (``NudeDetector.detect`` on the same frames as BGR), recorded under
``validation.nudenet``: framescan's square canvas does not reproduce NudeNet exactly either
(it interpolates YUV before converting, NudeNet rounds to uint8 twice), so this is the figure
that says whether the trimmed canvas is as close to NudeNet as the square one (it is the
default model: ``framescan.models.DEFAULT_MODEL``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_int8 import (  # noqa: E402
    DEFAULT_MANIFEST,
    MIN_AGREEMENT,
    THREADS,
    ClipSpec,
    calibration_clips,
    decode_frame_sets,
    detect,
    reference_clips,
    selection_clips,
    tally,
)

from framescan.decode import to_yuv_frame  # noqa: E402
from framescan.errors import ConfigError  # noqa: E402
from framescan.frames import Detections  # noqa: E402
from framescan.infer import OnnxModel  # noqa: E402
from framescan.models import load_manifest, parse_manifest  # noqa: E402
from framescan.synth import write_clip  # noqa: E402

DEFAULT_MULTIPLE = 32
#: The ONNX file of NudeNet's own pipeline (``nudenet.NudeDetector``): for its manifests both
#: canvases are also validated against that pipeline.
NUDENET_FILE = {"package": "nudenet", "resource": "320n.onnx"}


def accepts_any_size(model: OnnxModel) -> bool:
    """Whether the graph's input height and width are symbolic (not fixed numbers)."""
    inp = next(i for i in model.session.get_inputs() if i.name == model.manifest.input.name)
    axes = (2, 3) if model.manifest.input.layout == "NCHW" else (1, 2)
    return all(not isinstance(inp.shape[a], int) for a in axes)


def trim_manifest(base: dict[str, Any], name: str, multiple: int, validation: dict[str, Any]) -> dict[str, Any]:
    """The variant's manifest JSON: ``base`` with ``input.trim_multiple`` and the validation."""
    return {
        **base,
        "name": name,
        "description": (
            f"{base.get('name')} on a trimmed canvas: the padded square is cut down to the smallest multiple of "
            f"{multiple} pixels that holds the frame (320x192 for 9:16 video), same file and weights, ~40% less "
            "compute on portrait and landscape video. Written by models/build_trim.py after validation against the "
            "full canvas (see 'validation')."
        ),
        "input": {**base["input"], "trim_multiple": multiple},
        "validation": validation,
    }


def nudenet_detections(detector: Any, path: Path, labels: Sequence[str]) -> list[Detections]:
    """NudeNet's own pipeline on every frame of a clip: ``NudeDetector.detect`` on the frame as
    BGR, converted by PyAV with the stream's colour matrix (as ``tests/test_parity.py`` does)."""
    import av

    out: list[Detections] = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            color = to_yuv_frame(frame, i, float(frame.time or 0.0)).color
            bgr = frame.to_ndarray(format="bgr24", src_colorspace=color.av_colorspace)
            found = detector.detect(bgr)
            boxes = [[x, y, x + w, y + h] for x, y, w, h in (d["box"] for d in found)]
            out.append(
                Detections(
                    np.array(boxes, np.float32).reshape(-1, 4),
                    np.array([d["score"] for d in found], np.float32),
                    np.array([labels.index(d["class"]) for d in found], np.int32),
                )
            )
    return out


def validate(
    full: OnnxModel, trimmed: OnnxModel, clips: Sequence[ClipSpec], workdir: Path, detector: Any = None
) -> tuple[Any, list[tuple[str, str]], dict[str, Any]]:
    """Full vs trimmed canvas detections on every frame of ``clips``; returns the ``Validation``,
    each clip's (size, tensor size) and, given a ``nudenet.NudeDetector``, both canvases
    validated against NudeNet's own pipeline on the same frames (``{"full": ..., "trimmed": ...}``)."""
    names: list[str] = []
    ref: list[Detections] = []
    cand: list[Detections] = []
    theirs: list[Detections] = []
    shapes = []
    labels = [lab.name for lab in full.manifest.labels]
    for c in clips:
        path = write_clip(
            workdir / f"{c.name}.mp4", width=c.width, height=c.height, seconds=c.seconds, fps=c.fps, shots=c.shots
        )
        a, b = decode_frame_sets(path, [full.manifest.input, trimmed.manifest.input], c.name)
        names += a.names
        ref += detect(full, a)
        cand += detect(trimmed, b)
        if detector is not None:
            theirs += nudenet_detections(detector, path, labels)
            if len(theirs) != len(names):
                raise RuntimeError(f"{c.name}: PyAV gave {len(theirs)} frames so far, framescan {len(names)}")
        shapes.append((f"{c.width}x{c.height}", "x".join(map(str, b.inputs.shape[1:]))))
    vs_nudenet = {}
    if detector is not None:
        vs_nudenet = {"full": tally(names, theirs, ref, labels), "trimmed": tally(names, theirs, cand, labels)}
    return tally(names, ref, cand, labels), shapes, vs_nudenet


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--manifest", default=str(DEFAULT_MANIFEST), help="model manifest (default: %(default)s)")
    ap.add_argument("--reference", default=None, help="model on the full canvas to match (default: --manifest)")
    ap.add_argument("--multiple", type=int, default=DEFAULT_MULTIPLE, help="canvas multiple (default: %(default)s)")
    ap.add_argument("--out", default=None, help="manifest to write (default: <manifest>-trim.json)")
    ap.add_argument("--min-agreement", type=float, default=MIN_AGREEMENT)
    ap.add_argument("--threads", type=int, default=THREADS, help="ONNX Runtime threads (default: %(default)s)")
    ap.add_argument("--show", type=int, default=10, help="disagreements to print (default: %(default)s)")
    args = ap.parse_args(argv)

    manifest_path = Path(args.manifest).resolve()
    base = json.loads(manifest_path.read_text())
    out = Path(args.out).resolve() if args.out else manifest_path.with_name(manifest_path.stem + "-trim.json")
    name = out.stem
    full = OnnxModel(load_manifest(Path(args.reference or manifest_path).resolve()), threads=args.threads)
    source = OnnxModel(load_manifest(manifest_path), threads=args.threads)
    if not accepts_any_size(source):
        print(f"{source.name}: the graph's input size is fixed; a trimmed canvas cannot run", file=sys.stderr)
        return 1
    try:
        data = trim_manifest(base, name, args.multiple, {})
        trimmed = OnnxModel(parse_manifest(data, str(out)), threads=args.threads)
    except ConfigError as ex:
        print(f"{full.name}: {ex}", file=sys.stderr)
        return 1
    # an int8 model's build saw the calibration and selection clips: validate it on the reference clips only
    quantized = "quantization" in base
    clips = [*([] if quantized else [*calibration_clips(), *selection_clips()]), *reference_clips()]
    # NudeNet's own float32 file: both canvases are also checked against NudeNet's pipeline
    detector = None
    if not quantized and base.get("file") == NUDENET_FILE:
        import nudenet

        detector = nudenet.NudeDetector()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="framescan-trim-") as tmp:
        v, shapes, vs_nudenet = validate(full, trimmed, clips, Path(tmp), detector)
    print(f"{len(clips)} clips, {v.frames} frames ({time.perf_counter() - t0:.0f} s); tensors: {shapes}")
    print(
        f"agreement {v.agreement:.4f} recall {v.recall:.4f} precision {v.precision:.4f} drift mean "
        f"{v.score_drift_mean:.4f} max {v.score_drift_max:.4f} ({v.matched}/{v.reference_detections} matched, "
        f"{v.candidate_detections - v.matched} extra)"
    )
    for note in v.disagreements[: args.show]:
        print(f"  {note}")
    for canvas, nv in vs_nudenet.items():
        print(
            f"vs NudeNet's own pipeline, {canvas} canvas: agreement {nv.agreement:.4f} drift mean "
            f"{nv.score_drift_mean:.4f} max {nv.score_drift_max:.4f} ({nv.matched}/{nv.reference_detections} "
            f"matched, {nv.candidate_detections - nv.matched} extra)"
        )
    if v.agreement < args.min_agreement:
        print(f"agreement below {args.min_agreement}: {name} is not offered", file=sys.stderr)
        out.unlink(missing_ok=True)
        return 1
    validation = {
        **v.summary(),
        "min_agreement": args.min_agreement,
        "match_rule": "same class, IoU >= 0.5; agreement = matched / (matched + missed + extra)",
        "reference_model": full.name,
        "reference_model_sha256": full.manifest.sha256,
        "reference": f"{full.name} on the full canvas, same frames",
        "clips": [f"{c.name} {c.width}x{c.height}" for c in clips],
    }
    if vs_nudenet:
        from importlib.metadata import version

        validation["nudenet"] = {
            "reference": f"nudenet {version('nudenet')} NudeDetector.detect on the same frames as BGR (PyAV)",
            **{f"{canvas}_canvas": nv.summary() for canvas, nv in vs_nudenet.items()},
        }
    out.write_text(json.dumps(trim_manifest(base, name, args.multiple, validation), indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
