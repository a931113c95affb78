"""The ``framescan`` entry point: parse, dispatch, map errors to exit codes (``EXIT_CODES``).

Every usage error (an unknown option, a bad option value, an output path that cannot be
written) is one line on stderr and exit code 2, found before anything is scanned.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from typing import Any, NoReturn

from .._version import __version__
from ..errors import FramescanError, InputError

EXIT_ALLOW = 0
EXIT_REVIEW = 10
EXIT_ERROR = 3
EXIT_BLOCK = 20
EXIT_USAGE = 2
EXIT_CONFIG = 4
EXIT_INTERRUPTED = 130

#: What each exit code means (``scan``, ``submit``; the other commands use 0, 2, 4 and 130).
#: The README's table says the same.
EXIT_CODES = (
    (EXIT_ALLOW, "every clip scanned and allowed"),
    (EXIT_REVIEW, "at least one clip needs review (none blocked, no errors)"),
    (EXIT_ERROR, "at least one clip could not be scanned (its report has status: error)"),
    (EXIT_BLOCK, "at least one clip is blocked"),
    (EXIT_USAGE, "usage error: a bad option, option value or output path (nothing scanned)"),
    (EXIT_CONFIG, "model or configuration error: a model, manifest, policy or token file (nothing scanned)"),
    (EXIT_INTERRUPTED, "interrupted"),
)

#: Sub-command modules (``framescan.cli.<name>``, whose ``NAME`` is ``<name>``). Missing optional ones are skipped.
COMMANDS = (
    "scan", "probe", "models", "sample", "hash", "bank", "archive", "export", "eval", "serve", "submit", "bench",
)  # fmt: skip

log = logging.getLogger("framescan")


class UsageError(Exception):
    """A command line framescan cannot act on (a bad option value or combination, an output
    path that cannot be written): exit code 2 with this one-line message, nothing scanned."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, as every framescan error is: what is wrong and
    where to read more (instead of the whole usage synopsis first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def exit_codes_help() -> str:
    """The exit-code table for ``--help`` epilogs."""
    rows = "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES)
    return f"exit codes:\n{rows}\n  with several clips the most severe wins: allow < review < error < block"


class _Commands(argparse._SubParsersAction):
    """Sub-commands whose modules are imported when needed: the chosen one when the command line
    names it, all of them when the help lists them. ``framescan --version`` imports none.

    Builds on argparse internals (the name -> parser map, ``_get_subactions`` called by the help
    formatter); tests/test_imports.py runs both paths."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[str] = []  # names whose module is not imported yet, in listing order

    def add_command(self, name: str) -> None:
        """Offer ``name`` (module ``framescan.cli.<name>``) without importing it."""
        self._pending.append(name)
        self._name_parser_map[name] = None  # a valid choice now; its parser is made on first use

    def _load(self, name: str) -> None:
        if name not in self._pending:
            return
        self._pending.remove(name)
        del self._name_parser_map[name]
        mod = importlib.import_module(f"framescan.cli.{name}")
        p = mod.add_parser(self)
        p.set_defaults(_run=mod.run, _parser=p)

    def parser_for(self, name: str) -> argparse.ArgumentParser:
        """The sub-command's parser (its module imported if it was not yet)."""
        self._load(name)
        return self._name_parser_map[name]

    def _get_subactions(self) -> list[argparse.Action]:
        for name in list(self._pending):
            self._load(name)
        return super()._get_subactions()

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        self._load(values[0])
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="framescan",
        description="Scan short videos for content that harms children (sexual content, violence, hate,\n"
        "bullying, extremism): per clip a risk score for each category and a decision, allow, review\n"
        "or block.",
        epilog="Run 'framescan COMMAND --help' for a command's options. Scan and submit exit with:\n\n"
        + exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"framescan {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", action=_Commands)
    sub.required = True
    for name in COMMANDS:
        if importlib.util.find_spec(f"framescan.cli.{name}") is not None:
            sub.add_command(name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="framescan: %(levelname)s: %(message)s")
    try:
        return int(args._run(args))
    except UsageError as ex:
        args._parser.error(str(ex))
    except KeyboardInterrupt:
        print("framescan: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except InputError as ex:
        print(f"framescan: error [{ex.code}]: {ex.message}", file=sys.stderr)
        return EXIT_ERROR
    except FramescanError as ex:
        print(f"framescan: error [{ex.code}]: {ex.message}", file=sys.stderr)
        return EXIT_CONFIG
    except BrokenPipeError:
        return EXIT_ALLOW


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
