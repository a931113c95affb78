"""The HTTP service (framescan.service) on loopback: hostile corpus over HTTP, streaming limits
(size, slow clients, sniffing), auth and tenants, idempotency, backpressure, health and metrics,
the Python client and ``framescan submit``.

Servers run in-process (uvicorn.Server in a thread, 127.0.0.1, an ephemeral port). Every
request loop here is bounded in count and time."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import select
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("python_multipart")
httpx = pytest.importorskip("httpx")

import uvicorn  # noqa: E402
from corpus.hostile import Case, build_corpus  # noqa: E402
from waiting import busy, wait_until  # noqa: E402

from framescan.client import BusyError, Client  # noqa: E402
from framescan.limits import DEFAULT_LIMITS  # noqa: E402
from framescan.report import segment_evidence  # noqa: E402
from framescan.service import DEFAULT_PROFILE, ScanService, ServiceConfig, create_app  # noqa: E402

TOKEN_A = "tok-tenant-a-0123456789abcdef"
TOKEN_B = "tok-tenant-b-0123456789abcdef"
TOKENS = {TOKEN_A: "tenant-a", TOKEN_B: "tenant-b"}
MAX_UPLOAD = 2 << 20  # the test servers' size limit
RECEIVE_TIMEOUT = 2.0  # the whole body within 2 s ...
MIN_RATE = 1024.0  # ... at >= 1 KiB/s on average after the first second
RATE_GRACE = 1.0
READY_WITHIN = 90.0


def auth(token: str = TOKEN_A) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class RunningServer:
    """A uvicorn server with the service app in a background thread."""

    def __init__(self, config: ServiceConfig) -> None:
        self.service = ScanService(config)
        self.app = create_app(self.service)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", timeout_keep_alive=5))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> RunningServer:
        self.thread.start()

        def ready() -> bool:
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(self.url + "/readyz", timeout=5).status_code == 200
            return False

        try:
            wait_until(ready, READY_WITHIN, "the service's /readyz to answer 200")
        except AssertionError as ex:
            self.stop()
            raise RuntimeError(f"{ex}: {self.service.readiness()[1]}") from ex
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def uploads(self) -> list[Path]:
        return sorted(self.service.upload_dir.glob("clip-*"))

    def counter(self, name: str, **labels: str) -> float:
        return self.service.metrics.counter(name, **labels)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    return {c.name: c for c in build_corpus(tmp_path_factory.mktemp("hostile_http"))}


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("policies")
    strict = {"name": "strict", "categories": {"sexual": {"review": 0.2, "block": 0.3, "min_block_frames": 1}}}
    (d / "strict.json").write_text(json.dumps(strict))
    return d


@pytest.fixture(scope="module")
def server(policy_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = ServiceConfig(
        tokens=TOKENS,
        workers=2,
        queue=4,
        limits=DEFAULT_LIMITS.updated(max_file_bytes=MAX_UPLOAD, max_seconds_per_clip=60.0),
        receive_timeout=RECEIVE_TIMEOUT,
        min_upload_rate=MIN_RATE,
        rate_grace=RATE_GRACE,
        default_deadline=60.0,
        policy_dir=policy_dir,
        max_profiles=1,
        tmp_root=tmp_path_factory.mktemp("service_tmp"),
    )
    with RunningServer(config) as s:
        yield s


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One worker, no queue: a second clip while one scans is refused."""
    config = ServiceConfig(
        tokens=TOKENS,
        workers=1,
        queue=0,
        limits=DEFAULT_LIMITS.updated(max_file_bytes=MAX_UPLOAD, max_seconds_per_clip=60.0),
        tmp_root=tmp_path_factory.mktemp("small_tmp"),
    )
    with RunningServer(config) as s:
        yield s


def outcome_of(status: int, body: dict[str, Any]) -> str:
    assert body.get("schema") == "framescan.report/1", (status, body)
    if body["status"] == "error":
        return body["error"]["code"]
    return "OK" if body["status"] == "complete" else "PARTIAL"


