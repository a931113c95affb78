"""``framescan bank add|list``: manage the hash banks known content is matched against."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path

from framescan import banks, pdq, vpdq
from framescan.errors import ConfigError

from .outpath import check_output

NAME = "bank"

log = logging.getLogger(__name__)

#: Bank items hash every frame by default (see the --seconds-per-hash help).
BANK_SECONDS_PER_HASH = 0.0
HASH_FILE_SUFFIXES = frozenset({".txt", ".json", ".vpdq"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME,
        help="manage hash banks of known videos and images",
        description=(
            "Hash banks hold the vPDQ/PDQ hashes of known harmful videos and images; scans "
            f"report frames within {vpdq.DISTANCE_THRESHOLD} bits of them. The database is "
            f"$FRAMESCAN_HOME/{banks.DB_FILENAME} or ~/.framescan/{banks.DB_FILENAME} unless --db is given."
        ),
    )
    sub = parser.add_subparsers(dest="bank_command", metavar="{add,list}", required=True)

    add = sub.add_parser(
        "add",
        help="add videos, images or vPDQ hash files to a bank (created if needed)",
        description=(
            "Add each FILE as an item named after the file: a video is hashed (vPDQ), an image "
            "gets one PDQ hash, a .txt/.json file is read as vPDQ hashes (Meta's text form or "
            "ThreatExchange's JSON list)."
        ),
    )
    add.add_argument("name", help="bank name")
    add.add_argument("files", nargs="+", metavar="FILE", help="video, image or vPDQ hash file")
    add.add_argument("--category", choices=banks.CATEGORIES, help="category (required for a new bank)")
    add.add_argument("--action", choices=banks.ACTIONS, help="action on a match (required for a new bank)")
    add.add_argument(
        "--seconds-per-hash",
        type=float,
        default=BANK_SECONDS_PER_HASH,
        metavar="S",
        help="for videos: hash one frame every S seconds, 0 = every frame (default 0: a bank item should be "
        "denser than any query, whose frames are sampled at their own times, so each finds a near neighbour)",
    )
    add.add_argument("--replace", action="store_true", help="replace items that already exist")
    _db_option(add)

    lst = sub.add_parser("list", help="list banks", description="List the banks with their item and hash counts.")
    _db_option(lst)

    return parser


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH", help=f"bank database (default {banks.default_db_path()})")


def run(args: argparse.Namespace) -> int:
    check_output(args.db, "--db")
    with banks.BankStore(args.db) as store:
        if args.bank_command == "add":
            return _add(store, args)
        return _list(store)


def _add(store: banks.BankStore, args: argparse.Namespace) -> int:
    if store.has_bank(args.name):
        bank = store.get_bank(args.name)
        for option in ("category", "action"):
            given = getattr(args, option)
            if given is not None and given != getattr(bank, option):
                raise ConfigError(
                    f"bank {bank.name!r} has {option} {getattr(bank, option)!r}, not {given!r}",
                    bank=bank.name,
                )
    else:
        if args.category is None or args.action is None:
            raise ConfigError(
                f"bank {args.name!r} does not exist yet: give --category "
                f"({', '.join(banks.CATEGORIES)}) and --action ({', '.join(banks.ACTIONS)}) to create it"
            )
        bank = store.create_bank(args.name, args.category, args.action)
        print(f"created bank {bank.name} ({bank.category}, {bank.action})")
    for file in args.files:
        path = Path(file)
        suffix = path.suffix.lower()
        if suffix in HASH_FILE_SUFFIXES:
            item = store.add_video(bank.name, path.stem, vpdq.read_hashes(path), source=str(path), replace=args.replace)
        elif suffix in IMAGE_SUFFIXES:
            h, quality = _hash_image(path)
            item = store.add_image(bank.name, path.stem, h, quality, source=str(path), replace=args.replace)
        else:
            vh = vpdq.hash_video(path, seconds_per_hash=args.seconds_per_hash)
            item = store.add_video(bank.name, path.stem, vh, source=str(path), replace=args.replace)
        print(f"added {item.kind} {item.name} ({item.hash_count} hashes) to {bank.name}")
    return 0


def _hash_image(path: Path) -> tuple:
    import cv2  # heavy: only for image items

    from framescan.errors import FileNotFound, UnsupportedFormat

    if not path.is_file():
        raise FileNotFound(f"no such file: {path}", path=str(path))
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UnsupportedFormat(f"{path}: not an image OpenCV can read", path=str(path))
    return pdq.pdq_hash(pdq.luma_from_rgb(bgr[:, :, ::-1]))


def _list(store: banks.BankStore) -> int:
    rows = store.list_banks()
    if not rows:
        print(f"no banks in {store.path}", file=sys.stderr)
        return 0
    header = ("NAME", "CATEGORY", "ACTION", "ITEMS", "HASHES", "CREATED")
    table = [header] + [
        (
            b.name,
            b.category,
            b.action,
            str(b.item_count),
            str(b.hash_count),
            datetime.fromtimestamp(b.created_at, tz=timezone.utc).strftime("%Y-%m-%d"),
        )
        for b in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0
