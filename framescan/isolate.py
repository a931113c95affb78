"""Isolated scanning: untrusted clips are decoded in worker processes the parent can kill.

A truncated or hostile file can crash FFmpeg itself (a segfault is not an exception), hang
a decoder, or ask for more memory than the machine has. Each worker is a separate process
in its own process group, with an address-space limit, that loads the models once and
scans clip after clip. The parent sends a job and waits with a wall-clock watchdog:

- the worker answers: a report, or an error report with the worker's error code;
- the worker dies (segfault, abort, SIGKILL, the kernel's OOM killer): ``DECODER_CRASHED``
  (``RESOURCE_EXHAUSTED`` when it ran out of its memory limit);
- the watchdog expires: the process group gets SIGTERM, then SIGKILL: ``TIMEOUT``.

In every failure case the worker is replaced and the next clip goes on. Workers die with
the parent (a watcher thread notices re-parenting), so a killed parent leaves no orphans. This module does
not use ``concurrent.futures.ProcessPoolExecutor``: one dead child breaks that pool.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from .config import ScanConfig
from .cores import available_cores
from .errors import DecoderCrashed, ErrorCode, FramescanError, ResourceExhausted, ScanTimeout
from .limits import Limits
from .report import Report

log = logging.getLogger(__name__)

#: Seconds a worker gets to start (import, JIT cache load, model load) before it is killed.
STARTUP_TIMEOUT = 120.0
#: Seconds between SIGTERM and SIGKILL when a worker is stopped.
TERM_GRACE = 1.0
#: Seconds between checks that the parent process is still there.
_PARENT_POLL = 0.5


@dataclass
class WorkerConfig:
    """What a worker needs to build its ``Scanner`` (all picklable)."""

    scan: ScanConfig = field(default_factory=ScanConfig)
    #: Address space a worker may add for scanning on top of what it uses once its models are
    #: loaded (the limit is set then, as RLIMIT_AS = loaded size + this); None: unlimited.
    memory_bytes: int | None = 3 << 30
    #: Load the kernel and run the models once before the worker says it is ready
    #: (``Scanner.warm_up``): for pools that live for many clips (service, archive), so the first
    #: clip does not wait. A one-command pool (``framescan scan``) leaves it to the first clip,
    #: whose decoder then works meanwhile.
    warm: bool = True
    #: Tell the parent (``WorkerPool(notify=...)``) when the kernel is about to be compiled (the
    #: first run after an install): the worker, which imports Numba anyway, checks, not the parent.
    announce_compile: bool = False


#: What a worker with ``announce_compile`` sends when its first scan will compile the kernel.
COMPILE_NOTICE = "compiling kernels (first run only)..."


def _die_with_parent() -> None:
    """Exit when the parent process goes away.

    ``PR_SET_PDEATHSIG`` alone is not enough: it fires when the parent *thread* that started
    the worker exits (a pool built in a short-lived thread would lose its workers), so it is
    not used; a watcher thread notices the re-parenting instead (and a worker blocked in
    ``recv`` sees the connection close).
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(_PARENT_POLL)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="framescan-parent-watch", daemon=True).start()


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _limit_memory(headroom: int) -> None:
    import resource

    limit = _vm_size() + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _worker_main(conn: Any) -> None:
    """Worker process: build the scanner once, then answer jobs until told to stop."""
    _die_with_parent()
    config: WorkerConfig = conn.recv()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        if config.announce_compile:
            from ._jit import stale_kernels

            if stale_kernels("framescan.preprocess"):  # every scan runs it
                conn.send(("notice", COMPILE_NOTICE))
        scanner = config.scan.scanner()
        if config.warm:
            scanner.warm_up()
        if config.memory_bytes:
            _limit_memory(config.memory_bytes)
    except FramescanError as ex:
        conn.send(("fatal", ex.to_dict()))
        return
    except BaseException as ex:
        conn.send(("fatal", {"code": ErrorCode.MODEL_ERROR.value, "message": f"worker failed to start: {ex!r}"}))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # parent gone
        if msg[0] == "stop":
            return
        _, kind, payload, name, want_progress, limits = msg

        def progress(done: float, total: float | None) -> None:
            conn.send(("progress", (done, total)))

        failed = True
        try:
            source = payload if kind == "bytes" else str(payload)
            report = scanner.scan(source, name=name, progress=progress if want_progress else None, limits=limits)
            conn.send(("report", report.to_wire()))
            failed = False
        except FramescanError as ex:
            conn.send(("error", ex.to_dict()))
        except MemoryError:
            conn.send(("error", ResourceExhausted(f"{name}: ran out of the worker's memory limit").to_dict()))
        except Exception as ex:
            import av

            if (
                isinstance(ex, av.error.MemoryError)
                or (isinstance(ex, OSError) and ex.errno == 12)
                or "Failed to allocate memory" in str(ex)  # ONNX Runtime's arena
            ):
                err = ResourceExhausted(f"{name}: ran out of the worker's memory limit ({type(ex).__name__})")
            else:
                log.debug("worker failure: %s", traceback.format_exc())
                err = DecoderCrashed(f"{name}: scanning failed unexpectedly: {type(ex).__name__}: {ex}")
            conn.send(("error", err.to_dict()))
        if failed:
            # An exception's traceback holds the failed scan's frames in a reference cycle (the
            # decoder, its frame pool: ~96 MB after an 8192x8192 frame) until a full collection,
            # which may come dozens of clips later: collect now, after the answer was sent.
            gc.collect()


