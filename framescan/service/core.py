"""The service's core, without HTTP: worker pools per scan profile, admission, jobs and their
scans in threads (``ScanService``), and the values passed around (``Job``, ``Upload``, ``Rejected``)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ScanConfig
from ..errors import ConfigError, FramescanError
from ..isolate import WorkerConfig, WorkerPool, split_threads
from ..limits import Limits
from ..report import Report
from ..sample import DEFAULT_FPS
from .config import POLICY_NAME, ServiceConfig, load_policies
from .metrics import Metrics

log = logging.getLogger(__name__)

_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Evidence frames the service keeps for its jobs' report.html, in bytes (the oldest go first).
EVIDENCE_MAX_BYTES = 256 << 20


@dataclass(frozen=True)
class Profile:
    """Scanner settings that need their own workers: a named policy and a sampling rate."""

    policy: str | None = None
    fps: float | None = None

    def label(self) -> str:
        return f"policy={self.policy or 'default'},fps={self.fps if self.fps is not None else 'default'}"


DEFAULT_PROFILE = Profile()


@dataclass
class Job:
    id: str
    tenant: str
    name: str
    profile: Profile
    created: float = field(default_factory=time.monotonic)
    status: str = "queued"  # queued | running | done | failed
    report: dict[str, Any] | None = None
    #: set instead of a report when the service, not the clip, failed: (HTTP status, message)
    failure: tuple[int, str] | None = None
    finished: float | None = None
    idempotency_key: str | None = None
    future: Future | None = None
    #: the evidence frames of a review or block (frame index -> JPEG; ``GET /v1/jobs/{id}/report.html``)
    images: dict[int, bytes] = field(default_factory=dict, repr=False)

    def summary(self) -> dict[str, Any]:
        return {"job_id": self.id, "status": self.status, "location": f"/v1/jobs/{self.id}"}


class ServiceUnavailable(Exception):
    """The service is shutting down: a job cannot run."""


class _PoolEntry:
    def __init__(self, profile: Profile, size: int) -> None:
        self.profile = profile
        self.size = size
        self.pool: WorkerPool | None = None
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(size)
        self.inflight = 0
        self.last_used = time.monotonic()


class Rejected(Exception):
    """A request refused before scanning: ``status`` with a JSON body (an error report for
    refusals of the clip itself: too large, not a container, empty)."""

    def __init__(self, status: int, reason: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.body = body
        self.headers = headers or {}


def detail(message: str) -> dict[str, Any]:
    return {"detail": message}


_UPLOAD_DIR_PREFIX = "framescan-uploads-"
_OWNER_FILE = ".owner-pid"


def _sweep_stale_upload_dirs(root: Path) -> None:
    """Remove upload directories left by a server that died without cleaning up (their owner
    process is gone), so uploaded clips do not outlive a crash by more than a restart."""
    for d in root.glob(_UPLOAD_DIR_PREFIX + "*"):
        try:
            if d.stat().st_uid != os.getuid():
                continue
            pid = int((d / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if pid != os.getpid() and not ScanService._pid_alive(pid):
            log.info("removing %s, left by process %d", d, pid)
            shutil.rmtree(d, ignore_errors=True)


class ScanService:
    """The service's state, independent of HTTP: tokens, policies, worker pools, admission,
    jobs and metrics. Thread-safe; the app calls it from the event loop, scans run in threads."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self._tokens = {hashlib.sha256(t.encode()).digest(): tenant for t, tenant in config.tokens.items()}
        self.policies = load_policies(config.policy_dir)
        self.metrics = Metrics()
        self._lock = threading.Lock()
        self._admitted = 0  # holding a slot: receiving, queued or running
        self._receiving = 0
        self._running = 0
        self._run_slots = threading.BoundedSemaphore(config.workers)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._evidence_bytes = 0  # evidence frames kept by the jobs
        self._keys: dict[tuple[str, str], str] = {}
        self._pools: dict[Profile, _PoolEntry] = {}
        self._pools_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=config.capacity, thread_name_prefix="framescan-scan")
        # Workers die with the *thread* that started them (PR_SET_PDEATHSIG is per thread on
        # Linux), so pools are started by this thread, which lives as long as the service. A
        # replacement worker is started by the scan thread that saw the crash: those live
        # until close() too.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="framescan-spawn")
        self._scan_ewma: float | None = None
        self.models: list[dict[str, Any]] = []
        self.state = "starting"  # starting | ready | failed | closed
        self.startup_error: str | None = None
        self._started = threading.Event()
        root = Path(config.tmp_root or tempfile.gettempdir())
        _sweep_stale_upload_dirs(root)
        self.upload_dir = Path(tempfile.mkdtemp(prefix=_UPLOAD_DIR_PREFIX, dir=root))
        os.chmod(self.upload_dir, 0o700)
        (self.upload_dir / _OWNER_FILE).write_text(str(os.getpid()))

    # ---- lifecycle

    def start(self, background: bool = True) -> None:
        """Verify the models and start the default worker pool (in a thread unless asked not to)."""
        future = self._spawner.submit(self._start)
        if not background:
            future.result()
            if self.state != "ready":
                raise FramescanError(self.startup_error or "the service did not start")

    def _start(self) -> None:
        try:
            self.models = self._verify_models()
            entry = _PoolEntry(DEFAULT_PROFILE, self.config.workers)
            entry.pool = self._new_pool(DEFAULT_PROFILE, self.config.workers)
            with self._pools_lock:
                if self.state == "closed":
                    entry.pool.close()
                    return
                self._pools[DEFAULT_PROFILE] = entry
                self.state = "ready"
            log.info("framescan service ready: %d worker(s), queue %d", self.config.workers, self.config.queue)
        except Exception as ex:
            self.startup_error = f"{type(ex).__name__}: {ex}"
            self.state = "failed"
            log.error("framescan service failed to start: %s", self.startup_error)
        finally:
            self._started.set()

    def wait_started(self, timeout: float) -> bool:
        return self._started.wait(timeout)

    def _verify_models(self) -> list[dict[str, Any]]:
        from ..models import DEFAULT_MODEL, load_manifest

        out = []
        for name in self.config.models or [DEFAULT_MODEL]:
            m = load_manifest(name)
            m.verified_file()  # ModelError on a missing file or a wrong sha256
            out.append({"name": m.name, "sha256": m.sha256, "verified": True})
        return out

    def _scan_config(self, profile: Profile) -> ScanConfig:
        cfg = self.config
        policy = self.policies[profile.policy] if profile.policy else cfg.default_policy
        return ScanConfig(
            **split_threads(cfg.workers),
            policy=str(policy) if policy else None,
            fps=profile.fps if profile.fps is not None else cfg.fps,
            models=cfg.models,
            banks=cfg.banks,
            ocr=cfg.ocr,
            lexicons=cfg.lexicons,
            speech=cfg.speech,
            speech_model=cfg.speech_model,
            speech_languages=cfg.speech_languages,
            transcript=cfg.transcript,
            limits=cfg.limits,
            evidence=True,  # for the job's report.html (kept for reviews and blocks only)
        )

    def _new_pool(self, profile: Profile, size: int) -> WorkerPool:
        config = WorkerConfig(scan=self._scan_config(profile), memory_bytes=self.config.memory_bytes)
        log.info("starting %d worker(s) for %s", size, profile.label())
        if threading.current_thread().name.startswith("framescan-spawn"):
            return WorkerPool(size, config)
        return self._spawner.submit(WorkerPool, size, config).result()

    def close(self) -> None:
        with self._pools_lock:
            self.state = "closed"
            entries = list(self._pools.values())
            self._pools.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._spawner.shutdown(wait=False, cancel_futures=True)
        for e in entries:
            if e.pool is not None:
                e.pool.close()
        shutil.rmtree(self.upload_dir, ignore_errors=True)

    # ---- readiness

    @staticmethod
    def _pid_alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (OSError, IndexError):
            try:
                os.kill(pid, 0)
                return True
            except OSError:
                return False

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        with self._pools_lock:
            entry = self._pools.get(DEFAULT_PROFILE)
        pids = entry.pool.pids if entry is not None and entry.pool is not None else []
        alive = sum(1 for p in pids if self._pid_alive(p))
        ready = self.state == "ready" and alive == self.config.workers
        info: dict[str, Any] = {
            "ready": ready,
            "state": self.state,
            "models": self.models,
            "workers": {"configured": self.config.workers, "alive": alive},
            "queue": {"capacity": self.config.capacity, "admitted": self._admitted},
        }
        if self.startup_error:
            info["error"] = self.startup_error
        return ready, info

    @property
    def ready(self) -> bool:
        return self.readiness()[0]

    # ---- auth

    def tenant_for(self, authorization: str | None) -> str:
        """The tenant of a ``Bearer`` token; ``Rejected(401)`` when missing or unknown."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Rejected(
                401,
                "unauthorized",
                detail("missing bearer token (Authorization: Bearer TOKEN)"),
                {"WWW-Authenticate": 'Bearer realm="framescan"'},
            )
        tenant = self._tokens.get(hashlib.sha256(token.encode()).digest())
        if tenant is None:
            raise Rejected(
                401,
                "unauthorized",
                detail("invalid token"),
                {"WWW-Authenticate": 'Bearer realm="framescan", error="invalid_token"'},
            )
        return tenant

    # ---- request parameters

    def profile_for(self, policy: str | None, fps: float | None) -> Profile:
        if policy is not None and (not POLICY_NAME.match(policy) or policy not in self.policies):
            known = ", ".join(sorted(self.policies)) or "none configured"
            raise Rejected(400, "bad_request", detail(f"unknown policy {policy[:64]!r} (known: {known})"))
        if fps is not None and not 0 < fps <= self.config.max_fps:
            raise Rejected(400, "bad_request", detail(f"fps must be in (0, {self.config.max_fps:g}]"))
        if fps is not None and fps == (self.config.fps or DEFAULT_FPS):
            fps = None
        return Profile(policy, fps)

    def limits_for(self, overrides: dict[str, float | None]) -> Limits:
        base = self.config.limits
        changes: dict[str, Any] = {}
        for k, v in overrides.items():
            if v is None:
                continue
            current = getattr(base, k)
            if v > current:
                raise Rejected(
                    400, "bad_request", detail(f"{k}={v:g} is above the server's limit ({current:g}): tighten only")
                )
            changes[k] = type(current)(v)
        try:
            return base.updated(**changes) if changes else base
        except ConfigError as ex:
            raise Rejected(400, "bad_request", detail(ex.message)) from ex

    def deadline_for(self, deadline: float | None) -> float:
        if deadline is None:
            return self.config.default_deadline
        return max(0.0, min(float(deadline), self.config.max_deadline))

    # ---- admission

    def retry_after(self) -> int:
        """Seconds a refused client should wait: the queue ahead over the workers, at the
        recent average scan time (1 s when nothing is known)."""
        per = self._scan_ewma or 1.0
        return int(min(60, max(1, math.ceil(per * max(1, self._admitted) / self.config.workers))))

    def try_admit(self) -> bool:
        with self._lock:
            if self._admitted >= self.config.capacity:
                return False
            self._admitted += 1
            self._receiving += 1
            return True

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1

    def abandon_upload(self) -> None:
        """An admitted request ends without a job (refused upload, replayed key)."""
        with self._lock:
            self._receiving -= 1
            self._admitted -= 1

    # ---- jobs

    def job(self, job_id: str, tenant: str) -> Job | None:
        if not _JOB_ID.match(job_id):
            return None
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.tenant == tenant else None

    def job_for_key(self, tenant: str, key: str) -> Job | None:
        with self._lock:
            job_id = self._keys.get((tenant, key))
            return self._jobs.get(job_id) if job_id else None

    def _expire(self, now: float) -> None:
        """Drop finished jobs past their TTL, then the oldest finished ones while there are more
        than ``max_jobs`` (caller holds ``_lock``)."""
        cfg = self.config
        expired = [j for j in self._jobs.values() if j.finished is not None and now - j.finished > cfg.job_ttl]
        excess = len(self._jobs) - len(expired) - cfg.max_jobs
        if excess >= 0:
            gone = {j.id for j in expired}
            expired += [j for j in self._jobs.values() if j.finished is not None and j.id not in gone][: excess + 1]
        for j in expired:
            self._jobs.pop(j.id, None)
            self._evidence_bytes -= sum(map(len, j.images.values()))
            if j.idempotency_key is not None:
                self._keys.pop((j.tenant, j.idempotency_key), None)

    def submit(
        self, tenant: str, key: str | None, upload: Upload, profile: Profile, limits: Limits
    ) -> tuple[Job, bool]:
        """Create the job for a received upload and start its scan. Returns ``(job, created)``;
        ``created`` is False when a job with the same idempotency key already exists (the
        upload is then dropped and its slot freed)."""
        job = Job(secrets.token_urlsafe(12), tenant, upload.name, profile, idempotency_key=key)
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            if key is not None:
                existing_id = self._keys.get((tenant, key))
                if existing_id is not None and existing_id in self._jobs:
                    existing = self._jobs[existing_id]
                    self._receiving -= 1
                    self._admitted -= 1
                    upload.discard()
                    return existing, False
                self._keys[(tenant, key)] = job.id
            self._jobs[job.id] = job
            self._receiving -= 1
        try:
            job.future = self._executor.submit(self._run, job, upload, limits)
        except RuntimeError as ex:  # the executor is shut down: the server is stopping
            upload.discard()
            self._release()
            job.failure = (503, "the service is shutting down")
            job.finished = time.monotonic()
            job.status = "failed"
            log.info("job %s not started: %s", job.id, ex)
        return job, True

    def _pool_entry(self, profile: Profile) -> _PoolEntry:
        with self._pools_lock:
            if self.state == "closed":
                raise ServiceUnavailable("the service is shutting down")
            entry = self._pools.get(profile)
            if entry is None:
                entry = self._pools[profile] = _PoolEntry(profile, self.config.profile_workers)
            entry.inflight += 1
            entry.last_used = time.monotonic()
        try:
            with entry.lock:
                if entry.pool is None:
                    entry.pool = self._new_pool(profile, entry.size)
        except BaseException:
            with self._pools_lock:
                entry.inflight -= 1
                if entry.pool is None and self._pools.get(profile) is entry:
                    del self._pools[profile]
            raise
        return entry

    def _done_with(self, entry: _PoolEntry) -> None:
        """Release a pool; evict idle non-default pools beyond ``max_profiles``."""
        victims: list[_PoolEntry] = []
        with self._pools_lock:
            entry.inflight -= 1
            entry.last_used = time.monotonic()
            extra = len(self._pools) - 1 - self.config.max_profiles
            idle = sorted(
                (e for p, e in self._pools.items() if p != DEFAULT_PROFILE and e.inflight == 0 and e.pool is not None),
                key=lambda e: e.last_used,
            )
            for e in idle[: max(0, extra)]:
                del self._pools[e.profile]
                victims.append(e)
        for e in victims:
            log.info("closing the idle worker pool for %s", e.profile.label())
            if e.pool is not None:
                e.pool.close()

    def _run(self, job: Job, upload: Upload, limits: Limits) -> None:
        t_admit = time.monotonic()
        report: dict[str, Any] | None = None
        try:
            entry = self._pool_entry(job.profile)
            try:
                with entry.slots, self._run_slots:
                    with self._lock:
                        self._running += 1
                    job.status = "running"
                    t0 = time.monotonic()
                    self.metrics.observe("framescan_queue_wait_seconds", t0 - t_admit)
                    try:
                        assert entry.pool is not None
                        scanned = entry.pool.scan(
                            str(upload.path), name=job.name, limits=limits, timeout=limits.max_seconds_per_clip
                        )
                        report = scanned.to_dict()
                        if report.get("decision") in ("review", "block"):
                            self._keep_evidence(job, scanned.images)
                    finally:
                        took = time.monotonic() - t0
                        with self._lock:
                            self._running -= 1
                            self._scan_ewma = took if self._scan_ewma is None else 0.8 * self._scan_ewma + 0.2 * took
                        self.metrics.observe("framescan_scan_duration_seconds", took)
            finally:
                self._done_with(entry)
        except FramescanError as ex:  # the pool could not scan it (a worker that will not restart, ...)
            report = Report.from_error(job.name, ex).to_dict()
        except ServiceUnavailable as ex:
            job.failure = (503, str(ex))
        except Exception as ex:  # a bug, not a verdict on the clip: no report, a 500
            log.exception("scan of job %s failed", job.id)
            job.failure = (500, f"internal error: {type(ex).__name__}")
        finally:
            upload.discard()
            self._release()
        if report is not None:
            self.count_report(report)
            job.report = report
        job.finished = time.monotonic()
        job.status = "done" if report is not None else "failed"

    def _keep_evidence(self, job: Job, images: dict[int, bytes]) -> None:
        """Keep a job's evidence frames, dropping the oldest jobs' beyond ``EVIDENCE_MAX_BYTES``."""
        with self._lock:
            job.images = dict(images)
            self._evidence_bytes += sum(map(len, images.values()))
            for j in list(self._jobs.values()):
                if self._evidence_bytes <= EVIDENCE_MAX_BYTES:
                    break
                if j is not job and j.images:
                    self._evidence_bytes -= sum(map(len, j.images.values()))
                    j.images = {}

    def count_report(self, report: dict[str, Any]) -> None:
        if report.get("status") == "error":
            self.metrics.inc("framescan_decisions_total", decision="error")
            code = (report.get("error") or {}).get("code", "UNKNOWN")
            self.metrics.inc("framescan_scan_errors_total", code=str(code))
        else:
            self.metrics.inc("framescan_decisions_total", decision=str(report.get("decision")))

    # ---- metrics

    def gauges(self) -> list[tuple[str, str, dict[str, str], float]]:
        with self._lock:
            admitted, receiving, running, jobs = self._admitted, self._receiving, self._running, len(self._jobs)
        with self._pools_lock:
            entries = list(self._pools.values())
        out: list[tuple[str, str, dict[str, str], float]] = [
            ("framescan_ready", "1 when the default workers are up.", {}, 1.0 if self.ready else 0.0),
            ("framescan_capacity", "Scans admitted at once (workers + queue).", {}, self.config.capacity),
            ("framescan_inflight", "Admitted requests: receiving, queued or scanning.", {}, admitted),
            ("framescan_uploads_receiving", "Admitted requests still receiving their body.", {}, receiving),
            (
                "framescan_queue_depth",
                "Admitted clips not scanning yet (receiving or waiting).",
                {},
                admitted - running,
            ),
            ("framescan_scans_running", "Clips being scanned.", {}, running),
            ("framescan_jobs", "Jobs kept for polling.", {}, jobs),
        ]
        for e in entries:
            if e.pool is None:
                continue
            lab = {"profile": e.profile.label()}
            alive = sum(1 for p in e.pool.pids if self._pid_alive(p))
            out.append(("framescan_workers", "Worker processes alive, per scan profile.", lab, alive))
            out.append(
                ("framescan_worker_restarts_total", "Workers replaced after a crash or timeout.", lab, e.pool.restarts)
            )
        return out


@dataclass
class Upload:
    """A received clip in its private temporary file, until its scan ends."""

    path: Path
    size: int
    kind: str
    name: str

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