# ------------------------------------------------------------------------------------------
# hostile corpus over HTTP


def _scan_case(client: httpx.Client, url: str, case: Case) -> tuple[int, dict[str, Any]]:
    params: dict[str, Any] = {"deadline": 60, "name": case.path.name, **(case.limits or {})}
    r = client.post(f"{url}/v1/scan", params=params, content=case.path.read_bytes(), headers=auth(), timeout=120)
    return r.status_code, r.json()


@pytest.mark.integration
def test_hostile_corpus_over_http(server: RunningServer, corpus: dict[str, Case]) -> None:
    """Every corpus case gives its expected outcome as a report or an error report with its code
    (200 for scans; 400/413/415 for uploads refused before scanning), and the server keeps serving."""
    failures: list[str] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    cases = list(corpus.values())

    def work(chunk: list[Case]) -> None:
        with httpx.Client() as client:
            for case in chunk:
                status, body = _scan_case(client, server.url, case)
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                try:
                    assert status in (200, 400, 413, 415), status
                    got = outcome_of(status, body)
                    assert got in case.accepted, f"got {got}, expected {case.accepted}"
                    if status != 200:
                        assert body["status"] == "error"
                    if body["status"] == "error":
                        assert body["decision"] is None and body["error"]["message"]
                        assert "Traceback" not in body["error"]["message"]
                    else:
                        assert body["coverage"]["scored_frames"] > 0
                        assert body["source"] == case.path.name
                except AssertionError as ex:
                    with lock:
                        failures.append(f"{case.name} [{status}]: {ex} {body.get('error')}")

    chunks = [cases[0::2], cases[1::2]]
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        for f in [ex.submit(work, c) for c in chunks]:
            f.result(timeout=300)
    assert not failures, "\n".join(failures)
    assert statuses.get(200, 0) > 40 and statuses.get(415, 0) >= 5 and statuses.get(413) == 1, statuses
    # still serving: ready, a good clip scans, nothing left in the upload directory
    assert httpx.get(server.url + "/readyz", timeout=10).status_code == 200
    with httpx.Client() as client:
        status, body = _scan_case(client, server.url, corpus["baseline_faststart"])
    assert status == 200 and body["status"] == "complete"
    assert server.uploads() == []


# ------------------------------------------------------------------------------------------
# raw-socket helpers (to control exactly what the client sends and when)


def _read_response(sock: socket.socket, timeout: float) -> bytes:
    """Read until the server closes or a full response (headers + Content-Length body) is in."""
    sock.settimeout(timeout)
    data = b""
    end = time.monotonic() + timeout
    with contextlib.suppress(OSError):
        while time.monotonic() < end:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            m = re.search(rb"content-length:\s*(\d+)", head, re.I)
            if sep and m and len(body) >= int(m.group(1)):
                break
    return data


def _status(response: bytes) -> int | None:
    m = re.match(rb"HTTP/1\.1 (\d{3})", response)
    return int(m.group(1)) if m else None


def _json_body(response: bytes) -> dict[str, Any]:
    return json.loads(response.partition(b"\r\n\r\n")[2])


def _headers(path: str, token: str = TOKEN_A, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/octet-stream\r\n{extra}\r\n"
    ).encode()


# ------------------------------------------------------------------------------------------
# streaming limits


