"""Archive throughput: ``framescan archive`` with 1 and 2 workers vs the naive per-file loop.

    python benchmarks/bench_archive.py                         # 200 clips of 15 s, 720x1280, 30 fps
    python benchmarks/bench_archive.py --clips 24 --size 480x854 --json archive.json

1. Generates ``--clips`` H.264 clips (``framescan.synth.write_clip``; every 5th shows the
   flagged stand-in image from 6 s to 8 s of a 15 s clip, scaled for other lengths), kept in
   ``--clip-dir`` (default ``~/.cache/framescan/archive-bench``) for the next run.
2. **framescan archive**, ``--workers 1`` and ``--workers 2``, each into a fresh store, as a
   subprocess (``python -m framescan archive`` or ``python -m framescan.cli.archive``): wall
   time from launch to exit (start-up, hashing, model loading, scanning, commits), and the
   clips/min once the workers are ready (from the run's JSON summary). Then the same command
   again on the finished store: the cost of a resumed run with nothing left to do.
3. **naive**: one process that loops over the files: ``cv2.VideoCapture`` decodes every frame,
   ``nudenet.NudeDetector().detect(frame)`` runs on the frames framescan's default sampling
   picks (2 fps: the first frame at or after each k/2 s, from the frames' timestamps), and
   the clip's decision uses framescan's default policy on the sexual labels (review >= 0.4;
   block >= 0.6 on >= 2 frames). Nothing is stored, nothing is isolated, no resume.

Prints a Markdown table (and ``--json OUT``) with clips/min for each, and whether the naive
decisions agree with framescan's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _archive_cmd() -> list[str]:
    from framescan.cli.main import COMMANDS

    if "archive" in COMMANDS:
        return [sys.executable, "-m", "framescan", "archive"]
    return [sys.executable, "-m", "framescan.cli.archive"]


def make_clips(n: int, seconds: float, width: int, height: int, fps: int, clip_dir: Path) -> list[Path]:
    from framescan.synth import FLAGGED_IMAGE, ORDINARY_IMAGES, Shot, write_clip

    clip_dir.mkdir(parents=True, exist_ok=True)
    flagged = (seconds * 6 / 15, seconds * 8 / 15)
    paths = []
    t0 = time.perf_counter()
    for i in range(n):
        flag = i % 5 == 4
        p = clip_dir / f"clip{i:04d}-{width}x{height}-{seconds:g}s-{fps}fps{'-flag' if flag else ''}.mp4"
        if not p.exists():
            # every clip its own content (the archive would scan identical files once): the
            # photographs rotate from a different one, at a slightly different scale
            shots, t, k = [], 0.0, i
            while t < seconds:
                shots.append(Shot(t, min(seconds, t + 3.0), ORDINARY_IMAGES[k % 5], 0.5 + 0.004 * (i % 50)))
                t, k = t + 3.0, k + 1
            if flag:
                shots.append(Shot(flagged[0], flagged[1], FLAGGED_IMAGE, 0.8))
            tmp = p.with_suffix(".part.mp4")
            write_clip(tmp, width=width, height=height, seconds=seconds, fps=fps, shots=shots)
            tmp.rename(p)
        paths.append(p)
        if (i + 1) % 10 == 0:
            print(f"  clips: {i + 1}/{n} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    return paths


def run_archive(clips: list[Path], workers: int, work: Path, rerun: bool = True) -> dict[str, Any]:
    listing = work / f"list{workers}.txt"
    listing.write_text("".join(f"{c}\n" for c in clips))
    db = work / f"archive-w{workers}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    cmd = [*_archive_cmd(), f"@{listing}", "--db", str(db), "--workers", str(workers), "--progress-interval", "30"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if r.returncode not in (0, 3):
        raise SystemExit(f"archive failed ({r.returncode}): {r.stderr[-3000:]}")
    summary = _summary(r.stderr)
    out: dict[str, Any] = {
        "workers": workers,
        "wall_s": round(wall, 2),
        "clips_per_min": round(len(clips) / wall * 60, 1),
        "clips_per_min_ready": round(summary["counts"]["scanned"] / summary["scan_elapsed_s"] * 60, 1)
        if summary["scan_elapsed_s"]
        else None,
        "decisions": summary["counts"]["decisions"],
        "errors": summary["counts"]["errors"],
        "db": str(db),
    }
    if rerun:
        t0 = time.perf_counter()
        r2 = subprocess.run(cmd, capture_output=True, text=True, check=False)
        out["rerun_wall_s"] = round(time.perf_counter() - t0, 2)
        out["rerun_scanned"] = _summary(r2.stderr)["counts"]["scanned"]
    return out


def _summary(stderr: str) -> dict[str, Any]:
    for line in reversed(stderr.splitlines()):
        if line.startswith('{"event": "summary"'):
            return dict(json.loads(line))
    raise SystemExit(f"no summary in the archive's output: {stderr[-3000:]}")


def store_decisions(db: str) -> dict[str, str | None]:
    con = sqlite3.connect(db)
    try:
        return dict(con.execute("SELECT sha256, decision FROM results").fetchall())
    finally:
        con.close()


# ---------------------------------------------------------------------------- naive


def naive_child(listing: str, out: str) -> int:
    """The naive loop (run in its own process): every file, every frame decoded, 2 fps scored."""
    import cv2
    from nudenet import NudeDetector

    from framescan.models import load_manifest

    weights = {
        lab.name: lab.weight for lab in load_manifest("nudenet-320n").labels if lab.category == "sexual"
    }  # the labels that feed 'sexual' in framescan's manifest
    fps = 2.0
    t0 = time.perf_counter()
    detector = NudeDetector()
    load_s = time.perf_counter() - t0
    results = {}
    for path in Path(listing).read_text().splitlines():
        cap = cv2.VideoCapture(path)
        next_k, index = 0, 0
        scores: list[float] = []
        clip_fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            ts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1e3
            if ts <= 0 and index > 0 and clip_fps > 0:
                ts = index / clip_fps
            if ts + 1e-6 >= next_k / fps:
                while ts + 1e-6 >= next_k / fps:
                    next_k += 1
                dets = detector.detect(frame)
                scores.append(max((d["score"] * weights[d["class"]] for d in dets if d["class"] in weights), default=0))
            index += 1
        cap.release()
        peak = max(scores, default=0.0)
        block_frames = sum(s >= 0.6 for s in scores)
        decision = "block" if peak >= 0.6 and block_frames >= 2 else ("review" if peak >= 0.4 else "allow")
        sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        results[sha] = {"decision": decision, "scored": len(scores), "decoded": index}
    wall = time.perf_counter() - t0
    Path(out).write_text(json.dumps({"wall_s": wall, "load_s": load_s, "results": results}))
    return 0


def run_naive(clips: list[Path], work: Path) -> dict[str, Any]:
    listing = work / "naive-list.txt"
    listing.write_text("".join(f"{c}\n" for c in clips))
    out = work / "naive.json"
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, __file__, "--naive-child", str(listing), str(out)], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"naive loop failed: {r.stderr[-3000:]}")
    data = json.loads(out.read_text())
    return {"wall_s": round(wall, 2), "clips_per_min": round(len(clips) / wall * 60, 1), "results": data["results"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=200, help="number of clips (default 200)")
    p.add_argument("--seconds", type=float, default=15.0, help="clip length (default 15)")
    p.add_argument("--size", default="720x1280", help="WxH (default 720x1280, portrait)")
    p.add_argument("--fps", type=int, default=30, help="clip frame rate (default 30)")
    p.add_argument("--clip-dir", type=Path, default=Path.home() / ".cache" / "framescan" / "archive-bench")
    p.add_argument("--workers", default="1,2", help="worker counts to run (default 1,2)")
    p.add_argument("--no-naive", action="store_true", help="skip the naive loop")
    p.add_argument("--json", type=Path, help="write the results as JSON")
    p.add_argument("--naive-child", nargs=2, metavar=("LIST", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.naive_child:
        return naive_child(*args.naive_child)
    width, height = (int(x) for x in args.size.lower().split("x"))
    print(f"generating/reusing {args.clips} clips in {args.clip_dir} ...", file=sys.stderr, flush=True)
    clips = make_clips(args.clips, args.seconds, width, height, args.fps, args.clip_dir)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="framescan-archive-bench-") as tmp:
        work = Path(tmp)
        naive = None
        for w in (int(x) for x in args.workers.split(",")):
            print(f"framescan archive --workers {w} ...", file=sys.stderr, flush=True)
            rows.append(run_archive(clips, w, work))
        if not args.no_naive:
            print("naive loop ...", file=sys.stderr, flush=True)
            naive = run_naive(clips, work)
        agree = None
        if naive is not None and rows:
            fs = store_decisions(rows[0]["db"])
            agree = sum(fs.get(sha) == r["decision"] for sha, r in naive["results"].items())
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "load_avg_after": os.getloadavg(),
        "clips": args.clips,
        "seconds": args.seconds,
        "size": args.size,
        "fps": args.fps,
        "archive": [{k: v for k, v in r.items() if k != "db"} for r in rows],
        "naive": None if naive is None else {k: v for k, v in naive.items() if k != "results"},
        "naive_decisions_agree": agree,
    }
    print(
        f"\n{args.clips} clips, {args.seconds:g} s, {args.size}, {args.fps} fps, sampling 2 fps; "
        f"{os.cpu_count()} CPUs; load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}\n"
    )
    print("| run | wall s | clips/min (wall) | clips/min once ready | rerun, nothing to do |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| framescan archive, {r['workers']} worker{'s' if r['workers'] > 1 else ''} | {r['wall_s']} | "
            f"{r['clips_per_min']} | {r['clips_per_min_ready']} | {r.get('rerun_wall_s', '-')} s |"
        )
    if naive is not None:
        print(f"| naive loop (cv2 + NudeDetector, 1 process) | {naive['wall_s']} | {naive['clips_per_min']} | - | - |")
        print(f"\nnaive decisions equal framescan's on {agree}/{args.clips} clips")
    print("decisions (framescan): " + ", ".join(json.dumps(r["decisions"]) for r in rows))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
