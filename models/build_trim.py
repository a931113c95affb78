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

from framescan.errors import ConfigError  # noqa: E402
from framescan.frames import Detections  # noqa: E402
from framescan.infer import OnnxModel  # noqa: E402
from framescan.models import load_manifest, parse_manifest  # noqa: E402
from framescan.samples import write_clip  # noqa: E402

DEFAULT_MULTIPLE = 32


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


def validate(
    full: OnnxModel, trimmed: OnnxModel, clips: Sequence[ClipSpec], workdir: Path
) -> tuple[Any, list[tuple[str, str]]]:
    """Full vs trimmed canvas detections on every frame of ``clips``; returns the ``Validation``
    and each clip's (size, tensor size)."""
    names: list[str] = []
    ref: list[Detections] = []
    cand: list[Detections] = []
    shapes = []
    for c in clips:
        path = write_clip(
            workdir / f"{c.name}.mp4", width=c.width, height=c.height, seconds=c.seconds, fps=c.fps, shots=c.shots
        )
        a, b = decode_frame_sets(path, [full.manifest.input, trimmed.manifest.input], c.name)
        names += a.names
        ref += detect(full, a)
        cand += detect(trimmed, b)
        shapes.append((f"{c.width}x{c.height}", "x".join(map(str, b.inputs.shape[1:]))))
    return tally(names, ref, cand, [lab.name for lab in full.manifest.labels]), shapes


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
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="framescan-trim-") as tmp:
        v, shapes = validate(full, trimmed, clips, Path(tmp))
    print(f"{len(clips)} clips, {v.frames} frames ({time.perf_counter() - t0:.0f} s); tensors: {shapes}")
    print(
        f"agreement {v.agreement:.4f} recall {v.recall:.4f} precision {v.precision:.4f} drift mean "
        f"{v.score_drift_mean:.4f} max {v.score_drift_max:.4f} ({v.matched}/{v.reference_detections} matched, "
        f"{v.candidate_detections - v.matched} extra)"
    )
    for note in v.disagreements[: args.show]:
        print(f"  {note}")
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
    out.write_text(json.dumps(trim_manifest(base, name, args.multiple, validation), indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
