"""Cost of the extra signals: all models vs NudeNet alone, and what on-screen text reading adds.

    python benchmarks/bench_signals.py                  # 5 repeats, prints a markdown table
    python benchmarks/bench_signals.py --repeats 3 --json /tmp/signals.json

Clips (generated, kept in ~/.cache/framescan/bench-clips): the 720x1280 15 s benchmark clip
(photographs on a moving background, flagged image 6-8 s, no text) and a 720x1280 15 s
caption clip (``write_caption_clip``: a harmless caption 2-5 s, a bullying one 8-10 s).
Each configuration is one ``Scanner`` (models loaded once, warmed up); scans of the
configurations alternate, order rotated every repeat; medians [min-max] of wall time per
clip at the default sampling (2 fps). The issue's target: all signals (OCR off) within 2x
of NudeNet alone; with OCR on, the added time per clip is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framescan.bench import default_clip_dir, ensure_clip  # noqa: E402
from framescan.models import ALL_SIGNAL_MODELS, DEFAULT_MODEL  # noqa: E402
from framescan.pipeline import Scanner  # noqa: E402

CONFIGS = {
    "nudenet": dict(models=[DEFAULT_MODEL]),
    "all models": dict(models=list(ALL_SIGNAL_MODELS)),
    "nudenet + ocr": dict(models=[DEFAULT_MODEL], ocr=True),
    "all models + ocr": dict(models=list(ALL_SIGNAL_MODELS), ocr=True),
}
CAPTIONS = [(2.0, 5.0, "Selamat pagi semua"), (8.0, 10.0, "dasar goblok kamu")]


def caption_clip(clip_dir: Path) -> Path:
    from framescan.synth import write_caption_clip

    path = clip_dir / "signals-720x1280-15s-captions.mp4"
    if not path.exists():
        clip_dir.mkdir(parents=True, exist_ok=True)
        write_caption_clip(path, CAPTIONS, size=(720, 1280), seconds=15.0, fps=30)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="write the raw timings here")
    args = ap.parse_args()
    clip_dir = default_clip_dir()
    clips = {
        "photos 6-8 s flagged": ensure_clip(clip_dir, 720, 1280, 15.0, 30)[0],
        "captions": caption_clip(clip_dir),
    }
    scanners = {name: Scanner(banks=False, **kw) for name, kw in CONFIGS.items()}
    times: dict[str, dict[str, list[float]]] = {c: {n: [] for n in CONFIGS} for c in clips}
    detail: dict[str, dict[str, dict]] = {c: {} for c in clips}
    names = list(CONFIGS)
    for rep in range(args.repeats):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for clip_name, clip in clips.items():
            for name in order:
                t0 = time.perf_counter()
                d = scanners[name].scan(clip).to_dict()
                times[clip_name][name].append(time.perf_counter() - t0)
                detail[clip_name][name] = {
                    "decision": d["decision"],
                    "segments": [(s["category"], s["start"], s["end"]) for s in d["segments"]],
                    "ocr_frames": d["coverage"].get("ocr_frames"),
                    "timings": d["timings"],
                }
    print(f"| clip | configuration | wall s, median [min-max] of {args.repeats} | vs nudenet | decision | segments |")
    print("|---|---|---|---|---|---|")
    for clip_name in clips:
        base = statistics.median(times[clip_name]["nudenet"])
        for name in names:
            ts = times[clip_name][name]
            med = statistics.median(ts)
            det = detail[clip_name][name]
            segs = ", ".join(f"{c} {a:g}-{b:g}" for c, a, b in det["segments"]) or "-"
            ocr = f" ({det['ocr_frames']} frames read)" if det["ocr_frames"] is not None else ""
            print(
                f"| {clip_name} | {name}{ocr} | {med:.2f} [{min(ts):.2f}-{max(ts):.2f}] | "
                f"{med / base:.2f}x (+{med - base:.2f} s) | {det['decision']} | {segs} |"
            )
    if args.json:
        Path(args.json).write_text(json.dumps({"times": times, "detail": detail}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
