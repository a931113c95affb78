"""framescan export --db DB: the archive store as JSONL, CSV or Parquet, one row per file.

Every file an archive run saw has a row: path, sha256, size, state (done, failed,
quarantined, pending, or skipped with skip_reason), decision, status, max_category (the
category that decided) and max_score (its score), reasons (why, as in the report),
known_content (hash-bank matches: bank, item, share matched, times), error code and message,
tries (worker crashes/timeouts; null when none), segments, evidence (time, category, label,
score), fingerprints and when it was scanned. CSV cells of lists are JSON text; Parquet
columns are typed (needs pyarrow: pip install pyarrow). Results are those of the latest
run's models + configuration unless --all-fingerprints. --flagged keeps only scanned files
whose decision is block or review (no failed or skipped files), block first, then by
max_score, highest first. Columns: docs/archive.md.

--format html -o DIR writes a review queue instead: DIR/index.html (and page-2.html, ...) lists
the clips by risk (block, review, allow, then files that could not be scanned; highest score
first), one row per file with its decision, top reasons and evidence thumbnails (blurred), each
linking to the clip's page (decision, risk timeline, evidence frames, known content) under
DIR/clips/. It is made from the store alone (no rescan) and every link is relative: the folder
opens offline, wherever it is moved.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..archive import EXPORT_FORMATS, export
from .main import UsageError
from .outpath import check_output, check_output_dir

NAME = "export"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="export an archive result store (jsonl, csv, parquet)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", required=True, metavar="DB", help="result store written by 'framescan archive' (required)")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="jsonl", help="output format (default: jsonl)")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output file (default: stdout; required for parquet), or the folder for html (required)",
    )
    p.add_argument(
        "--flagged",
        action="store_true",
        help="only files whose decision is block or review, block first, then by max_score (default: every file)",
    )
    p.add_argument(
        "--all-fingerprints",
        action="store_true",
        help="one row per fingerprint pair with a result (default: the latest run's models + config only)",
    )
    p.add_argument(
        "--reports",
        action="store_true",
        help="add each file's full JSON report as a 'report' column (jsonl and csv; parquet has no such column; default: off)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    if args.format == "html":
        if args.output in (None, "-"):
            raise UsageError("--format html writes a folder of pages: give it with -o DIR")
        check_output_dir(args.output, "-o")
    else:
        check_output(args.output, "-o")
    n = export(
        args.db,
        args.format,
        args.output,
        flagged=args.flagged,
        all_fingerprints=args.all_fingerprints,
        reports=args.reports,
    )
    if args.output not in (None, "-"):
        if args.format == "html":
            print(f"{n} clips in the review queue {Path(args.output) / 'index.html'}", file=sys.stderr)
        else:
            print(f"{n} rows written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    from .main import main

    sys.exit(main([NAME, *sys.argv[1:]]))
