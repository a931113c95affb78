"""A small progress bar on a terminal (stderr); silent when stderr is not a TTY."""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 28
_MIN_INTERVAL = 0.1  # seconds between redraws


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self._last = 0.0

    def __call__(self, done: float, total: float | None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < _MIN_INTERVAL:
            return
        self._last = now
        if total:
            frac = min(1.0, max(0.0, done / total))
            bar = "#" * int(frac * _WIDTH) + "-" * (_WIDTH - int(frac * _WIDTH))
            text = f"\r{self.label} [{bar}] {done:6.1f}/{total:.1f} s"
        else:
            text = f"\r{self.label} {done:6.1f} s"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * (len(self.label) + _WIDTH + 24) + "\r")
            self.stream.flush()
