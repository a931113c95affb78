"""Progress on stderr, for the front ends: one status line redrawn in place on a terminal
(``StatusLine``), drawn by a scan (``ProgressBar``: seconds decoded) and by an archive run
(``Progress``: clips, rate, ETA; JSON lines when not on a terminal)."""

from __future__ import annotations

import json
import shutil
import sys
import time
from typing import Any, TextIO

#: Columns assumed when the terminal's width is unknown.
_FALLBACK_COLUMNS = 100
#: A line is never cut shorter than this, however narrow the terminal says it is.
_MIN_COLUMNS = 20


def fmt_duration(seconds: float | None) -> str:
    """``1:02:03`` or ``2:03`` (``?`` when unknown)."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def bar(fraction: float, width: int) -> str:
    """``#`` for the share done, ``-`` for the rest: ``width`` characters."""
    filled = int(min(1.0, max(0.0, fraction)) * width)
    return "#" * filled + "-" * (width - filled)


class StatusLine:
    """One line on a terminal, redrawn in place (``\\r``), cut to the terminal's width, wiped by
    ``close``; ``due`` paces the redraws. ``tty``: whether ``stream`` is a terminal (default: ask
    it); ``enabled=False`` (quiet) wipes nothing."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        try:
            self.tty = self.stream.isatty() if tty is None else tty
        except (AttributeError, ValueError):  # no isatty, or a closed stream
            self.tty = False
        self.enabled = True
        self._last = 0.0
        self._width = 0

    def due(self, interval: float, force: bool = False) -> bool:
        """Whether ``interval`` s have passed since the last time this said yes (``force``: yes)."""
        now = time.monotonic()
        if not force and now - self._last < interval:
            return False
        self._last = now
        return True

    def draw(self, text: str) -> None:
        """Replace the line with ``text`` (padded over a longer previous one)."""
        text = text[: max(_MIN_COLUMNS, shutil.get_terminal_size((_FALLBACK_COLUMNS, 20)).columns - 1)]
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def close(self) -> None:
        """Wipe the line drawn (if any)."""
        if self.enabled and self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


class ProgressBar(StatusLine):
    """A scan's progress (the ``progress(done_s, total_s)`` callback): a bar when ``enabled``
    (default: on a terminal), else silent."""

    WIDTH = 28
    INTERVAL = 0.1  # seconds between redraws

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        super().__init__(stream, tty=enabled)
        self.label = label

    def __call__(self, done: float, total: float | None) -> None:
        if not self.tty or not self.due(self.INTERVAL):
            return
        if total:
            self.draw(f"{self.label} [{bar(done / total, self.WIDTH)}] {done:6.1f}/{total:.1f} s")
        else:
            self.draw(f"{self.label} {done:6.1f} s")


class Progress(StatusLine):
    """An archive run's progress: a live bar with rate and ETA on a terminal; JSON lines every
    ``interval`` s otherwise."""

    WIDTH = 24
    TTY_INTERVAL = 0.2  # seconds between redraws of the bar

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None, interval: float = 5.0) -> None:
        super().__init__(stream, tty)
        self.interval = interval

    def event(self, kind: str, **fields: Any) -> None:
        """A machine-readable line (only when not on a terminal)."""
        if not self.enabled or self.tty:
            return
        self.stream.write(json.dumps({"event": kind, "time": round(time.time(), 3), **fields}) + "\n")
        self.stream.flush()

    def update(self, snap: dict[str, Any], force: bool = False) -> None:
        if not self.enabled or not self.due(self.TTY_INTERVAL if self.tty else self.interval, force):
            return
        if not self.tty:
            self.event("progress", **snap)
            return
        total, processed = snap["found"], snap["processed"]
        more = "" if snap["discovery_done"] else "+"
        dec = snap["decisions"]
        failed = sum(snap["errors"].values())
        self.draw(
            f"[{bar(processed / total if total else 0.0, self.WIDTH)}] {processed}/{total}{more}  "
            f"{snap['rate_clips_per_min']:.1f} clips/min  ETA {fmt_duration(snap['eta_s'])}  "
            f"block {dec.get('block', 0)} review {dec.get('review', 0)} failed {failed} skipped {snap['skipped']}"
        )
