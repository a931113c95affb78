"""Hash banks: lists of known videos and images (vPDQ / PDQ hashes) and the matcher over them.

Storage is one SQLite file (WAL mode, so a scanner can read while ``framescan bank add``
writes). A bank has a name, a category (``CATEGORIES``) and an action (``ACTIONS``); an item
is one known video (its vPDQ frame hashes) or image (one PDQ hash). An item's hashes are
stored packed in its row (32 bytes per hash, the big-endian form of ``framescan.pdq``), so
loading a million hashes is a few ``np.frombuffer`` calls, not a million rows.

``BankMatcher`` holds every usable bank hash (quality >= 50) in one ``(M, 4)`` uint64 array
and finds, for each query frame hash, every bank hash within 31 bits:

* brute force: a Numba popcount scan over the bank (bank-major, the queries of one call
  in the inner loop, so the bank is streamed from memory once per call);
* ``MultiIndex`` (multi-index hashing): the 256 bits are cut into 16 chunks of 16 bits. Two
  hashes within distance ``r`` differ in fewer than ``r // 16 + 1`` bits in at least one chunk
  (if every chunk differed in ``r // 16 + 1`` or more bits the total would exceed ``r``), so
  looking up each query chunk and its neighbours within ``r // 16`` bits -- for ``r = 31``, the
  chunk itself and its 16 one-bit neighbours -- in a per-chunk table finds every candidate;
  each candidate's full distance is then checked. Exact (no false negatives), for any radius
  up to 47; beyond that the matcher falls back to brute force.

The matcher uses the index for banks of ``INDEX_MIN_HASHES`` (100k) or more: brute force on a
million hashes takes about 5 ms per query on one core, the index about 0.2 ms; below 100k
brute force stays under 0.5 ms (``benchmarks/PDQ_RESULTS.md``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from framescan import _sqlite, pdq
from framescan._jit import kernel
from framescan.errors import ConfigError
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

log = logging.getLogger(__name__)

CATEGORIES = ("sexual", "violence", "hate", "bullying", "extremism")
ACTIONS = ("block", "review")
ITEM_KINDS = ("video", "image")
DB_FILENAME = "banks.sqlite"
HOME_ENV = "FRAMESCAN_HOME"
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another writer's lock

CHUNK_BITS = 16  # multi-index hashing: 16 chunks of 16 bits
NUM_CHUNKS = pdq.HASH_BITS // CHUNK_BITS
CHUNKS_PER_WORD = 64 // CHUNK_BITS
CHUNK_VALUES = 1 << CHUNK_BITS
MAX_PROBE_RADIUS = 2  # per-chunk neighbourhood the index enumerates (1 + 16 + 120 probes)
INDEX_MIN_HASHES = 100_000  # at and above this bank size the matcher uses the index
INITIAL_RESULT_CAPACITY = 4096  # result buffers grow (and the scan reruns) when exceeded


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
    hash_count: int = 0


@dataclass(frozen=True)
class BankItem:
    bank: str
    name: str
    kind: str  #: ``video`` or ``image``
    source: str | None  #: where the hashes came from (file path), if known
    hash_count: int
    added_at: float  #: seconds since the epoch


_SCHEMA = """
CREATE TABLE IF NOT EXISTS banks (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    category TEXT NOT NULL CHECK (category IN ('sexual', 'violence', 'hate', 'bullying', 'extremism')),
    action TEXT NOT NULL CHECK (action IN ('block', 'review')),
    created_at REAL NOT NULL
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
#: 1: the first schema.
_BANK_SCHEMA = _sqlite.Schema(_SCHEMA)
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

    def create_bank(self, name: str, category: str, action: str) -> Bank:
        if not name or not name.strip():
            raise ConfigError("a bank needs a non-empty name")
        if category not in CATEGORIES:
            raise ConfigError(f"unknown category {category!r}; choose one of {', '.join(CATEGORIES)}")
        if action not in ACTIONS:
            raise ConfigError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
        try:
            with self._db:
                self._db.execute(
                    "INSERT INTO banks (name, category, action, created_at) VALUES (?, ?, ?, ?)",
                    (name, category, action, time.time()),
                )
        except sqlite3.IntegrityError as ex:
            raise ConfigError(f"a bank named {name!r} already exists", bank=name) from ex
        return self.get_bank(name)

    def get_bank(self, name: str) -> Bank:
        row = self._db.execute(
            "SELECT b.name, b.category, b.action, b.created_at, COUNT(i.id), COALESCE(SUM(i.hash_count), 0) "
            "FROM banks b LEFT JOIN items i ON i.bank_id = b.id WHERE b.name = ? GROUP BY b.id",
            (name,),
        ).fetchone()
        if row is None:
            raise self._no_bank(name)
        return Bank(*row)

    def has_bank(self, name: str) -> bool:
        return self._db.execute("SELECT 1 FROM banks WHERE name = ?", (name,)).fetchone() is not None

    def list_banks(self) -> list[Bank]:
        rows = self._db.execute(
            "SELECT b.name, b.category, b.action, b.created_at, COUNT(i.id), COALESCE(SUM(i.hash_count), 0) "
            "FROM banks b LEFT JOIN items i ON i.bank_id = b.id GROUP BY b.id ORDER BY b.name"
        ).fetchall()
        return [Bank(*r) for r in rows]

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
        row = self._db.execute("SELECT id FROM banks WHERE name = ?", (bank,)).fetchone()
        if row is None:
            raise self._no_bank(bank)
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
            "JOIN banks b ON b.id = i.bank_id WHERE b.name = ? ORDER BY i.name",
            (bank,),
        ).fetchall()
        return [BankItem(*r) for r in rows]

    def delete_item(self, bank: str, item: str) -> None:
        self.get_bank(bank)
        with self._db:
            cur = self._db.execute(
                "DELETE FROM items WHERE name = ? AND bank_id = (SELECT id FROM banks WHERE name = ?)", (item, bank)
            )
        if cur.rowcount == 0:
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


