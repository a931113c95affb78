"""The upload-pipeline service: a bounded, authenticated HTTP scanner (FastAPI + uvicorn).

``POST /v1/scan`` takes a clip as the raw request body (any Content-Type but multipart) or as
the ``file`` field of a ``multipart/form-data`` body, and answers ``200`` with the clip report
(``Report.to_dict()``, the CLI's JSON schema) when the scan ends within the request's
``deadline``, else ``202`` with a job id to poll at ``GET /v1/jobs/{id}``. See docs/service.md.

Everything untrusted is bounded before it costs anything:

- the bearer token is checked before the body is read (no token or a wrong one: ``401``);
- a slot (a worker or a queue place) is reserved before the body is read: none free is an
  immediate ``429`` with ``Retry-After``;
- the body is counted as it streams in: ``413`` as soon as it passes the size limit (or at
  once from ``Content-Length``), ``408`` when it arrives slower than the minimum rate or not
  within the receive deadline; the first bytes of the clip must look like a container framescan
  reads (``415`` otherwise; the file name and Content-Type are ignored);
- the clip goes to a private temporary file (``0600`` in a ``0700`` directory), is scanned by
  a warm isolated worker (``framescan.isolate.WorkerPool``) in a thread, and is deleted after.

``create_app(ServiceConfig(...))`` builds the ASGI app; ``framescan serve`` runs it with uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, MutableMapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from .._version import __version__
from ..errors import ConfigError, EmptyInput, FramescanError, LimitExceeded, UnsupportedFormat
from ..isolate import WorkerConfig, WorkerPool, split_threads
from ..limits import DEFAULT_LIMITS, GIB, Limits
from ..report import Report
from ..sample import DEFAULT_FPS

log = logging.getLogger(__name__)

MIB = 1 << 20
#: Bytes of the clip looked at to recognise its container (MPEG-TS needs three 188-byte packets).
SNIFF_BYTES = 512
#: Received bytes are written to the temporary file in batches of this size (in a thread).
WRITE_BATCH = 1 * MIB
#: Multipart framing (boundaries, part headers, small extra fields) allowed on top of the clip.
MULTIPART_SLACK = 64 * 1024
MULTIPART_MAX_PARTS = 8
DEFAULT_MAX_UPLOAD = 512 * MIB
_TOKEN_ENV = "FRAMESCAN_TOKENS"
_POLICY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_SEVERITY_ORDER = ("allow", "review", "block")
#: Limits a request may tighten with query parameters of the same name.
REQUEST_LIMITS = tuple(f.name for f in fields(Limits))


# --------------------------------------------------------------------------------------------
# configuration


@dataclass
class ServiceConfig:
    """Everything the service needs; ``framescan serve`` fills it from its options.

    Sizes are bytes and times seconds. ``limits.max_file_bytes`` is the upload size limit and
    ``limits.max_seconds_per_clip`` the scan's wall-clock limit (the worker is killed then).
    """

    tokens: dict[str, str]  # token -> tenant
    workers: int = 2
    queue: int = 8
    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS.updated(max_file_bytes=DEFAULT_MAX_UPLOAD))
    #: the whole body must have arrived this many seconds after the request started
    receive_timeout: float = 300.0
    #: minimum average upload rate (bytes/s), enforced after ``rate_grace`` seconds; 0: none
    min_upload_rate: float = 32 * 1024
    rate_grace: float = 10.0
    #: how long ``POST /v1/scan`` waits for the report before answering 202 (``deadline`` param)
    default_deadline: float = 30.0
    max_deadline: float = 300.0
    #: ``?wait=`` long-poll of ``GET /v1/jobs/{id}`` is capped at this
    max_poll_wait: float = 30.0
    #: directory of policy files (``NAME.json``) that ``?policy=NAME`` picks from
    policy_dir: Path | None = None
    #: policy file used when a request names none (None: the built-in default policy)
    default_policy: Path | None = None
    fps: float | None = None  # default sampling (None: the scanner's default, 2 fps)
    max_fps: float = 30.0
    models: list[str] | None = None
    banks: str | bool | None = None  # as ``Scanner(banks=...)``
    ocr: bool = False  # read on-screen text (``Scanner(ocr=...)``; the ``ocr`` extra)
    lexicons: list[str] | None = None  # extra lexicon files/directories for ``ocr``
    memory_bytes: int | None = 3 * GIB  # per worker, as ``WorkerConfig.memory_bytes``
    #: worker pools kept for non-default (policy, fps) profiles, and workers in each
    max_profiles: int = 4
    profile_workers: int = 1
    job_ttl: float = 3600.0
    max_jobs: int = 10_000
    #: where the private upload directory is created (default: the system temp dir)
    tmp_root: Path | None = None

    def __post_init__(self) -> None:
        if not self.tokens:
            raise ConfigError(f"no API tokens configured: use --tokens FILE or ${_TOKEN_ENV}")
        if self.workers < 1 or self.queue < 0:
            raise ConfigError(f"workers must be >= 1 and queue >= 0 (got {self.workers}, {self.queue})")
        for name in ("default_deadline", "max_deadline", "job_ttl", "rate_grace"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        if not self.receive_timeout > 0:
            raise ConfigError("receive_timeout must be > 0")
        if self.profile_workers < 1 or self.max_profiles < 0 or self.max_jobs < 1:
            raise ConfigError("profile_workers and max_jobs must be >= 1, max_profiles >= 0")
        if self.min_upload_rate < 0:
            raise ConfigError("min_upload_rate must be >= 0")
        if self.fps is not None and not 0 < self.fps <= self.max_fps:
            raise ConfigError(f"fps must be in (0, {self.max_fps}]")

    @property
    def capacity(self) -> int:
        """Scans admitted at once: one per worker plus the queue."""
        return self.workers + self.queue


def parse_tokens(text: str) -> dict[str, str]:
    """``"tok1:tenantA,tok2:tenantB"`` -> ``{"tok1": "tenantA", ...}`` (a token may contain ':')."""
    out: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        token, sep, tenant = item.rpartition(":")
        if not sep or not token or not tenant.strip():
            raise ConfigError(f"${_TOKEN_ENV}: expected TOKEN:TENANT items separated by commas, got {item[:4]}...")
        out[token] = tenant.strip()
    return out


def load_tokens(path: str | os.PathLike | None = None, env: str | None = None) -> dict[str, str]:
    """Tokens from a JSON file ``{token: tenant}`` and/or ``$FRAMESCAN_TOKENS``."""
    tokens: dict[str, str] = {}
    if path is not None:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as ex:
            raise ConfigError(f"token file {path}: cannot be read as JSON: {ex}") from ex
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ConfigError(f"token file {path}: expected a JSON object {{token: tenant}} of strings")
        tokens.update({k: v for k, v in data.items() if k and v})
    text = os.environ.get(_TOKEN_ENV, "") if env is None else env
    if text:
        tokens.update(parse_tokens(text))
    short = sum(1 for t in tokens if len(t) < 16)
    if short:
        log.warning("%d API token(s) are shorter than 16 characters: use long random tokens", short)
    return tokens


def load_policies(policy_dir: Path | None) -> dict[str, Path]:
    """``NAME -> path`` for every ``NAME.json`` in the directory, each validated now."""
    from ..policy import load_policy

    if policy_dir is None:
        return {}
    d = Path(policy_dir)
    if not d.is_dir():
        raise ConfigError(f"policy directory {d} does not exist")
    out: dict[str, Path] = {}
    for p in sorted(d.glob("*.json")):
        if not _POLICY_NAME.match(p.stem):
            log.warning("policy file %s ignored: its name is not [A-Za-z0-9_.-]", p)
            continue
        load_policy(p)  # ConfigError for a broken file: refuse to start rather than fail per request
        out[p.stem] = p.resolve()
    return out


# --------------------------------------------------------------------------------------------
# content sniffing

_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
#: Suffix of the temporary file per kind, where the kind names one FFmpeg demuxer (the same
#: hint a file name gives the CLI); ambiguous kinds get none and FFmpeg probes the content.
_SUFFIX = {
    "iso-bmff": ".mp4",
    "matroska": ".mkv",
    "avi": ".avi",
    "wav": ".wav",
    "gif": ".gif",
    "mpegts": ".ts",
    "m2ts": ".ts",
    "y4m": ".y4m",
    "flv": ".flv",
    "ivf": ".ivf",
    "ogg": ".ogg",
    "nut": ".nut",
    "id3": ".mp3",
    "flac": ".flac",
}


def sniff(head: bytes) -> str | None:
    """The kind of container the first bytes of a file look like, or None.

    Covers the demuxers framescan allows (``framescan.probe.ALLOWED_DEMUXERS``): ISO BMFF /
    QuickTime, EBML (Matroska/WebM), RIFF AVI/WAVE/WebP, GIF, MPEG-TS (sync bytes every 188 or
    192 bytes), Annex-B / MPEG start codes (raw H.264/HEVC, MPEG-PS, MPEG-4 ES), JPEG, PNG, FLV,
    IVF, ASF, Ogg, NUT, Y4M, AV1 OBU, and the audio containers (ID3/MP3, ADTS, FLAC) that are
    scanned only to be reported as having no video. Text (playlists, scripts, HTML) is None.
    """
    h = bytes(head)
    if len(h) >= 8 and h[4:8] in _ISO_BOXES:
        size = int.from_bytes(h[:4], "big")
        if size in (0, 1) or size >= 8:
            return "iso-bmff"
    if h.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if h.startswith(b"RIFF") and len(h) >= 12:
        return {b"AVI ": "avi", b"AVIX": "avi", b"WAVE": "wav", b"WEBP": "webp"}.get(h[8:12])
    if h[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if len(h) > 188 and h[0] == 0x47 and h[188] == 0x47 and (len(h) <= 376 or h[376] == 0x47):
        return "mpegts"
    if len(h) > 196 and h[4] == 0x47 and h[196] == 0x47:
        return "m2ts"
    if h.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if h.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    simple = {
        b"FLV\x01": "flv",
        b"DKIF": "ivf",
        b"OggS": "ogg",
        b"nut/multimedia container\x00": "nut",
        b"YUV4MPEG2 ": "y4m",
        b"ID3": "id3",
        b"fLaC": "flac",
        _ASF_GUID: "asf",
    }
    for magic, kind in simple.items():
        if h.startswith(magic):
            return kind
    zeros = len(h) - len(h.lstrip(b"\x00"))
    if 2 <= zeros <= 32 and len(h) > zeros and h[zeros] == 0x01:
        return "annexb"
    if len(h) >= 2 and h[0] == 0x12 and h[1] == 0x00:
        return "obu"  # AV1 low-overhead bitstream: starts with a temporal delimiter OBU
    if len(h) >= 2 and h[0] == 0xFF and (h[1] & 0xE0) == 0xE0:
        return "mpeg-audio"  # MP3 frame or ADTS AAC sync word
    return None


# --------------------------------------------------------------------------------------------
# metrics (Prometheus text format, hand-written)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_HELP = {
    "framescan_http_requests_total": ("counter", "HTTP requests by route, method and status."),
    "framescan_http_request_duration_seconds": ("histogram", "HTTP request latency by route (upload included)."),
    "framescan_scan_duration_seconds": ("histogram", "Time a clip spent in a worker."),
    "framescan_queue_wait_seconds": ("histogram", "Time an admitted clip waited for a worker."),
    "framescan_decisions_total": ("counter", "Scanned clips by decision (error: an error report)."),
    "framescan_scan_errors_total": ("counter", "Error reports by error code (scans and pre-scan rejections)."),
    "framescan_rejections_total": ("counter", "Requests refused before scanning, by reason."),
    "framescan_upload_bytes_total": ("counter", "Request body bytes received on POST /v1/scan."),
}


def _labels(labels: Iterable[tuple[str, str]]) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    items = [f'{k}="{esc(str(v))}"' for k, v in labels]
    return "{" + ",".join(items) + "}" if items else ""


def _num(v: float) -> str:
    if v == math.inf:
        return "+Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class Metrics:
    """Counters and histograms, thread-safe; ``render`` adds the gauges it is given."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._hists: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + value

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            h = self._hists.get(key)
            if h is None:
                h = self._hists[key] = [0.0] * (len(LATENCY_BUCKETS) + 2)  # buckets..., sum, count
            for i, b in enumerate(LATENCY_BUCKETS):
                if value <= b:
                    h[i] += 1
            h[-2] += value
            h[-1] += 1

    def counter(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def render(self, gauges: Iterable[tuple[str, str, dict[str, str], float]] = ()) -> str:
        """Prometheus text exposition format 0.0.4."""
        lines: list[str] = []
        with self._lock:
            counters = dict(self._counters)
            hists = {k: list(v) for k, v in self._hists.items()}
        seen: set[str] = set()

        def header(name: str, kind: str, help_: str) -> None:
            if name not in seen:
                seen.add(name)
                lines.append(f"# HELP {name} {help_}")
                lines.append(f"# TYPE {name} {kind}")

        for (name, labels), value in sorted(counters.items()):
            kind, help_ = _HELP.get(name, ("counter", name))
            header(name, kind, help_)
            lines.append(f"{name}{_labels(labels)} {_num(value)}")
        for (name, labels), h in sorted(hists.items()):
            kind, help_ = _HELP.get(name, ("histogram", name))
            header(name, kind, help_)
            for i, b in enumerate(LATENCY_BUCKETS):
                lines.append(f"{name}_bucket{_labels((*labels, ('le', _num(b))))} {_num(h[i])}")
            lines.append(f"{name}_bucket{_labels((*labels, ('le', '+Inf')))} {_num(h[-1])}")
            lines.append(f"{name}_sum{_labels(labels)} {_num(round(h[-2], 6))}")
            lines.append(f"{name}_count{_labels(labels)} {_num(h[-1])}")
        for name, help_, labels, value in gauges:
            header(name, "counter" if name.endswith("_total") else "gauge", help_)
            lines.append(f"{name}{_labels(sorted(labels.items()))} {_num(value)}")
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# jobs and worker pools


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


def _detail(message: str) -> dict[str, Any]:
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

    def _scanner_kwargs(self, profile: Profile) -> dict[str, Any]:
        cfg = self.config
        kw: dict[str, Any] = dict(split_threads(cfg.workers))
        policy = self.policies[profile.policy] if profile.policy else cfg.default_policy
        optional = {
            "policy": str(policy) if policy else None,
            "fps": profile.fps if profile.fps is not None else cfg.fps,
            "models": cfg.models,
            "banks": cfg.banks,
            "ocr": cfg.ocr or None,
            "lexicons": cfg.lexicons,
        }
        kw.update({k: v for k, v in optional.items() if v is not None})
        return kw

    def _new_pool(self, profile: Profile, size: int) -> WorkerPool:
        config = WorkerConfig(
            scanner=self._scanner_kwargs(profile), limits=self.config.limits, memory_bytes=self.config.memory_bytes
        )
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
                _detail("missing bearer token (Authorization: Bearer TOKEN)"),
                {"WWW-Authenticate": 'Bearer realm="framescan"'},
            )
        tenant = self._tokens.get(hashlib.sha256(token.encode()).digest())
        if tenant is None:
            raise Rejected(
                401,
                "unauthorized",
                _detail("invalid token"),
                {"WWW-Authenticate": 'Bearer realm="framescan", error="invalid_token"'},
            )
        return tenant

    # ---- request parameters

    def profile_for(self, policy: str | None, fps: float | None) -> Profile:
        if policy is not None and (not _POLICY_NAME.match(policy) or policy not in self.policies):
            known = ", ".join(sorted(self.policies)) or "none configured"
            raise Rejected(400, "bad_request", _detail(f"unknown policy {policy[:64]!r} (known: {known})"))
        if fps is not None and not 0 < fps <= self.config.max_fps:
            raise Rejected(400, "bad_request", _detail(f"fps must be in (0, {self.config.max_fps:g}]"))
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
                    400, "bad_request", _detail(f"{k}={v:g} is above the server's limit ({current:g}): tighten only")
                )
            changes[k] = type(current)(v)
        try:
            return base.updated(**changes) if changes else base
        except ConfigError as ex:
            raise Rejected(400, "bad_request", _detail(ex.message)) from ex

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
                        report = entry.pool.scan(
                            str(upload.path), name=job.name, limits=limits, timeout=limits.max_seconds_per_clip
                        ).to_dict()
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


