"""Python client for the framescan service (``framescan serve``; see docs/service.md).

    from framescan.client import Client

    with Client("http://127.0.0.1:8080", token) as client:
        report = client.scan("clip.mp4", deadline=30)   # the report dict (framescan.report/1)

``scan`` uploads the clip as the raw body with an ``Idempotency-Key`` (so a retried upload is
the same job), retries ``429``/``503`` after ``Retry-After`` and connection failures, each a
bounded number of times, and polls a ``202`` job until its report is ready (bounded by
``max_total`` seconds). A clip the server refuses as such (too large, not a video container,
empty) comes back as its error report, like ``framescan scan`` gives; failures of the service
itself (auth, busy after the retries, unreachable) raise ``ServiceError``.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from ._version import __version__
from .errors import EmptyInput, FileNotFound
from .report import SCHEMA

log = logging.getLogger(__name__)

#: Query parameters ``scan`` accepts as limit overrides (the server only lets them tighten).
LIMIT_PARAMS = (
    "max_file_bytes",
    "max_pixels",
    "max_side",
    "max_duration",
    "max_frames",
    "max_streams",
    "max_seconds_per_clip",
)


class ServiceError(Exception):
    """The service could not give a report (not a verdict on the clip)."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class AuthError(ServiceError):
    """401/403: the token is missing, unknown or not allowed."""


class BusyError(ServiceError):
    """Still 429/503 after the allowed retries."""


def _is_report(body: Any) -> bool:
    return isinstance(body, dict) and body.get("schema") == SCHEMA and "status" in body


def _retry_after(response: httpx.Response, default: float = 1.0) -> float:
    value = response.headers.get("retry-after")
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time()) if when else default


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class Client:
    """A framescan service client (thread-safe as ``httpx.Client`` is; one per thread is simplest).

    Args:
        url: the service's base URL, e.g. ``http://127.0.0.1:8080``.
        token: a bearer token from the server's token file.
        max_retries: retries of one upload after 429/503 or a connection failure.
        max_retry_wait: cap on one ``Retry-After`` wait (seconds).
        max_total: cap on the time ``scan`` takes, polling included (seconds).
        poll_wait: long-poll seconds per ``GET /v1/jobs/{id}`` request.
        transport: an ``httpx`` transport (tests).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        max_retries: int = 5,
        max_retry_wait: float = 30.0,
        max_total: float = 900.0,
        poll_wait: float = 10.0,
        connect_timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.max_retries = max(0, int(max_retries))
        self.max_retry_wait = max_retry_wait
        self.max_total = max_total
        self.poll_wait = poll_wait
        self.connect_timeout = connect_timeout
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"framescan-client/{__version__}"},
            timeout=httpx.Timeout(60.0, connect=connect_timeout),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- scanning

    def scan(
        self,
        source: str | os.PathLike | bytes,
        *,
        deadline: float | None = None,
        policy: str | None = None,
        fps: float | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
        limits: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """Scan one clip (a path or bytes) and return its report dict. ``deadline``: seconds
        the server waits before answering 202 (then this polls)."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            data: bytes | None = bytes(source)
            path = None
            if not data:
                raise EmptyInput("the input is empty: 0 bytes were given")
        else:
            path = Path(os.fspath(source))
            data = None
            if not path.is_file():
                raise FileNotFound(f"{path}: no such file", path=str(path))
            name = name or path.name
        params: dict[str, Any] = {"policy": policy, "fps": fps, "deadline": deadline, "name": name}
        for k, v in (limits or {}).items():
            if k not in LIMIT_PARAMS:
                raise ValueError(f"unknown limit {k!r}; known: {', '.join(LIMIT_PARAMS)}")
            params[k] = v
        params = {k: v for k, v in params.items() if v is not None}
        key = idempotency_key or uuid.uuid4().hex
        t0 = time.monotonic()
        read_timeout = (deadline if deadline is not None else 30.0) + 60.0
        timeout = httpx.Timeout(read_timeout, connect=self.connect_timeout)
        headers = {"Idempotency-Key": key, "Content-Type": "application/octet-stream"}
        response: httpx.Response | None = None
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                if path is not None:
                    with open(path, "rb") as f:
                        response = self._http.post(
                            "/v1/scan", params=params, content=f, headers=headers, timeout=timeout
                        )
                else:
                    response = self._http.post(
                        "/v1/scan", params=params, content=data, headers=headers, timeout=timeout
                    )
            except httpx.TransportError as ex:
                if last or time.monotonic() - t0 > self.max_total:
                    raise ServiceError(f"cannot reach {self.url}: {type(ex).__name__}: {ex}") from ex
                wait = min(self.max_retry_wait, 0.5 * 2**attempt)
                log.info("upload failed (%s), retrying in %.1f s", type(ex).__name__, wait)
                time.sleep(wait)
                continue
            if response.status_code not in (429, 503):
                break
            wait = min(self.max_retry_wait, _retry_after(response))
            if last or time.monotonic() - t0 + wait > self.max_total:
                raise BusyError(
                    f"the service is busy ({response.status_code}) after {attempt + 1} attempt(s)",
                    response.status_code,
                    _body(response),
                )
            log.info("service busy (%d), retrying in %.1f s", response.status_code, wait)
            time.sleep(wait)
        assert response is not None
        return self._result(response, t0)

    def job(self, job_id: str, wait: float = 0.0) -> dict[str, Any] | None:
        """The report of a job, or None while it is queued or scanning."""
        r = self._http.get(
            f"/v1/jobs/{job_id}",
            params={"wait": wait},
            timeout=httpx.Timeout(wait + 30.0, connect=self.connect_timeout),
        )
        if r.status_code == 202:
            return None
        return self._result(r, None)

    def _result(self, response: httpx.Response, t0: float | None) -> dict[str, Any]:
        body = _body(response)
        status = response.status_code
        if status == 200 and _is_report(body):
            return body
        if status == 202 and t0 is not None and isinstance(body, dict) and "job_id" in body:
            return self._poll(str(body["job_id"]), t0)
        if status in (401, 403):
            raise AuthError(f"the service refused the token ({status}): {_detail(body)}", status, body)
        if 400 <= status < 500 and _is_report(body):
            return body  # the clip itself was refused: too large, not a container, empty
        raise ServiceError(f"the service answered {status}: {_detail(body)}", status, body)

    def _poll(self, job_id: str, t0: float) -> dict[str, Any]:
        # bounded in time (max_total) and in count (every poll waits >= 0.2 s)
        max_polls = max(1, math.ceil(self.max_total / 0.2))
        for _ in range(max_polls):
            left = self.max_total - (time.monotonic() - t0)
            if left <= 0:
                break
            wait = max(0.0, min(self.poll_wait, left))
            started = time.monotonic()
            r = self._http.get(
                f"/v1/jobs/{job_id}",
                params={"wait": wait},
                timeout=httpx.Timeout(wait + 30.0, connect=self.connect_timeout),
            )
            if r.status_code != 202:
                return self._result(r, None)
            took = time.monotonic() - started
            if took < wait / 2:  # the server did not long-poll: pace by Retry-After
                time.sleep(max(0.2, min(_retry_after(r), self.max_retry_wait, left)))
        raise ServiceError(f"job {job_id}: no report within {self.max_total:.0f} s", None, {"job_id": job_id})


def _detail(body: Any) -> str:
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:300]


__all__ = ["LIMIT_PARAMS", "AuthError", "BusyError", "Client", "ServiceError"]
