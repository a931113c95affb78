"""Archive scanning: millions of files, resumable after any crash (``framescan archive``).

An archive run walks a folder (or reads a list of paths), hashes every candidate file
(sha256 of its content) and scans each *content* once per (models, configuration) pair in
N isolated workers (``framescan.isolate.WorkerPool``), or in Ray actors. Results go to a
SQLite store (WAL, ``synchronous=FULL``), each committed in its own transaction the moment
it arrives, so a kill at any instant loses at most the clips that were in flight; a rerun of
the same command continues where the last one stopped.

Keys. A result is keyed by ``(sha256 of the content, models fingerprint, config
fingerprint)``:

- models fingerprint: sha256 of the sorted ``(name, sha256)`` pairs of the scanner's model
  manifests;
- config fingerprint: sha256 of the JSON of the policy (``Policy.to_dict()``), the sampling
  (``Sampler.describe()``), the limits, ``early_exit``, the label/decoder settings of the
  manifests and a digest of the hash banks in use.

A copy or a renamed file has the same content hash: it is not scanned again. Another model
or policy gives other fingerprints: everything is scanned again (older results stay in the
store, under their own fingerprints).

States. Every item (content hash under one fingerprint pair) is in exactly one state:
``pending`` (known, not finished), ``done`` (scanned: decision ``allow``/``review``/
``block``), ``failed`` (the clip cannot be scanned: the report's error code, e.g.
``UNSUPPORTED_FORMAT``, ``TRUNCATED``), ``quarantined`` (a worker crashed or timed out on it
``max_tries`` times). A worker crash or timeout counts one try and the item is retried
(later in the same run, or in the next one). Paths that cannot even be read are recorded per
path (``NOT_FOUND``, ``UNREADABLE``), since they have no content hash, and so are files the
run skips, with their reason (``SKIP_REASONS``). The run's summary counts every file once, in
the state it ended in (``_Stats.settle``).

Storage errors (``database or disk is full``, I/O errors) stop the run with ``StoreError``:
nothing that was committed is lost, and the next run resumes.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import logging
import os
import queue
import shutil
import signal
import sqlite3
import sys
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..errors import ConfigError, ErrorCode, FramescanError, ModelError
from ..limits import DEFAULT_LIMITS, Limits

log = logging.getLogger(__name__)

#: 1: the first schema; 2: ``paths.skipped`` (files seen and skipped, with their reason) and
#: ``max_category`` = the category that decided (re-derived from the stored reports).
STORE_SCHEMA_VERSION = 2
#: File extensions an archive walk picks up by default (case-insensitive; ``--ext`` changes them).
DEFAULT_EXTENSIONS = (
    "mp4", "m4v", "mov", "qt", "3gp", "3g2", "mkv", "webm", "avi", "flv", "f4v", "wmv", "asf",
    "ts", "mts", "m2ts", "mpg", "mpeg", "m2v", "vob", "ogv", "ivf", "h264", "264", "hevc",
    "h265", "265", "y4m", "nut", "gif", "mjpeg", "mjpg",
)  # fmt: skip
DEFAULT_MAX_TRIES = 3
STATES = ("pending", "done", "failed", "quarantined")
DECISIONS = ("allow", "review", "block")
#: Error codes that mean the worker crashed or was killed on the item: each is one try.
WORKER_FAILURES = frozenset(
    {ErrorCode.TIMEOUT.value, ErrorCode.DECODER_CRASHED.value, ErrorCode.RESOURCE_EXHAUSTED.value}
)
#: Error codes that belong to a path, not to a content (the file vanished or cannot be read).
PATH_ERRORS = frozenset({ErrorCode.NOT_FOUND.value, "UNREADABLE"})
SNIFF_BYTES = 512
HASH_CHUNK = 1 << 20
#: Path-cache rows are written in batches (losing them costs a re-hash, never a result).
PATH_BATCH = 500
PATH_FLUSH_SECONDS = 1.0
DEFAULT_PROGRESS_INTERVAL = 5.0


class StoreError(FramescanError):
    """The result store cannot be written (disk full, I/O error, not a store): the run stops."""

    code = ErrorCode.CONFIG_ERROR
    default_message = "the result store cannot be written"

    def __init__(self, message: str | None = None, *, full: bool = False, **details: object) -> None:
        super().__init__(message, **details)
        self.full = full


# ---------------------------------------------------------------------------- discovery


def sniff_video(head: bytes) -> bool:
    """True when the first bytes of a file look like a container or stream framescan reads."""
    if len(head) < 8:
        return False
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"):
        return True  # ISO BMFF / QuickTime: mp4, mov, m4v, 3gp
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return True  # EBML: Matroska, WebM
    if head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"AVIX"):
        return True
    prefixes = (
        b"FLV\x01",
        b"\x30\x26\xb2\x75\x8e\x66\xcf\x11",  # ASF / WMV
        b"OggS",
        b"DKIF",  # IVF (VP8/VP9/AV1)
        b"YUV4MPEG2",
        b"nut/multimedia container",
        b"GIF87a",
        b"GIF89a",
        b"\x00\x00\x01\xba",  # MPEG program stream
        b"\x00\x00\x01\xb3",  # MPEG-1/2 video elementary stream
        b"\x00\x00\x00\x01",  # H.264 / HEVC Annex B
        b"\xff\xd8\xff",  # (motion) JPEG
    )
    if head.startswith(prefixes):
        return True
    if head[:3] == b"\x00\x00\x01" and head[3] < 0xB9:
        return True  # Annex B with a 3-byte start code
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:
        return True  # MPEG-TS
    return len(head) >= 197 and head[4] == 0x47 and head[196] == 0x47  # M2TS (192-byte packets)


def parse_extensions(values: Sequence[str] | None) -> frozenset[str] | None:
    """``--ext`` values (repeatable, comma-separated, with or without dots) -> a set; ``*`` means any."""
    if not values:
        return frozenset(DEFAULT_EXTENSIONS)
    exts = {e.strip().lower().lstrip(".") for v in values for e in v.split(",") if e.strip()}
    if "*" in exts:
        return None
    if not exts:
        raise ConfigError("--ext needs at least one extension (or '*')")
    return frozenset(exts)


@dataclass
class Job:
    path: str
    sniff: bool  # check the first bytes before hashing (folder walks; not explicit lists)
    sha256: str | None = None
    retries: int = 0


#: Why a file was not scanned (the code stored and exported -> the words the summary uses).
SKIP_REASONS = {
    "extension": "extension not selected",
    "not_video": "not a video",
    "symlink_outside": "symlink out of SRC",
    "symlink_dir": "symlink to a folder",
    "not_regular": "not a regular file",
    "unreadable_dir": "unreadable folder",
}


@dataclass
class Skipped:
    reason: str  # a key of SKIP_REASONS
    path: str


def walk_folder(root: str | os.PathLike[str], exts: frozenset[str] | None) -> Iterator[Job | Skipped]:
    """Files under ``root`` (sorted, recursive) whose extension is in ``exts`` (None: any).

    Symlinks are never followed out of ``root``: a symlink to a regular file inside ``root``
    is a candidate (its content deduplicates with the target), symlinks to directories and to
    anything outside ``root`` are skipped."""
    top = os.path.realpath(root)
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=errors.append):
        while errors:
            ex = errors.pop()
            yield Skipped("unreadable_dir", str(ex.filename or dirpath))
        dirnames.sort()
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):
                yield Skipped("symlink_dir", os.path.join(dirpath, d))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if exts is not None and os.path.splitext(name)[1].lower().lstrip(".") not in exts:
                yield Skipped("extension", path)
                continue
            try:
                st = os.lstat(path)
                if os.path.islink(path):
                    real = os.path.realpath(path)
                    if os.path.commonpath([top, real]) != top:
                        yield Skipped("symlink_outside", path)
                        continue
                    st = os.stat(real)
            except (OSError, ValueError):
                yield Skipped("not_regular", path)
                continue
            if not _is_regular(st.st_mode):
                yield Skipped("not_regular", path)
                continue
            yield Job(path, sniff=True)
    while errors:
        ex = errors.pop()
        yield Skipped("unreadable_dir", str(ex.filename or root))


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def read_list(list_file: str) -> Iterator[Job]:
    """Paths from a list file (one per line; blank lines and ``#`` comments skipped; ``-`` is
    stdin). Relative paths are relative to the current directory. Listed paths are not filtered:
    each is an item, and a missing one is recorded as ``NOT_FOUND``. Paths are made absolute."""
    f: TextIO
    if list_file == "-":
        f = sys.stdin
    else:
        try:
            f = open(list_file, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
        except OSError as ex:
            raise ConfigError(f"list file {list_file}: {ex.strerror or ex}") from ex
    try:
        for line in f:
            path = line.rstrip("\r\n")
            if not path.strip() or path.lstrip().startswith("#"):
                continue
            yield Job(os.path.abspath(path), sniff=False)
    finally:
        if f is not sys.stdin:
            f.close()


def db_path_text(path: str) -> str:
    """A path as stored (valid UTF-8: undecodable bytes of a file name become ``\\xNN``)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def hash_file(path: str, sniff: bool) -> str | None:
    """sha256 of the file's content, or None when ``sniff`` and the first bytes are not video."""
    with open(path, "rb") as f:
        head = f.read(HASH_CHUNK)
        if sniff and not sniff_video(head[:SNIFF_BYTES]):
            return None
        h = hashlib.sha256(head)
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------- fingerprints


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def banks_digest(banks: Any) -> dict[str, Any] | None:
    """What of the hash banks in use changes results: bank names, categories, actions, items."""
    if banks is False:
        return None
    from ..banks import default_db_path

    path = Path(banks) if banks not in (None, True) else default_db_path()
    if not path.is_file():
        return None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = con.execute(
                "SELECT b.name, b.category, b.action, i.name, i.kind, i.hash_count, i.added_at "
                "FROM banks b LEFT JOIN items i ON i.bank_id = b.id ORDER BY b.name, i.name"
            ).fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as ex:
        raise ConfigError(f"hash bank database {path} cannot be read: {ex}") from ex
    if not any(r[3] for r in rows):
        return None  # no item: matching is off, as in the scan
    return {"items": len(rows), "digest": _digest(rows)}