# --------------------------------------------------------------------------------------------
# receiving the body


@dataclass
class Upload:
    path: Path
    size: int
    kind: str
    name: str

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _clean_name(name: str | None) -> str:
    base = os.path.basename((name or "").replace("\\", "/"))
    base = "".join(c for c in base if c.isprintable())[:200].strip()
    return base or "upload"


def _too_large(name: str, size: int, limit: int, declared: bool = False) -> Rejected:
    what = "declares" if declared else "passed"
    err = LimitExceeded(
        f"{name}: the upload {what} {size} bytes, over the limit of {limit}", limit="max_file_bytes", value=size
    )
    return Rejected(413, "too_large", Report.from_error(name, err).to_dict())


class _Sink:
    """The clip's bytes: held until the head is sniffed, then appended to a private temp file
    in batches (writes run in a thread)."""

    def __init__(self, directory: Path, limit: int, name: str) -> None:
        self.directory = directory
        self.limit = limit
        self.name = name
        self.pending = bytearray()
        self.size = 0
        self.kind: str | None = None
        self.fd: int | None = None
        self.path: Path | None = None

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        self.pending += data

    def check(self) -> None:
        if self.size > self.limit:
            raise _too_large(self.name, self.size, self.limit)

    async def drain(self, final: bool = False) -> None:
        self.check()
        if self.kind is None:
            if len(self.pending) < SNIFF_BYTES and not final:
                return
            if not self.pending:
                err = EmptyInput(f"{self.name}: the upload is empty (0 bytes)")
                raise Rejected(400, "empty", Report.from_error(self.name, err).to_dict())
            kind = sniff(bytes(self.pending[:SNIFF_BYTES]))
            if kind is None:
                err = UnsupportedFormat(
                    f"{self.name}: the first bytes are not a video container framescan reads "
                    "(the file name and Content-Type are not used)"
                )
                raise Rejected(415, "unsupported_media", Report.from_error(self.name, err).to_dict())
            self.kind = kind
            fd, path = tempfile.mkstemp(prefix="clip-", suffix=_SUFFIX.get(kind, ""), dir=self.directory)
            os.fchmod(fd, 0o600)
            self.fd, self.path = fd, Path(path)
        if self.pending and (final or len(self.pending) >= WRITE_BATCH):
            data, self.pending = bytes(self.pending), bytearray()
            await asyncio.to_thread(self._write_all, data)

    def _write_all(self, data: bytes) -> None:
        assert self.fd is not None
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def discard(self) -> None:
        self.close()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