def _unpack(hashes: bytes, qualities: bytes, timestamps: bytes, frame_numbers: bytes) -> VideoHash:
    return VideoHash(
        np.frombuffer(frame_numbers, dtype="<i8"),
        np.frombuffer(timestamps, dtype="<f8"),
        np.frombuffer(qualities, dtype=np.uint8),
        np.frombuffer(hashes, dtype=">u8").reshape(-1, pdq.HASH_WORDS),
    )


# ---------------------------------------------------------------------------------------------
# Search kernels (NumPy twins in tests/naive_pdq.py).


@kernel()
def _brute_radius_search(queries, bank, radius, out_q, out_b, out_d):  # pragma: no cover - compiled
    """Every (query, bank) pair within ``radius``; returns the pair count (may exceed capacity,
    in which case only the first ``len(out_q)`` pairs are written)."""
    cap = out_q.shape[0]
    nq = queries.shape[0]
    count = 0
    for j in range(bank.shape[0]):
        b0 = bank[j, 0]
        b1 = bank[j, 1]
        b2 = bank[j, 2]
        b3 = bank[j, 3]
        for i in range(nq):
            # Half the words first: random pairs are ~64 bits apart there already, so most
            # pairs stop here (exact: the distance only grows with more words).
            d = pdq._popcount64(queries[i, 0] ^ b0) + pdq._popcount64(queries[i, 1] ^ b1)
            if d > radius:
                continue
            d += pdq._popcount64(queries[i, 2] ^ b2) + pdq._popcount64(queries[i, 3] ^ b3)
            if d <= radius:
                if count < cap:
                    out_q[count] = i
                    out_b[count] = j
                    out_d[count] = d
                count += 1
    return count


