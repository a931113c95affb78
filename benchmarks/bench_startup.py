"""Start-up and whole-process time, as a user runs framescan (issue 21): fresh processes,
framescan and the naive loop interleaved, medians.

Parts (``--part``, default all):

- ``startup``: ``import framescan; framescan.Scanner()``, ``framescan --version`` and the naive
  loop's ``import cv2; from nudenet import NudeDetector; NudeDetector()``, each ``--repeats``
  times in a fresh interpreter, interleaved;
- ``whole``: ``framescan scan CLIPS --fps 1`` (one command, isolated worker as by default) vs the
  naive loop over the same clips in one process (``cv2.VideoCapture`` every frame +
  ``NudeDetector.detect`` at 1 fps), interleaved, ``--repeats`` times;
- ``first``: the first command after an install (empty Numba and framescan caches) and the
  second one (the same caches), ``--repeats`` times.

The clips are the upload-like set (``framescan.bench.clips.UPLOAD_CLIPS``, generated once into
the cache directory) unless ``--clips`` are given.

    python benchmarks/bench_startup.py --repeats 7 --json benchmarks/startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: The naive loop over every clip given (argv), in one process: what a script would do.
NAIVE = r"""
import sys
import cv2
from nudenet import NudeDetector
det = NudeDetector()
for clip in sys.argv[1:]:
    cap = cv2.VideoCapture(clip)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    nxt, i, hits = 0.0, 0, 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        t = i / fps
        if t + 1e-6 >= nxt:
            hits += len(det.detect(frame))
            nxt += 1.0
        i += 1
    cap.release()
    print(clip, i, hits)
"""
SCANNER = "import framescan; framescan.Scanner()"
NAIVE_START = "import cv2; from nudenet import NudeDetector; NudeDetector()"


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds of one command (a fresh process); raises when it fails."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 10, 20):  # scan: allow / review / block
        raise RuntimeError(f"{cmd[:4]}... exited {p.returncode}: {p.stderr.strip()[-400:]}")
    return wall


def py(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def framescan_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "framescan", *args]


def med(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def part_startup(repeats: int, env: dict[str, str]) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"scanner": [], "version": [], "naive": []}
    cmds = {"scanner": py(SCANNER), "version": framescan_cmd("--version"), "naive": py(NAIVE_START)}
    for _ in range(2):  # caches filled, files in the page cache
        for cmd in cmds.values():
            timed(cmd, env)
    for rep in range(repeats):
        order = list(cmds) if rep % 2 == 0 else list(cmds)[::-1]
        for name in order:
            runs[name].append(timed(cmds[name], env))
    out = {k: {"median_s": med(v), "runs_s": [round(x, 3) for x in v]} for k, v in runs.items()}
    out["scanner_vs_naive"] = round(out["scanner"]["median_s"] / out["naive"]["median_s"], 2)
    return out


def part_whole(clips: list[str], repeats: int, env: dict[str, str], fps: str) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"framescan": [], "naive": []}
    with tempfile.TemporaryDirectory() as tmp:
        cmds = {
            "framescan": framescan_cmd("scan", *clips, "--fps", fps, "-q", "--json", str(Path(tmp) / "r.json")),
            "naive": py(NAIVE.replace("nxt += 1.0", f"nxt += 1.0 / {float(fps)}"), *clips),
        }
        timed(cmds["framescan"], env)  # caches warm, as from a user's second command on
        for rep in range(repeats):
            order = list(cmds) if rep % 2 == 0 else list(cmds)[::-1]
            for name in order:
                runs[name].append(timed(cmds[name], env))
    out = {k: {"median_s": med(v), "runs_s": [round(x, 3) for x in v]} for k, v in runs.items()}
    out["speedup"] = round(out["naive"]["median_s"] / out["framescan"]["median_s"], 2)
    return out


def part_first(clip: str, repeats: int, env: dict[str, str]) -> dict[str, Any]:
    first, second = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as numba, tempfile.TemporaryDirectory() as cache:
            e = {**env, "NUMBA_CACHE_DIR": numba, "FRAMESCAN_CACHE": cache}
            cmd = framescan_cmd("scan", clip, "--fps", "1", "-q")
            first.append(timed(cmd, e))
            second.append(timed(cmd, e))
    return {
        "first_median_s": med(first),
        "second_median_s": med(second),
        "extra_s": round(med(first) - med(second), 3),
        "first_runs_s": [round(x, 3) for x in first],
        "second_runs_s": [round(x, 3) for x in second],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("startup", "whole", "first", "all"), default="all")
    ap.add_argument("--clips", nargs="*", help="clips for 'whole' (default: the upload-like set)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--fps", default="1", help="sampling rate of both sides in 'whole' (default 1)")
    ap.add_argument("--framescan-from", default=str(ROOT), help="tree whose framescan is measured (PYTHONPATH)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": args.framescan_from}
    sys.path.insert(0, args.framescan_from)
    if args.clips:
        clips = args.clips
    else:
        from framescan.bench.clips import UPLOAD_CLIPS, default_clip_dir, ensure_upload_clip

        clips = [str(ensure_upload_clip(default_clip_dir(), s)) for s in UPLOAD_CLIPS]
    out: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/bench_startup.py", *sys.argv[1:]]),
        "load_average_before": os.getloadavg(),
        "clips": [Path(c).name for c in clips],
    }
    if args.part in ("startup", "all"):
        out["startup"] = part_startup(args.repeats, env)
        print(json.dumps({"startup": out["startup"]}), flush=True)
    if args.part in ("whole", "all"):
        out["whole"] = part_whole(clips, args.repeats, env, args.fps)
        print(json.dumps({"whole": out["whole"]}), flush=True)
    if args.part in ("first", "all"):
        out["first"] = part_first(clips[0], max(1, args.repeats // 2), env)
        print(json.dumps({"first": out["first"]}), flush=True)
    out["load_average_after"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