@pytest.mark.integration
def test_oversize_upload_is_413_without_storing_the_body(server: RunningServer, corpus: dict[str, Case]) -> None:
    """A chunked 64 MiB upload against a 2 MiB limit: 413 (an error report, LIMIT_EXCEEDED) as
    soon as the count passes the limit; the server reads little more than the limit and keeps
    nothing."""
    before = server.counter("framescan_upload_bytes_total")
    total = 64 << 20
    piece = corpus["baseline_faststart"].path.read_bytes()  # a real MP4 head, then filler
    chunk = (piece + bytes(65536))[:65536]
    sent = 0
    response = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_headers("/v1/scan", extra="Transfer-Encoding: chunked\r\n"))
        t0 = time.monotonic()
        while sent < total and time.monotonic() - t0 < 30:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except OSError:  # the server answered and closed
                break
            sent += len(chunk)
        response = _read_response(sock, 10)
    received = server.counter("framescan_upload_bytes_total") - before
    # the message that crosses the limit is all the server reads past it: uvicorn hands the app
    # what it buffered, at most its flow-control high-water mark plus one 256 KiB socket read
    # (asyncio's recv size; 2.42 MB for a 2 MiB limit was seen under load)
    from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT

    assert MAX_UPLOAD < received <= MAX_UPLOAD + HIGH_WATER_LIMIT + (256 << 10), received
    assert sent < total // 2, f"the client could send {sent} bytes: the server kept reading"
    # the client stops sending as soon as the answer is readable, so it reads it before the reset
    # that closing a socket with unread bytes causes
    assert _status(response) == 413, response[:200]
    body = _json_body(response)
    assert body["error"]["code"] == "LIMIT_EXCEEDED" and body["error"]["details"]["limit"] == "max_file_bytes"
    assert server.counter("framescan_rejections_total", reason="too_large") >= 1
    assert server.uploads() == []


@pytest.mark.integration
def test_content_length_over_limit_is_rejected_before_the_body(server: RunningServer) -> None:
    before = server.counter("framescan_upload_bytes_total")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_headers("/v1/scan", extra=f"Content-Length: {10 << 30}\r\n"))
        response = _read_response(sock, 10)
    assert _status(response) == 413, response[:200]
    assert _json_body(response)["error"]["code"] == "LIMIT_EXCEEDED"
    assert b"connection: close" in response.lower()
    assert server.counter("framescan_upload_bytes_total") == before
    # a per-request limit can only tighten the server's
    r = httpx.post(server.url + "/v1/scan", params={"max_file_bytes": MAX_UPLOAD * 2}, content=b"x", headers=auth())
    assert r.status_code == 400


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["one_byte_per_second", "stalled_after_headers"])
def test_slow_client_is_cut_off(server: RunningServer, mode: str) -> None:
    """A client that sends 1 byte per second (or nothing) is cut off by the minimum rate /
    receive deadline (2 s in the test config): 408, or the connection closed."""
    declared = 100_000
    response = b""
    sent = 0
    cut_off = False
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_headers("/v1/scan", extra=f"Content-Length: {declared}\r\n"))
        sock.sendall(b"\x00\x00\x00\x20ftypisom")  # a plausible head, then a trickle
        for _ in range(15):  # bounded: the server must act long before 15 s
            readable, _, _ = select.select([sock], [], [], 1.0)
            if readable:
                cut_off = True
                break
            if mode == "one_byte_per_second":
                try:
                    sock.sendall(b"\x00")
                except OSError:
                    cut_off = True
                    break
                sent += 1
        response = _read_response(sock, 5)
    assert cut_off, f"still connected after {sent} trickled bytes"
    assert not response or _status(response) == 408, response[:200]
    if response:
        assert "too slow" in _json_body(response)["detail"]
    assert sent < 6  # one byte a second: cut off after a few, not the 15 it would send
    assert server.counter("framescan_rejections_total", reason="slow_upload") >= 1
    assert server.uploads() == []


