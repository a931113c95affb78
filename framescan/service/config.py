"""The service's configuration: ``ServiceConfig`` (workers, queue, limits, deadlines, profiles),
API tokens (token -> tenant) and the named policies a request may pick."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..limits import DEFAULT_LIMITS, GIB, Limits

log = logging.getLogger(__name__)

MIB = 1 << 20
DEFAULT_MAX_UPLOAD = 512 * MIB
_TOKEN_ENV = "FRAMESCAN_TOKENS"
POLICY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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
    lexicons: list[str] | None = None  # extra lexicon files/directories for ``ocr`` and ``speech``
    speech: bool = False  # transcribe spoken words (``Scanner(speech=...)``; the ``speech`` extra)
    speech_model: str | None = None
    speech_languages: list[str] | None = None
    transcript: bool = False
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
        if not POLICY_NAME.match(p.stem):
            log.warning("policy file %s ignored: its name is not [A-Za-z0-9_.-]", p)
            continue
        load_policy(p)  # ConfigError for a broken file: refuse to start rather than fail per request
        out[p.stem] = p.resolve()
    return out
