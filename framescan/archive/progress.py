"""The live progress of an archive run: a bar with rate and ETA on a terminal, JSON lines otherwise."""

from __future__ import annotations

import json
import shutil
import sys
import time
from typing import Any, TextIO


def fmt_duration(seconds: float | None) -> str:
    """``1:02:03`` or ``2:03`` (``?`` when unknown)."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """A live bar with rate and ETA on a terminal; JSON lines every ``interval`` s otherwise."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None, interval: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        try:
            self.tty = self.stream.isatty() if tty is None else tty
        except (AttributeError, ValueError):
            self.tty = False
        self.interval = interval
        self.enabled = True
        self._last = 0.0
        self._width = 0

    def event(self, kind: str, **fields: Any) -> None:
        """A machine-readable line (only when not on a terminal)."""
        if not self.enabled or self.tty:
            return
        self.stream.write(json.dumps({"event": kind, "time": round(time.time(), 3), **fields}) + "\n")
        self.stream.flush()

    def update(self, snap: dict[str, Any], force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < (0.2 if self.tty else self.interval):
            return
        self._last = now
        if not self.tty:
            self.event("progress", **snap)
            return
        total, processed = snap["found"], snap["processed"]
        frac = processed / total if total else 0.0
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        more = "" if snap["discovery_done"] else "+"
        dec = snap["decisions"]
        failed = sum(snap["errors"].values())
        text = (
            f"[{bar}] {processed}/{total}{more}  {snap['rate_clips_per_min']:.1f} clips/min  "
            f"ETA {fmt_duration(snap['eta_s'])}  block {dec.get('block', 0)} review {dec.get('review', 0)} "
            f"failed {failed} skipped {snap['skipped']}"
        )
        cols = shutil.get_terminal_size((100, 20)).columns
        text = text[: max(20, cols - 1)]
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