@pytest.mark.integration
def test_sniffing_ignores_name_and_content_type(server: RunningServer, corpus: dict[str, Case]) -> None:
    html = b"<!DOCTYPE html><html><body>not a video</body></html>"
    mp4 = corpus["baseline_faststart"].path.read_bytes()
    with httpx.Client(base_url=server.url, headers=auth(), timeout=60) as c:
        r = c.post("/v1/scan", files={"file": ("clip.mp4", html, "video/mp4")})
        assert r.status_code == 415 and r.json()["error"]["code"] == "UNSUPPORTED_FORMAT"
        r = c.post("/v1/scan", content=html, headers={"Content-Type": "video/mp4"})
        assert r.status_code == 415 and r.json()["error"]["code"] == "UNSUPPORTED_FORMAT"
        r = c.post("/v1/scan", content=mp4, headers={"Content-Type": "text/plain"})
        assert r.status_code == 200 and r.json()["status"] == "complete"
        r = c.post("/v1/scan", data={"note": "x"}, files={"file": ("clip.bin", mp4, "text/plain")})
        assert r.status_code == 200 and r.json()["source"] == "clip.bin"
        r = c.post("/v1/scan", data={"note": "x"}, files={"other": ("a.mp4", mp4, "video/mp4")})
        assert r.status_code == 400 and "file" in r.json()["detail"]
        r = c.post("/v1/scan", content=b"")
        assert r.status_code == 400 and r.json()["error"]["code"] == "EMPTY"
    assert server.uploads() == []


# ------------------------------------------------------------------------------------------
# auth, tenants, idempotency


@pytest.mark.integration
def test_auth_and_tenant_isolation(server: RunningServer, corpus: dict[str, Case]) -> None:
    mp4 = corpus["baseline_faststart"].path.read_bytes()
    bytes_before = server.counter("framescan_upload_bytes_total")
    jobs_before = len(server.service._jobs)
    r = httpx.post(server.url + "/v1/scan", content=mp4)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = httpx.post(server.url + "/v1/scan", content=mp4, headers=auth("not-a-token"))
    assert r.status_code in (401, 403)
    r = httpx.post(server.url + "/v1/scan", content=mp4, headers={"Authorization": f"Basic {TOKEN_A}"})
    assert r.status_code == 401
    # never a scan: nothing read, no job
    assert server.counter("framescan_upload_bytes_total") == bytes_before
    assert len(server.service._jobs) == jobs_before

    r = httpx.post(server.url + "/v1/scan", params={"deadline": 0}, content=mp4, headers=auth(TOKEN_A))
    assert r.status_code in (200, 202)
    job_id = r.headers["x-job-id"]
    assert httpx.get(f"{server.url}/v1/jobs/{job_id}", headers=auth(TOKEN_B)).status_code == 404
    assert httpx.get(f"{server.url}/v1/jobs/{job_id}").status_code == 401
    assert httpx.get(f"{server.url}/v1/jobs/nope", headers=auth(TOKEN_A)).status_code == 404
    r = httpx.get(f"{server.url}/v1/jobs/{job_id}", params={"wait": 30}, headers=auth(TOKEN_A), timeout=60)
    assert r.status_code == 200 and r.json()["status"] == "complete"


@pytest.mark.integration
def test_idempotency_key_returns_the_same_job(server: RunningServer, corpus: dict[str, Case]) -> None:
    mp4 = corpus["baseline_moov_at_end"].path.read_bytes()
    key = f"upload-{time.time_ns()}"
    with httpx.Client(base_url=server.url, timeout=60) as c:
        first = c.post("/v1/scan", params={"deadline": 0}, content=mp4, headers={**auth(), "Idempotency-Key": key})
        assert first.status_code in (200, 202)
        job_id = first.headers["x-job-id"]
        bytes_before = server.counter("framescan_upload_bytes_total")
        again = c.post("/v1/scan", params={"deadline": 30}, content=mp4, headers={**auth(), "Idempotency-Key": key})
        assert again.status_code == 200 and again.headers["x-job-id"] == job_id
        assert again.headers["idempotent-replayed"] == "true"
        assert server.counter("framescan_upload_bytes_total") == bytes_before  # the retry was not read again
        done = c.get(f"/v1/jobs/{job_id}", headers=auth())
        assert done.status_code == 200 and done.json() == again.json()
        other = c.post(
            "/v1/scan", params={"deadline": 30}, content=mp4, headers={**auth(TOKEN_B), "Idempotency-Key": key}
        )
        assert other.status_code == 200 and other.headers["x-job-id"] != job_id  # keys are per tenant


# ------------------------------------------------------------------------------------------
# backpressure


