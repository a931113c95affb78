"""Markdown tables from ``framescan bench`` reports (what RESULTS.md quotes).

    python benchmarks/e2e_markdown.py benchmarks/e2e.json              # tables of one report
    python benchmarks/e2e_markdown.py main.json --runs a.json b.json   # + every pair of runs, with contention

The per-pair table lists each repeat's framescan and naive wall times with the cores other
processes used meanwhile (from /proc/stat): on a shared machine that is what tells a fair
pair (both runs quiet) from a contended one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framescan.bench import QUIET_CORES, STAGES  # noqa: E402


def _s(stat: dict[str, Any] | None, digits: int = 2, scale: float = 1.0) -> str:
    if not stat:
        return "-"
    m, lo, hi = (stat[k] * scale for k in ("median", "min", "max"))
    return f"{m:.{digits}f}" if lo == hi else f"{m:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}]"


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def config_table(report: dict[str, Any]) -> str:
    """One column pair (framescan, naive) per configuration."""
    cfgs = report["configs"]
    head = "| | " + " | ".join(f"{c['name']} framescan | {c['name']} naive" for c in cfgs) + " |"
    sep = "|---|" + "---|---|" * len(cfgs)
    rows: list[str] = [head, sep]

    def row(label: str, get: Any) -> None:
        cells = []
        for c in cfgs:
            for impl in ("framescan", "naive"):
                x = c.get(impl) or {}
                cells.append(get(x) if x.get("ok_runs") else "-")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")

    row("total s", lambda x: _s(x["total_s"]))
    row("per scored frame ms", lambda x: _s(x["per_frame_ms"], 1))
    row("scored frames/s", lambda x: _s(x["scored_fps"], 1))
    row("latency p50 / p95 ms", lambda x: f"{x['latency_ms']['p50']:.0f} / {x['latency_ms']['p95']:.0f}")
    for st in STAGES:
        row(f"{st} s", lambda x, st=st: _s(x["stages_s"][st], 3))
    row("model idle s", lambda x: _s(x.get("model_idle_s"), 3))
    row("CPU s", lambda x: _s(x["cpu_s"]))
    row("efficiency wall/(CPU/cores)", lambda x: _s(x["efficiency"]))
    row("other processes, cores", lambda x: _s(x.get("others_cores")))
    row("cold start s", lambda x: _s(x["cold_start_s"]))
    row("peak RSS MB", lambda x: _s(x["peak_rss_mb"], 0))
    return "\n".join(rows)


def ratio_table(report: dict[str, Any]) -> str:
    rows = [
        "| configuration | ratio of medians | paired, per repeat | quiet pairs | detections |",
        "|---|---|---|---|---|",
    ]
    for c in report["configs"]:
        ra, ag = c.get("ratio") or {}, c.get("agreement") or {}
        quiet = ra.get("speedup_quiet")
        if ag.get("checked"):
            det = ("agree" if ag["agree"] else "DIFFER") + f" ({', '.join(f'{t:g}' for t in ag['both'])} s)"
        else:
            det = f"not compared ({ag.get('reason', '-')})"
        quiet_text = f"{_s(quiet)} (n={quiet['n']})" if quiet else "none"
        rows.append(
            f"| {c['name']} | {_x(ra.get('speedup'))} | {_s(ra.get('speedup_paired'))} | {quiet_text} | {det} |"
        )
    return "\n".join(rows)


def pairs_table(reports: list[tuple[str, dict[str, Any]]]) -> str:
    rows = [
        "| run | configuration | repeat | framescan s (others) | naive s (others) | naive/framescan | quiet |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in reports:
        runs = {(x["config"], x["impl"], x["repeat"]): x for x in r["runs"] if x.get("ok")}
        order = {c["name"]: i for i, c in enumerate(r["configs"])}
        for (cfg, impl, rep), fs in sorted(runs.items(), key=lambda kv: (order.get(kv[0][0], 0), kv[0][2])):
            nv = runs.get((cfg, "naive", rep))
            if impl != "framescan" or nv is None:
                continue
            of, on = fs.get("others_cores") or 0.0, nv.get("others_cores") or 0.0
            quiet = "yes" if max(of, on) < QUIET_CORES else ""
            rows.append(
                f"| {label} | {cfg} | {rep + 1} | {fs['wall_s']:.2f} ({of:.2f}) | {nv['wall_s']:.2f} ({on:.2f}) | "
                f"{nv['wall_s'] / fs['wall_s']:.2f}x | {quiet} |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", help="a framescan bench JSON report")
    p.add_argument("--runs", nargs="*", default=[], help="more reports for the per-pair table")
    args = p.parse_args(argv)
    main_report = json.loads(Path(args.report).read_text())
    out = [config_table(main_report), "", ratio_table(main_report)]
    reports = [(Path(x).stem, json.loads(Path(x).read_text())) for x in [args.report, *args.runs]]
    out += ["", pairs_table(reports)]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
