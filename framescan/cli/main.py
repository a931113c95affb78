"""``framescan`` entry point: parse, dispatch, map errors to exit codes.

Exit codes (also in README):

====  ==========================================================
0     every clip scanned and allowed
10    at least one clip needs review (and none blocked or errored)
3     at least one clip could not be scanned (error report written)
20    at least one clip is blocked
2     usage error (bad options)
4     model or configuration error (nothing scanned)
130   interrupted
====  ==========================================================

Severity for several clips: allow < review < error < block.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import FramescanError, InputError

EXIT_ALLOW = 0
EXIT_REVIEW = 10
EXIT_ERROR = 3
EXIT_BLOCK = 20
EXIT_USAGE = 2
EXIT_CONFIG = 4
EXIT_INTERRUPTED = 130

#: Sub-command modules (``framescan.cli.<name>``). Missing optional ones are skipped.
COMMANDS = ("scan", "probe", "models", "sample", "hash", "bank", "archive", "export", "serve", "submit", "bench")

log = logging.getLogger("framescan")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="framescan", description="Scan short videos for content that harms children.")
    parser.add_argument("--version", action="version", version=f"framescan {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"framescan.cli.{name}")
        except ModuleNotFoundError as ex:
            if ex.name and ex.name.startswith("framescan.cli"):
                continue
            raise
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="framescan: %(levelname)s: %(message)s")
    try:
        return int(args._run(args))
    except KeyboardInterrupt:
        print("framescan: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except InputError as ex:
        print(f"framescan: error [{ex.code.value}]: {ex.message}", file=sys.stderr)
        return EXIT_ERROR
    except FramescanError as ex:
        print(f"framescan: error [{ex.code.value}]: {ex.message}", file=sys.stderr)
        return EXIT_CONFIG
    except BrokenPipeError:
        return EXIT_ALLOW


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