class _MultipartFile:
    """Feeds the data of the first ``file`` part of a multipart body to a sink, streaming."""

    def __init__(self, boundary: bytes, sink: _Sink) -> None:
        from python_multipart.multipart import MultipartParser, parse_options_header

        self._parse_options = parse_options_header
        self.sink = sink
        self.found = False
        self.filename: str | None = None
        self._in_file = False
        self._parts = 0
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        callbacks: Any = {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }
        self.parser = MultipartParser(boundary, callbacks)

    def _part_begin(self) -> None:
        self._parts += 1
        self._headers = {}

    def _header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, params = self._parse_options(self._headers.get(b"content-disposition", b""))
        if params.get(b"name") == b"file" and not self.found:
            self.found = self._in_file = True
            fn = params.get(b"filename")
            self.filename = fn.decode("utf-8", "replace") if fn else None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.sink.feed(data[start:end])

    def _part_end(self) -> None:
        self._in_file = False

    def write(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except Exception as ex:
            raise Rejected(400, "bad_request", _detail(f"malformed multipart body: {ex}")) from ex
        if self._parts > MULTIPART_MAX_PARTS:
            raise Rejected(400, "bad_request", _detail(f"more than {MULTIPART_MAX_PARTS} multipart parts"))

    def finish(self) -> None:
        try:
            self.parser.finalize()
        except Exception as ex:
            raise Rejected(400, "bad_request", _detail(f"malformed multipart body: {ex}")) from ex
        if not self.found:
            raise Rejected(400, "bad_request", _detail("the multipart body has no 'file' part"))


async def receive_upload(
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    headers: Mapping[str, str],
    svc: ScanService,
    limits: Limits,
    name: str | None,
) -> Upload:
    """Stream the request body into a private temp file, enforcing size, rate, deadline and
    sniffing as the bytes arrive. Raises ``Rejected``; leaves no file behind when it does."""
    cfg = svc.config
    limit = limits.max_file_bytes
    ctype = headers.get("content-type", "")
    multipart: _MultipartFile | None = None
    sink = _Sink(svc.upload_dir, limit, _clean_name(name))
    raw_limit = limit
    if ctype.lower().startswith("multipart/form-data"):
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(ctype)
        boundary = params.get(b"boundary")
        if not boundary:
            raise Rejected(400, "bad_request", _detail("multipart body without a boundary"))
        multipart = _MultipartFile(boundary, sink)
        raw_limit = limit + MULTIPART_SLACK
    declared = headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise Rejected(400, "bad_request", _detail("invalid Content-Length")) from None
        if n > raw_limit:
            raise _too_large(sink.name, n, limit, declared=True)
    start = time.monotonic()
    total = 0
    try:
        while True:
            elapsed = time.monotonic() - start
            # mod_reqtimeout's rule: the deadline for the next bytes grows with what has arrived
            rate_deadline = max(cfg.rate_grace, total / cfg.min_upload_rate) if cfg.min_upload_rate else math.inf
            wait = min(cfg.receive_timeout, rate_deadline) - elapsed
            if wait <= 0:
                raise _slow(total, elapsed, cfg)
            try:
                message = await asyncio.wait_for(receive(), timeout=wait)
            except asyncio.TimeoutError:
                raise _slow(total, time.monotonic() - start, cfg) from None
            if message["type"] == "http.disconnect":
                raise Rejected(400, "client_disconnected", _detail("the client went away during the upload"))
            chunk = message.get("body", b"")
            total += len(chunk)
            svc.metrics.inc("framescan_upload_bytes_total", len(chunk))
            if total > raw_limit:
                raise _too_large(sink.name, total, limit)
            if multipart is not None:
                multipart.write(chunk)
            else:
                sink.feed(chunk)
            more = message.get("more_body", False)
            await sink.drain(final=not more and multipart is None)
            if not more:
                break
        if multipart is not None:
            multipart.finish()
            if multipart.filename and not name:
                sink.name = _clean_name(multipart.filename)
            await sink.drain(final=True)
        sink.close()
    except BaseException:
        sink.discard()
        raise
    assert sink.path is not None and sink.kind is not None
    return Upload(sink.path, sink.size, sink.kind, sink.name)


def _slow(total: int, elapsed: float, cfg: ServiceConfig) -> Rejected:
    return Rejected(
        408,
        "slow_upload",
        _detail(
            f"upload too slow: {total} bytes in {elapsed:.1f} s (minimum {cfg.min_upload_rate:g} B/s after "
            f"{cfg.rate_grace:g} s; the whole body within {cfg.receive_timeout:g} s)"
        ),
    )


# --------------------------------------------------------------------------------------------
# the app


#: Refusals after which the rest of a body is read and discarded (at most _DRAIN_BYTES, for
#: at most _DRAIN_SECONDS) before answering: closing with unread request bytes makes the
#: kernel send a reset, which can destroy the response before the client reads it. Not 408
#: (the client is too slow to wait for); 413 only when the rest is small (``_drain_after``).
_DRAIN_AFTER = {400, 413, 415}
_DRAIN_BYTES = 8 << 20
_DRAIN_SECONDS = 2.0


def _drain_after(status: int, headers: Any) -> bool:
    """Whether to discard the rest of a refused body before answering. A 413 whose declared
    ``Content-Length`` is over _DRAIN_BYTES is answered at once: the point is not to read it."""
    if status not in _DRAIN_AFTER:
        return False
    declared = headers.get("content-length")
    return status != 413 or declared is None or (declared.isdigit() and int(declared) <= _DRAIN_BYTES)


class _TrackedReceive:
    """An ASGI ``receive`` that remembers whether the request body has ended."""

    def __init__(self, receive: Any) -> None:
        self._receive = receive
        self.done = False

    async def __call__(self) -> dict[str, Any]:
        msg = await self._receive()
        if msg.get("type") != "http.request" or not msg.get("more_body", False):
            self.done = True
        return msg


async def _discard_rest(receive: _TrackedReceive) -> None:
    total, end = 0, time.monotonic() + _DRAIN_SECONDS
    while not receive.done and total < _DRAIN_BYTES:
        left = end - time.monotonic()
        if left <= 0:
            return
        try:
            msg = await asyncio.wait_for(receive(), left)
        except asyncio.TimeoutError:
            return
        total += len(msg.get("body", b""))


def _json(status: int, body: Any, headers: dict[str, str] | None = None, close: bool = False) -> JSONResponse:
    h = dict(headers or {})
    if close:
        h["Connection"] = "close"  # the body was not read: do not drain it for keep-alive
    return JSONResponse(body, status_code=status, headers=h)


class _MetricsMiddleware:
    """Counts requests by route template, method and status, and times them (pure ASGI)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "other"
            method = scope.get("method", "")
            self.metrics.inc("framescan_http_requests_total", route=path, method=method, status=str(status[0]))
            self.metrics.observe(
                "framescan_http_request_duration_seconds", time.perf_counter() - t0, route=path, method=method
            )


_SCAN_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The clip: the raw body (any Content-Type but multipart), or the `file` field of a "
        "multipart/form-data body. Recognised by its first bytes, not by name or Content-Type.",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


def create_app(config: ServiceConfig | ScanService, *, start: bool = True) -> FastAPI:
    """The ASGI app. ``config`` may be a ready ``ScanService`` (tests inspect it as
    ``app.state.service``). The workers start with the app (lifespan), in the background:
    ``/readyz`` says when they are up."""
    svc = config if isinstance(config, ScanService) else ScanService(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start and svc.state == "starting" and not svc._started.is_set():
            svc.start(background=True)
        try:
            yield
        finally:
            await asyncio.to_thread(svc.close)

    app = FastAPI(
        title="framescan",
        version=__version__,
        description="Video content-safety scanning over HTTP. See docs/service.md.",
        lifespan=lifespan,
    )
    app.state.service = svc
    metrics = svc.metrics

    def reject(ex: Rejected, close: bool) -> JSONResponse:
        metrics.inc("framescan_rejections_total", reason=ex.reason)
        if ex.body.get("status") == "error":
            svc.count_report(ex.body)
        return _json(ex.status, ex.body, ex.headers, close=close)

    @app.exception_handler(RequestValidationError)
    async def _bad_params(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.inc("framescan_rejections_total", reason="bad_request")
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        return _json(400, {"detail": errors}, close=request.method == "POST")

    async def job_response(job: Job, wait: float, replayed: bool = False, close: bool = False) -> JSONResponse:
        if job.finished is None and wait > 0 and job.future is not None:
            try:
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(job.future)), timeout=wait)
            except asyncio.TimeoutError:
                pass
            except asyncio.CancelledError:
                if not job.future.cancelled():
                    raise
        if job.finished is None and job.future is not None and job.future.cancelled():
            job.failure = (503, "the service is shutting down")
        headers = {"X-Job-Id": job.id, "Location": f"/v1/jobs/{job.id}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        if job.report is not None:
            return _json(200, job.report, headers, close=close)
        if job.failure is not None:
            return _json(job.failure[0], {**job.summary(), "detail": job.failure[1]}, headers, close=close)
        headers["Retry-After"] = "1"
        return _json(202, job.summary(), headers, close=close)

    @app.post(
        "/v1/scan",
        summary="Scan a clip",
        openapi_extra=_SCAN_BODY_DOC,
        responses={
            200: {"description": "The clip report (framescan.report/1), also for clips that could not be scanned"},
            202: {"description": "Still scanning at the deadline: poll the job"},
            400: {"description": "Bad parameters, malformed multipart, or an empty upload (error report)"},
            401: {"description": "No token or an unknown token"},
            408: {"description": "The body arrived too slowly"},
            413: {"description": "The body passed the size limit (error report, LIMIT_EXCEEDED)"},
            415: {"description": "The body does not start like a supported container (error report)"},
            429: {"description": "Every worker busy and the queue full: retry after Retry-After"},
            503: {"description": "Not ready yet (workers starting)"},
        },
    )
    async def scan(
        request: Request,
        policy: str | None = Query(None, description="name of a policy file in the server's policy directory"),
        fps: float | None = Query(None, gt=0, description="frames sampled per second (default: the server's)"),
        deadline: float | None = Query(None, ge=0, description="seconds to wait for the report before a 202"),
        name: str | None = Query(None, max_length=200, description="clip name used in the report"),
        max_file_bytes: int | None = Query(None, gt=0, description="tighten the server's limit"),
        max_pixels: int | None = Query(None, gt=0, description="tighten the server's limit"),
        max_side: int | None = Query(None, gt=0, description="tighten the server's limit"),
        max_duration: float | None = Query(None, gt=0, description="tighten the server's limit"),
        max_frames: int | None = Query(None, gt=0, description="tighten the server's limit"),
        max_streams: int | None = Query(None, gt=0, description="tighten the server's limit"),
        max_seconds_per_clip: float | None = Query(None, gt=0, description="tighten the server's limit"),
    ) -> Response:
        try:
            tenant = svc.tenant_for(request.headers.get("authorization"))
            if not svc.ready:
                raise Rejected(503, "not_ready", _detail("the service is starting"), {"Retry-After": "2"})
            profile = svc.profile_for(policy, fps)
            limits = svc.limits_for(
                {
                    "max_file_bytes": max_file_bytes,
                    "max_pixels": max_pixels,
                    "max_side": max_side,
                    "max_duration": max_duration,
                    "max_frames": max_frames,
                    "max_streams": max_streams,
                    "max_seconds_per_clip": max_seconds_per_clip,
                }
            )
            wait = svc.deadline_for(deadline)
            key = request.headers.get("idempotency-key")
            if key is not None and not _IDEMPOTENCY_KEY.match(key):
                raise Rejected(400, "bad_request", _detail("Idempotency-Key must be 1-255 visible ASCII characters"))
            if key is not None:
                existing = svc.job_for_key(tenant, key)
                if existing is not None:
                    return await job_response(existing, wait, replayed=True, close=True)
        except Rejected as ex:
            return reject(ex, close=True)
        if not svc.try_admit():
            ex = Rejected(
                429,
                "busy",
                _detail("every worker is busy and the queue is full"),
                {"Retry-After": str(svc.retry_after())},
            )
            return reject(ex, close=True)
        receive = _TrackedReceive(request.receive)
        try:
            upload = await receive_upload(receive, request.headers, svc, limits, name)
        except Rejected as ex:
            svc.abandon_upload()
            if not receive.done and _drain_after(ex.status, request.headers):
                await _discard_rest(receive)
            return reject(ex, close=True)
        except BaseException:
            svc.abandon_upload()
            raise
        job, created = svc.submit(tenant, key, upload, profile, limits)
        return await job_response(job, wait, replayed=not created)

    @app.get(
        "/v1/jobs/{job_id}",
        summary="A scan job: 200 with the report when done, 202 while queued or scanning",
        responses={202: {"description": "Still queued or scanning"}, 404: {"description": "No such job"}},
    )
    async def get_job(
        request: Request,
        job_id: str,
        wait: float = Query(0.0, ge=0, description="seconds to wait for the report (long poll)"),
    ) -> Response:
        try:
            tenant = svc.tenant_for(request.headers.get("authorization"))
        except Rejected as ex:
            return reject(ex, close=False)
        job = svc.job(job_id, tenant)
        if job is None:  # another tenant's job is not found either
            return _json(404, _detail("no such job"))
        return await job_response(job, min(wait, svc.config.max_poll_wait))

    @app.get("/healthz", summary="Liveness: the process serves requests")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", summary="Readiness: models verified (sha256), workers up")
    async def readyz() -> Response:
        ready, info = svc.readiness()
        return _json(200 if ready else 503, info)

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics_endpoint() -> Response:
        return PlainTextResponse(svc.metrics.render(svc.gauges()), media_type="text/plain; version=0.0.4")

    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    return app
