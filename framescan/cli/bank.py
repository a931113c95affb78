"""framescan bank add|list|show|remove: manage the hash banks known content is matched against."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path

from framescan import banks, pdq, symbols, vpdq
from framescan.errors import ConfigError, FileNotFound, UnsupportedFormat

from .hash import seconds_per_hash
from .outpath import check_output

NAME = "bank"

log = logging.getLogger(__name__)

#: Bank items hash every frame by default (see the --seconds-per-hash help).
BANK_SECONDS_PER_HASH = 0.0
HASH_FILE_SUFFIXES = frozenset({".txt", ".json", ".vpdq"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
SUBCOMMANDS = ("add", "list", "show", "remove")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    db = banks.default_db_path()
    parser = subparsers.add_parser(
        NAME,
        help="manage hash banks of known videos and images",
        description=(
            "Hash banks hold the PDQ hashes of known harmful videos (one per hashed frame, as vPDQ) and "
            "images; symbol banks (--kind symbol) hold reference images of symbols (flags, emblems, logos), "
            "found inside the scanned frames with local features (docs/symbols.md). A scan compares its sampled frames with them (a frame matches within "
            f"{vpdq.DISTANCE_THRESHOLD} bits): an item that covers at least "
            f"{vpdq.QUERY_MATCH_THRESHOLD_PERCENT:.0f}% of the clip's time is a video match and gets the "
            "bank's action (block or review); a smaller share sends the clip to review. The database is "
            f"$FRAMESCAN_HOME/{banks.DB_FILENAME}, else ~/.framescan/{banks.DB_FILENAME} "
            f"(here: {db}), unless --db is given."
        ),
    )
    sub = parser.add_subparsers(dest="bank_command", metavar="{" + ",".join(SUBCOMMANDS) + "}", required=True)

    add = sub.add_parser(
        "add",
        help="add videos, images or vPDQ hash files to a bank (created if needed)",
        description=(
            "Add each FILE as an item named after the file (its name without the extension): a video "
            "is hashed (vPDQ), an image gets one PDQ hash, a .txt, .vpdq or .json file is read as vPDQ "
            "hashes (Meta's text form frame,quality,hex,timestamp, as framescan hash writes it, or "
            "ThreatExchange's JSON list). In a symbol bank (--kind symbol) each FILE is a reference "
            "image of a symbol: its keypoints are extracted and stored. A new bank needs --category and "
            "--action."
        ),
    )
    add.add_argument("name", metavar="NAME", help="bank name")
    add.add_argument("files", nargs="+", metavar="FILE", help="video, image or vPDQ hash file")
    add.add_argument(
        "--category", choices=banks.CATEGORIES, help="category a match counts for (required for a new bank)"
    )
    add.add_argument(
        "--action",
        choices=banks.ACTIONS,
        help="what a video match does: block the clip or send it to review (required for a new bank)",
    )
    add.add_argument(
        "--kind",
        choices=banks.BANK_KINDS,
        help="for a new bank: hash (known videos and images, the default) or symbol (reference images of "
        "symbols, found anywhere inside a frame)",
    )
    add.add_argument(
        "--min-inliers",
        type=int,
        metavar="N",
        help=f"symbol banks: geometrically consistent keypoint matches a symbol needs (default "
        f"{symbols.DEFAULT_MATCH.min_inliers}; higher: fewer false matches, fewer small symbols found)",
    )
    add.add_argument(
        "--ratio",
        type=float,
        metavar="R",
        help=f"symbol banks: Lowe's ratio test, 0.5-0.95 (default {symbols.DEFAULT_MATCH.ratio})",
    )
    add.add_argument(
        "--seconds-per-hash",
        type=seconds_per_hash,
        default=BANK_SECONDS_PER_HASH,
        metavar="S",
        help="for videos: hash one frame every S seconds, 0 = every frame (default 0: every frame, so a copy "
        "cut at any instant still lines up with the item frame by frame)",
    )
    add.add_argument(
        "--replace", action="store_true", help="replace items of the same name (default: refuse to add them)"
    )
    _db_option(add, db)

    lst = sub.add_parser("list", help="list banks", description="List the banks with their item and hash counts.")
    _db_option(lst, db)

    show = sub.add_parser(
        "show",
        help="list a bank's items",
        description=(
            "List a bank's items: kind, hash count, the time span hashed, the hash spacing and the source; "
            "for a symbol bank: keypoints, the reference's size and the source, with a warning for each "
            f"image with fewer than {symbols.MIN_RELIABLE_KEYPOINTS} keypoints (matched unreliably)."
        ),
    )
    show.add_argument("name", metavar="NAME", help="bank name")
    _db_option(show, db)

    remove = sub.add_parser(
        "remove",
        help="remove a bank, or one of its items",
        description="Remove bank NAME with all its items, or only its item ITEM.",
    )
    remove.add_argument("name", metavar="NAME", help="bank name")
    remove.add_argument("item", metavar="ITEM", nargs="?", help="item to remove (default: the whole bank)")
    _db_option(remove, db)
    return parser


def _db_option(parser: argparse.ArgumentParser, default: Path) -> None:
    parser.add_argument("--db", metavar="PATH", help=f"bank database (default {default})")


def run(args: argparse.Namespace) -> int:
    if args.bank_command == "list" and args.db is None and not banks.default_db_path().is_file():
        print(
            f"no banks yet: {banks.default_db_path()} does not exist (framescan bank add creates it)", file=sys.stderr
        )
        return 0
    if args.bank_command == "add":  # the only command that writes the database
        check_output(args.db, "--db")
    # Check add's files before the database is created or a video hashed (hashing takes a while).
    paths = _item_files(args.files) if args.bank_command == "add" else []
    # Only add creates a database: the others report a mistyped --db instead of creating it.
    with banks.BankStore(args.db, create=args.bank_command == "add") as store:
        if args.bank_command == "add":
            return _add(store, args, paths)
        if args.bank_command == "show":
            return _show(store, args.name)
        if args.bank_command == "remove":
            return _remove(store, args.name, args.item)
        return _list(store)


def _item_files(files: list[str]) -> list[Path]:
    paths = [Path(f) for f in files]
    for path in paths:
        if not path.is_file():
            raise FileNotFound(f"no such file: {path}", path=str(path))
    names = [p.stem for p in paths]
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"two files would make the same item {dup!r} (items are named after the file)", item=dup)
    return paths


def _add(store: banks.BankStore, args: argparse.Namespace, paths: list[Path]) -> int:
    names = [p.stem for p in paths]
    settings = {k: v for k, v in (("min_inliers", args.min_inliers), ("ratio", args.ratio)) if v is not None}
    if store.has_bank(args.name):
        bank = store.get_bank(args.name)
        if settings:
            raise ConfigError(
                f"bank {bank.name!r} exists: --min-inliers and --ratio are set when a symbol bank is created",
                bank=bank.name,
            )
        for option in ("category", "action", "kind"):
            given = getattr(args, option)
            if given is not None and given != getattr(bank, option):
                raise ConfigError(
                    f"bank {bank.name!r} has {option} {getattr(bank, option)!r}, not {given!r}",
                    bank=bank.name,
                )
        existing = {i.name for i in store.list_items(bank.name)} & set(names)
        if existing and not args.replace:
            raise ConfigError(
                f"bank {bank.name!r} already has an item named {sorted(existing)[0]!r}: add --replace to "
                "overwrite it, or rename the file",
                bank=bank.name,
            )
    else:
        if args.category is None or args.action is None:
            raise ConfigError(
                f"bank {args.name!r} does not exist yet: give --category "
                f"({', '.join(banks.CATEGORIES)}) and --action ({', '.join(banks.ACTIONS)}) to create it"
            )
        kind = args.kind or "hash"
        if settings and kind != "symbol":
            raise ConfigError("--min-inliers and --ratio are for symbol banks: add --kind symbol")
        if kind == "symbol":
            bad = [p for p in paths if p.suffix.lower() not in IMAGE_SUFFIXES]
            if bad:
                raise UnsupportedFormat(
                    f"{bad[0]}: a symbol bank takes images ({', '.join(sorted(IMAGE_SUFFIXES))})", path=str(bad[0])
                )
        bank = store.create_bank(args.name, args.category, args.action, kind=kind, settings=settings or None)
        print(f"created {'symbol ' if kind == 'symbol' else ''}bank {bank.name} ({bank.category}, {bank.action})")
    if bank.kind == "symbol":
        return _add_symbols(store, bank, paths, args.replace)
    for path in paths:
        suffix = path.suffix.lower()
        if suffix in HASH_FILE_SUFFIXES:
            item = store.add_video(bank.name, path.stem, _read_hashes(path), source=str(path), replace=args.replace)
        elif suffix in IMAGE_SUFFIXES:
            h, quality = _hash_image(path)
            item = store.add_image(bank.name, path.stem, h, quality, source=str(path), replace=args.replace)
        else:
            vh = vpdq.hash_video(path, seconds_per_hash=args.seconds_per_hash)
            item = store.add_video(bank.name, path.stem, vh, source=str(path), replace=args.replace)
        print(f"added {item.kind} {item.name} ({_count(item.hash_count, 'hash')}) to {bank.name}")
    return 0


def _add_symbols(store: banks.BankStore, bank: banks.Bank, paths: list[Path], replace: bool) -> int:
    bad = [p for p in paths if p.suffix.lower() not in IMAGE_SUFFIXES]
    if bad:  # before any item is added
        raise UnsupportedFormat(
            f"{bad[0]}: bank {bank.name!r} is a symbol bank: it takes images ({', '.join(sorted(IMAGE_SUFFIXES))})",
            path=str(bad[0]),
        )
    for path in paths:
        features = symbols.reference_features(_read_image(path, symbol=True))
        item = store.add_symbol(bank.name, path.stem, features, source=str(path), replace=replace)
        print(f"added symbol {item.name} ({item.hash_count} keypoints) to {bank.name}")
        if item.hash_count < symbols.MIN_RELIABLE_KEYPOINTS:
            print(f"framescan: warning: {_few_keypoints(item)}", file=sys.stderr)
    return 0


def _few_keypoints(item: banks.BankItem) -> str:
    return (
        f"symbol {item.name!r} has {item.hash_count} keypoints (fewer than {symbols.MIN_RELIABLE_KEYPOINTS}): "
        "it may not be found reliably; use a larger, sharper image of it, cropped to the symbol"
    )


def _read_image(path: Path, symbol: bool = False):  # type: ignore[no-untyped-def]
    """The image at ``path`` as RGB (RGBA for a symbol with transparency)."""
    import cv2  # heavy: only for image items

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED if symbol else cv2.IMREAD_COLOR)
    if img is None:
        raise UnsupportedFormat(f"{path}: not an image OpenCV can read", path=str(path))
    if img.ndim == 3 and img.shape[2] == 4:
        return img[:, :, [2, 1, 0, 3]]
    if img.ndim == 3:
        return img[:, :, ::-1]
    return img


def _read_hashes(path: Path) -> vpdq.VideoHash:
    try:
        return vpdq.read_hashes(path)
    except ValueError as ex:  # the parsers name the file and line
        raise UnsupportedFormat(f"not a vPDQ hash file: {ex}", path=str(path)) from ex


def _hash_image(path: Path) -> tuple:
    return pdq.pdq_hash(pdq.luma_from_rgb(_read_image(path)))


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}es" if noun.endswith("sh") else f"{n} {noun}s"


def _date(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")


def _list(store: banks.BankStore) -> int:
    rows = store.list_banks()
    if not rows:
        print(f"no banks in {store.path}", file=sys.stderr)
        return 0
    header = ("NAME", "CATEGORY", "ACTION", "ITEMS", "HASHES", "CREATED", "KIND")
    _table(
        [header]
        + [
            (b.name, b.category, b.action, str(b.item_count), str(b.hash_count), _date(b.created_at), b.kind)
            for b in rows
        ]
    )
    return 0


def _show(store: banks.BankStore, name: str) -> int:
    bank = store.get_bank(name)
    if bank.kind == "symbol":
        return _show_symbols(store, bank)
    print(
        f"bank {bank.name}: {bank.category}, {bank.action}, {_count(bank.item_count, 'item')}, "
        f"{_count(bank.hash_count, 'hash')}, created {_date(bank.created_at)}"
    )
    rows = [("ITEM", "KIND", "HASHES", "SECONDS", "EVERY", "ADDED", "SOURCE")]
    for item in store.list_items(name):
        t = store.item_hashes(name, item.name).timestamps
        video = item.kind == "video"
        rows.append(
            (
                item.name,
                item.kind,
                str(item.hash_count),
                f"{t.min():.1f}-{t.max():.1f}" if video else "-",
                f"{vpdq.hash_spacing(t):.3g} s" if video and len(t) > 1 else "-",
                _date(item.added_at),
                item.source or "-",
            )
        )
    _table(rows)
    return 0


def _show_symbols(store: banks.BankStore, bank: banks.Bank) -> int:
    settings = ", ".join(f"{k} {v}" for k, v in bank.settings)
    print(
        f"symbol bank {bank.name}: {bank.category}, {bank.action}, {_count(bank.item_count, 'item')}, "
        f"{bank.hash_count} keypoints, created {_date(bank.created_at)}" + (f", {settings}" if settings else "")
    )
    rows = [("ITEM", "KEYPOINTS", "SIZE", "EXTRACTOR", "ADDED", "SOURCE")]
    warnings = []
    for item in store.list_items(bank.name):
        f = store.symbol_features(bank.name, item.name)
        rows.append(
            (
                item.name,
                str(item.hash_count),
                f"{f.width}x{f.height}",
                f.extractor + ("" if f.current else " (re-extracted when loaded)"),
                _date(item.added_at),
                item.source or "-",
            )
        )
        if item.hash_count < symbols.MIN_RELIABLE_KEYPOINTS:
            warnings.append(_few_keypoints(item))
    _table(rows)
    for w in warnings:
        print(f"framescan: warning: {w}", file=sys.stderr)
    return 0


def _remove(store: banks.BankStore, name: str, item: str | None) -> int:
    if item is None:
        bank = store.get_bank(name)
        store.delete_bank(name)
        print(f"removed bank {name} ({_count(bank.item_count, 'item')}, {_count(bank.hash_count, 'hash')})")
    else:
        store.delete_item(name, item)
        print(f"removed item {item} from bank {name}")
    return 0
