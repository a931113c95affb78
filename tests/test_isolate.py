"""Isolated workers: a crash, a hang or a kill costs one clip, never the parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from waiting import busy, wait_until

from framescan.config import ScanConfig
from framescan.isolate import WorkerConfig, WorkerPool
from framescan.limits import Limits

pytestmark = pytest.mark.integration  # kills worker processes


@pytest.fixture(scope="module")
def long_clip(make_clip: Callable[..., Path]) -> Path:
    """A clip that takes a while to scan with --all (so a signal lands mid-scan)."""
    return make_clip(width=640, height=360, seconds=12, fps=25, flagged=(1, 3))


@pytest.fixture(scope="module")
def pool():
    with WorkerPool(1, WorkerConfig(scan=ScanConfig(threads=2, all_frames=True))) as p:
        yield p


def _signal_when_busy(pool: WorkerPool, sig: int) -> threading.Thread:
    """Send ``sig`` to the pool's worker once it is scanning (has used CPU since now)."""
    pid = pool.pids[0]
    scanning = busy(pid)

    def send() -> None:
        wait_until(scanning, 60, f"worker {pid} to start scanning")
        os.kill(pid, sig)

    t = threading.Thread(target=send)
    t.start()
    return t


@pytest.mark.parametrize(
    "sig,name", [(signal.SIGKILL, "SIGKILL"), (signal.SIGSEGV, "SIGSEGV"), (signal.SIGABRT, "SIGABRT")]
)
def test_worker_death_costs_only_that_clip(pool: WorkerPool, long_clip: Path, short_flagged: Path, sig, name) -> None:
    before = pool.pids[0]
    t = _signal_when_busy(pool, sig)
    report = pool.scan(long_clip).to_dict()
    t.join()
    assert report["status"] == "error" and report["decision"] is None
    assert report["error"]["code"] == "DECODER_CRASHED" and name in report["error"]["message"]
    assert not psutil.pid_exists(before), "the dead worker was not reaped"
    after = pool.scan(short_flagged).to_dict()
    assert after["status"] == "complete" and after["decision"] == "block"
    assert pool.pids[0] != before


def test_hung_worker_times_out_and_is_replaced(pool: WorkerPool, long_clip: Path, short_flagged: Path) -> None:
    """SIGSTOP freezes the worker mid-decode (a real hang); the watchdog kills it."""
    before = pool.pids[0]
    t = _signal_when_busy(pool, signal.SIGSTOP)
    report = pool.scan(long_clip, timeout=3.0).to_dict()
    t.join()
    assert report["error"]["code"] == "TIMEOUT"
    assert not psutil.pid_exists(before)
    assert pool.scan(short_flagged).decision == "block"


def test_per_clip_limits_and_error_reports(pool: WorkerPool, short_flagged: Path, tmp_path: Path) -> None:
    r = pool.scan(short_flagged, limits=Limits(max_frames=10)).to_dict()
    assert r["error"]["code"] == "LIMIT_EXCEEDED" and "max_frames" in r["error"]["message"]
    r = pool.scan(short_flagged, limits=Limits(max_pixels=1000)).to_dict()
    assert r["error"]["code"] == "LIMIT_EXCEEDED" and "pixels" in r["error"]["message"]
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    assert pool.scan(bad).to_dict()["error"]["code"] in ("UNSUPPORTED_FORMAT", "TRUNCATED", "NO_FRAMES")
    assert pool.scan(short_flagged.read_bytes()).decision == "block"


def test_memory_limit_is_resource_exhausted(make_clip: Callable[..., Path]) -> None:
    """A worker whose address space is capped cannot allocate 8192x8192 frames."""
    big = make_clip(".mkv", width=8192, height=8192, seconds=0.2, fps=10, codec="mjpeg", pix_fmt="yuvj420p")
    small = make_clip(width=160, height=120, seconds=0.5, fps=10)
    # the limit is the worker's size once loaded (PyAV imported) + 64 MiB: one 8192x8192 frame
    # is 96 MiB
    config = WorkerConfig(scan=ScanConfig(threads=1), memory_bytes=64 << 20)
    with WorkerPool(1, config) as p:
        r = p.scan(big).to_dict()
        assert r["status"] == "error" and r["error"]["code"] in ("RESOURCE_EXHAUSTED", "DECODER_CRASHED"), r
        assert p.scan(small).to_dict()["status"] == "complete"


def test_killed_parent_leaves_no_orphan_worker(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from framescan.config import ScanConfig
        from framescan.isolate import WorkerPool, WorkerConfig
        pool = WorkerPool(1, WorkerConfig(scan=ScanConfig(threads=1)))
        print(pool.pids[0], flush=True)
        time.sleep(60)
        """
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as parent:
        worker_pid = int(parent.stdout.readline())
        assert psutil.pid_exists(worker_pid)
        parent.kill()
        parent.wait(10)
        wait_until(lambda: _gone(worker_pid), 10, f"orphaned worker {worker_pid} to exit")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_pool_close_reaps_every_worker(short_flagged: Path) -> None:
    with WorkerPool(2, WorkerConfig(scan=ScanConfig(threads=1))) as p:
        pids = p.pids
        assert len(pids) == 2 and p.scan(short_flagged).decision == "block"
    me = psutil.Process()
    assert not [c for c in me.children(recursive=True) if c.pid in pids]


def test_pool_built_in_a_short_lived_thread_keeps_its_workers(short_flagged: Path) -> None:
    """Workers must outlive the thread that started them (PR_SET_PDEATHSIG would kill them)."""
    holder: list[WorkerPool] = []
    t = threading.Thread(target=lambda: holder.append(WorkerPool(1, WorkerConfig(scan=ScanConfig(threads=1)))))
    t.start()
    t.join()
    pool = holder[0]
    try:
        time.sleep(1.5)  # longer than the parent-watch poll: a negative check needs the time to pass
        assert all(psutil.pid_exists(p) for p in pool.pids)
        assert pool.scan(short_flagged).decision == "block" and pool.restarts == 0
    finally:
        pool.close()