# Called per hash and chunk with an array argument: IR inlining avoids per-call refcounting.
@kernel(inline="always")
def _chunk(h, c):  # pragma: no cover - compiled
    """16-bit chunk ``c`` (0 = most significant) of hash row ``h``."""
    shift = np.uint64(64 - CHUNK_BITS * (c % CHUNKS_PER_WORD + 1))
    return int((h[c // CHUNKS_PER_WORD] >> shift) & np.uint64(CHUNK_VALUES - 1))


@kernel()
def _chunk_values(hashes, out):  # pragma: no cover - compiled
    """``out[c, j]`` = chunk ``c`` of ``hashes[j]``."""
    for j in range(hashes.shape[0]):
        for c in range(NUM_CHUNKS):
            out[c, j] = _chunk(hashes[j], c)


@kernel()
def _build_postings(chunks, orders, starts):  # pragma: no cover - compiled
    """Per chunk, a stable counting sort of the bank by chunk value: ``orders[c]`` lists bank
    indices by value, ``starts[c, v]:starts[c, v + 1]`` is the run of value ``v``."""
    n_chunks, m = chunks.shape
    for c in range(n_chunks):
        for v in range(starts.shape[1]):
            starts[c, v] = 0
        for j in range(m):
            starts[c, chunks[c, j] + 1] += 1
        for v in range(1, starts.shape[1]):
            starts[c, v] += starts[c, v - 1]
        fill = starts[c, :-1].copy()
        for j in range(m):
            v = chunks[c, j]
            orders[c, fill[v]] = j
            fill[v] += 1


@kernel()
def _mih_radius_search(
    queries, bank, orders, starts, radius, probes, seen, gen0, out_q, out_b, out_d
):  # pragma: no cover - compiled
    """Multi-index lookup: candidates share a chunk up to one of the XOR masks in ``probes``,
    then their full distance is checked.

    ``seen[j] == gen0 + i`` marks bank hash ``j`` as already checked for query ``i`` (found via
    another chunk); the caller advances ``gen0`` by the number of queries after each call.
    """
    cap = out_q.shape[0]
    count = 0
    for i in range(queries.shape[0]):
        q = queries[i]
        gen = gen0 + i
        for c in range(NUM_CHUNKS):
            v = _chunk(q, c)
            for p in range(probes.shape[0]):
                pv = v ^ probes[p]
                for k in range(starts[c, pv], starts[c, pv + 1]):
                    j = orders[c, k]
                    if seen[j] == gen:
                        continue
                    seen[j] = gen
                    d = (
                        pdq._popcount64(q[0] ^ bank[j, 0])
                        + pdq._popcount64(q[1] ^ bank[j, 1])
                        + pdq._popcount64(q[2] ^ bank[j, 2])
                        + pdq._popcount64(q[3] ^ bank[j, 3])
                    )
                    if d <= radius:
                        if count < cap:
                            out_q[count] = i
                            out_b[count] = j
                            out_d[count] = d
                        count += 1
    return count


def probe_masks(probe_radius: int) -> np.ndarray:
    """XOR masks of every 16-bit value within ``probe_radius`` bits (0 first)."""
    masks = [0]
    if probe_radius >= 1:
        masks += [1 << a for a in range(CHUNK_BITS)]
    if probe_radius >= 2:
        masks += [(1 << a) | (1 << b) for a in range(CHUNK_BITS) for b in range(a + 1, CHUNK_BITS)]
    return np.array(masks, dtype=np.int64)


def _run_search(call, n_queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``call(out_q, out_b, out_d) -> pair count``; grow the buffers and call again until all fit."""
    cap = max(INITIAL_RESULT_CAPACITY, 4 * n_queries)
    while True:
        out_q = np.empty(cap, dtype=np.int32)
        out_b = np.empty(cap, dtype=np.int64)
        out_d = np.empty(cap, dtype=np.int32)
        count = call(out_q, out_b, out_d)
        if count <= cap:
            return out_q[:count], out_b[:count], out_d[:count]
        cap = count


def _as_hashes(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.uint64)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2 or a.shape[1] != pdq.HASH_WORDS:
        raise ValueError(f"hashes must be (N, {pdq.HASH_WORDS}) uint64, got {a.shape = }")
    return a


def brute_force_search(
    queries: np.ndarray, bank: np.ndarray, radius: int = DISTANCE_THRESHOLD
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs within ``radius``: ``(query index, bank index, distance)`` arrays."""
    q = _as_hashes(queries)
    b = _as_hashes(bank)
    if len(q) == 0 or len(b) == 0:
        return np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int32)
    r = int(radius)
    return _run_search(lambda oq, ob, od: _brute_radius_search(q, b, r, oq, ob, od), len(q))


class MultiIndex:
    """Multi-index hashing over a fixed ``(M, 4)`` hash array (see module docstring).

    Memory: 16 x M int32 sorted postings, 16 x 65537 int32 offsets and M int64 scratch stamps:
    72 bytes per hash plus 4 MB (76 MB for a million). ``search`` is thread-safe (it serialises
    on a lock).
    """

    def __init__(self, hashes: np.ndarray) -> None:
        self.hashes = _as_hashes(hashes)
        m = len(self.hashes)
        chunks = np.empty((NUM_CHUNKS, m), dtype=np.int32)
        self.orders = np.empty((NUM_CHUNKS, m), dtype=np.int32)
        self.starts = np.zeros((NUM_CHUNKS, CHUNK_VALUES + 1), dtype=np.int32)
        if m:
            _chunk_values(self.hashes, chunks)
            _build_postings(chunks, self.orders, self.starts)
        self._seen = np.full(m, -1, dtype=np.int64)
        self._generation = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.hashes)

    @staticmethod
    def supports(radius: int) -> bool:
        return 0 <= radius < NUM_CHUNKS * (MAX_PROBE_RADIUS + 1)

    def search(
        self, queries: np.ndarray, radius: int = DISTANCE_THRESHOLD
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All pairs within ``radius`` (same result as ``brute_force_search``, order aside)."""
        q = _as_hashes(queries)
        if not self.supports(radius):
            log.debug("radius %d is beyond the multi-index; brute force", radius)
            return brute_force_search(q, self.hashes, radius)
        if len(q) == 0 or len(self.hashes) == 0:
            return np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int32)
        probes = probe_masks(radius // NUM_CHUNKS)
        r = int(radius)

        def call(out_q: np.ndarray, out_b: np.ndarray, out_d: np.ndarray) -> int:
            gen0 = self._generation
            self._generation += len(q)  # fresh stamps for every kernel run, reruns included
            return _mih_radius_search(
                q, self.hashes, self.orders, self.starts, r, probes, self._seen, gen0, out_q, out_b, out_d
            )

        with self._lock:
            return _run_search(call, len(q))


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
        self.hashes = _as_hashes(hashes) if len(hashes) else np.empty((0, pdq.HASH_WORDS), np.uint64)
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