class Worker:
    """One supervised worker process (``python -m framescan.isolate FD``, its own session)."""

    def __init__(self, config: WorkerConfig, notify: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.notify = notify
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "framescan.isolate", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                start_new_session=True,  # own process group: the parent kills the whole group
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=None if os.environ.get("FRAMESCAN_WORKER_STDERR") else subprocess.DEVNULL,
                # glibc reserves 64 MiB of address space per thread arena; with an RLIMIT_AS
                # that reservation, not real use, would be what runs out
                # ...and a fixed mmap threshold keeps large frame buffers from fragmenting the
                # heap of a long-lived worker (RSS stays flat over thousands of clips)
                env={**os.environ, "MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072"},
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.conn.send(config)
        self.jobs = 0
        self._kill_lock = threading.Lock()
        self._killed = False

    @property
    def exitcode(self) -> int | None:
        return self.process.poll()

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.conn.poll(max(0.0, deadline - time.monotonic())):
                self.kill()
                raise DecoderCrashed(f"a worker process did not start within {timeout:.0f} s")
            try:
                msg = self.conn.recv()
            except EOFError as ex:
                self.kill()
                raise DecoderCrashed(f"a worker process died while starting (exit code {self.process.wait(5)})") from ex
            if msg[0] != "notice":
                break
            if self.notify is not None:
                self.notify(msg[1])
        if msg[0] == "fatal":
            self.kill()
            from .errors import error_from_code

            raise error_from_code(msg[1]["code"], msg[1]["message"])

    def alive(self) -> bool:
        return self.process.poll() is None

    def _wait(self, seconds: float) -> bool:
        try:
            self.process.wait(seconds)
            return True
        except subprocess.TimeoutExpired:
            return False

    def kill(self) -> None:
        """SIGTERM the worker's process group, SIGKILL after a grace period, and reap it.
        Idempotent and safe while another thread waits on the worker (``close`` during a scan)."""
        with self._kill_lock:
            if self._killed:
                return
            self._killed = True
            self._kill()

    def _kill(self) -> None:
        pid = self.process.pid
        for sig, wait in ((signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, 5.0)):
            if self.process.poll() is not None:
                break
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            if self._wait(wait):
                break
        # anything else left in the group (FFmpeg does not fork, but be sure)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        self._wait(0.5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self.conn.send(("stop",))
        self._wait(2.0)
        self.kill()

    def run(
        self, kind: str, payload: Any, name: str, timeout: float, progress: Any = None, limits: Limits | None = None
    ) -> dict[str, Any]:
        """Send one job and wait for its answer; raises a ``FramescanError`` when the worker
        crashed or timed out (the worker is then dead and must be replaced)."""
        self.jobs += 1
        t0 = time.monotonic()
        deadline = t0 + timeout
        try:
            self.conn.send(("scan", kind, payload, name, progress is not None, limits))
        except (OSError, BrokenPipeError) as ex:
            self.kill()
            raise DecoderCrashed(f"{name}: the worker process was gone before the scan started") from ex
        while True:
            try:
                ready = self.conn.poll(max(0.0, deadline - time.monotonic()))
            except (OSError, ValueError) as ex:  # closed by another thread (pool shutting down)
                raise DecoderCrashed(f"{name}: the worker was stopped during the scan") from ex
            if not ready:
                self.kill()
                raise ScanTimeout(
                    f"{name}: no result within {timeout:.1f} s (limit max_seconds_per_clip); the worker was killed",
                    limit="max_seconds_per_clip",
                    seconds=round(time.monotonic() - t0, 1),
                )
            try:
                tag, body = self.conn.recv()
            except (EOFError, OSError) as ex:
                self._wait(5.0)
                code = self.process.poll()
                self.kill()
                raise _crash_error(name, code) from ex
            if tag == "progress":
                if progress is not None:
                    progress(*body)
                continue
            if tag == "report":
                return body
            return {"__error__": body}


def _crash_error(name: str, exitcode: int | None) -> FramescanError:
    if exitcode is not None and exitcode < 0:
        sig = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else str(-exitcode)
        return DecoderCrashed(f"{name}: the decoder process crashed (killed by {sig})", signal=sig)
    return DecoderCrashed(f"{name}: the decoder process exited unexpectedly (exit code {exitcode})", exitcode=exitcode)


#: Error codes a *surviving* worker is replaced after (a dead worker always is).
_RECYCLE_AFTER = {ErrorCode.RESOURCE_EXHAUSTED.value}


def default_workers() -> int:
    return available_cores()


def split_threads(workers: int, cores: int | None = None) -> dict[str, int]:
    """Thread counts per worker so ``workers`` scans in parallel do not oversubscribe the cores."""
    cores = cores or available_cores()
    per = max(1, cores // max(1, workers))
    return {"threads": per, "decode_threads": max(1, min(2, per))}


class WorkerPool:
    """A fixed set of warm, isolated workers; ``scan`` is thread-safe and blocks for a free one.

    Args:
        workers: number of worker processes (default: the cores available).
        config: scanner options, limits and the memory limit for every worker.
    """

    def __init__(
        self,
        workers: int | None = None,
        config: WorkerConfig | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.size = int(workers or default_workers())
        self.config = config or WorkerConfig()
        self.notify = notify  # gets a worker's notices while it starts (COMPILE_NOTICE)
        self._idle: queue.Queue[Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._all: list[Worker] = []
        self.restarts = 0
        self._closed = False
        starting = [self._spawn() for _ in range(self.size)]
        try:
            for w in starting:
                w.wait_ready()
                self._idle.put(w)
        except BaseException:
            self.close()
            raise

    def _spawn(self) -> Worker:
        w = Worker(self.config, self.notify)
        with self._lock:
            self._all.append(w)
        return w

    def _replace(self, dead: Worker) -> None:
        with self._lock:
            if dead in self._all:
                self._all.remove(dead)
            self.restarts += 1
        if self._closed:
            return
        w = self._spawn()
        w.wait_ready()
        self._idle.put(w)

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._all]

    def scan(
        self,
        source: Any,
        name: str | None = None,
        timeout: float | None = None,
        progress: Any = None,
        limits: Limits | None = None,
    ) -> Report:
        """Scan one clip in a worker; never raises for a bad clip (the report says ``error``).
        ``limits`` overrides the pool's limits for this clip."""
        from .probe import as_source

        limits = limits or self.config.scan.limits
        limit = timeout or limits.max_seconds_per_clip
        try:
            src = as_source(source, name)
            limits.check_file(src.size_bytes, src.name)
        except FramescanError as ex:
            return Report.from_error(name or str(source), ex)
        if isinstance(src.target, str):
            kind, payload = "path", src.target
        else:
            kind, payload = "bytes", src.reopen().read()
        worker = self._idle.get()
        try:
            body = worker.run(kind, payload, src.name, limit, progress, limits)
        except FramescanError as ex:
            self._replace(worker)
            return Report.from_error(src.name, ex)
        except BaseException:
            worker.kill()
            self._replace(worker)
            raise
        if "__error__" in body and body["__error__"].get("code") in _RECYCLE_AFTER:
            # the worker survived, but an allocation failure can leave FFmpeg or the heap in a
            # bad state: start a fresh one
            worker.stop()
            self._replace(worker)
        else:
            self._idle.put(worker)
        if "__error__" in body:
            return Report.from_error(src.name, body["__error__"])
        return Report.from_dict(body)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for w in workers:
            w.stop()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


if __name__ == "__main__":
    _worker_main(Connection(int(sys.argv[1])))
