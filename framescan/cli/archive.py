"""framescan archive SRC --db DB: scan a whole archive into a resumable result store.

SRC is a folder (walked recursively; a file is scanned when its extension is selected, see
--ext, and its first bytes look like a video; symlinks are never followed out of SRC), a
single file, or @LIST (a file of paths, one per line; --list FILE is the same, '-' reads
stdin). Every file ends in exactly one state, named in the store and in 'framescan export':
done (allow/review/block), failed (with its error code), quarantined (the worker crashed or
timed out --max-tries times) or skipped (with its reason, e.g. not_video). Every content
(sha256) is scanned once per models + configuration fingerprint; results are committed one
by one, so the same command run again after a crash, a kill or a full disk continues where
it stopped. Details: docs/archive.md.

Exit codes: 0 no file failed or was quarantined (skipped files do not count); 3 some
failed or were quarantined (list them with 'framescan export --db DB'); 4 model,
configuration or result-store error (e.g. disk full: free space and rerun); 2 usage error;
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from typing import Any

from ..archive import (
    DEFAULT_EXTENSIONS,
    DEFAULT_MAX_TRIES,
    DEFAULT_PROGRESS_INTERVAL,
    ArchiveOptions,
    StoreError,
    parse_extensions,
    render_summary,
    run_archive,
)
from .main import EXIT_ALLOW, EXIT_CONFIG, EXIT_ERROR
from .outpath import check_output
from .scan import add_scanner_options, scan_config

NAME = "archive"
#: The result store cannot be written (disk full, I/O error): same code as a configuration error.
EXIT_STORE = EXIT_CONFIG
_PAGE = 4096

log = logging.getLogger(__name__)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="scan a folder or a list of files into a resumable result store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "source",
        nargs="?",
        metavar="SRC|@LIST",
        help="folder to walk, one file, or @FILE listing paths (one of SRC or --list is required)",
    )
    p.add_argument("--db", required=True, metavar="DB", help="SQLite result store (required; created if missing)")
    p.add_argument(
        "--list",
        dest="list_file",
        metavar="FILE",
        help="file listing paths to scan, one per line ('-': stdin); alone or with SRC (default: none)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="parallel isolated workers (default: available cores; with --ray: the cluster's CPUs / --threads)",
    )
    p.add_argument(
        "--ext",
        action="append",
        metavar="EXT[,EXT...]",
        help=f"file extensions to pick up in a folder (repeatable; '*': any; default: {', '.join(DEFAULT_EXTENSIONS)})",
    )
    p.add_argument(
        "--max-tries",
        type=int,
        default=DEFAULT_MAX_TRIES,
        metavar="N",
        help=f"worker crashes/timeouts on one item before it is quarantined (default {DEFAULT_MAX_TRIES})",
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="give failed and quarantined items another try (default: they are final)",
    )
    p.add_argument(
        "--rehash",
        action="store_true",
        help="hash every file again (default: reuse the hash of a file whose size and mtime did not change)",
    )
    p.add_argument(
        "--progress-interval",
        type=float,
        default=DEFAULT_PROGRESS_INTERVAL,
        metavar="S",
        help=f"seconds between JSON progress lines when stderr is not a terminal (default {DEFAULT_PROGRESS_INTERVAL:g})",
    )
    p.add_argument(
        "--max-store-mb",
        type=float,
        metavar="MB",
        help="cap the store's size; reaching it stops the run like a full disk (default: no cap)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="scan in Ray actors (optional extra 'ray'); ADDRESS of a cluster, else RAY_ADDRESS or a local "
        "instance (default: local isolated workers, no Ray)",
    )
    p.add_argument(
        "--ray-ship-bytes",
        action="store_true",
        help="with --ray: send file contents to the actors, for nodes that do not share the archive's file system "
        "(default: actors read the paths)",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress and no summary, only errors (default: a bar on a terminal, JSON lines otherwise; "
        "the summary on stdout)",
    )
    add_scanner_options(p)
    return p


def _options(args: argparse.Namespace) -> ArchiveOptions:
    return ArchiveOptions(
        db=args.db,
        source=args.source,
        list_file=args.list_file,
        workers=args.workers,
        extensions=parse_extensions(args.ext),
        scan=scan_config(args),
        max_tries=args.max_tries,
        retry_failed=args.retry_failed,
        rehash=args.rehash,
        ray=args.ray is not None,
        ray_address=args.ray or None,
        ray_ship_bytes=args.ray_ship_bytes,
        progress_interval=args.progress_interval,
        quiet=args.quiet,
        max_store_pages=max(16, int(args.max_store_mb * (1 << 20) / _PAGE)) if args.max_store_mb else None,
    )


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    check_output(args.db, "--db")
    opts = _options(args)
    if not opts.source and not opts.list_file:
        print(
            "framescan archive: nothing to scan: give a folder, a file, @LIST or --list FILE (see --help)",
            file=sys.stderr,
        )
        return 2
    previous = signal.signal(signal.SIGTERM, _sigterm)  # a polite kill stops like Ctrl-C
    try:
        summary = run_archive(opts)
    except StoreError as ex:
        tag = "STORE_FULL" if ex.full else "STORE_ERROR"
        print(f"framescan: error [{tag}]: {ex.message}", file=sys.stderr, flush=True)
        return EXIT_STORE
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not args.quiet:
        print(render_summary(summary), flush=True)
    return EXIT_ERROR if summary.counts["final_failures"] else EXIT_ALLOW


def summary_from_stderr(text: str) -> dict[str, Any] | None:
    """The ``summary`` event of a run's JSON progress lines (for scripts and tests)."""
    for line in reversed(text.splitlines()):
        if line.startswith('{"event": "summary"'):
            return dict(json.loads(line))
    return None


if __name__ == "__main__":  # pragma: no cover
    from .main import main

    sys.exit(main([NAME, *sys.argv[1:]]))