@pytest.mark.integration
def test_backpressure_429_with_retry_after(small_server: RunningServer, corpus: dict[str, Case]) -> None:
    """1 worker, queue 0: while a slow clip scans, every other upload gets an immediate 429
    with Retry-After; the upload sits in a private file meanwhile and is deleted after."""
    s = small_server
    slow = corpus["gif_thousands_frames"].path.read_bytes()  # ~5 s to scan
    small = corpus["baseline_faststart"].path.read_bytes()
    with httpx.Client(base_url=s.url, headers=auth(), timeout=60) as c:
        r = c.post("/v1/scan", params={"deadline": 0}, content=slow)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        files = s.uploads()
        assert len(files) == 1
        assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
        assert stat.S_IMODE(s.service.upload_dir.stat().st_mode) == 0o700

        def post(_: int) -> tuple[int, str | None]:
            with httpx.Client(base_url=s.url, headers=auth(), timeout=60) as cc:
                resp = cc.post("/v1/scan", content=small)
            return resp.status_code, resp.headers.get("retry-after")

        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            results = list(ex.map(post, range(4)))
        # refused while the slow clip still holds the worker (not queued behind it)
        assert all(code == 429 for code, _ in results), results
        assert all(ra is not None and int(ra) >= 1 for _, ra in results), results
        assert c.get(f"/v1/jobs/{job_id}").status_code == 202, "the slow clip was done: nothing was tested"
        assert s.counter("framescan_rejections_total", reason="busy") >= 4

        # the client honours Retry-After (bounded) and gets its report once the worker is free
        with Client(s.url, TOKEN_A, max_retries=30, max_retry_wait=1.0, max_total=60) as client:
            report = client.scan(corpus["baseline_faststart"].path)
        assert report["status"] == "complete"
        done = c.get(f"/v1/jobs/{job_id}", params={"wait": 30})
        assert done.status_code == 200 and done.json()["status"] == "complete"
        with Client(s.url, TOKEN_A, max_retries=0) as client:
            assert client.scan(small)["status"] == "complete"  # idle again

        # a burst of concurrent uploads: some scanned, the rest refused at once; never a 5xx
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            burst = list(ex.map(post, range(6)))
        codes = sorted(code for code, _ in burst)
        assert set(codes) <= {200, 429} and 200 in codes and 429 in codes, codes
    assert s.uploads() == []


@pytest.mark.integration
def test_client_gives_up_after_bounded_retries(small_server: RunningServer, corpus: dict[str, Case]) -> None:
    s = small_server
    with httpx.Client(base_url=s.url, headers=auth(), timeout=60) as c:
        r = c.post("/v1/scan", params={"deadline": 0}, content=corpus["gif_thousands_frames"].path.read_bytes())
        assert r.status_code == 202
        job = f"/v1/jobs/{r.json()['job_id']}"
        wait_until(lambda: c.get(job).json()["status"] == "running", 30, "the GIF's scan to start")
        (pid,) = s.service._pools[DEFAULT_PROFILE].pool.pids
        os.kill(pid, signal.SIGSTOP)  # the only worker stays busy until SIGCONT, however fast the machine
        try:
            assert c.get(job).status_code == 202, "the scan ended before the worker was stopped"
            busy_before = s.counter("framescan_rejections_total", reason="busy")
            with Client(s.url, TOKEN_A, max_retries=2, max_retry_wait=0.2) as client, pytest.raises(BusyError):
                client.scan(corpus["baseline_faststart"].path)
            # the first upload and its 2 retries, each refused: then it gave up
            assert s.counter("framescan_rejections_total", reason="busy") - busy_before == 3
        finally:
            os.kill(pid, signal.SIGCONT)
        assert c.get(job, params={"wait": 30}).status_code == 200