@dataclass(frozen=True)
class Fingerprints:
    models: str
    config: str
    models_body: list[list[str]]
    config_body: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"models_fp": self.models, "config_fp": self.config}


def compute_fingerprints(scanner: dict[str, Any], limits: Limits) -> Fingerprints:
    """The fingerprints of a scanner configuration (``Scanner(**scanner, limits=limits)``),
    computed from the manifests and policy without loading any model."""
    from ..models import DEFAULT_MODEL, ModelManifest, load_manifest
    from ..policy import DEFAULT_POLICY, Policy, load_policy
    from ..sample import make_sampler

    manifests = [
        m if isinstance(m, ModelManifest) else load_manifest(m) for m in (scanner.get("models") or [DEFAULT_MODEL])
    ]
    models_body = sorted([m.name, m.sha256.lower()] for m in manifests)
    pol = scanner.get("policy")
    policy = pol if isinstance(pol, Policy) else (load_policy(pol) if pol else DEFAULT_POLICY)
    sampler = make_sampler(
        fps=scanner.get("fps"),
        every=scanner.get("every"),
        keyframes=bool(scanner.get("keyframes")),
        all_frames=bool(scanner.get("all_frames")),
        adaptive=bool(scanner.get("adaptive")),
    )
    settings = sorted(
        [
            repr(m.input),
            m.output.decoder,
            json.dumps(m.output.params, sort_keys=True, default=str),
            [[lab.name, lab.category, lab.weight] for lab in m.labels],
            m.schedule_every,
        ]
        for m in manifests
    )
    config_body = {
        "policy": policy.to_dict(),
        "sampling": sampler.describe(),
        "limits": limits.to_dict(),
        "early_exit": bool(scanner.get("early_exit")),
        "model_settings": _digest(settings),
        "banks": banks_digest(scanner.get("banks")),
    }
    if scanner.get("ocr"):  # the on-screen text lexicons in force change what is found
        from ..lexicon import Lexicon

        lex = Lexicon.load(scanner.get("lexicons"))
        config_body["ocr_lexicon"] = _digest(sorted([t.category, t.term, t.weight] for t in lex.terms))
    return Fingerprints(_digest(models_body), _digest(config_body), models_body, config_body)


def check_report(report: dict[str, Any], fp: Fingerprints) -> None:
    """A scanned report must come from the models, policy and sampling the fingerprints name."""
    if report.get("status") == "error":
        return
    got = sorted([m["name"], m["sha256"].lower()] for m in report.get("models", []))
    if got != fp.models_body:
        raise ConfigError(f"a worker scanned with models {got}, expected {fp.models_body}: the models changed mid-run")
    if report.get("policy") != fp.config_body["policy"] or report.get("sampling") != fp.config_body["sampling"]:
        raise ConfigError("a worker scanned with another policy or sampling than the run's: configuration changed")


