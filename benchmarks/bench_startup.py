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
import resource
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


#: CPU seconds (user + system) of every run, by name, beside the wall times: on a busy machine
#: a process waits for a core, and its wall time says more about the others than about it.
CPU: dict[str, list[float]] = {}


def timed(cmd: list[str], env: dict[str, str] | None = None, name: str | None = None) -> float:
    """Wall seconds of one command (a fresh process); its CPU seconds go to ``CPU[name]``.
    Raises when it fails."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # from a neutral folder: ``python -c`` puts the working directory first on sys.path
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode not in (0, 10, 20):  # scan: allow / review / block
        raise RuntimeError(f"{cmd[:4]}... exited {p.returncode}: {p.stderr.strip()[-400:]}")
    if name:
        CPU.setdefault(name, []).append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    return wall


def summary(runs: dict[str, list[float]], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in runs.items():
        cpu = CPU.get(prefix + k, [])
        out[k] = {"median_s": med(v), "runs_s": [round(x, 3) for x in v], "cpu_median_s": med(cpu) if cpu else None}
    return out


def py(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def framescan_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "framescan", *args]


def med(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def part_startup(repeats: int, env: dict[str, str], before: str | None = None) -> dict[str, Any]:
    cmds = {"scanner": py(SCANNER), "version": framescan_cmd("--version"), "naive": py(NAIVE_START)}
    envs = dict.fromkeys(cmds, env)
    if before:  # the same commands on another tree (e.g. the commit before), interleaved too
        for name in ("scanner", "version"):
            cmds[f"{name}_before"] = cmds[name]
            envs[f"{name}_before"] = {**env, "PYTHONPATH": before}
    runs: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(2):  # caches filled, files in the page cache
        for name, cmd in cmds.items():
            timed(cmd, envs[name])
    for rep in range(repeats):
        order = list(cmds) if rep % 2 == 0 else list(cmds)[::-1]
        for name in order:
            runs[name].append(timed(cmds[name], envs[name], "startup:" + name))
    out = summary(runs, "startup:")
    out["scanner_vs_naive"] = round(out["scanner"]["median_s"] / out["naive"]["median_s"], 2)
    out["scanner_vs_naive_cpu"] = round(out["scanner"]["cpu_median_s"] / out["naive"]["cpu_median_s"], 2)
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
                runs[name].append(timed(cmds[name], env, "whole:" + name))
    out = summary(runs, "whole:")
    out["speedup"] = round(out["naive"]["median_s"] / out["framescan"]["median_s"], 2)
    out["speedup_cpu"] = round(out["naive"]["cpu_median_s"] / out["framescan"]["cpu_median_s"], 2)
    return out


def part_first(clip: str, repeats: int, env: dict[str, str]) -> dict[str, Any]:
    first, second = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as numba, tempfile.TemporaryDirectory() as cache:
            e = {**env, "NUMBA_CACHE_DIR": numba, "FRAMESCAN_CACHE": cache}
            cmd = framescan_cmd("scan", clip, "--fps", "1", "-q")
            first.append(timed(cmd, e, "first"))
            second.append(timed(cmd, e, "second"))
    return {
        "first_median_s": med(first),
        "second_median_s": med(second),
        "extra_s": round(med(first) - med(second), 3),
        "first_cpu_median_s": med(CPU["first"]),
        "second_cpu_median_s": med(CPU["second"]),
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
    ap.add_argument("--before", help="another tree to time start-up of, interleaved (e.g. the previous commit)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": args.framescan_from}
    sys.path.insert(0, str(ROOT))  # the clip set is this tree's, whichever framescan is measured
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
        out["startup"] = part_startup(args.repeats, env, args.before)
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
