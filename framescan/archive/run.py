"""One archive run: discovery thread -> slot threads (one per worker) -> store; its options,
its counts (``_Stats``) and the summary it prints."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..config import ScanConfig
from ..errors import ConfigError, ErrorCode
from ..progress import Progress, fmt_duration
from ..report import IMAGES_KEY
from .discover import DEFAULT_EXTENSIONS, SKIP_REASONS, Job, Skipped, is_regular, read_list, walk_folder
from .engines import Engine, LocalEngine, RayEngine
from .fingerprint import check_report, hash_file
from .store import DECISIONS, Store, StoreError, outcome_of

log = logging.getLogger(__name__)

DEFAULT_MAX_TRIES = 3
#: Error codes that mean the worker crashed or was killed on the item: each is one try.
WORKER_FAILURES = frozenset(
    {ErrorCode.TIMEOUT.value, ErrorCode.DECODER_CRASHED.value, ErrorCode.RESOURCE_EXHAUSTED.value}
)
#: Error codes that belong to a path, not to a content (the file vanished or cannot be read).
PATH_ERRORS = frozenset({ErrorCode.NOT_FOUND.value, "UNREADABLE"})
PATH_FLUSH_SECONDS = 1.0
DEFAULT_PROGRESS_INTERVAL = 5.0


@dataclass
class ArchiveOptions:
    """Everything an archive run needs (the CLI builds it from its arguments)."""

    db: str
    source: str | None = None  # a folder, or "@LIST"
    list_file: str | None = None
    workers: int | None = None
    extensions: frozenset[str] | None = frozenset(DEFAULT_EXTENSIONS)
    scan: ScanConfig = field(default_factory=ScanConfig)
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
        self.fp = opts.scan.fingerprint()
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
        # the store keeps every report's timeline: policies and fusion rules can be evaluated
        # again from it without decoding (framescan eval --rescore); and its evidence frames,
        # for the review queue (framescan export --format html)
        scan = dataclasses.replace(o.scan, timeline=True, evidence=True)
        if o.ray:
            return RayEngine(o.ray_address, o.workers, scan, o.ray_ship_bytes)
        from ..isolate import default_workers

        workers = int(o.workers or default_workers())
        if workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        return LocalEngine(workers, scan)

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

    def _unreadable(self, path: str, ex: OSError) -> None:
        """The file vanished (``NOT_FOUND``) or cannot be read (``UNREADABLE``)."""
        if isinstance(ex, FileNotFoundError):
            self._path_failure(path, ErrorCode.NOT_FOUND.value, f"{path}: no such file")
        else:
            self._path_failure(path, "UNREADABLE", f"{path}: {ex.strerror or ex}")

    def _process(self, slot: int, job: Job) -> None:
        store = self.store
        path = job.path
        try:
            st = os.stat(path)
        except OSError as ex:
            self._unreadable(path, ex)
            return
        if not is_regular(st.st_mode):
            self._path_failure(path, ErrorCode.UNSUPPORTED_FORMAT.value, f"{path}: not a regular file")
            return
        size, mtime = st.st_size, st.st_mtime_ns
        sha = job.sha256 if job.retries else None
        if sha is None and not self.opts.rehash:
            sha = store.cached_sha(path, size, mtime)
        if sha is None:
            try:
                sha = hash_file(path, job.sniff)
            except OSError as ex:
                self._unreadable(path, ex)
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
        images = report.pop(IMAGES_KEY, None)  # the evidence frames, kept in the store beside the report
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
        store.record(sha, self.fp, out, size, path, tries, images if out.state == "done" else None)
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
        self.store = Store(o.db, max_pages=o.max_store_pages)
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
        f"archive {summary.status} in {fmt_duration(summary.elapsed_s)} ({summary.elapsed_s:.1f} s): "
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
