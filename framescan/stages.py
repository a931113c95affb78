"""Thread plumbing of the scan's stages: bounded queues that a stop event can always unblock, a
producer loop that ends with END (or a Failure), and stopping and joining the stage threads."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

#: The last item a producer puts: nothing follows.
END = object()
#: How often a stage thread blocked on a queue checks whether the scan was stopped.
POLL = 0.02


class Failure:
    """An exception raised in a stage thread, passed down the queue to the caller."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put ``item``, waiting while ``q`` is full, until ``stop`` is set (then False)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=POLL)
            return True
        except queue.Full:
            continue
    return False


def get(q: queue.Queue, stop: threading.Event) -> Any:
    """The next item of ``q``, waiting while it is empty, until ``stop`` is set (then None)."""
    while not stop.is_set():
        try:
            return q.get(timeout=POLL)
        except queue.Empty:
            continue
    return None


def produce(frames: Iterator[Any], out: queue.Queue, stop: threading.Event, stage: dict[str, float]) -> None:
    """A decoding thread's loop: every frame of ``frames`` into ``out`` (the time taken added
    to ``stage["decode"]``), then END; a failure is put as a Failure instead. Either one
    always arrives unless ``stop`` is set first."""
    try:
        while True:
            t0 = time.perf_counter()
            frame = next(frames, END)
            stage["decode"] += time.perf_counter() - t0
            if not put(out, frame, stop) or frame is END:
                return
    except BaseException as ex:
        put(out, Failure(ex), stop)


def stop_and_join(
    stop: threading.Event, threads: list[threading.Thread], queues: Sequence[queue.Queue], wake: queue.Queue | None
) -> None:
    """Stop stage threads and join them. They poll ``stop`` every POLL s; the queues are
    drained so no put blocks, and ``wake`` gets a None so a thread waiting on it for frames
    wakes at once (early exit decides sooner than POLL)."""
    stop.set()
    while any(t.is_alive() for t in threads):
        for qq in queues:
            with contextlib.suppress(queue.Empty):
                while True:
                    qq.get_nowait()
        if wake is not None:
            with contextlib.suppress(queue.Full):
                wake.put_nowait(None)
        for t in threads:
            t.join(timeout=0.01)
