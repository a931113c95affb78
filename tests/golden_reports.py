"""Reports of a fixed set of generated clips, saved in ``tests/data/golden/`` and compared by
``tests/test_golden_reports.py``: a change that is meant to keep behaviour (a restructure)
must leave every one of them equal, timings and versions aside.

A change that is *meant* to change reports regenerates them and says so in its commit:

    python tests/golden_reports.py --write

The clips are encoded by the cases below (deterministic encoders, fixed content), so nothing
but the code under test differs between the saved and the new reports.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).resolve().parent / "data" / "golden"

#: Fields that legitimately differ between runs: wall-clock timings and the writer's version.
VOLATILE = ("timings", "framescan_version")
#: The clip's byte size and bit rate follow the installed encoder and font rasteriser versions
#: (the OCR case's caption clip changed by 87 bytes with a new machine's packages), not the code
#: under test: compared only by presence.
CLIP_BYTES = ("size_bytes", "bit_rate")
#: Model scores may differ in the last digits across CPUs (ONNX Runtime picks kernels by
#: instruction set); boxes follow the scores. Everything else (times, counts, decisions,
#: text, frame indices) must be equal.
SCORE_KEYS = frozenset({"score", "weighted", "peak"})
SCORE_ATOL = 0.02
BOX_ATOL = 2.0


def _flagged(d: Path, name: str, **kw: Any) -> Path:
    from framescan.synth import write_clip

    return write_clip(d / name, width=360, height=640, seconds=4, fps=15, flagged=(1.0, 3.0), **kw)


def _scan(clip: Path, **options: Any) -> dict[str, Any]:
    from framescan import Scanner

    return Scanner(threads=2, **{"banks": False, **options}).scan(clip).to_dict()


def _h264(d: Path) -> dict[str, Any]:
    return _scan(_flagged(d, "h264.mp4"))


def _hevc(d: Path) -> dict[str, Any]:
    return _scan(_flagged(d, "hevc.mp4", codec="libx265"))


def _vp9(d: Path) -> dict[str, Any]:
    return _scan(_flagged(d, "vp9.webm", codec="libvpx-vp9"))


def _adaptive(d: Path) -> dict[str, Any]:
    return _scan(_flagged(d, "adaptive.mp4"), adaptive=True)


def _known_content(d: Path) -> dict[str, Any]:
    clip = _flagged(d, "known.mp4")
    db = d / "banks.sqlite"
    cli = [sys.executable, "-m", "framescan"]
    subprocess.run([*cli, "hash", str(clip), "-o", str(d / "known.txt")], check=True, capture_output=True)
    subprocess.run(
        [
            *cli,
            "bank",
            "add",
            "propaganda",
            str(d / "known.txt"),
            "--category",
            "extremism",
            "--action",
            "block",
            "--db",
            str(db),
        ],
        check=True,
        capture_output=True,
    )
    return _scan(clip, banks=db)


def _ocr(d: Path) -> dict[str, Any]:
    from framescan.synth import write_caption_clip

    clip = write_caption_clip(d / "ocr.mp4", [(1.0, 3.0, "dasar goblok kamu")], size=(360, 640), seconds=4.0, fps=15)
    return _scan(clip, ocr=True)


CASES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "h264": _h264,
    "hevc": _hevc,
    "vp9": _vp9,
    "adaptive": _adaptive,
    "known_content": _known_content,
    "ocr": _ocr,
}


def make(case: str, workdir: Path) -> dict[str, Any]:
    """The report of one case, with the volatile fields removed and the source made relative."""
    report = CASES[case](workdir)
    for key in VOLATILE:
        report.pop(key, None)
    report["source"] = Path(report["source"]).name
    for key in CLIP_BYTES:
        if report.get("clip"):
            report["clip"][key] = report["clip"][key] is not None
    report = json.loads(json.dumps(report))  # as saved: plain JSON values, no shared objects
    # Items of almost equal score may trade places across CPUs: compare evidence in time order,
    # and segments' references to it by the item they name rather than by position.
    names = [[e["time"], e["model"], e["label"]] for e in report["evidence"]]
    for seg in report["segments"] + [x for c in report["categories"].values() for x in c.get("segments", [])]:
        seg["evidence"] = sorted(names[i] for i in seg["evidence"])
    report["evidence"].sort(key=lambda e: (e["time"], e["model"], e["label"]))
    return report


def differences(saved: Any, new: Any, path: str = "") -> list[str]:
    """Where ``new`` differs from ``saved`` (empty when equal within the tolerances above)."""
    if isinstance(saved, dict) and isinstance(new, dict):
        out = [f"{path}/{k}: only in the saved report" for k in saved.keys() - new.keys()]
        out += [f"{path}/{k}: only in the new report" for k in new.keys() - saved.keys()]
        for k in saved.keys() & new.keys():
            out += differences(saved[k], new[k], f"{path}/{k}")
        return out
    if isinstance(saved, list) and isinstance(new, list):
        if len(saved) != len(new):
            return [f"{path}: {len(saved)} items saved, {len(new)} now"]
        if path.endswith("/box"):
            bad = any(abs(a - b) > BOX_ATOL for a, b in zip(saved, new))
            return [f"{path}: {saved} saved, {new} now"] if bad else []
        return [d for i, (a, b) in enumerate(zip(saved, new)) for d in differences(a, b, f"{path}[{i}]")]
    numbers = (int, float)
    if isinstance(saved, numbers) and isinstance(new, numbers) and not isinstance(saved, bool):
        key = path.rsplit("/", 1)[-1]
        tol = SCORE_ATOL if key in SCORE_KEYS else 0.0
        return [] if abs(saved - new) <= tol else [f"{path}: {saved} saved, {new} now"]
    return [] if saved == new else [f"{path}: {saved!r} saved, {new!r} now"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write (or check) the saved reports in tests/data/golden/.")
    ap.add_argument("--write", action="store_true", help="write the reports instead of comparing")
    ap.add_argument("cases", nargs="*", default=list(CASES), help="cases (default: all)")
    args = ap.parse_args(argv)
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    failed = 0
    for case in args.cases:
        with tempfile.TemporaryDirectory() as tmp:
            report = make(case, Path(tmp))
        path = GOLDEN_DIR / f"{case}.json"
        if args.write:
            path.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
            print(f"wrote {path}")
            continue
        diffs = differences(json.loads(path.read_text()), report)
        failed += bool(diffs)
        print(f"{case}: {'equal' if not diffs else f'{len(diffs)} differences'}")
        for d in diffs[:20]:
            print(f"  {d}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
