"""``framescan submit FILE... --url URL --token TOKEN``: scan clips on a framescan service."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from ..errors import ConfigError, FramescanError, InputError
from ..report import Report
from ..sample import FpsSampler
from .main import EXIT_CONFIG, exit_codes_help
from .outpath import check_output
from .scan import checked

NAME = "submit"
DEFAULT_URL = "http://127.0.0.1:8080"
DESCRIPTION = """\
Scan clips on a framescan service (framescan serve): upload each clip, wait for its report
(polling when the server answers 202), print the same verdicts as 'framescan scan' and exit
with the same codes. Needs httpx (pip install -e ".[serve]").

When the service itself fails (unreachable, token refused, still busy after the retries)
nothing is printed for the clip and the exit code is 4."""

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="FILE", help="video files to scan")
    p.add_argument(
        "--url",
        default=os.environ.get("FRAMESCAN_URL", DEFAULT_URL),
        help=f"service URL (default: $FRAMESCAN_URL, else {DEFAULT_URL})",
    )
    p.add_argument("--token", help="bearer token (default: $FRAMESCAN_TOKEN)")
    p.add_argument("--policy", metavar="NAME", help="a policy the server has in its policy directory")
    p.add_argument(
        "--fps", type=checked(float, FpsSampler), metavar="N", help="frames sampled per second (default: the server's)"
    )
    p.add_argument(
        "--deadline", type=float, metavar="S", help="seconds the server waits before answering 202 (then polled)"
    )
    p.add_argument(
        "--max-total", type=float, default=900.0, metavar="S", help="seconds allowed per clip, polling included (900)"
    )
    p.add_argument(
        "--retries", type=int, default=5, metavar="N", help="retries after 429/503 or a connection failure (5)"
    )
    p.add_argument(
        "--json",
        metavar="OUT",
        help="write the full report(s) as JSON to OUT ('-' for stdout; missing folders are created)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="scan clips on a framescan service",
        description=DESCRIPTION,
        epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        from ..client import Client, ServiceError
    except ImportError as ex:
        raise ConfigError(f'framescan submit needs httpx: pip install -e ".[serve]" ({ex})') from ex
    from .scan import exit_code, outcome, render, write_json

    check_output(args.json, "--json")
    token = args.token or os.environ.get("FRAMESCAN_TOKEN")
    if not token:
        raise ConfigError("no token: pass --token or set $FRAMESCAN_TOKEN")
    reports: list[Report] = []
    with Client(args.url, token, max_retries=args.retries, max_total=args.max_total) as client:
        for path in args.paths:
            try:
                report = Report.from_dict(client.scan(path, deadline=args.deadline, policy=args.policy, fps=args.fps))
            except (InputError, FramescanError) as ex:
                report = Report.from_error(path, ex)
            except ServiceError as ex:
                print(f"framescan: {path}: service error: {ex.message}", file=sys.stderr)
                return EXIT_CONFIG
            reports.append(report)
            if not args.quiet and args.json != "-":
                print(render(report), flush=True)
            elif report.status == "error":  # -q: "nothing but errors"
                print(render(report), file=sys.stderr, flush=True)
    if args.json:
        write_json(reports, args.json)
    return exit_code([outcome(r) for r in reports])


def main(argv: list[str] | None = None) -> int:
    """``python -m framescan.cli.submit ...``: the same as ``framescan submit ...`` (one dispatcher)."""
    from .main import main as framescan_main

    return framescan_main([NAME, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
