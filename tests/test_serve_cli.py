"""``framescan serve`` as a user starts it: a real subprocess that says where it listens and
when it is ready (loopback only)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time

import pytest

pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

pytestmark = pytest.mark.integration  # runs framescan serve in a subprocess

#: Seconds the server may take to verify its models and start one worker on a loaded machine.
START_TIMEOUT = 300


def test_serve_prints_address_workers_and_ready() -> None:
    env = {**os.environ, "FRAMESCAN_TOKENS": "a-long-random-test-token:tenant"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "framescan", "serve", "--host", "127.0.0.1", "--port", "0", "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        assert proc.stderr is not None
        fd, text = proc.stderr.fileno(), b""
        while not any("ready" in line for line in lines):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                pytest.fail(f"no 'ready' line within {START_TIMEOUT} s: {lines}")
            chunk = os.read(fd, 4096)  # unbuffered: select() sees every byte not read yet
            if not chunk:
                pytest.fail(f"serve exited with {proc.wait()} before it was ready: {text!r}")
            text += chunk
            lines = text.decode(errors="replace").splitlines()
        listening = next(line for line in lines if "listening on" in line)
        match = re.search(r"listening on (http://127\.0\.0\.1:(\d+)) \(1 scan worker, queue 8\)", listening)
        assert match and int(match.group(2)) > 0, lines
        url = match.group(1)
        assert lines.index(listening) < next(i for i, line in enumerate(lines) if "ready" in line)
        assert f"{url}/v1/scan" in lines[-1], lines
        # Ready means ready: the port accepts connections and /readyz agrees.
        assert httpx.get(f"{url}/readyz", timeout=30).status_code == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
