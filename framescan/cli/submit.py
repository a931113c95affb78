"""``framescan submit FILE... --url URL --token TOKEN``: scan clips on a framescan service.

Prints the same verdicts and exits with the same codes as ``framescan scan`` (0 allow, 10
review, 3 a clip could not be scanned, 20 block; the most severe wins). The token may come
from ``$FRAMESCAN_TOKEN`` instead of ``--token``. When the service itself fails (unreachable,
token refused, still busy after the retries) nothing is printed for the clip and the exit
code is 4.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from ..errors import ConfigError, FramescanError, InputError
from ..report import Report
from .main import EXIT_CONFIG

NAME = "submit"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="FILE", help="video files to scan")
    p.add_argument("--url", default=os.environ.get("FRAMESCAN_URL", "http://127.0.0.1:8080"), help="service URL")
    p.add_argument("--token", help="bearer token (default: $FRAMESCAN_TOKEN)")
    p.add_argument("--policy", metavar="NAME", help="a policy the server has in its policy directory")
    p.add_argument("--fps", type=float, help="frames sampled per second (default: the server's)")
    p.add_argument("--deadline", type=float, help="seconds the server waits before answering 202 (then polled)")
    p.add_argument("--max-total", type=float, default=900.0, help="seconds allowed per clip, polling included (900)")
    p.add_argument("--retries", type=int, default=5, help="retries after 429/503 or a connection failure (5)")
    p.add_argument("--json", metavar="OUT", help="write the full report(s) as JSON to OUT ('-' for stdout)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="scan clips on a framescan service", description=__doc__)
    add_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        from ..client import Client, ServiceError
    except ImportError as ex:
        raise ConfigError(f"framescan submit needs httpx: pip install 'framescan[serve]' ({ex})") from ex
    from .scan import exit_code, outcome, render, write_json

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
            elif report.status == "error" and not args.quiet:
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
