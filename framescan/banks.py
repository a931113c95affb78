"""Hash banks: lists of known videos and images (vPDQ / PDQ hashes) and the matcher over them.

Storage is one SQLite file (WAL mode, so a scanner can read while ``framescan bank add``
writes). A bank has a name, a category (``CATEGORIES``) and an action (``ACTIONS``); an item
is one known video (its vPDQ frame hashes) or image (one PDQ hash). An item's hashes are
stored packed in its row (32 bytes per hash, the big-endian form of ``framescan.pdq``), so
loading a million hashes is a few ``np.frombuffer`` calls, not a million rows.

``BankMatcher`` holds every usable bank hash (quality >= 50) in one ``(M, 4)`` uint64 array
and finds, for each query frame hash, every bank hash within 31 bits (``framescan.pdq_search``:
brute force, or multi-index hashing for large banks).

The matcher uses the index for banks of ``INDEX_MIN_HASHES`` (100k) or more: brute force on a
million hashes takes about 5 ms per query on one core, the index about 0.2 ms; below 100k
brute force stays under 0.5 ms (``benchmarks/PDQ_RESULTS.md``).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from framescan import _sqlite, pdq
from framescan.categories import CATEGORIES
from framescan.errors import ConfigError
from framescan.pdq_search import MultiIndex, as_hashes, brute_force_search
from framescan.vpdq import (
    COMPARED_MATCH_THRESHOLD_PERCENT,
    DISTANCE_THRESHOLD,
    QUALITY_THRESHOLD,
    QUERY_MATCH_THRESHOLD_PERCENT,
    TimeCoverage,
    VideoHash,
    hash_spacing,
    time_coverage,
    usable_timeline,
)

if TYPE_CHECKING:
    from framescan.symbols import SymbolFeatures, SymbolMatcher

log = logging.getLogger(__name__)

ACTIONS = ("block", "review")
ITEM_KINDS = ("video", "image", "symbol")
DB_FILENAME = "banks.sqlite"
HOME_ENV = "FRAMESCAN_HOME"
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another writer's lock

INDEX_MIN_HASHES = 100_000  # at and above this bank size the matcher uses the index


class BankNotFound(ConfigError, KeyError):
    default_message = "no such hash bank"


class ItemExists(ConfigError):
    default_message = "the bank already has an item with that name"


class DatabaseNotFound(ConfigError, FileNotFoundError):
    default_message = "the bank database does not exist"


def default_db_path() -> Path:
    """``$FRAMESCAN_HOME/banks.sqlite``, else ``~/.framescan/banks.sqlite``."""
    home = os.environ.get(HOME_ENV)
    base = Path(home) if home else Path.home() / ".framescan"
    return base / DB_FILENAME


@dataclass(frozen=True)
class Bank:
    name: str
    category: str  #: one of ``CATEGORIES``
    action: str  #: ``block`` or ``review``
    created_at: float  #: seconds since the epoch
    item_count: int = 0
    hash_count: int = 0  #: hashes; keypoints for a symbol bank
    kind: str = "hash"  #: ``hash`` (PDQ / vPDQ items) or ``symbol`` (reference images, ``framescan.symbols``)
    settings: tuple[tuple[str, Any], ...] = ()  #: a symbol bank's matching overrides, (name, value) pairs

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self.settings)


@dataclass(frozen=True)
class BankItem:
    bank: str
    name: str
    kind: str  #: ``video``, ``image`` or ``symbol``
    source: str | None  #: where the hashes came from (file path), if known
    hash_count: int  #: hashes; keypoints for a symbol
    added_at: float  #: seconds since the epoch


#: A symbol bank's items: reference images and their local features (framescan.symbols).
_SYMBOLS_SCHEMA = """
CREATE TABLE IF NOT EXISTS symbols (
    id INTEGER PRIMARY KEY,
    bank_id INTEGER NOT NULL REFERENCES banks(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    source TEXT,
    added_at REAL NOT NULL,
    extractor TEXT NOT NULL,      -- name/version, e.g. orb/2 (framescan.symbols.extractor_id)
    params TEXT NOT NULL,         -- JSON: the extractor's parameters
    width INTEGER NOT NULL,       -- the reference as extracted (its longer side framescan.symbols.REFERENCE_SIDE)
    height INTEGER NOT NULL,
    keypoint_count INTEGER NOT NULL,
    points BLOB NOT NULL,         -- keypoint_count x 4 float32 little-endian: x, y (reference pixels),
                                  -- angle (degrees), size (pixels); orb/1 stored x, y only
    descriptors BLOB NOT NULL,    -- keypoint_count x 32 bytes (ORB)
    image BLOB NOT NULL,          -- the grey reference, height x width uint8 (to extract again)
    UNIQUE (bank_id, name)
);
"""
_V2 = (
    "ALTER TABLE banks ADD COLUMN kind TEXT NOT NULL DEFAULT 'hash' CHECK (kind IN ('hash', 'symbol'));"
    "ALTER TABLE banks ADD COLUMN settings TEXT;" + _SYMBOLS_SCHEMA
)
BANK_KINDS = ("hash", "symbol")

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS banks (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    category TEXT NOT NULL CHECK (category IN ('sexual', 'violence', 'hate', 'bullying', 'extremism')),
    action TEXT NOT NULL CHECK (action IN ('block', 'review')),
    created_at REAL NOT NULL,
    kind TEXT NOT NULL DEFAULT 'hash' CHECK (kind IN ('hash', 'symbol')),
    settings TEXT  -- JSON: a symbol bank's matching overrides (framescan.symbols.OVERRIDES)
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    bank_id INTEGER NOT NULL REFERENCES banks(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('video', 'image')),
    source TEXT,
    added_at REAL NOT NULL,
    hash_count INTEGER NOT NULL,
    hashes BLOB NOT NULL,         -- hash_count x 32 bytes, big-endian (framescan.pdq.hash_to_bytes)
    qualities BLOB NOT NULL,      -- hash_count x uint8
    timestamps BLOB NOT NULL,     -- hash_count x float64 little-endian, seconds
    frame_numbers BLOB NOT NULL,  -- hash_count x int64 little-endian (-1 unknown)
    UNIQUE (bank_id, name)
);
"""
    + _SYMBOLS_SCHEMA
)
#: 1: the first schema. 2: a bank's kind (hash or symbol) and settings; the symbols table.
_BANK_SCHEMA = _sqlite.Schema(_SCHEMA, migrations=(_V2,))
SCHEMA_VERSION = _BANK_SCHEMA.version


