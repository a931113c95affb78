"""Request body handling: the clip streamed into a private temporary file under the size, rate
and deadline limits, its container sniffed from its first bytes; draining refused bodies."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from ..errors import EmptyInput, LimitExceeded, UnsupportedFormat
from ..limits import Limits
from ..probe import SNIFF_BYTES, sniff
from ..report import Report
from .config import MIB, ServiceConfig
from .core import Rejected, ScanService, Upload, detail

#: Received bytes are written to the temporary file in batches of this size (in a thread).
WRITE_BATCH = 1 * MIB
#: Multipart framing (boundaries, part headers, small extra fields) allowed on top of the clip.
MULTIPART_SLACK = 64 * 1024
MULTIPART_MAX_PARTS = 8
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
            raise Rejected(400, "bad_request", detail(f"malformed multipart body: {ex}")) from ex
        if self._parts > MULTIPART_MAX_PARTS:
            raise Rejected(400, "bad_request", detail(f"more than {MULTIPART_MAX_PARTS} multipart parts"))

    def finish(self) -> None:
        try:
            self.parser.finalize()
        except Exception as ex:
            raise Rejected(400, "bad_request", detail(f"malformed multipart body: {ex}")) from ex
        if not self.found:
            raise Rejected(400, "bad_request", detail("the multipart body has no 'file' part"))


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
            raise Rejected(400, "bad_request", detail("multipart body without a boundary"))
        multipart = _MultipartFile(boundary, sink)
        raw_limit = limit + MULTIPART_SLACK
    declared = headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise Rejected(400, "bad_request", detail("invalid Content-Length")) from None
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
                raise Rejected(400, "client_disconnected", detail("the client went away during the upload"))
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
        detail(
            f"upload too slow: {total} bytes in {elapsed:.1f} s (minimum {cfg.min_upload_rate:g} B/s after "
            f"{cfg.rate_grace:g} s; the whole body within {cfg.receive_timeout:g} s)"
        ),
    )


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


class TrackedReceive:
    """An ASGI ``receive`` that remembers whether the request body has ended."""

    def __init__(self, receive: Any) -> None:
        self._receive = receive
        self.done = False

    async def __call__(self) -> dict[str, Any]:
        msg = await self._receive()
        if msg.get("type") != "http.request" or not msg.get("more_body", False):
            self.done = True
        return msg


async def _discard_rest(receive: TrackedReceive) -> None:
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


async def drain_refused(receive: TrackedReceive, status: int, headers: Any) -> None:
    """Before answering a refusal with ``status``, read and discard the rest of the body when
    ``_drain_after`` says so."""
    if not receive.done and _drain_after(status, headers):
        await _discard_rest(receive)
