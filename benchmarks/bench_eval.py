"""--rescore vs a full rerun: the time to decide a labelled set again under another policy from
the stored timelines, against scanning it again under that policy, in the same run.

    python benchmarks/bench_eval.py SET --policy P.json -- --all-signals --ocr --banks SET/banks.sqlite

1. ``framescan eval SET --policy P`` into a fresh store: a full scan under P (timed);
2. ``framescan eval SET --rescore --policy P`` on that store, ``--repeats`` times (median):
   with the store holding scans under P, the rescore decides the same timelines again;
3. the figures of (1) and (2) are compared: they must be equal.
Both run in fresh processes (``python -m framescan``), model loading and worker start-up
included, as a user runs them. Prints a markdown table and, with --json, writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "framescan", "eval", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set")
    ap.add_argument("--policy", required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--db", help="the store to scan into (must not hold these scans yet; default: a temporary one)")
    a, scan_options = ap.parse_known_args()  # the rest (after --): framescan eval's scanner options
    a.scan_options = [x for x in scan_options if x != "--"]
    with tempfile.TemporaryDirectory() as tmp:
        db = a.db or str(Path(tmp) / "bench.sqlite")
        if Path(db).exists():
            ap.error(f"--db {db} exists: the full scan must scan every clip")
        common = [a.set, "--db", db, "--policy", a.policy, "-q", *a.scan_options]
        full = run([*common, "--workers", str(a.workers), "--json", f"{tmp}/full.json"])
        rescore = [run([*common, "--rescore", "--json", f"{tmp}/rescore.json"]) for _ in range(a.repeats)]
        f, r = json.loads(Path(f"{tmp}/full.json").read_text()), json.loads(Path(f"{tmp}/rescore.json").read_text())
    equal = f["categories"] == r["categories"] and f["decisions"] == r["decisions"]
    med = statistics.median(rescore)
    out = {
        "set": a.set,
        "clips": f["clips"],
        "full_scan_s": round(full, 2),
        "rescore_s": [round(x, 2) for x in rescore],
        "rescore_median_s": round(med, 2),
        "ratio": round(med / full, 4),
        "same_figures": equal,
    }
    print(f"| clips | full scan s | --rescore s (median of {a.repeats}) [min-max] | rescore / full | same figures |")
    print("|---|---|---|---|---|")
    print(
        f"| {f['clips']} | {full:.1f} | {med:.2f} [{min(rescore):.2f}-{max(rescore):.2f}] | {100 * med / full:.1f}% | "
        f"{'yes' if equal else 'NO'} |"
    )
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
