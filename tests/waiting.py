"""Waiting in tests: poll a condition with a deadline instead of sleeping a guessed time.

The timeout bounds how long a test *waits* (so a hang fails instead of blocking the run); it is
never a claim about how fast framescan is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: How often a condition is polled (s).
POLL_SECONDS = 0.02


def wait_until(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """Return ``predicate()``'s first truthy value; fail the test with "timed out after N s
    waiting for <what>" when there is none within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL_SECONDS)


def busy(pid: int, cpu_seconds: float = 0.3) -> Callable[[], bool]:
    """A predicate for ``wait_until``: process ``pid`` has used ``cpu_seconds`` of CPU more than
    when the predicate was made (a worker that is scanning, not idle)."""
    import psutil

    proc = psutil.Process(pid)

    def used() -> float:
        t = proc.cpu_times()
        return t.user + t.system

    start = used()
    return lambda: used() - start >= cpu_seconds