@pytest.mark.integration
def test_worker_crash_costs_one_clip(small_server: RunningServer, corpus: dict[str, Case]) -> None:
    """A worker killed mid-scan: that clip's report is DECODER_CRASHED, the worker is replaced,
    /readyz is 200 again and the next clip scans."""
    s = small_server
    with httpx.Client(base_url=s.url, headers=auth(), timeout=60) as c:
        r = c.post("/v1/scan", params={"deadline": 0}, content=corpus["gif_thousands_frames"].path.read_bytes())
        assert r.status_code == 202
        (pid,) = s.service._pools[DEFAULT_PROFILE].pool.pids
        wait_until(busy(pid), 30, f"worker {pid} to start scanning")
        os.kill(pid, signal.SIGKILL)
        done = c.get(f"/v1/jobs/{r.json()['job_id']}", params={"wait": 30})
        assert done.status_code == 200 and done.json()["error"]["code"] == "DECODER_CRASHED"
        wait_until(lambda: c.get("/readyz").status_code == 200, 60, "/readyz to answer 200 again")
        assert c.post("/v1/scan", content=corpus["baseline_faststart"].path.read_bytes()).json()["status"] == "complete"
    assert s.counter("framescan_scan_errors_total", code="DECODER_CRASHED") >= 1
    assert s.uploads() == []


# ------------------------------------------------------------------------------------------
# parameters: policy, fps, deadline


@pytest.mark.integration
def test_policy_fps_and_deadline_params(server: RunningServer, short_flagged: Path) -> None:
    with httpx.Client(base_url=server.url, headers=auth(), timeout=120) as c:
        data = short_flagged.read_bytes()
        r = c.post("/v1/scan", params={"policy": "nope"}, content=data)
        assert r.status_code == 400 and "strict" in r.json()["detail"]
        r = c.post("/v1/scan", params={"policy": "../strict"}, content=data)
        assert r.status_code == 400
        r = c.post("/v1/scan", params={"fps": -1}, content=data)
        assert r.status_code == 400
        r = c.post("/v1/scan", params={"policy": "strict"}, content=data)
        assert r.status_code == 200 and r.json()["policy"]["name"] == "strict"
        assert r.json()["policy"]["categories"]["sexual"]["block"] == 0.3
        r = c.post("/v1/scan", params={"fps": 1}, content=data)
        assert r.status_code == 200 and r.json()["sampling"]["fps"] == 1
        r = c.post("/v1/scan", params={"deadline": 0}, content=data)
        assert r.status_code == 202 and r.headers["location"] == f"/v1/jobs/{r.json()['job_id']}"
        assert r.headers["retry-after"] == "1"
        done = c.get(r.headers["location"], params={"wait": 60})
        assert done.status_code == 200 and done.json()["decision"] == "block"
    # max_profiles=1: the idle strict pool was closed when the fps pool came in
    assert len(server.service._pools) <= 2


def test_report_html_and_evidence_frames(server: RunningServer, short_flagged: Path) -> None:
    """``GET /v1/jobs/{id}/report.html``: the job's page with its evidence frames embedded, under
    the job's tenant rules; each frame also at ``/v1/jobs/{id}/evidence/{frame}.jpg``."""
    with httpx.Client(base_url=server.url, headers=auth(), timeout=120) as c:
        r = c.post("/v1/scan", content=short_flagged.read_bytes(), params={"name": "a<b>.mp4"})
        assert r.status_code == 200 and r.json()["decision"] == "block"
        assert all("image" not in e for e in r.json()["evidence"])  # the JSON report is unchanged
        job = r.headers["x-job-id"]
        page = c.get(f"/v1/jobs/{job}/report.html")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        html = page.text
        assert "BLOCK" in html and "a&lt;b&gt;.mp4" in html and "<b>.mp4" not in html
        frames = sorted({int(m) for m in re.findall(r'data-frame="(\d+)"', html)})
        assert frames and html.count('src="data:image/jpeg;base64,') == len(frames)
        img = c.get(f"/v1/jobs/{job}/evidence/{frames[0]}.jpg")
        assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg" and img.content[:2] == b"\xff\xd8"
        assert c.get(f"/v1/jobs/{job}/evidence/999999.jpg").status_code == 404
        # another tenant's job is not found; no token is 401
        assert c.get(f"/v1/jobs/{job}/report.html", headers=auth(TOKEN_B)).status_code == 404
        assert c.get(f"/v1/jobs/{job}/evidence/{frames[0]}.jpg", headers=auth(TOKEN_B)).status_code == 404
        assert httpx.get(f"{server.url}/v1/jobs/{job}/report.html", timeout=10).status_code == 401