class BankStore:
    """The bank database. Use as a context manager or call ``close()``.

    ``create=False`` opens an existing database only (``DatabaseNotFound`` otherwise), so that
    reading a mistyped path does not leave an empty database behind.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, create: bool = True) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        if not create and not self.path.exists():
            raise DatabaseNotFound(
                f"bank database {self.path} does not exist: check the path, or create it with "
                f"'framescan bank add NAME FILE... --category C --action A --db {self.path}'",
                path=str(self.path),
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        name = f"{self.path}: bank database"
        try:
            self._db = _sqlite.connect(
                self.path,
                timeout=BUSY_TIMEOUT_S,
                autocommit=False,  # writes are ``with self._db:`` transactions
                wal=False,  # WAL is asked for (a scan reads while ``bank add`` writes), not required
                pragmas=("journal_mode=WAL", "foreign_keys=ON"),
                name=name,
                error=ConfigError,
            )
            try:
                _sqlite.upgrade(self._db, _BANK_SCHEMA, name=name, error=ConfigError)
            except BaseException:
                self._db.close()
                raise
        except sqlite3.DatabaseError as ex:
            raise ConfigError(f"{self.path}: not a usable bank database ({ex})", path=str(self.path)) from ex

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> BankStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- banks ----------------------------------------------------------------------------

    def create_bank(
        self, name: str, category: str, action: str, *, kind: str = "hash", settings: dict[str, Any] | None = None
    ) -> Bank:
        """A new bank. ``kind``: ``hash`` or ``symbol``; ``settings``: a symbol bank's matching
        overrides (``framescan.symbols.OVERRIDES``)."""
        if kind not in BANK_KINDS:
            raise ConfigError(f"unknown bank kind {kind!r}; choose one of {', '.join(BANK_KINDS)}")
        if settings:
            if kind != "symbol":
                raise ConfigError("matching settings are for symbol banks only")
            from framescan.symbols import check_overrides

            check_overrides(settings)
        if not name or not name.strip():
            raise ConfigError("a bank needs a non-empty name")
        if category not in CATEGORIES:
            raise ConfigError(f"unknown category {category!r}; choose one of {', '.join(CATEGORIES)}")
        if action not in ACTIONS:
            raise ConfigError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
        try:
            with self._db:
                self._db.execute(
                    "INSERT INTO banks (name, category, action, created_at, kind, settings) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        category,
                        action,
                        time.time(),
                        kind,
                        json.dumps(settings, sort_keys=True) if settings else None,
                    ),
                )
        except sqlite3.IntegrityError as ex:
            raise ConfigError(f"a bank named {name!r} already exists", bank=name) from ex
        return self.get_bank(name)

    def get_bank(self, name: str) -> Bank:
        row = self._db.execute(_BANK_ROW + " WHERE b.name = ?", (name,)).fetchone()
        if row is None:
            raise self._no_bank(name)
        return _bank(row)

    def has_bank(self, name: str) -> bool:
        return self._db.execute("SELECT 1 FROM banks WHERE name = ?", (name,)).fetchone() is not None

    def list_banks(self) -> list[Bank]:
        return [_bank(r) for r in self._db.execute(_BANK_ROW + " ORDER BY b.name").fetchall()]

    def delete_bank(self, name: str) -> None:
        with self._db:
            cur = self._db.execute("DELETE FROM banks WHERE name = ?", (name,))
        if cur.rowcount == 0:
            raise self._no_bank(name)

    def _no_bank(self, name: str) -> BankNotFound:
        names = ", ".join(repr(b.name) for b in self.list_banks()) or "none"
        return BankNotFound(f"no hash bank named {name!r} in {self.path} (its banks: {names})", bank=name)

    # -- items ----------------------------------------------------------------------------

    def add_video(
        self, bank: str, item: str, video_hash: VideoHash, *, source: str | None = None, replace: bool = False
    ) -> BankItem:
        """Add a known video's vPDQ hashes as item ``item`` of ``bank``."""
        if len(video_hash) == 0:
            raise ConfigError(f"item {item!r} has no hashes", bank=bank, item=item)
        return self._add(bank, item, "video", video_hash, source, replace)

    def add_image(
        self,
        bank: str,
        item: str,
        hash_: np.ndarray,
        quality: int,
        *,
        source: str | None = None,
        replace: bool = False,
    ) -> BankItem:
        """Add a known image's PDQ hash (``(4,)`` uint64) as item ``item`` of ``bank``."""
        vh = VideoHash(np.array([-1]), np.array([0.0]), np.array([quality]), np.asarray(hash_).reshape(1, -1))
        return self._add(bank, item, "image", vh, source, replace)

    def _add(self, bank: str, item: str, kind: str, vh: VideoHash, source: str | None, replace: bool) -> BankItem:
        if not item:
            raise ConfigError("an item needs a non-empty name", bank=bank)
        if vh.qualities.min() < 0 or vh.qualities.max() > pdq.MAX_QUALITY:
            raise ConfigError(f"item {item!r}: qualities must be 0-100", bank=bank, item=item)
        row = self._bank_id(bank, "hash")
        added_at = time.time()
        values = (
            row[0],
            item,
            kind,
            source,
            added_at,
            len(vh),
            vh.hashes.astype(">u8").tobytes(),
            vh.qualities.astype(np.uint8).tobytes(),
            vh.timestamps.astype("<f8").tobytes(),
            vh.frame_numbers.astype("<i8").tobytes(),
        )
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        try:
            with self._db:
                self._db.execute(
                    f"{verb} INTO items (bank_id, name, kind, source, added_at, hash_count, hashes, "
                    "qualities, timestamps, frame_numbers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
        except sqlite3.IntegrityError as ex:
            raise ItemExists(
                f"bank {bank!r} already has an item named {item!r} (replace it explicitly)",
                bank=bank,
                item=item,
            ) from ex
        log.info("added %s %r (%d hashes) to bank %r", kind, item, len(vh), bank)
        return BankItem(bank, item, kind, source, len(vh), added_at)

    def list_items(self, bank: str) -> list[BankItem]:
        self.get_bank(bank)
        rows = self._db.execute(
            "SELECT b.name, i.name, i.kind, i.source, i.hash_count, i.added_at FROM items i "
            "JOIN banks b ON b.id = i.bank_id WHERE b.name = ? "
            "UNION ALL SELECT b.name, s.name, 'symbol', s.source, s.keypoint_count, s.added_at FROM symbols s "
            "JOIN banks b ON b.id = s.bank_id WHERE b.name = ? ORDER BY 2",
            (bank, bank),
        ).fetchall()
        return [BankItem(*r) for r in rows]

    def delete_item(self, bank: str, item: str) -> None:
        self.get_bank(bank)
        with self._db:
            cur = self._db.execute(
                "DELETE FROM items WHERE name = ? AND bank_id = (SELECT id FROM banks WHERE name = ?)", (item, bank)
            )
            deleted = cur.rowcount
            cur = self._db.execute(
                "DELETE FROM symbols WHERE name = ? AND bank_id = (SELECT id FROM banks WHERE name = ?)", (item, bank)
            )
            deleted += cur.rowcount
        if deleted == 0:
            raise self._no_item(bank, item)

    def _no_item(self, bank: str, item: str) -> BankNotFound:
        names = ", ".join(repr(i.name) for i in self.list_items(bank)) or "none"
        return BankNotFound(f"no item {item!r} in bank {bank!r} (its items: {names})", bank=bank, item=item)

    def item_hashes(self, bank: str, item: str) -> VideoHash:
        row = self._db.execute(
            "SELECT i.hashes, i.qualities, i.timestamps, i.frame_numbers FROM items i "
            "JOIN banks b ON b.id = i.bank_id WHERE b.name = ? AND i.name = ?",
            (bank, item),
        ).fetchone()
        if row is None:
            raise self._no_item(bank, item)
        return _unpack(*row)

    def iter_items(self, banks: Sequence[str] | None = None) -> Iterable[tuple[Bank, str, str, VideoHash]]:
        """``(bank, item name, kind, hashes)`` for every item of ``banks`` (default: all)."""
        wanted = {b.name: b for b in self.list_banks()}
        if banks is not None:
            for name in banks:
                if name not in wanted:
                    raise self._no_bank(name)
            wanted = {n: wanted[n] for n in banks}
        cur = self._db.execute(
            "SELECT b.name, i.name, i.kind, i.hashes, i.qualities, i.timestamps, i.frame_numbers "
            "FROM items i JOIN banks b ON b.id = i.bank_id ORDER BY b.name, i.id"
        )
        for bank_name, item, kind, *blobs in cur:
            if bank_name in wanted:
                yield wanted[bank_name], item, kind, _unpack(*blobs)

    # -- symbols (reference images) ---------------------------------------------------------

    def _bank_id(self, bank: str, kind: str) -> tuple[int]:
        row = self._db.execute("SELECT id, kind FROM banks WHERE name = ?", (bank,)).fetchone()
        if row is None:
            raise self._no_bank(bank)
        if row[1] != kind:
            what = "reference images (symbols)" if row[1] == "symbol" else "PDQ / vPDQ hashes"
            raise ConfigError(f"bank {bank!r} is a {row[1]} bank: it holds {what}", bank=bank)
        return (row[0],)

    def add_symbol(
        self, bank: str, item: str, features: SymbolFeatures, *, source: str | None = None, replace: bool = False
    ) -> BankItem:
        """Add a reference image's features (``framescan.symbols.reference_features``) as item
        ``item`` of symbol bank ``bank``."""
        if not item:
            raise ConfigError("an item needs a non-empty name", bank=bank)
        (bank_id,) = self._bank_id(bank, "symbol")
        from framescan.symbols import MAX_ITEMS_PER_BANK

        count = self._db.execute("SELECT COUNT(*) FROM symbols WHERE bank_id = ?", (bank_id,)).fetchone()[0]
        if count >= MAX_ITEMS_PER_BANK:
            raise ConfigError(f"bank {bank!r} has {count} symbols, the most a symbol bank may hold", bank=bank)
        added_at = time.time()
        values = (
            bank_id,
            item,
            source,
            added_at,
            features.extractor,
            features.params,
            features.width,
            features.height,
            len(features),
            features.keypoints().astype("<f4").tobytes(),
            np.ascontiguousarray(features.descriptors, np.uint8).tobytes(),
            np.ascontiguousarray(features.image, np.uint8).tobytes(),
        )
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        try:
            with self._db:
                self._db.execute(
                    f"{verb} INTO symbols (bank_id, name, source, added_at, extractor, params, width, height, "
                    "keypoint_count, points, descriptors, image) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
        except sqlite3.IntegrityError as ex:
            raise ItemExists(
                f"bank {bank!r} already has an item named {item!r} (replace it explicitly)", bank=bank, item=item
            ) from ex
        log.info("added symbol %r (%d keypoints) to bank %r", item, len(features), bank)
        return BankItem(bank, item, "symbol", source, len(features), added_at)

    def iter_symbols(self, banks: Sequence[str] | None = None) -> Iterable[tuple[Bank, str, SymbolFeatures]]:
        """``(bank, item name, features)`` for every symbol of ``banks`` (default: all)."""
        from framescan.symbols import SymbolFeatures

        wanted = {b.name: b for b in self.list_banks()}
        if banks is not None:
            for name in banks:
                if name not in wanted:
                    raise self._no_bank(name)
            wanted = {n: wanted[n] for n in banks}
        cur = self._db.execute(
            "SELECT b.name, s.name, s.extractor, s.params, s.width, s.height, s.points, s.descriptors, s.image "
            "FROM symbols s JOIN banks b ON b.id = s.bank_id ORDER BY b.name, s.id"
        )
        for bank_name, item, extractor, params, w, h, points, descriptors, image in cur:
            if bank_name in wanted:
                des = np.frombuffer(descriptors, np.uint8).reshape(-1, 32)
                kp = np.frombuffer(points, "<f4").reshape(len(des), -1) if len(des) else np.empty((0, 4), np.float32)
                # x, y[, angle, size]
                yield (
                    wanted[bank_name],
                    item,
                    SymbolFeatures(
                        w,
                        h,
                        kp[:, :2],
                        des,
                        np.frombuffer(image, np.uint8).reshape(h, w),
                        extractor,
                        params,
                        kp[:, 2] if kp.shape[1] == 4 else np.empty(0, np.float32),
                        kp[:, 3] if kp.shape[1] == 4 else np.empty(0, np.float32),
                    ),
                )

    def symbol_features(self, bank: str, item: str) -> SymbolFeatures:
        for _, name, f in self.iter_symbols([bank]):
            if name == item:
                return f
        raise self._no_item(bank, item)

    def matcher(self, banks: Sequence[str] | None = None, **options: object) -> BankMatcher:
        """A ``BankMatcher`` over ``banks`` (default: all); options as ``BankMatcher.from_items``."""
        return BankMatcher.from_items(self.iter_items(banks), **options)  # type: ignore[arg-type]


def open_matcher(
    path: str | os.PathLike[str] | None = None, banks: Sequence[str] | None = None, **options: object
) -> BankMatcher | None:
    """The matcher over the bank database at ``path`` (default ``default_db_path()``), or
    ``None`` when the default database does not exist or the database holds no usable hash (a
    scan then skips matching). A ``path`` that does not exist is a ``DatabaseNotFound``
    (a configuration error). Options as ``BankMatcher.from_items``."""
    if path is None and not default_db_path().is_file():
        log.debug("no bank database at %s: known-content matching is off", default_db_path())
        return None
    with BankStore(path, create=False) as store:
        matcher = store.matcher(banks, **options)
    return matcher if len(matcher) else None


def open_symbol_matcher(
    path: str | os.PathLike[str] | None = None, banks: Sequence[str] | None = None
) -> SymbolMatcher | None:
    """The symbol matcher over the symbol banks of the database at ``path`` (as ``open_matcher``),
    or ``None`` when there is no default database or it holds no symbol."""
    if path is None and not default_db_path().is_file():
        return None
    from framescan.symbols import SymbolMatcher

    with BankStore(path, create=False) as store:
        rows = list(store.iter_symbols(banks))
    return SymbolMatcher.from_rows(rows) if rows else None


#: A bank's row: name, category, action, created_at, items, hashes (or keypoints), kind, settings.
_BANK_ROW = (
    "SELECT b.name, b.category, b.action, b.created_at, "
    "(SELECT COUNT(*) FROM items i WHERE i.bank_id = b.id) + (SELECT COUNT(*) FROM symbols s WHERE s.bank_id = b.id), "
    "(SELECT COALESCE(SUM(i.hash_count), 0) FROM items i WHERE i.bank_id = b.id) "
    "+ (SELECT COALESCE(SUM(s.keypoint_count), 0) FROM symbols s WHERE s.bank_id = b.id), "
    "b.kind, b.settings FROM banks b"
)


def _bank(row: tuple[Any, ...]) -> Bank:
    *head, kind, settings = row
    return Bank(*head, kind=kind, settings=tuple(sorted(json.loads(settings).items())) if settings else ())


def _unpack(hashes: bytes, qualities: bytes, timestamps: bytes, frame_numbers: bytes) -> VideoHash:
    return VideoHash(
        np.frombuffer(frame_numbers, dtype="<i8"),
        np.frombuffer(timestamps, dtype="<f8"),
        np.frombuffer(qualities, dtype=np.uint8),
        np.frombuffer(hashes, dtype=">u8").reshape(-1, pdq.HASH_WORDS),
    )


# ---------------------------------------------------------------------------------------------
# Matching against banks.


@dataclass(frozen=True)
class FrameMatch:
    """A query frame that is within the distance threshold of a bank item's frame (its closest)."""

    bank: str
    category: str
    action: str
    item: str
    distance: int
    query_timestamp: float
    query_frame_number: int
    item_timestamp: float
    item_frame_number: int


@dataclass(frozen=True)
class ItemMatch:
    """A bank item the query matched, with the time each covers of the other
    (``framescan.vpdq.time_coverage``)."""

    bank: str
    category: str
    action: str
    item: str
    kind: str
    query_coverage: TimeCoverage  #: how much of the query this item covers (segments in query time)
    item_coverage: TimeCoverage  #: how much of this item the query covers (segments in item time)
    frames: tuple[FrameMatch, ...] = field(repr=False)  #: per query frame, the closest item frame

    @property
    def query_match_percent(self) -> float:
        """Share of the query's usable duration covered by this item."""
        return self.query_coverage.percent

    @property
    def item_match_percent(self) -> float:
        """Share of this item's usable duration covered by the query."""
        return self.item_coverage.percent

    @property
    def min_distance(self) -> int:
        return min(f.distance for f in self.frames)

    def is_match(
        self,
        query_threshold: float = QUERY_MATCH_THRESHOLD_PERCENT,
        item_threshold: float = COMPARED_MATCH_THRESHOLD_PERCENT,
    ) -> bool:
        """The video decision: query share >= 80% (an image item matches on any frame)."""
        if self.kind == "image":
            return bool(self.frames)
        return self.query_match_percent >= query_threshold and self.item_match_percent >= item_threshold


@dataclass(frozen=True)
class _Item:
    bank: Bank
    name: str
    kind: str
    offset: int  # its first usable hash in the matcher's arrays (an item's hashes are contiguous, in time order)
    usable_hashes: int  # hashes of quality >= the threshold
    spacing: float  # the item's hash spacing (framescan.vpdq.hash_spacing), 0 for an image


class BankMatcher:
    """Usable bank hashes in one packed array, searched by brute force or ``MultiIndex``."""

    def __init__(
        self,
        hashes: np.ndarray,
        item_ids: np.ndarray,
        timestamps: np.ndarray,
        frame_numbers: np.ndarray,
        durations: np.ndarray,
        items: Sequence[_Item],
        *,
        distance_threshold: int = DISTANCE_THRESHOLD,
        quality_threshold: int = QUALITY_THRESHOLD,
        use_index: bool | None = None,
    ) -> None:
        self.hashes = as_hashes(hashes) if len(hashes) else np.empty((0, pdq.HASH_WORDS), np.uint64)
        self.item_ids = np.asarray(item_ids, dtype=np.int32)
        self.timestamps = np.asarray(timestamps, dtype=np.float64)
        self.frame_numbers = np.asarray(frame_numbers, dtype=np.int64)
        self.durations = np.asarray(durations, dtype=np.float64)  # the time each hash stands for in its item
        self.items = list(items)
        self.distance_threshold = int(distance_threshold)
        self.quality_threshold = int(quality_threshold)
        if use_index is None:
            use_index = len(self.hashes) >= INDEX_MIN_HASHES and MultiIndex.supports(self.distance_threshold)
        self.index = MultiIndex(self.hashes) if use_index else None
        log.info(
            "bank matcher: %d hashes from %d items (%s)",
            len(self.hashes),
            len(self.items),
            "multi-index" if self.index is not None else "brute force",
        )

    @classmethod
    def from_items(
        cls,
        items: Iterable[tuple[Bank, str, str, VideoHash]],
        *,
        distance_threshold: int = DISTANCE_THRESHOLD,
        quality_threshold: int = QUALITY_THRESHOLD,
        use_index: bool | None = None,
    ) -> BankMatcher:
        """Build from ``(bank, item name, kind, hashes)``; frames below the quality threshold
        are dropped, as vPDQ's matchers do (repeated hashes are kept: each stands for its own time)."""
        parts_h, parts_i, parts_t, parts_f, parts_d, infos = [], [], [], [], [], []
        offset = 0
        for bank, name, kind, vh in items:
            usable, durations = usable_timeline(vh, quality_threshold)
            if len(usable) == 0:
                log.warning("bank %r item %r has no hash of quality >= %d", bank.name, name, quality_threshold)
            idx = len(infos)
            infos.append(_Item(bank, name, kind, offset, len(usable), hash_spacing(vh.timestamps)))
            offset += len(usable)
            parts_h.append(usable.hashes)
            parts_i.append(np.full(len(usable), idx, dtype=np.int32))
            parts_t.append(usable.timestamps)
            parts_f.append(usable.frame_numbers)
            parts_d.append(durations)
        if infos:
            arrays = [np.concatenate(p) for p in (parts_h, parts_i, parts_t, parts_f, parts_d)]
        else:
            arrays = [np.empty((0, pdq.HASH_WORDS), np.uint64), *(np.empty(0) for _ in range(4))]
        return cls(
            *arrays,
            infos,
            distance_threshold=distance_threshold,
            quality_threshold=quality_threshold,
            use_index=use_index,
        )

    def __len__(self) -> int:
        return len(self.hashes)

    def search(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw search: every ``(query index, bank hash index, distance)`` within the threshold."""
        if self.index is not None:
            return self.index.search(queries, self.distance_threshold)
        return brute_force_search(queries, self.hashes, self.distance_threshold)

    def match_frames(self, query: VideoHash) -> list[FrameMatch]:
        """For each usable query frame and each item it matches, the closest item frame.

        Sorted by query timestamp, then distance.
        """
        usable = query.quality_filtered(self.quality_threshold)
        matches, _, _ = self._match(usable)
        return sorted(matches, key=lambda m: (m.query_timestamp, m.distance, m.bank, m.item))

    def match_video(self, query: VideoHash) -> list[ItemMatch]:
        """Every item with at least one matching frame, with the time each covers of the other.

        Sorted by query share, highest first. ``ItemMatch.is_match()`` applies the 80% rule.
        """
        usable, durations = usable_timeline(query, self.quality_threshold)
        query_spacing = hash_spacing(query.timestamps)
        frames, frame_items, (q_idx, b_idx, dist) = self._match(usable)
        by_item: dict[int, list[FrameMatch]] = {}
        for item_id, fm in zip(frame_items, frames, strict=True):
            by_item.setdefault(item_id, []).append(fm)
        results = []
        for item_id, fms in by_item.items():
            info = self.items[item_id]
            in_item = self.item_ids[b_idx] == item_id
            q_here, b_here, d = q_idx[in_item], b_idx[in_item] - info.offset, dist[in_item]
            span = slice(info.offset, info.offset + info.usable_hashes)
            results.append(
                ItemMatch(
                    info.bank.name,
                    info.bank.category,
                    info.bank.action,
                    info.name,
                    info.kind,
                    time_coverage(usable.timestamps, durations, q_here, b_here, d, info.spacing),
                    time_coverage(self.timestamps[span], self.durations[span], b_here, q_here, d, query_spacing),
                    tuple(sorted(fms, key=lambda m: m.query_timestamp)),
                )
            )
        return sorted(results, key=lambda r: (-r.query_match_percent, -r.item_match_percent, r.bank, r.item))

    def _match(
        self, usable: VideoHash
    ) -> tuple[list[FrameMatch], list[int], tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Closest item frame per (query frame, item), each one's item id, and the raw pairs
        (query index, bank index, distance)."""
        if len(usable):
            q_idx, b_idx, dist = self.search(usable.hashes)
        else:
            q_idx, b_idx, dist = np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int32)
        if len(q_idx) == 0:
            return [], [], (q_idx, b_idx, dist)
        items = self.item_ids[b_idx]
        # Sort by (query, item, distance, bank index) and keep the first of each (query, item).
        order = np.lexsort((b_idx, dist, items, q_idx))
        q_s, i_s, d_s, b_s = q_idx[order], items[order], dist[order], b_idx[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (q_s[1:] != q_s[:-1]) | (i_s[1:] != i_s[:-1])
        out, out_items = [], []
        for q, it, d, b in zip(q_s[first], i_s[first], d_s[first], b_s[first], strict=True):
            info = self.items[int(it)]
            out.append(
                FrameMatch(
                    info.bank.name,
                    info.bank.category,
                    info.bank.action,
                    info.name,
                    int(d),
                    float(usable.timestamps[q]),
                    int(usable.frame_numbers[q]),
                    float(self.timestamps[b]),
                    int(self.frame_numbers[b]),
                )
            )
            out_items.append(int(it))
        return out, out_items, (q_idx, b_idx, dist)
