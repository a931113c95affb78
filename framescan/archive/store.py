"""The archive's SQLite result store: its schema and migrations, ``Outcome`` (what a scan means
for the store), compressed reports, and ``Store`` (results, runs, the path cache)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _sqlite
from ..categories import Decision
from ..errors import ConfigError, ErrorCode, FramescanError
from .fingerprint import Fingerprints

log = logging.getLogger(__name__)

STATES = ("pending", "done", "failed", "quarantined")
DECISIONS = tuple(Decision)  # the decisions a done file can have, least severe first
#: Path-cache rows are written in batches (losing them costs a re-hash, never a result).
PATH_BATCH = 500


class StoreError(FramescanError):
    """The result store cannot be written (disk full, I/O error, not a store): the run stops."""

    code = ErrorCode.CONFIG_ERROR
    default_message = "the result store cannot be written"

    def __init__(self, message: str | None = None, *, full: bool = False, **details: object) -> None:
        super().__init__(message, **details)
        self.full = full


def db_path_text(path: str) -> str:
    """A path as stored (valid UTF-8: undecodable bytes of a file name become ``\\xNN``)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fingerprints (
    fp TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('models', 'config')),
    body TEXT NOT NULL, first_used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started REAL NOT NULL, finished REAL, status TEXT NOT NULL,
    models_fp TEXT NOT NULL, config_fp TEXT NOT NULL, source TEXT, engine TEXT, summary TEXT
);
CREATE TABLE IF NOT EXISTS paths (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT,
    error_code TEXT, error_message TEXT, updated REAL NOT NULL, skipped TEXT
);
CREATE INDEX IF NOT EXISTS paths_sha256 ON paths (sha256);
CREATE TABLE IF NOT EXISTS results (
    sha256 TEXT NOT NULL, models_fp TEXT NOT NULL, config_fp TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed', 'quarantined')),
    tries INTEGER NOT NULL DEFAULT 0,
    decision TEXT CHECK (decision IS NULL OR decision IN ('allow', 'review', 'block')),
    status TEXT, error_code TEXT, error_message TEXT,
    max_score REAL, max_category TEXT, size INTEGER, source TEXT,
    report BLOB, seconds REAL, updated REAL NOT NULL,
    PRIMARY KEY (sha256, models_fp, config_fp)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS results_state ON results (models_fp, config_fp, state);
CREATE TABLE IF NOT EXISTS evidence (
    sha256 TEXT NOT NULL, models_fp TEXT NOT NULL, config_fp TEXT NOT NULL,
    frame_index INTEGER NOT NULL, jpeg BLOB NOT NULL,
    PRIMARY KEY (sha256, models_fp, config_fp, frame_index)
) WITHOUT ROWID;
"""
#: Evidence frames kept per result (the report's strongest; framescan.evidence keeps as many).
EVIDENCE_PER_ITEM = 12
#: Evidence frames kept in a store, in bytes: beyond it, results are committed without theirs.
EVIDENCE_MAX_BYTES = 2 << 30


def _is_full(ex: BaseException) -> bool:
    return getattr(ex, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(ex).lower()


@dataclass
class Outcome:
    """What one scan means for the store."""

    state: str
    decision: str | None = None
    status: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    max_score: float | None = None
    max_category: str | None = None
    report: dict[str, Any] | None = None
    seconds: float | None = None


def outcome_of(report: dict[str, Any]) -> Outcome:
    if report.get("status") == "error":
        err = report.get("error") or {}
        return Outcome("failed", None, "error", str(err.get("code")), str(err.get("message", "")), report=report)
    # the category that decided: the most severe category decision, then the highest score (a
    # clip blocked by a bank match names the bank's category, not the model with the top score)
    best = max(
        (
            (Decision(r["decision"]).severity if r.get("decision") in DECISIONS else -1, float(r["score"]), cat)
            for cat, r in (report.get("categories") or {}).items()
            if r.get("score") is not None
        ),
        default=None,
    )
    return Outcome(
        "done",
        report.get("decision"),
        report.get("status"),
        max_score=best[1] if best else None,
        max_category=best[2] if best else None,
        report=report,
        seconds=(report.get("timings") or {}).get("total"),
    )


def pack_report(report: dict[str, Any] | None) -> bytes | None:
    return None if report is None else zlib.compress(json.dumps(report, separators=(",", ":")).encode(), 6)


def unpack_report(blob: bytes | None) -> dict[str, Any] | None:
    return None if blob is None else json.loads(zlib.decompress(blob))


def _migrate_1_to_2(con: sqlite3.Connection) -> None:
    """The ``skipped`` column, and ``max_score``/``max_category`` of flagged results re-derived
    from their reports (only a review or block can change)."""
    con.execute("ALTER TABLE paths ADD COLUMN skipped TEXT")
    rows = con.execute(
        "SELECT sha256, models_fp, config_fp, report FROM results WHERE state = 'done' "
        "AND decision IN ('review', 'block') AND report IS NOT NULL"
    ).fetchall()
    for sha, mfp, cfp, blob in rows:
        out = outcome_of(unpack_report(blob) or {})
        con.execute(
            "UPDATE results SET max_score = ?, max_category = ? WHERE sha256 = ? AND models_fp = ? AND config_fp = ?",
            (out.max_score, out.max_category, sha, mfp, cfp),
        )


_migrate_2_to_3 = """
CREATE TABLE evidence (
    sha256 TEXT NOT NULL, models_fp TEXT NOT NULL, config_fp TEXT NOT NULL,
    frame_index INTEGER NOT NULL, jpeg BLOB NOT NULL,
    PRIMARY KEY (sha256, models_fp, config_fp, frame_index)
) WITHOUT ROWID;
"""


def _stamp(con: sqlite3.Connection) -> None:
    con.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (f"framescan.archive/{STORE_SCHEMA_VERSION}",))


#: 1: the first schema; 2: ``paths.skipped`` (files seen and skipped, with their reason) and
#: ``max_category`` = the category that decided (re-derived from the stored reports); 3: ``evidence``
#: (each result's evidence frames, JPEG, replaced with the result).
_STORE_SCHEMA = _sqlite.Schema(_SCHEMA, migrations=(_migrate_1_to_2, _migrate_2_to_3), stamp=_stamp)
STORE_SCHEMA_VERSION = _STORE_SCHEMA.version


class Store:
    """The SQLite result store (WAL, ``synchronous=FULL``); thread-safe (one connection, a lock).

    Results are committed one per transaction (``record``); the path cache (path -> size,
    mtime, sha256) and ``pending`` rows are written in batches, since losing them only costs
    re-hashing. Any ``sqlite3`` error while writing raises ``StoreError`` (``full=True`` for
    ``database or disk is full``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        max_pages: int | None = None,
        evidence_bytes: int = EVIDENCE_MAX_BYTES,
    ) -> None:
        self.path = Path(path)
        self.evidence_bytes = evidence_bytes
        self._evidence_total: int | None = None  # bytes of evidence frames in the store, once counted
        if not create and not self.path.is_file():
            raise ConfigError(f"result store {self.path} does not exist")
        self._lock = threading.RLock()
        self._buffer: list[tuple[str, tuple[Any, ...]]] = []
        self._last_flush = time.monotonic()
        name = f"result store {self.path}"
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            pragmas = ("synchronous=FULL", *([f"max_page_count={int(max_pages)}"] if max_pages else []))
            self._db = _sqlite.connect(self.path, threads=True, pragmas=pragmas, name=name, error=StoreError)
        except (OSError, sqlite3.Error) as ex:
            raise self._error("open", ex) from ex
        what = "open"
        try:
            version = _sqlite.user_version(self._db)
            if version == 0 and not create:
                raise StoreError(f"{self.path} is not a framescan result store")
            if version:
                what = "upgrade the store's schema"
            _sqlite.upgrade(self._db, _STORE_SCHEMA, name=name, error=StoreError)
        except sqlite3.Error as ex:
            self._db.close()
            raise self._error(what, ex) from ex
        except BaseException:
            self._db.close()
            raise

    # -- plumbing

    def _error(self, what: str, ex: BaseException) -> StoreError:
        if isinstance(ex, StoreError):
            return ex
        full = _is_full(ex)
        if full:
            msg = (
                f"result store {self.path}: {ex} while trying to {what}; every result committed so far is kept. "
                "Free space (or raise the store's size limit) and run the same command again to resume."
            )
        else:
            msg = f"result store {self.path}: cannot {what}: {type(ex).__name__}: {ex}"
        return StoreError(msg, full=full, path=str(self.path))

    def _write(self, what: str, fn: Callable[[], Any]) -> Any:
        with self._lock:
            try:
                with _sqlite.transaction(self._db):
                    return fn()
            except sqlite3.Error as ex:
                raise self._error(what, ex) from ex

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(StoreError):
                self.flush()
            with contextlib.suppress(sqlite3.Error):
                self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs

    def begin_run(self, fp: Fingerprints, source: str, engine: str) -> int:
        now = time.time()

        def fn() -> int:
            for kind, h, body in (("models", fp.models, fp.models_body), ("config", fp.config, fp.config_body)):
                self._db.execute(
                    "INSERT OR IGNORE INTO fingerprints VALUES (?, ?, ?, ?)", (h, kind, json.dumps(body), now)
                )
            cur = self._db.execute(
                "INSERT INTO runs (started, status, models_fp, config_fp, source, engine) VALUES (?, 'running', ?, ?, ?, ?)",
                (now, fp.models, fp.config, source, engine),
            )
            return int(cur.lastrowid or 0)

        return int(self._write("start a run", fn))

    def end_run(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        self._write(
            "finish the run",
            lambda: self._db.execute(
                "UPDATE runs SET finished = ?, status = ?, summary = ? WHERE id = ?",
                (time.time(), status, json.dumps(summary), run_id),
            ),
        )

    def latest_fingerprints(self) -> tuple[str, str] | None:
        with self._lock:
            row = self._db.execute("SELECT models_fp, config_fp FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else None

    # -- path cache (batched)

    def cached_sha(self, path: str, size: int, mtime_ns: int) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT sha256 FROM paths WHERE path = ? AND size = ? AND mtime_ns = ? AND sha256 IS NOT NULL",
                (db_path_text(path), size, mtime_ns),
            ).fetchone()
        return row[0] if row else None

    def note_path(
        self, path: str, size: int | None, mtime_ns: int | None, sha: str | None, error: tuple[str, str] | None = None
    ) -> None:
        code, msg = error or (None, None)
        self._note(path, size, mtime_ns, sha, code, msg, None)

    def note_skipped(self, path: str, reason: str) -> None:
        """A file seen and not scanned, with its reason (a key of ``SKIP_REASONS``)."""
        self._note(path, None, None, None, None, None, reason)

    def _note(self, path: str, *values: Any) -> None:
        self._queue(
            "INSERT INTO paths (path, size, mtime_ns, sha256, error_code, error_message, skipped, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET size = excluded.size, "
            "mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256, error_code = excluded.error_code, "
            "error_message = excluded.error_message, skipped = excluded.skipped, updated = excluded.updated",
            (db_path_text(path), *values, time.time()),
        )

    def note_pending(self, sha: str, fp: Fingerprints, size: int, source: str) -> None:
        self._queue(
            "INSERT OR IGNORE INTO results (sha256, models_fp, config_fp, state, tries, size, source, updated) "
            "VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)",
            (sha, fp.models, fp.config, size, db_path_text(source), time.time()),
        )

    def _queue(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._lock:
            self._buffer.append((sql, params))
            if len(self._buffer) >= PATH_BATCH:
                self.flush()

    def flush(self, if_older_than: float | None = None) -> None:
        """Write the buffered path-cache and pending rows (one transaction)."""
        with self._lock:
            if not self._buffer:
                return
            if if_older_than is not None and time.monotonic() - self._last_flush < if_older_than:
                return
            rows, self._buffer = self._buffer, []
            self._last_flush = time.monotonic()

            def fn() -> None:
                for sql, params in rows:
                    self._db.execute(sql, params)

            self._write("save the path cache", fn)

    # -- results

    def item(self, sha: str, fp: Fingerprints) -> tuple[str, int, str | None, str | None] | None:
        """(state, tries, decision, error_code) of a content under the fingerprints, if known."""
        with self._lock:
            row = self._db.execute(
                "SELECT state, tries, decision, error_code FROM results WHERE sha256 = ? AND models_fp = ? "
                "AND config_fp = ?",
                (sha, fp.models, fp.config),
            ).fetchone()
        return (row[0], int(row[1]), row[2], row[3]) if row else None

    def record(
        self,
        sha: str,
        fp: Fingerprints,
        out: Outcome,
        size: int | None,
        source: str,
        tries: int,
        images: dict[int, bytes] | None = None,
    ) -> None:
        """Commit one result in its own transaction (the buffered path rows go first, in theirs),
        with its evidence frames (``images``: frame index -> JPEG), which replace the ones it had:
        up to ``EVIDENCE_PER_ITEM``, none once the store's frames reach ``evidence_bytes``."""
        self.flush()

        def fn() -> None:
            self._record(sha, fp, out, size, source, tries)
            self._replace_evidence(sha, fp, images or {})

        try:
            self._write("commit a result", fn)
        except BaseException:
            self._evidence_total = None  # rolled back: count again next time
            raise

    def _replace_evidence(self, sha: str, fp: Fingerprints, images: dict[int, bytes]) -> None:
        key = (sha, fp.models, fp.config)
        if self._evidence_total is None:
            self._evidence_total = int(
                self._db.execute("SELECT coalesce(sum(length(jpeg)), 0) FROM evidence").fetchone()[0]
            )
        old = self._db.execute(
            "SELECT coalesce(sum(length(jpeg)), 0) FROM evidence WHERE sha256 = ? AND models_fp = ? AND config_fp = ?",
            key,
        ).fetchone()[0]
        self._db.execute("DELETE FROM evidence WHERE sha256 = ? AND models_fp = ? AND config_fp = ?", key)
        self._evidence_total -= int(old)
        for index, jpeg in list(images.items())[:EVIDENCE_PER_ITEM]:
            if self._evidence_total + len(jpeg) > self.evidence_bytes:
                log.warning(
                    "result store %s: evidence frames reach %d bytes; not keeping more", self.path, self.evidence_bytes
                )
                break
            self._db.execute("INSERT INTO evidence VALUES (?, ?, ?, ?, ?)", (*key, int(index), jpeg))
            self._evidence_total += len(jpeg)

    def evidence(self, sha: str, models_fp: str, config_fp: str) -> dict[int, bytes]:
        """A result's evidence frames: frame index -> JPEG."""
        with self._lock:
            rows = self._db.execute(
                "SELECT frame_index, jpeg FROM evidence WHERE sha256 = ? AND models_fp = ? AND config_fp = ? "
                "ORDER BY frame_index",
                (sha, models_fp, config_fp),
            ).fetchall()
        return {int(i): bytes(b) for i, b in rows}

    def _record(self, sha: str, fp: Fingerprints, out: Outcome, size: int | None, source: str, tries: int) -> None:
        self._db.execute(
            "INSERT INTO results (sha256, models_fp, config_fp, state, tries, decision, status, error_code, "
            "error_message, max_score, max_category, size, source, report, seconds, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (sha256, models_fp, config_fp) DO UPDATE SET state = excluded.state, "
            "tries = excluded.tries, decision = excluded.decision, status = excluded.status, "
            "error_code = excluded.error_code, error_message = excluded.error_message, "
            "max_score = excluded.max_score, max_category = excluded.max_category, "
            "size = coalesce(results.size, excluded.size), source = coalesce(results.source, excluded.source), "
            "report = excluded.report, seconds = excluded.seconds, updated = excluded.updated",
            (
                sha,
                fp.models,
                fp.config,
                out.state,
                tries,
                out.decision,
                out.status,
                out.error_code,
                out.error_message,
                out.max_score,
                out.max_category,
                size,
                db_path_text(source),
                pack_report(out.report),
                out.seconds,
                time.time(),
            ),
        )

    def reset(self, fp: Fingerprints, states: Sequence[str]) -> int:
        """Put items in ``states`` back to ``pending`` with no tries (``--retry-failed``)."""
        marks = ",".join("?" * len(states))

        def fn() -> int:
            cur = self._db.execute(
                f"UPDATE results SET state = 'pending', tries = 0, updated = ? WHERE models_fp = ? AND config_fp = ? "
                f"AND state IN ({marks})",
                (time.time(), fp.models, fp.config, *states),
            )
            return cur.rowcount

        return int(self._write("reset failed items", fn))

    def totals(self, fp: Fingerprints) -> dict[str, Any]:
        """Counts over the whole store for these fingerprints: per state, decision, error code."""
        with self._lock:
            rows = self._db.execute(
                "SELECT state, decision, error_code, count(*) FROM results WHERE models_fp = ? AND config_fp = ? "
                "GROUP BY state, decision, error_code",
                (fp.models, fp.config),
            ).fetchall()
        states: Counter[str] = Counter()
        decisions: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for state, decision, code, n in rows:
            states[state] += n
            if state == "done" and decision:
                decisions[decision] += n
            elif state in ("failed", "quarantined") and code:
                errors[code] += n
        return {"states": dict(states), "decisions": dict(decisions), "errors": dict(errors)}

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read query (for tests and tools)."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def cursor(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)