# ---------------------------------------------------------------------------- store

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
"""


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
            (DECISIONS.index(r["decision"]) if r.get("decision") in DECISIONS else -1, float(r["score"]), cat)
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


class Store:
    """The SQLite result store (WAL, ``synchronous=FULL``); thread-safe (one connection, a lock).

    Results are committed one per transaction (``record``); the path cache (path -> size,
    mtime, sha256) and ``pending`` rows are written in batches, since losing them only costs
    re-hashing. Any ``sqlite3`` error while writing raises ``StoreError`` (``full=True`` for
    ``database or disk is full``)."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True, max_pages: int | None = None) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise ConfigError(f"result store {self.path} does not exist")
        self._lock = threading.RLock()
        self._buffer: list[tuple[str, tuple[Any, ...]]] = []
        self._last_flush = time.monotonic()
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as ex:
            raise self._error("open", ex) from ex
        try:
            self._db.execute("PRAGMA busy_timeout=30000")
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"result store {self.path}: cannot use WAL mode (got {mode!r})")
            self._db.execute("PRAGMA synchronous=FULL")
            if max_pages:
                self._db.execute(f"PRAGMA max_page_count={int(max_pages)}")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > STORE_SCHEMA_VERSION:
                raise StoreError(
                    f"result store {self.path} has schema {version}, newer than this framescan understands "
                    f"({STORE_SCHEMA_VERSION}); upgrade framescan"
                )
            if version == 0:
                if not create:
                    raise StoreError(f"{self.path} is not a framescan result store")
                # executescript commits first: the transaction is part of the script
                self._db.executescript(
                    "BEGIN IMMEDIATE;"
                    + _SCHEMA
                    + f"PRAGMA user_version={STORE_SCHEMA_VERSION};"
                    + f"INSERT OR REPLACE INTO meta VALUES ('schema', 'framescan.archive/{STORE_SCHEMA_VERSION}');"
                    + "COMMIT;"
                )
            elif version < STORE_SCHEMA_VERSION:
                self._write("upgrade the store's schema", self._migrate_v1)
        except sqlite3.Error as ex:
            self._db.close()
            raise self._error("open", ex) from ex
        except BaseException:
            self._db.close()
            raise

    def _migrate_v1(self) -> None:
        """Schema 1 -> 2 (one transaction): the ``skipped`` column, and ``max_score``/``max_category``
        of flagged results re-derived from their reports (only a review or block can change)."""
        if self._db.execute("PRAGMA user_version").fetchone()[0] >= 2:
            return  # another process upgraded it first
        self._db.execute("ALTER TABLE paths ADD COLUMN skipped TEXT")
        rows = self._db.execute(
            "SELECT sha256, models_fp, config_fp, report FROM results WHERE state = 'done' "
            "AND decision IN ('review', 'block') AND report IS NOT NULL"
        ).fetchall()
        for sha, mfp, cfp, blob in rows:
            out = outcome_of(unpack_report(blob) or {})
            self._db.execute(
                "UPDATE results SET max_score = ?, max_category = ? WHERE sha256 = ? AND models_fp = ? "
                "AND config_fp = ?",
                (out.max_score, out.max_category, sha, mfp, cfp),
            )
        self._db.execute(f"PRAGMA user_version={STORE_SCHEMA_VERSION}")
        self._db.execute(f"INSERT OR REPLACE INTO meta VALUES ('schema', 'framescan.archive/{STORE_SCHEMA_VERSION}')")

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

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _write(self, what: str, fn: Callable[[], Any]) -> Any:
        with self._lock:
            try:
                with self._tx():
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

    def record(self, sha: str, fp: Fingerprints, out: Outcome, size: int | None, source: str, tries: int) -> None:
        """Commit one result in its own transaction (the buffered path rows go first, in theirs)."""
        self.flush()
        self._write(
            "commit a result",
            lambda: self._db.execute(
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


# ---------------------------------------------------------------------------- engines


class Engine:
    """Runs scans for the slot threads: ``scan(slot, path)`` returns a report dict, never raises
    for a bad clip; raises ``FramescanError`` when the engine itself is broken."""

    name = "engine"
    slots = 1

    def start(self) -> None:
        raise NotImplementedError

    def scan(self, slot: int, path: str) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class LocalEngine(Engine):
    """One ``WorkerPool`` of N isolated workers, created by the thread that calls ``start``."""

    name = "local"

    def __init__(self, workers: int, scanner: dict[str, Any], limits: Limits) -> None:
        from ..isolate import split_threads

        self.slots = workers
        kw = dict(scanner)
        split = split_threads(workers)
        if not kw.get("threads"):
            kw["threads"] = split["threads"]
        kw.setdefault("decode_threads", split["decode_threads"])
        self.scanner = kw
        self.limits = limits
        self.pool: Any = None
        self._cv = threading.Condition()
        self._inflight = 0

    def start(self) -> None:
        from ..isolate import WorkerConfig, WorkerPool

        self.pool = WorkerPool(self.slots, WorkerConfig(scanner=self.scanner, limits=self.limits))

    def scan(self, slot: int, path: str) -> dict[str, Any]:
        with self._cv:
            pool = self.pool
            if pool is None:  # closing: the run is stopping and discards this
                return _aborted(path)
            self._inflight += 1
        try:
            return dict(pool.scan(path).to_dict())
        except FramescanError as ex:  # a replacement worker could not start: the engine is broken
            raise ModelError(f"the worker pool failed: {ex.message}") from ex
        finally:
            with self._cv:
                self._inflight -= 1
                self._cv.notify_all()

    def close(self) -> None:
        with self._cv:
            pool, self.pool = self.pool, None
            busy = self._inflight
        if pool is None:
            return
        if busy:
            # Stopping mid-run (interrupt, full store). WorkerPool.close() must not race a scan
            # running in another thread (both would close that worker's connection), so: no
            # replacement workers from now on, kill the workers so in-flight scans return at
            # once (the caller discards them), then close the pool.
            pool._closed = True
            for pid in pool.pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            with self._cv:
                self._cv.wait_for(lambda: self._inflight == 0, timeout=30.0)
        pool.close()


def _aborted(name: str) -> dict[str, Any]:
    from ..errors import DecoderCrashed
    from ..report import Report

    return Report.from_error(name, DecoderCrashed(f"{name}: the scan was cut short (the run is stopping)")).to_dict()


class ScanActor:
    """Ray actor body: builds one ``Scanner`` (models loaded once) and scans clip after clip."""

    def __init__(self, scanner: dict[str, Any], limits: Limits) -> None:
        from ..pipeline import Scanner

        self.scanner = Scanner(limits=limits, **scanner)

    def describe(self) -> dict[str, Any]:
        return {**self.scanner.describe(), "banks": self.scanner.known is not None}

    def scan(self, source: str | bytes, name: str) -> dict[str, Any]:
        from ..report import Report

        try:
            return self.scanner.scan(source, name=name).to_dict()
        except FramescanError as ex:
            return Report.from_error(name, ex).to_dict()
        except MemoryError as ex:
            from ..errors import ResourceExhausted

            return Report.from_error(name, ResourceExhausted(f"{name}: out of memory ({ex})")).to_dict()


class RayEngine(Engine):
    """The same scans as Ray actors (one per slot, each with its own ``Scanner``).

    A slot's call waits ``max_seconds_per_clip``; on a timeout the actor is killed and
    replaced (``TIMEOUT``), a dead actor (segfault, OOM) is replaced too
    (``DECODER_CRASHED``): both count a try, as with local workers. The driver writes every
    result to the store. ``ship_bytes`` sends file contents through the object store for
    clusters whose nodes do not share the archive's file system."""

    name = "ray"

    def __init__(
        self,
        address: str | None,
        workers: int | None,
        scanner: dict[str, Any],
        limits: Limits,
        ship_bytes: bool = False,
        threads: int | None = None,
    ) -> None:
        self.address = address
        self.requested = workers
        self.scanner = dict(scanner)
        pol = self.scanner.get("policy")
        if pol and not hasattr(pol, "to_dict"):
            from ..policy import load_policy

            self.scanner["policy"] = load_policy(pol)  # the driver's file, sent as data: nodes need no copy
        self.limits = limits
        self.ship_bytes = ship_bytes
        self.threads = threads
        self.actors: list[Any] = []
        self.slots = workers or 0
        self._ray: Any = None
        self._cls: Any = None
        self._owns_ray = False
        self._closing = False
        self.described: dict[str, Any] | None = None

    def connect(self) -> None:
        """Import ray and connect (before the slot count is needed)."""
        try:
            import ray
        except ImportError as ex:
            raise ConfigError(
                "--ray needs the ray package, which is not installed: pip install 'ray[default]' "
                "(or pip install 'framescan[ray]')"
            ) from ex
        self._ray = ray
        if not ray.is_initialized():
            kw: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
            if self.address:
                kw["address"] = self.address
            ray.init(**kw)
            self._owns_ray = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.threads = self.threads or 1
        self.slots = self.requested or max(1, cpus // self.threads)
        self.scanner["threads"] = self.threads
        self.scanner.setdefault("decode_threads", 1)

    def _new_actor(self) -> Any:
        return self._cls.options(num_cpus=self.threads, max_restarts=0).remote(self.scanner, self.limits)

    def start(self) -> None:
        if self._ray is None:
            self.connect()
        ray = self._ray
        self._cls = ray.remote(ScanActor)
        self.actors = [self._new_actor() for _ in range(self.slots)]
        try:
            described = ray.get([a.describe.remote() for a in self.actors], timeout=600)
        except Exception as ex:
            raise ModelError(f"ray actors failed to start (scanner or models): {_ray_message(ex)}") from ex
        self.described = described[0]

    def verify(self, fp: Fingerprints) -> None:
        """The actors must scan with what the fingerprints say (models, policy, sampling, banks)."""
        d = self.described or {}
        models = sorted([m["name"], m["sha256"].lower()] for m in d.get("models", []))
        if models != fp.models_body:
            raise ConfigError(f"the ray actors loaded models {models}, the driver expects {fp.models_body}")
        if d.get("policy") != fp.config_body["policy"] or d.get("sampling") != fp.config_body["sampling"]:
            raise ConfigError("the ray actors use another policy or sampling than the driver")
        if bool(d.get("banks")) != (fp.config_body["banks"] is not None):
            raise ConfigError(
                "hash banks differ between the driver and the ray actors: give --banks DB at a path every node "
                "can read, or --no-banks"
            )

    def scan(self, slot: int, path: str) -> dict[str, Any]:
        from ..errors import DecoderCrashed, ScanTimeout
        from ..report import Report

        ray = self._ray
        name = path
        payload: str | bytes = path
        if self.ship_bytes:
            try:
                with open(path, "rb") as f:
                    payload = f.read()
            except OSError as ex:
                from ..errors import FileNotFound

                return Report.from_error(name, FileNotFound(f"{path}: {ex.strerror or ex}")).to_dict()
        limit = self.limits.max_seconds_per_clip
        ref = self.actors[slot].scan.remote(payload, name)
        try:
            return dict(ray.get(ref, timeout=limit))
        except ray.exceptions.GetTimeoutError:
            self._replace(slot)
            err: FramescanError = ScanTimeout(
                f"{name}: no result within {limit:.1f} s (limit max_seconds_per_clip); the actor was killed",
                limit="max_seconds_per_clip",
            )
        except ray.exceptions.RayActorError as ex:
            self._replace(slot)
            err = DecoderCrashed(f"{name}: the ray actor died while scanning ({_ray_message(ex)})")
        except ray.exceptions.RayTaskError as ex:
            err = DecoderCrashed(f"{name}: scanning failed unexpectedly in the actor: {_ray_message(ex)}")
        except ray.exceptions.RayError as ex:  # lost object, node failure...: the actor may be gone
            self._replace(slot)
            err = DecoderCrashed(f"{name}: the ray cluster lost this scan ({_ray_message(ex)})")
        return Report.from_error(name, err).to_dict()

    def _replace(self, slot: int) -> None:
        with contextlib.suppress(Exception):
            self._ray.kill(self.actors[slot], no_restart=True)
        if self._closing:
            return
        actor = self._new_actor()
        self.actors[slot] = actor
        try:  # load the models before the next clip's clock starts
            self._ray.get(actor.describe.remote(), timeout=600)
        except self._ray.exceptions.RayError as ex:
            raise ModelError(f"a replacement ray actor failed to start: {_ray_message(ex)}") from ex

    def close(self) -> None:
        self._closing = True
        for a in self.actors:
            with contextlib.suppress(Exception):
                self._ray.kill(a, no_restart=True)
        self.actors = []
        if self._owns_ray and self._ray is not None:
            with contextlib.suppress(Exception):
                self._ray.shutdown()


def _ray_message(ex: BaseException) -> str:
    text = str(ex).strip().splitlines()
    return text[-1][:300] if text else type(ex).__name__


# ---------------------------------------------------------------------------- progress


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """A live bar with rate and ETA on a terminal; JSON lines every ``interval`` s otherwise."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None, interval: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        try:
            self.tty = self.stream.isatty() if tty is None else tty
        except (AttributeError, ValueError):
            self.tty = False
        self.interval = interval
        self.enabled = True
        self._last = 0.0
        self._width = 0

    def event(self, kind: str, **fields: Any) -> None:
        """A machine-readable line (only when not on a terminal)."""
        if not self.enabled or self.tty:
            return
        self.stream.write(json.dumps({"event": kind, "time": round(time.time(), 3), **fields}) + "\n")
        self.stream.flush()

    def update(self, snap: dict[str, Any], force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < (0.2 if self.tty else self.interval):
            return
        self._last = now
        if not self.tty:
            self.event("progress", **snap)
            return
        total, processed = snap["found"], snap["processed"]
        frac = processed / total if total else 0.0
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        more = "" if snap["discovery_done"] else "+"
        dec = snap["decisions"]
        failed = sum(snap["errors"].values())
        text = (
            f"[{bar}] {processed}/{total}{more}  {snap['rate_clips_per_min']:.1f} clips/min  "
            f"ETA {_fmt_duration(snap['eta_s'])}  block {dec.get('block', 0)} review {dec.get('review', 0)} "
            f"failed {failed} skipped {snap['skipped']}"
        )
        cols = shutil.get_terminal_size((100, 20)).columns
        text = text[: max(20, cols - 1)]
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


# ---------------------------------------------------------------------------- the run


@dataclass
class ArchiveOptions:
    """Everything an archive run needs (the CLI builds it from its arguments)."""

    db: str
    source: str | None = None  # a folder, or "@LIST"
    list_file: str | None = None
    workers: int | None = None
    extensions: frozenset[str] | None = frozenset(DEFAULT_EXTENSIONS)
    scanner: dict[str, Any] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS
    max_tries: int = DEFAULT_MAX_TRIES
    retry_failed: bool = False
    rehash: bool = False
    ray: bool = False
    ray_address: str | None = None
    ray_ship_bytes: bool = False
    progress_interval: float = DEFAULT_PROGRESS_INTERVAL
    progress_stream: TextIO | None = None
    progress_tty: bool | None = None
    quiet: bool = False
    max_store_pages: int | None = None


@dataclass
class ArchiveSummary:
    status: str  # complete | interrupted | store_error | engine_error
    fingerprints: dict[str, str]
    counts: dict[str, Any]
    store: dict[str, Any]
    elapsed_s: float
    scan_elapsed_s: float
    clips_per_min: float
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The final states a file of a run can end in (``pending``: left for the next run).
FILE_STATES = ("done", "failed", "quarantined", "skipped", "pending")


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.found = 0  # files discovered (the walk's skipped ones too)
        self.processed = 0  # files settled: each in exactly one of FILE_STATES
        self.files: dict[str, Counter[str]] = {state: Counter() for state in FILE_STATES}
        self.scanned = 0
        self.committed = 0
        self.already = Counter[str]()
        self.skipped = Counter[str]()
        self.decisions = Counter[str]()
        self.errors = Counter[str]()
        self.quarantined = 0
        self.retried = 0
        self.duplicates = 0
        self.changed = 0
        self.path_errors = Counter[str]()
        self.final_failures = 0  # items seen in this run that are failed/quarantined (now or before)

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)

    def bump(self, counter: str, key: str) -> None:
        with self.lock:
            getattr(self, counter)[key] += 1

    def settle(self, state: str, detail: str, n: int = 1) -> None:
        """``n`` files end this run in ``state``; ``detail`` is the decision, the error code or
        the skip reason. The one place that counts a file's outcome."""
        with self.lock:
            self.processed += n
            self.files[state][detail] += n
            if state == "done":
                self.decisions[detail] += n
            elif state in ("failed", "quarantined"):
                self.errors[detail] += n
                self.final_failures += n
            elif state == "skipped":
                self.skipped[detail] += n

    def files_dict(self) -> dict[str, Any]:
        """``{"total": found, state: {detail: n}}`` (call with the lock held)."""
        return {"total": self.found, **{state: dict(c) for state, c in self.files.items() if c}}


class ArchiveRun:
    """One archive run: discovery thread -> slot threads (one per worker) -> store."""

    def __init__(self, opts: ArchiveOptions) -> None:
        self.opts = opts
        if opts.max_tries < 1:
            raise ConfigError(f"--max-tries must be >= 1, got {opts.max_tries}")
        if not opts.source and not opts.list_file:
            raise ConfigError("give a folder, @LIST or --list FILE to scan")
        for src in (opts.source, opts.list_file):
            if src:
                target = src[1:] if src is opts.source and src.startswith("@") else src
                if target != "-" and not os.path.exists(target):
                    raise ConfigError(f"{target}: no such folder or file")
        self.fp = compute_fingerprints(opts.scanner, opts.limits)
        self.stats = _Stats()
        self.stop = threading.Event()
        self.fatal: BaseException | None = None
        self._fatal_lock = threading.Lock()
        self.work: queue.Queue[Job | None] = queue.Queue(maxsize=4096)
        self.retry: deque[Job] = deque()
        self.discovery_done = threading.Event()
        self.cond = threading.Condition()
        self.busy = 0
        self.inflight: set[str] = set()
        self.twins: Counter[str] = Counter()  # names met while their content was in flight
        self.inflight_lock = threading.Lock()
        self.need_engine = threading.Event()
        self.engine_ready = threading.Event()
        self.engine: Engine = self._make_engine()
        self.progress = Progress(opts.progress_stream, opts.progress_tty, opts.progress_interval)
        self.progress.enabled = not opts.quiet
        self.t0 = time.monotonic()
        self.t_ready: float | None = None

    def _make_engine(self) -> Engine:
        o = self.opts
        if o.ray:
            eng = RayEngine(o.ray_address, o.workers, o.scanner, o.limits, o.ray_ship_bytes, o.scanner.get("threads"))
            return eng
        from ..isolate import default_workers

        workers = int(o.workers or default_workers())
        if workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        return LocalEngine(workers, o.scanner, o.limits)

    # -- fatal errors stop the run

    def _fail(self, ex: BaseException) -> None:
        with self._fatal_lock:
            if self.fatal is None:
                self.fatal = ex
        self.stop.set()
        with self.cond:
            self.cond.notify_all()

    # -- discovery

    def _jobs(self) -> Iterator[Job | Skipped]:
        o = self.opts
        if o.list_file:
            yield from read_list(o.list_file)
        src = o.source
        if src:
            if src.startswith("@"):
                yield from read_list(src[1:])
            elif os.path.isdir(src):
                yield from walk_folder(os.path.abspath(src), o.extensions)
            elif os.path.isfile(src):
                yield Job(os.path.abspath(src), sniff=False)
            else:
                raise ConfigError(f"{src}: no such folder or file")

    def _discover(self) -> None:
        try:
            for job in self._jobs():
                if self.stop.is_set():
                    return
                self.stats.add("found")
                if isinstance(job, Skipped):
                    self._skip(job.path, job.reason)
                    continue
                while not self.stop.is_set():
                    try:
                        self.work.put(job, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                with self.cond:
                    self.cond.notify()
        except BaseException as ex:
            self._fail(ex)
        finally:
            self.discovery_done.set()
            with self.cond:
                self.cond.notify_all()

    def _next_job(self) -> Job | None:
        """The next job, or None when the run is over (or stopping)."""
        # taking a job and counting it busy happen under one lock, so no slot can see "nothing
        # queued, nobody busy" in between and leave while a retry may still come
        with self.cond:
            while not self.stop.is_set():
                if self.retry:
                    self.busy += 1
                    return self.retry.popleft()
                try:
                    job = self.work.get_nowait()
                except queue.Empty:
                    job = None
                if job is not None:
                    self.busy += 1
                    return job
                if self.discovery_done.is_set() and self.work.empty() and self.busy == 0:
                    self.cond.notify_all()
                    return None
                self.cond.wait(timeout=0.1)
        return None

    def _done_job(self) -> None:
        with self.cond:
            self.busy -= 1
            self.cond.notify_all()

    # -- slots

    def _slot(self, slot: int) -> None:
        try:
            while True:
                job = self._next_job()
                if job is None:
                    return
                try:
                    self._process(slot, job)
                finally:
                    self._done_job()
        except BaseException as ex:
            self._fail(ex)

    def _skip(self, path: str, reason: str) -> None:
        self.store.note_skipped(path, reason)
        self.stats.settle("skipped", reason)

    def _path_failure(self, path: str, code: str, message: str, size: int | None = None) -> None:
        self.store.note_path(path, size, None, None, (code, message))
        self.stats.bump("path_errors", code)
        self.stats.settle("failed", code)

    def _process(self, slot: int, job: Job) -> None:
        store = self.store
        path = job.path
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._path_failure(path, ErrorCode.NOT_FOUND.value, f"{path}: no such file")
            return
        except OSError as ex:
            self._path_failure(path, "UNREADABLE", f"{path}: {ex.strerror or ex}")
            return
        if not _is_regular(st.st_mode):
            self._path_failure(path, ErrorCode.UNSUPPORTED_FORMAT.value, f"{path}: not a regular file")
            return
        size, mtime = st.st_size, st.st_mtime_ns
        sha = job.sha256 if job.retries else None
        if sha is None and not self.opts.rehash:
            sha = store.cached_sha(path, size, mtime)
        if sha is None:
            try:
                sha = hash_file(path, job.sniff)
            except FileNotFoundError:
                self._path_failure(path, ErrorCode.NOT_FOUND.value, f"{path}: no such file")
                return
            except OSError as ex:
                self._path_failure(path, "UNREADABLE", f"{path}: {ex.strerror or ex}")
                return
            if sha is None:
                self._skip(path, "not_video")
                return
            store.note_path(path, size, mtime, sha)
        job.sha256 = sha
        with self.inflight_lock:
            known = store.item(sha, self.fp)
            if known is not None and known[0] != "pending":
                state, _, decision, code = known
                self.stats.bump("already", state)
                self.stats.settle(state, str(decision if state == "done" else code))
                return
            if sha in self.inflight:
                # settled with its twin's outcome when that scan ends
                self.stats.add("duplicates")
                self.twins[sha] += 1
                return
            self.inflight.add(sha)
        retry: Job | None = None
        final: tuple[str, str] | None = None
        try:
            tries = known[1] if known else 0
            if known is None:
                store.note_pending(sha, self.fp, size, path)
            retry, final = self._scan_and_record(slot, job, sha, size, mtime, tries)
        finally:
            with self.inflight_lock:
                self.inflight.discard(sha)
                twins = self.twins.pop(sha, 0) if final is not None else 0
        if final is not None:
            self.stats.settle(*final, n=1 + twins)
        if retry is not None:  # queued only once no longer in flight, or its retry would look like a duplicate
            with self.cond:
                self.retry.append(retry)
                self.cond.notify_all()

    def _scan_and_record(
        self, slot: int, job: Job, sha: str, size: int, mtime: int, tries: int
    ) -> tuple[Job | None, tuple[str, str] | None]:
        """Scan one content and commit its result. Returns the job to retry after a worker
        failure, and the (state, detail) the file ends this run in (None: not settled yet)."""
        store = self.store
        path = job.path
        changed = ("pending", "changed")
        if not self.engine_ready.is_set():
            self.need_engine.set()
            self.engine_ready.wait()
        if self.stop.is_set():
            return None, None
        report = self.engine.scan(slot, path)
        if self.stop.is_set():
            return None, None  # stopping: the engine may have been torn down under this scan; rescan next time
        self.stats.add("scanned")
        out = outcome_of(report)
        if out.error_code in PATH_ERRORS or (out.error_code == ErrorCode.EMPTY.value and size):
            # the file went away (or was emptied) after it was hashed: a path problem, not the content's
            self.stats.add("changed")
            return None, changed
        check_report(report, self.fp)
        try:
            st = os.stat(path)
            unchanged = (st.st_size, st.st_mtime_ns) == (size, mtime)
        except OSError:
            unchanged = False
        if not unchanged:
            log.warning("%s changed while it was scanned: its result is not kept (next run rescans it)", path)
            self.stats.add("changed")
            return None, changed
        if out.error_code in WORKER_FAILURES:
            tries += 1
            if tries >= self.opts.max_tries:
                out.state = "quarantined"
            else:
                out.state = "pending"
        store.record(sha, self.fp, out, size, path, tries)
        self.stats.add("committed")
        if out.state == "pending":
            self.stats.add("retried")
            return Job(path, job.sniff, sha, job.retries + 1), None
        if out.state == "quarantined":
            self.stats.add("quarantined")
        return None, (out.state, str(out.decision if out.state == "done" else out.error_code))

    # -- progress

    def snapshot(self) -> dict[str, Any]:
        s = self.stats
        now = time.monotonic()
        with s.lock:
            scan_elapsed = now - self.t_ready if self.t_ready is not None else 0.0
            rate = s.scanned / scan_elapsed * 60.0 if scan_elapsed > 0 and s.scanned else 0.0
            remaining = max(0, s.found - s.processed)
            eta = remaining / (rate / 60.0) if rate > 0 else None
            return {
                "elapsed_s": round(now - self.t0, 1),
                "found": s.found,
                "discovery_done": self.discovery_done.is_set(),
                "processed": s.processed,
                "scanned": s.scanned,
                "committed": s.committed,
                "in_flight": len(self.inflight),
                "already_in_store": sum(s.already.values()),
                "duplicates": s.duplicates,
                "retried": s.retried,
                "quarantined": s.quarantined,
                "skipped": sum(s.skipped.values()),
                "decisions": dict(s.decisions),
                "errors": dict(s.errors),
                "rate_clips_per_min": round(rate, 2),
                "eta_s": None if eta is None else round(eta, 1),
            }

    # -- main

    def run(self) -> ArchiveSummary:
        o = self.opts
        try:
            self.store = Store(o.db, max_pages=o.max_store_pages)
        except StoreError:
            raise
        store = self.store
        status = "complete"
        try:
            if isinstance(self.engine, RayEngine):
                self.engine.connect()
            source = o.source or f"@{o.list_file}"
            run_id = store.begin_run(self.fp, source, self.engine.name)
            if o.retry_failed:
                n = store.reset(self.fp, ("failed", "quarantined"))
                log.info("%d failed or quarantined items put back to pending", n)
            self.progress.event(
                "start", db=str(store.path), engine=self.engine.name, workers=self.engine.slots, **self.fp.to_dict()
            )
            threads = [threading.Thread(target=self._discover, name="archive-discover", daemon=True)]
            threads += [
                threading.Thread(target=self._slot, args=(i,), name=f"archive-slot-{i}", daemon=True)
                for i in range(self.engine.slots)
            ]
            for t in threads:
                t.start()
            try:
                self._main_loop(threads)
            except KeyboardInterrupt:
                status = "interrupted"
                self.stop.set()
                self.engine_ready.set()
                self.engine.close()
                for t in threads:
                    t.join(timeout=1.0)
                with contextlib.suppress(StoreError):
                    store.flush()
                with contextlib.suppress(StoreError):
                    store.end_run(run_id, status, self.snapshot())
                self.progress.close()
                raise
            if self.fatal is not None:
                status = "store_error" if isinstance(self.fatal, StoreError) else "error"
            summary = self._summary(status)
            if not isinstance(self.fatal, StoreError):
                try:
                    store.flush()
                    store.end_run(run_id, status, summary.to_dict())
                except StoreError as ex:
                    self._fail(ex)
                    summary = self._summary("store_error")
            if self.fatal is not None:
                if isinstance(self.fatal, StoreError):
                    self.fatal.message += (
                        f" This run committed {self.stats.committed} results before it stopped; in-flight items "
                        "were not stored and will be scanned by the next run."
                    )
                summary.message = str(getattr(self.fatal, "message", self.fatal))
                self.progress.event("error", message=summary.message, committed=self.stats.committed)
            self.progress.event("summary", **summary.to_dict())
            if self.fatal is not None:
                raise self.fatal
            return summary
        finally:
            self.progress.close()
            store.close()

    def _main_loop(self, threads: list[threading.Thread]) -> None:
        store = self.store
        closed = False
        try:
            while any(t.is_alive() for t in threads[1:]):
                if self.fatal is not None and not closed:
                    # stop at once: in-flight scans are lost (rescanned next run), nothing committed is
                    self.engine_ready.set()
                    self.engine.close()
                    closed = True
                if self.need_engine.is_set() and not self.engine_ready.is_set() and not self.stop.is_set():
                    try:
                        self.engine.start()
                        if isinstance(self.engine, RayEngine):
                            self.engine.verify(self.fp)
                    except KeyboardInterrupt:
                        raise
                    except BaseException as ex:
                        self._fail(ex)
                    else:
                        self.t_ready = time.monotonic()
                        self.progress.event("ready", engine=self.engine.name, workers=self.engine.slots)
                    finally:
                        self.engine_ready.set()
                self.progress.update(self.snapshot())
                try:
                    store.flush(if_older_than=PATH_FLUSH_SECONDS)
                except StoreError as ex:
                    self._fail(ex)
                time.sleep(0.05)
        except BaseException:
            self.stop.set()  # before the engine goes: scans it cuts short must not count as tries
            raise
        finally:
            self.engine_ready.set()
            self.engine.close()
        for t in threads:
            t.join(timeout=5.0)
        self.progress.update(self.snapshot(), force=True)
        self.progress.close()

    def _summary(self, status: str) -> ArchiveSummary:
        s = self.stats
        now = time.monotonic()
        scan_elapsed = (now - self.t_ready) if self.t_ready is not None else 0.0
        elapsed = now - self.t0
        try:
            totals = self.store.totals(self.fp)
        except sqlite3.Error:
            totals = {}
        with s.lock:
            counts = {
                "files": s.files_dict(),
                "found": s.found,
                "processed": s.processed,
                "scanned": s.scanned,
                "committed": s.committed,
                "already_in_store": dict(s.already),
                "duplicates": s.duplicates,
                "retried": s.retried,
                "quarantined": s.quarantined,
                "changed_during_scan": s.changed,
                "skipped": dict(s.skipped),
                "decisions": dict(s.decisions),
                "errors": dict(s.errors),
                "path_errors": dict(s.path_errors),
                "final_failures": s.final_failures,
            }
        return ArchiveSummary(
            status=status,
            fingerprints=self.fp.to_dict(),
            counts=counts,
            store=totals,
            elapsed_s=round(elapsed, 2),
            scan_elapsed_s=round(scan_elapsed, 2),
            clips_per_min=round(s.scanned / elapsed * 60.0, 2) if elapsed > 0 else 0.0,
        )


def run_archive(opts: ArchiveOptions) -> ArchiveSummary:
    """Run (or resume) an archive scan. Raises ``StoreError`` when the store cannot be written
    (after stopping the workers; every committed result is kept), ``KeyboardInterrupt`` when
    interrupted, other ``FramescanError`` for model/configuration errors."""
    return ArchiveRun(opts).run()


#: How the summary names a file's state and its details.
_STATE_WORDS = {"pending": "left pending"}
_DETAIL_WORDS = {**SKIP_REASONS, "changed": "changed during the scan"}


def render_files(files: dict[str, Any]) -> str:
    """``5 files: done 1 (allow 1), failed 2 (NOT_FOUND 1, UNSUPPORTED_FORMAT 1), skipped 2 (not a
    video 2)``: where every file of a run ended (``counts["files"]`` of a summary)."""
    parts = []
    for state in FILE_STATES:
        details = files.get(state) or {}
        if not details:
            continue
        order = [d for d in DECISIONS if d in details] if state == "done" else sorted(details)
        inner = ", ".join(f"{_DETAIL_WORDS.get(d, d)} {details[d]}" for d in order)
        parts.append(f"{_STATE_WORDS.get(state, state)} {sum(details.values())} ({inner})")
    n = files["total"]
    return f"{n} file{'' if n == 1 else 's'}: " + (", ".join(parts) or "nothing to do")


def render_summary(summary: ArchiveSummary) -> str:
    c = summary.counts
    lines = [
        f"archive {summary.status} in {_fmt_duration(summary.elapsed_s)} ({summary.elapsed_s:.1f} s): "
        + render_files(c["files"]),
        f"  this run: {c['scanned']} scanned, {sum(c['already_in_store'].values())} already in the store, "
        f"{c['duplicates']} duplicate content; {summary.clips_per_min:.1f} clips/min overall"
        + (
            f", {c['scanned'] / summary.scan_elapsed_s * 60:.1f} clips/min once workers were ready"
            if summary.scan_elapsed_s > 0 and c["scanned"]
            else ""
        ),
    ]
    if c["quarantined"] or c["retried"]:
        lines.append(f"  worker crashes/timeouts retried: {c['retried']}, quarantined now: {c['quarantined']}")
    lines.append(f"  models {summary.fingerprints['models_fp']}  config {summary.fingerprints['config_fp']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- export

EXPORT_FORMATS = ("jsonl", "csv", "parquet")
EXPORT_COLUMNS = (
    "path",
    "sha256",
    "size",
    "state",
    "skip_reason",
    "decision",
    "status",
    "max_score",
    "max_category",
    "reasons",
    "known_content",
    "error_code",
    "error_message",
    "tries",
    "segments",
    "evidence",
    "models_fp",
    "config_fp",
    "scanned_at",
)


def _why(report: dict[str, Any] | None) -> tuple[list[str], list[dict[str, Any]]]:
    """The report's ``reasons`` and its ``known_content`` matches, as the report has them."""
    if not report:
        return [], []
    return list(report.get("reasons") or []), list((report.get("known_content") or {}).get("matches") or [])


def _evidence(report: dict[str, Any] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not report:
        return [], []
    segs = [
        {"category": s.get("category"), "start": s.get("start"), "end": s.get("end"), "peak": s.get("peak")}
        for s in report.get("segments") or []
    ]
    ev = sorted(
        (
            {"time": e.get("time"), "category": e.get("category"), "label": e.get("label"), "score": e.get("score")}
            for e in report.get("evidence") or []
        ),
        key=lambda e: (e["time"] is None, e["time"] or 0.0),
    )
    return segs, ev


def iter_export(
    store: Store,
    *,
    flagged: bool = False,
    all_fingerprints: bool = False,
    reports: bool = False,
) -> Iterator[dict[str, Any]]:
    """One row per path: the path's content result under the latest run's fingerprints (or
    all of them), or why it was skipped. ``flagged``: only ``block``/``review``, block first,
    then highest score."""
    fps = store.latest_fingerprints()
    if fps is None and not all_fingerprints:
        return
    where = ["1=1"]
    params: list[Any] = []
    join_fp = ""
    if not all_fingerprints and fps is not None:
        join_fp = " AND r.models_fp = ? AND r.config_fp = ?"
        params += list(fps)
    if flagged:
        where.append("r.state = 'done' AND r.decision IN ('block', 'review')")
        order = "CASE r.decision WHEN 'block' THEN 0 ELSE 1 END, r.max_score DESC, p.path"
    else:
        order = "p.path, r.models_fp, r.config_fp"
    sql = (
        "SELECT p.path, p.sha256, coalesce(r.size, p.size), r.state, r.decision, r.status, r.max_score, "
        "r.max_category, coalesce(r.error_code, p.error_code), coalesce(r.error_message, p.error_message), "
        "r.tries, r.report, r.models_fp, r.config_fp, coalesce(r.updated, p.updated), p.skipped "
        f"FROM paths p LEFT JOIN results r ON r.sha256 = p.sha256{join_fp} "
        f"WHERE {' AND '.join(where)} ORDER BY {order}"
    )
    for row_values in store.cursor(sql, params):
        path, sha, size, state, decision, status, score, cat, code, msg, tries, blob, mfp, cfp, ts, skipped = row_values
        if skipped:
            state = "skipped"
        elif state is None:
            state = "failed" if code else "pending"
        report = unpack_report(blob)
        segs, ev = _evidence(report if state == "done" else None)
        reasons, known = _why(report if state == "done" else None)
        row: dict[str, Any] = {
            "path": path,
            "sha256": sha,
            "size": size,
            "state": state,
            "skip_reason": skipped,
            "decision": decision,
            "status": status,
            "max_score": score,
            "max_category": cat,
            "reasons": reasons,
            "known_content": known,
            "error_code": code,
            "error_message": msg,
            "tries": tries or None,  # worker crashes/timeouts on the item; none: null
            "segments": segs,
            "evidence": ev,
            "models_fp": mfp,
            "config_fp": cfp,
            "scanned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else None,
        }
        if reports:
            row["report"] = report
        yield row


def write_export(rows: Iterable[dict[str, Any]], fmt: str, out: str | None) -> int:
    """Write rows as ``jsonl``, ``csv`` (nested fields as JSON text) or ``parquet`` (needs
    pyarrow); ``out`` None or ``-`` is stdout (not for parquet). Returns the row count."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "parquet":
        return _write_parquet(rows, out)
    n = 0
    f: TextIO = sys.stdout if out in (None, "-") else open(out, "w", newline="", encoding="utf-8")  # noqa: SIM115
    try:
        if fmt == "jsonl":
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        else:
            writer: csv.DictWriter | None = None
            for row in rows:
                flat = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()}
                if writer is None:
                    writer = csv.DictWriter(f, fieldnames=list(flat))
                    writer.writeheader()
                writer.writerow(flat)
                n += 1
            if writer is None:
                csv.writer(f).writerow(EXPORT_COLUMNS)
    finally:
        if f is not sys.stdout:
            f.close()
        else:
            f.flush()
    return n


def _require_pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as ex:
        raise ConfigError(
            "parquet export needs pyarrow, which is not installed: pip install pyarrow "
            "(or pip install 'framescan[parquet]'); jsonl and csv need nothing extra"
        ) from ex
    return pyarrow


def _write_parquet(rows: Iterable[dict[str, Any]], out: str | None) -> int:
    pa = _require_pyarrow()
    import pyarrow.parquet as pq

    if out in (None, "-"):
        raise ConfigError("parquet export needs an output file: -o OUT.parquet")
    seg = pa.struct([("category", pa.string()), ("start", pa.float64()), ("end", pa.float64()), ("peak", pa.float64())])
    evs = pa.struct(
        [("time", pa.float64()), ("category", pa.string()), ("label", pa.string()), ("score", pa.float64())]
    )
    match_frame = pa.struct([("query_time", pa.float64()), ("item_time", pa.float64()), ("distance", pa.int64())])
    match = pa.struct(
        [
            ("bank", pa.string()),
            ("category", pa.string()),
            ("action", pa.string()),
            ("item", pa.string()),
            ("kind", pa.string()),
            ("video_match", pa.bool_()),
            ("query_match_percent", pa.float64()),
            ("item_match_percent", pa.float64()),
            ("min_distance", pa.int64()),
            ("frames", pa.list_(match_frame)),
        ]
    )
    schema = pa.schema(
        [
            ("path", pa.string()),
            ("sha256", pa.string()),
            ("size", pa.int64()),
            ("state", pa.string()),
            ("skip_reason", pa.string()),
            ("decision", pa.string()),
            ("status", pa.string()),
            ("max_score", pa.float64()),
            ("max_category", pa.string()),
            ("reasons", pa.list_(pa.string())),
            ("known_content", pa.list_(match)),
            ("error_code", pa.string()),
            ("error_message", pa.string()),
            ("tries", pa.int64()),
            ("segments", pa.list_(seg)),
            ("evidence", pa.list_(evs)),
            ("models_fp", pa.string()),
            ("config_fp", pa.string()),
            ("scanned_at", pa.string()),
        ]
    )
    n = 0
    batch: list[dict[str, Any]] = []
    with pq.ParquetWriter(str(out), schema) as writer:
        for row in rows:
            row = {k: row.get(k) for k in EXPORT_COLUMNS}
            batch.append(row)
            if len(batch) >= 10_000:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                n += len(batch)
                batch = []
        if batch or not n:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            n += len(batch)
    return n


def export(
    db: str,
    fmt: str = "jsonl",
    out: str | None = None,
    *,
    flagged: bool = False,
    all_fingerprints: bool = False,
    reports: bool = False,
) -> int:
    """Export the store at ``db`` (see ``iter_export`` and ``write_export``); returns the row count."""
    if fmt == "parquet":
        _require_pyarrow()
    with Store(db, create=False) as store:
        return write_export(
            iter_export(store, flagged=flagged, all_fingerprints=all_fingerprints, reports=reports), fmt, out
        )
