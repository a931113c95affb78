"""``framescan export --db results.sqlite``: the archive store's results as JSONL, CSV or Parquet.

One row per path: path, sha256, size, state (pending/done/failed/quarantined), decision,
status, max category score and its category, error code and message, tries, segments and
evidence (timestamp, category, label, score), fingerprints and when it was scanned. By
default the results of the latest run's models + configuration; ``--all-fingerprints`` for
every one. ``--flagged`` lists only ``block`` and ``review`` items, block first, then by
highest score, with their evidence timestamps. Parquet needs pyarrow (optional extra).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..archive import EXPORT_FORMATS, export
from .outpath import check_output

NAME = "export"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="export an archive result store (jsonl, csv, parquet)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", required=True, metavar="DB", help="result store written by 'framescan archive'")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="jsonl", help="output format (default jsonl)")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default stdout; required for parquet)")
    p.add_argument("--flagged", action="store_true", help="only block/review items, sorted by risk")
    p.add_argument(
        "--all-fingerprints", action="store_true", help="results under every models/config fingerprint in the store"
    )
    p.add_argument("--reports", action="store_true", help="include the full JSON report of each item (jsonl)")
    return p


def run(args: argparse.Namespace) -> int:
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
        print(f"{n} rows written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    from .main import main

    sys.exit(main([NAME, *sys.argv[1:]]))