# ------------------------------------------------------------------------------------------
# health, readiness, metrics, docs


@pytest.mark.integration
def test_health_ready_metrics_and_docs(server: RunningServer) -> None:
    from framescan.models import DEFAULT_MODEL, load_manifest

    r = httpx.get(server.url + "/healthz")
    assert r.status_code == 200 and r.json() == {"status": "alive"}
    r = httpx.get(server.url + "/readyz")
    info = r.json()
    assert r.status_code == 200 and info["ready"] and info["workers"] == {"configured": 2, "alive": 2}
    assert info["models"] == [{"name": DEFAULT_MODEL, "sha256": load_manifest(DEFAULT_MODEL).sha256, "verified": True}]
    httpx.post(server.url + "/v1/scan", content=b"<html>", headers=auth())  # at least one request counted
    r = httpx.get(server.url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]+="([^"\\]|\\.)*",?)*\})? -?[0-9.e+-]+(Inf)?$')
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
    for needle in (
        'framescan_http_requests_total{method="POST",route="/v1/scan",status="415"}',
        'framescan_http_request_duration_seconds_bucket{method="POST",route="/v1/scan",le="+Inf"}',
        "framescan_queue_depth ",
        "framescan_scans_running ",
        "framescan_decisions_total{",
        'framescan_scan_errors_total{code="UNSUPPORTED_FORMAT"}',
        "framescan_workers{",
        "framescan_ready 1",
    ):
        assert needle in text, needle
    spec = httpx.get(server.url + "/openapi.json").json()
    assert "/v1/scan" in spec["paths"] and "/v1/jobs/{job_id}" in spec["paths"]
    assert httpx.get(server.url + "/docs").status_code == 200


def test_service_refuses_to_start_without_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    from framescan.errors import ConfigError
    from framescan.service import load_tokens, parse_tokens

    with pytest.raises(ConfigError):
        ServiceConfig(tokens={})
    assert parse_tokens("tok:1:tenantA, tok2:tenantB") == {"tok:1": "tenantA", "tok2": "tenantB"}
    monkeypatch.setenv("FRAMESCAN_TOKENS", "abc:t1")
    assert load_tokens() == {"abc": "t1"}


# ------------------------------------------------------------------------------------------
# Python client and `framescan submit`


@pytest.mark.integration
def test_client_scan_and_polling(server: RunningServer, short_flagged: Path) -> None:
    with Client(server.url, TOKEN_A, max_total=120) as client:
        report = client.scan(short_flagged)
        assert report["decision"] == "block" and report["source"] == short_flagged.name
        polled = client.scan(short_flagged.read_bytes(), deadline=0)  # 202 -> polls the job
        assert polled["decision"] == "block"
        refused = client.scan(b"<html>not a video</html>")
        assert refused["status"] == "error" and refused["error"]["code"] == "UNSUPPORTED_FORMAT"
        too_big = client.scan(b"\x00\x00\x00\x20ftypisom" + bytes(MAX_UPLOAD))
        assert too_big["status"] == "error" and too_big["error"]["code"] == "LIMIT_EXCEEDED"


