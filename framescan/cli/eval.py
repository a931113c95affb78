"""framescan eval SET: measure how often framescan's decisions are right on a labelled set.

SET is a JSONL or CSV manifest (path, a label per category: true / false / empty =
unlabelled, optional <category>_segments [[start, end], ...] in seconds, optional split) or a
folder (positive/<category>/... and negative/...). The clips are scanned through the archive
machinery into the eval's result store (--db): isolated workers, resumable, keyed by content,
so running again scans nothing already scanned. Printed per category: clip-level precision,
recall, F1, false review and block rates at the policy, PR and ROC areas, false flags per 100
clean clips and per hour of clean video, segment recall and detection delay, with bootstrap
95% intervals; then the signal behind every false flag and every miss.

--rescore --policy P.json decides the stored timelines again under P without decoding
anything (seconds). --suggest-policy OUT.json --target precision=0.9 writes the thresholds that
meet the target on the set. --build-set DIR writes the project's evaluation set (stand-ins:
they test the pipeline, not the models' accuracy on real harmful content). docs/eval.md.

Exit codes: 0 done; 3 some clips have no result (left out of the figures, listed); 1
--suggest-policy: no threshold meets the target; 4 model, configuration or store error; 2
usage error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .main import EXIT_ALLOW, EXIT_ERROR, UsageError
from .outpath import check_output
from .scan import add_scanner_options, scan_config

NAME = "eval"
EXIT_TARGET_MISSED = 1


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from ..eval.metrics import DEFAULT_BOOTSTRAP, DEFAULT_SEED

    p = sub.add_parser(
        NAME,
        help="measure precision, recall and false flags on a labelled set",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "set", nargs="?", metavar="SET", help="manifest (.jsonl or .csv) or set folder (required unless --build-set)"
    )
    p.add_argument(
        "--db",
        metavar="DB",
        help="the eval's result store (default: beside SET, <manifest name>.eval.sqlite, or eval.sqlite in a set folder)",
    )
    p.add_argument(
        "--rescore", action="store_true", help="scan nothing: decide the stored timelines again under --policy"
    )
    p.add_argument(
        "--suggest-policy",
        nargs="?",
        const="suggested-policy.json",
        metavar="OUT.json",
        help="write the policy whose thresholds meet --target on the set (default file: suggested-policy.json)",
    )
    p.add_argument(
        "--target", metavar="METRIC=X", help="with --suggest-policy: precision=X or recall=X, e.g. precision=0.9"
    )
    p.add_argument(
        "--build-set", metavar="DIR", help="write the project's evaluation set to DIR (nothing downloaded) and exit"
    )
    p.add_argument(
        "--json", metavar="FILE", help="write every figure as JSON ('-': standard output instead of the table)"
    )
    p.add_argument("--markdown", metavar="FILE", help="write a Markdown summary")
    p.add_argument("--charts", metavar="DIR", help="write pr.png and scores.png (needs matplotlib: the charts extra)")
    p.add_argument("--split", metavar="NAME", help="only the clips whose manifest split is NAME (default: all)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"bootstrap seed (default {DEFAULT_SEED})")
    p.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_BOOTSTRAP,
        metavar="N",
        help=f"bootstrap resamples (default {DEFAULT_BOOTSTRAP})",
    )
    p.add_argument("--workers", type=int, metavar="N", help="parallel isolated workers (default: available cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line while scanning")
    add_scanner_options(p)
    return p


def default_db(set_path: str) -> str:
    p = Path(set_path)
    return str(p / "eval.sqlite") if p.is_dir() else str(p.with_name(p.stem + ".eval.sqlite"))


def _check(args: argparse.Namespace) -> None:
    if args.build_set:
        if args.set:
            raise UsageError("--build-set DIR writes a set; give no SET with it (evaluate it afterwards)")
        return
    if not args.set:
        raise UsageError("give the labelled SET to evaluate (a manifest or a set folder), or --build-set DIR")
    if args.early_exit:
        raise UsageError("--early-exit cuts timelines short, so they could not be rescored: eval scans whole clips")
    if (args.suggest_policy is None) != (args.target is None):
        raise UsageError(
            "--suggest-policy and --target go together, e.g. --suggest-policy OUT.json --target precision=0.9"
        )
    if args.bootstrap < 0:
        raise UsageError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    for value, option in (
        (args.json, "--json"),
        (args.markdown, "--markdown"),
        (args.suggest_policy, "--suggest-policy"),
    ):
        check_output(value, option)
    if args.charts and Path(args.charts).exists() and not Path(args.charts).is_dir():
        raise UsageError(f"--charts {args.charts}: not a folder")


def run(args: argparse.Namespace) -> int:
    _check(args)
    if args.build_set:
        from ..eval.build import build_set, render_built

        print(render_built(build_set(args.build_set, progress=None if args.quiet else sys.stderr)))
        return EXIT_ALLOW
    from ..eval.manifest import load_set
    from ..eval.run import EvalOptions, rows_for, run_eval
    from ..eval.suggest import parse_target

    target = parse_target(args.target) if args.target else None
    ls = load_set(args.set).only_split(args.split)
    db = args.db or default_db(args.set)
    if not args.rescore:
        check_output(db, "--db")
    opts = EvalOptions(
        db=db,
        scan=scan_config(args),
        workers=args.workers,
        rescore=args.rescore,
        seed=args.seed,
        n_boot=args.bootstrap,
        quiet=args.quiet or not sys.stderr.isatty(),  # a progress bar on a terminal, no JSON lines
    )
    result, views = run_eval(ls, opts)
    from ..eval.render import render_markdown, render_table, write_charts

    if args.json == "-":
        print(json.dumps(result, indent=2))
    else:
        print(render_table(result))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(render_markdown(result))
    if args.charts and write_charts(result, args.charts) is None:
        print("charts skipped: matplotlib is not installed (pip install 'framescan[charts]')", file=sys.stderr)
    code = EXIT_ERROR if result["errors"] else EXIT_ALLOW
    if target is not None:
        from ..eval.suggest import suggest

        rows, matched, _ = rows_for(ls, views, rank=False)
        policy, summary = suggest(rows, matched, opts.scan.load_policy(), target, seed=args.seed, n_boot=args.bootstrap)
        out = sys.stderr if args.json == "-" else sys.stdout
        if policy is None:
            print(
                f"framescan: no review threshold meets {target} on this set for: {', '.join(summary['failed'])} "
                "(nothing written; try a lower target or more labelled clips)",
                file=sys.stderr,
            )
            return EXIT_TARGET_MISSED
        data = policy.to_dict()
        data_path = args.suggest_policy
        Path(data_path).write_text(json.dumps(data, indent=2) + "\n")
        for cat, s in summary["categories"].items():
            ci = s["ci95"]
            interval = "" if ci is None else f", 95% interval {ci[0]:.2f}-{ci[1]:.2f}"
            print(
                f"suggested {cat}: review {s['review']:g}, block {s['block']:g} -> precision {s['precision']:.2f}, "
                f"recall {s['recall']:.2f} on the set ({target.metric} {s[target.metric]:.2f}{interval})",
                file=out,
            )
        print(f"policy written to {os.path.abspath(data_path)} (use it with --policy)", file=out)
    return code
