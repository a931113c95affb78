"""Symbol banks: recall and false matches on a generated set, and what a 50-symbol bank costs a
default scan. Results in docs/symbols.md.

    python benchmarks/bench_symbols.py --part recall   # generated set + real and clean clips
    python benchmarks/bench_symbols.py --part recall --seed 1 7 42   # three sets, and pooled
    python benchmarks/bench_symbols.py --part cost     # 720x1280 15 s, no bank vs 50 symbols
    python benchmarks/bench_symbols.py --quick         # both, small

Recall: each of ``--references`` stand-in references (``skimage.data.logo()`` and generated
emblems, ``framescan.synth_symbols``) is placed into clips of moving skimage scenes at 10-60% of
the frame width, rotated up to 30 degrees, perspective-warped, up to 30% covered, colour-shifted,
shown for 1-2.5 s, encoded with H.264 at an upload-like bitrate (854x480 at 1 Mbit/s, veryfast).
Every clip is scanned with a default ``Scanner`` (2 fps) and the bank database: a clip counts as
found when the category has a segment whose evidence names the shown item and which starts within
one sampling interval (0.5 s) of the time the symbol appears. False matches: any evidence of
another item, or outside the shown time (more than one interval away), on the generated clips,
on clean generated clips and on every clip of ``../shared/testdata/real/``.

Cost: a 15 s 720x1280 clip (``framescan.synth.write_clip``), a default scan without banks and
with a bank of 50 symbols, interleaved rounds, medians of the wall times and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framescan import Scanner, banks, symbols  # noqa: E402
from framescan.synth import write_clip  # noqa: E402
from framescan.synth_symbols import SCENES, Placement, stand_in_symbols, write_symbol_clip  # noqa: E402

REAL = ROOT.parent / "shared" / "testdata" / "real"
if not REAL.is_dir():
    REAL = Path("/work/shared/testdata/real")
INTERVAL = 0.5  # the default sampling: 2 fps
WIDTH_BUCKETS = ((0.1, 0.2), (0.2, 0.35), (0.35, 0.6))


def make_db(path: Path, refs: list[tuple[str, np.ndarray]], bank: str = "stand-ins") -> Path:
    with banks.BankStore(path) as store:
        store.create_bank(bank, "extremism", "review", kind="symbol")
        for name, img in refs:
            store.add_symbol(bank, name, symbols.reference_features(img))
    return path


def evidence_of(report: dict, category: str = "extremism") -> list[dict]:
    return [e for e in report["evidence"] if e["model"].startswith("bank:") and e["category"] == category]


def recall(args: argparse.Namespace, work: Path, seed: int) -> dict:
    """One generated set (``seed``: its references, placements and scenes), its clean clips and
    the real clips."""
    work.mkdir(parents=True, exist_ok=True)
    refs = stand_in_symbols(args.references, seed=seed)
    db = make_db(work / "banks.sqlite", refs)
    scanner = Scanner(banks=db)
    rng = np.random.default_rng(seed)
    rows, false = [], []
    for k in range(args.clips):
        ri = k % len(refs)
        name, img = refs[ri]
        placement = Placement.random(rng)
        start = float(rng.uniform(0.5, 1.5))
        shown = float(rng.uniform(1.0, 2.5))
        scene = SCENES[k % len(SCENES)]
        clip = write_symbol_clip(
            work / f"s{k}.mp4",
            img,
            placement,
            shown=(start, start + shown),
            scene=scene,
            seconds=start + shown + 1.0,
            width=args.size[0],
            height=args.size[1],
            bit_rate=args.bit_rate,
        )
        r = scanner.scan(clip).to_dict()
        ev = evidence_of(r)
        right = [e for e in ev if e["label"] == name]
        segs = [
            s
            for s in r["segments"]
            if s["category"] == "extremism" and any(r["evidence"][i]["label"] == name for i in s["evidence"])
        ]
        found = any(-0.01 <= s["start"] - start <= INTERVAL for s in segs)
        wrong = [e for e in ev if e["label"] != name or not (start - INTERVAL <= e["time"] <= start + shown + INTERVAL)]
        false += [(clip.name, e["label"], e["time"]) for e in wrong]
        rows.append(
            {
                "clip": k,
                "item": name,
                "scene": scene,
                "width": round(placement.width, 3),
                "angle": round(placement.angle, 1),
                "tilt": round(placement.tilt, 2),
                "occlusion": round(placement.occlusion, 2),
                "start": round(start, 2),
                "shown": round(shown, 2),
                "found": found,
                "first": min((e["time"] for e in right), default=None),
                "max_inliers": max((e["inliers"] for e in right), default=0),
                "symbols_s": r["timings"].get("symbols", 0.0),
                "frames": r["coverage"]["scored_frames"],
            }
        )
        print(
            f"{k:3d} {name:14s} w={placement.width:.2f} a={placement.angle:+5.1f} tilt={placement.tilt:.2f} "
            f"occ={placement.occlusion:.2f} {start:.2f}+{shown:.2f}s {'found' if found else 'MISSED'}"
            + (f" FALSE {wrong}" if wrong else ""),
            flush=True,
        )
    clean = []
    for k in range(args.clean):
        clip = write_symbol_clip(work / f"c{k}.mp4", None, None, scene=SCENES[k % len(SCENES)], seconds=6.0)
        clean.append(clip)
    clean += [write_clip(work / "clean-720x1280.mp4", width=720, height=1280, seconds=6)]
    real = sorted(REAL.glob("*.mp4")) if REAL.is_dir() else []
    clean_frames = 0
    for clip in clean + real:
        r = scanner.scan(clip).to_dict()
        clean_frames += r["coverage"]["scored_frames"]
        for e in evidence_of(r):
            false.append((clip.name, e["label"], e["time"]))
    # every reference against every other (whole images)
    cross = 0
    for name, img in refs:
        for h in scanner.symbols.match(symbols.as_grey(img)):  # type: ignore[union-attr]
            if scanner.symbols.items[h.item].name != name:  # type: ignore[union-attr]
                cross += 1
    by_width = {}
    for lo, hi in WIDTH_BUCKETS:
        sel = [r for r in rows if lo <= r["width"] < hi]
        by_width[f"{lo:.2f}-{hi:.2f}"] = {"clips": len(sel), "found": sum(r["found"] for r in sel)}
    per_frame = [r["symbols_s"] / r["frames"] for r in rows if r["frames"]]
    return {
        "clips": len(rows),
        "found": sum(r["found"] for r in rows),
        "recall": sum(r["found"] for r in rows) / max(1, len(rows)),
        "by_width": by_width,
        "false_matches": false,
        "clean_clips": len(clean),
        "real_clips": len(real),
        "clean_frames": clean_frames,
        "cross_reference_matches": cross,
        "symbols_ms_per_frame_median": 1e3 * statistics.median(per_frame) if per_frame else None,
        "rows": rows,
    }


def pooled(runs: dict[int, dict]) -> dict:
    """The sets of several seeds together, with a 95% Wilson interval for the recall."""
    n = sum(r["clips"] for r in runs.values())
    k = sum(r["found"] for r in runs.values())
    z = 1.96
    p = k / max(1, n)
    mid, half = (
        (p + z * z / (2 * n)) / (1 + z * z / n),
        z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n),
    )
    by_width = {
        w: {f: sum(r["by_width"][w][f] for r in runs.values()) for f in ("clips", "found")}
        for w in next(iter(runs.values()))["by_width"]
    }
    return {
        "seeds": list(runs),
        "clips": n,
        "found": k,
        "recall": p,
        "recall_95": [float(mid - half), float(mid + half)],
        "by_width": by_width,
        "false_matches": [f for r in runs.values() for f in r["false_matches"]],
        "clean_frames": sum(r["clean_frames"] for r in runs.values()),
        "cross_reference_matches": sum(r["cross_reference_matches"] for r in runs.values()),
        "per_seed": runs,
    }


def cost(args: argparse.Namespace, work: Path) -> dict:
    clip = write_clip(work / "cost-720x1280.mp4", width=720, height=1280, seconds=args.seconds, flagged=(6.0, 8.0))
    db = make_db(work / "banks50.sqlite", stand_in_symbols(args.bank, seed=args.seed[0] + 1))
    plain, with_bank = Scanner(banks=False), Scanner(banks=db)
    assert with_bank.symbols is not None and len(with_bank.symbols) == args.bank
    for s in (plain, with_bank):  # warm-up
        s.scan(clip)
    t_plain, t_bank, t_sym, c_plain, c_bank = [], [], [], [], []
    for _ in range(args.rounds):
        for label, s in (("plain", plain), ("bank", with_bank)):
            t0, c0 = time.perf_counter(), time.process_time()
            r = s.scan(clip)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            (t_plain if label == "plain" else t_bank).append(dt)
            (c_plain if label == "plain" else c_bank).append(dc)
            if label == "bank":
                t_sym.append(r.timings.get("symbols", 0.0))
        print(
            f"round: plain {t_plain[-1]:.3f} s (cpu {c_plain[-1]:.3f}), {args.bank} symbols {t_bank[-1]:.3f} s "
            f"(cpu {c_bank[-1]:.3f})",
            flush=True,
        )
    mp, mb = statistics.median(t_plain), statistics.median(t_bank)
    cp, cb = statistics.median(c_plain), statistics.median(c_bank)
    return {
        "clip": f"720x1280 {args.seconds:g} s 30 fps H.264 (framescan.synth.write_clip)",
        "rounds": args.rounds,
        "plain_s": mp,
        "bank_s": mb,
        "ratio": mb / mp,
        "added_percent": 100 * (mb / mp - 1),
        "plain_cpu_s": cp,
        "bank_cpu_s": cb,
        "cpu_ratio": cb / cp,
        # each round's bank scan against the plain scan beside it: robust to the machine's drift
        "paired_ratio_median": statistics.median(b / a for a, b in zip(t_plain, t_bank)),
        "paired_cpu_ratio_median": statistics.median(b / a for a, b in zip(c_plain, c_bank)),
        "symbols_s_median": statistics.median(t_sym),
        "matcher_bytes": with_bank.symbols.nbytes,
        "bank_descriptors": len(with_bank.symbols.descriptors),
    }


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    if not (w.isdigit() and h.isdigit() and int(w) >= 64 and int(h) >= 64):
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT with both at least 64, e.g. 720x1280")
    return int(w), int(h)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("recall", "cost", "both"), default="both")
    p.add_argument("--references", type=int, default=12)
    p.add_argument("--clips", type=int, default=48)
    p.add_argument("--clean", type=int, default=6)
    p.add_argument("--bank", type=int, default=50)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seed", type=int, nargs="+", default=[1], help="generated sets (recall: each, and pooled)")
    p.add_argument("--size", type=_size, default=(854, 480), help="recall clips' WIDTHxHEIGHT (default 854x480)")
    p.add_argument("--bit-rate", type=int, default=1_000_000, help="recall clips' H.264 bit rate (default 1 Mbit/s)")
    p.add_argument("--quick", action="store_true", help="4 references, 8 clips, 2 clean, 2 rounds")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    if args.quick:
        args.references, args.clips, args.clean, args.rounds = 4, 8, 2, 2
    out: dict = {
        "cv2": cv2.__version__,
        "extractor": symbols.extractor_id(),
        "frame_side": symbols.FRAME_SIDE,
        "recall_clips": f"{args.size[0]}x{args.size[1]} H.264 {args.bit_rate / 1e6:g} Mbit/s",
    }
    with tempfile.TemporaryDirectory(prefix="bench-symbols-") as tmp:
        work = Path(tmp)
        if args.part in ("recall", "both"):
            runs = {}
            for seed in args.seed:
                runs[seed] = r = recall(args, work / f"seed{seed}", seed)
                print(
                    f"seed {seed}: recall {r['found']}/{r['clips']} = {100 * r['recall']:.1f}% by width {r['by_width']}; "
                    f"false matches {len(r['false_matches'])} (generated clips, {r['clean_clips']} clean, "
                    f"{r['real_clips']} real: {r['clean_frames']} clean frames); cross-reference "
                    f"{r['cross_reference_matches']}; matching {r['symbols_ms_per_frame_median']:.1f} ms/frame (median)",
                    flush=True,
                )
            out["recall"] = r = pooled(runs)
            lo, hi = r["recall_95"]
            print(
                f"all seeds {r['seeds']}: recall {r['found']}/{r['clips']} = {100 * r['recall']:.1f}% "
                f"(95% {100 * lo:.0f}-{100 * hi:.0f}%) by width {r['by_width']}; false matches "
                f"{len(r['false_matches'])} ({r['clean_frames']} clean frames); cross-reference "
                f"{r['cross_reference_matches']}"
            )
        if args.part in ("cost", "both"):
            out["cost"] = c = cost(args, work)
            print(
                f"cost: no bank {c['plain_s']:.3f} s, {args.bank} symbols {c['bank_s']:.3f} s (median of {c['rounds']}): "
                f"x{c['ratio']:.3f} (+{c['added_percent']:.1f}%); CPU {c['plain_cpu_s']:.3f} vs {c['bank_cpu_s']:.3f} s "
                f"(x{c['cpu_ratio']:.3f}); paired per round: wall x{c['paired_ratio_median']:.3f}, "
                f"CPU x{c['paired_cpu_ratio_median']:.3f}; matching {c['symbols_s_median']:.3f} s; "
                f"matcher {c['matcher_bytes'] / 1e6:.2f} MB"
            )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