@pytest.mark.integration
def test_submit_cli_exit_codes(
    server: RunningServer, short_flagged: Path, corpus: dict[str, Case], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from framescan.cli import submit

    url = ["--url", server.url, "--token", TOKEN_A]
    out = tmp_path / "r.json"
    assert submit.main([str(short_flagged), *url, "--json", str(out)]) == 20
    assert "BLOCK" in capsys.readouterr().out
    assert json.loads(out.read_text())["decision"] == "block"
    assert submit.main([str(corpus["baseline_faststart"].path), *url]) == 0
    assert submit.main([str(corpus["html_as_mp4"].path), *url]) == 3
    assert "UNSUPPORTED_FORMAT" in capsys.readouterr().out
    assert submit.main([str(tmp_path / "missing.mp4"), *url]) == 3
    assert submit.main([str(short_flagged), "--url", server.url, "--token", "wrong"]) == 4
    # several clips: the most severe outcome wins (block over error), as with `framescan scan`
    assert submit.main([str(corpus["html_as_mp4"].path), str(short_flagged), *url, "-q"]) == 20


def test_uploads_dir_is_private_and_removed_on_close(tmp_path: Path) -> None:
    # a directory left by a server that died (its owner pid is gone) is swept at start;
    # one of a live process is not
    stale, live = tmp_path / "framescan-uploads-dead", tmp_path / "framescan-uploads-live"
    for d, pid in ((stale, 2**22 + 1), (live, os.getppid())):
        d.mkdir()
        (d / ".owner-pid").write_text(str(pid))
        (d / "clip-x.mp4").write_bytes(b"x")
    svc = ScanService(ServiceConfig(tokens=TOKENS, tmp_root=tmp_path))
    d = svc.upload_dir
    assert d.parent == tmp_path and stat.S_IMODE(d.stat().st_mode) == 0o700
    assert not stale.exists() and live.exists()
    svc.close()
    assert not d.exists()
    assert os.listdir(tmp_path) == [live.name]


# ------------------------------------------------------------------------------------------
# every signal over HTTP


@pytest.mark.integration
def test_all_signals_and_on_screen_text_over_http(
    make_clip: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A service started with every image model and OCR (``serve --all-signals --ocr``): a
    captioned upload gets its text evidence back, and every category names its signals."""
    pytest.importorskip("rapidocr")
    from framescan.models import ALL_SIGNAL_MODELS

    clip = make_clip(captions=[(1.0, 3.0, "dasar goblok kamu")], size=(360, 640), seconds=4.0)
    config = ServiceConfig(
        tokens=TOKENS,
        workers=1,
        queue=2,
        models=list(ALL_SIGNAL_MODELS),
        ocr=True,
        banks=False,
        limits=DEFAULT_LIMITS.updated(max_file_bytes=MAX_UPLOAD, max_seconds_per_clip=60.0),
        tmp_root=tmp_path_factory.mktemp("signals_tmp"),
    )
    with RunningServer(config) as s, httpx.Client(base_url=s.url, headers=auth(), timeout=120) as c:
        r = c.post("/v1/scan", content=clip.read_bytes())
        assert r.status_code == 200, r.text
        d = r.json()
    assert [m["name"] for m in d["models"]] == list(ALL_SIGNAL_MODELS)
    assert d["categories"]["violence"]["signals"] == ["nanodet-coco"]
    assert any(x.startswith("ocr+lexicon:") for x in d["categories"]["bullying"]["signals"])
    segs = [x for x in d["segments"] if x["category"] == "bullying"]
    assert segs and any("goblok" in e.get("text", "").lower() for x in segs for e in segment_evidence(d, x))
    assert d["decision"] != "allow"


@pytest.mark.parametrize(
    "status,content_length,drain",
    [
        (400, None, True),
        (415, "1000", True),
        (413, None, True),  # chunked: the rest is read, at most _DRAIN_BYTES for _DRAIN_SECONDS
        (413, str(1 << 20), True),  # a small rest: read, so the client gets the 413, not a reset
        (413, str(10 << 30), False),  # declared over _DRAIN_BYTES: answered at once, never read
        (413, "12abc", False),
        (408, "1000", False),  # too slow a client to wait for
    ],
)
def test_which_refusals_read_the_rest_of_the_body(status: int, content_length: str | None, drain: bool) -> None:
    from framescan.service.upload import _drain_after

    headers = {} if content_length is None else {"content-length": content_length}
    assert _drain_after(status, headers) is drain
