"""Resource limits for untrusted input, checked as early as possible.

Header checks (file size, dimensions, stream count) run before any frame is decoded, so a
100000x100000 header never gets a buffer allocated; duration and frame count are checked
against *decoded* timestamps and counts as decoding goes (a header can lie).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from .errors import ConfigError, LimitExceeded

GIB = 1 << 30


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 2 * GIB
    max_pixels: int = 8192 * 8192  # width * height of one frame
    max_side: int = 16384  # width or height
    max_duration: float = 3600.0  # seconds, from decoded timestamps
    max_frames: int = 200_000  # decoded frames
    max_streams: int = 32
    max_seconds_per_clip: float = 600.0  # wall clock, enforced by the isolated worker's watchdog

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if not v > 0:
                raise ConfigError(f"limit {k} must be > 0, got {v!r}")

    def updated(self, **changes: Any) -> Limits:
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise ConfigError(f"unknown limits {sorted(unknown)}; known: {sorted(asdict(self))}")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check_file(self, size: int | None, name: str) -> None:
        if size is not None and size > self.max_file_bytes:
            raise LimitExceeded(
                f"{name}: file is {size} bytes, over the limit of {self.max_file_bytes}",
                limit="max_file_bytes",
                value=size,
            )

    def check_header(self, width: int, height: int, streams: int, name: str) -> None:
        if streams > self.max_streams:
            raise LimitExceeded(
                f"{name}: {streams} streams, over the limit of {self.max_streams}", limit="max_streams", value=streams
            )
        if width > self.max_side or height > self.max_side:
            raise LimitExceeded(
                f"{name}: frame size {width}x{height} exceeds the maximum side of {self.max_side}",
                limit="max_side",
                value=[width, height],
            )
        if width * height > self.max_pixels:
            raise LimitExceeded(
                f"{name}: frame size {width}x{height} = {width * height} pixels exceeds the limit of {self.max_pixels}",
                limit="max_pixels",
                value=[width, height],
            )

    def check_progress(self, seconds: float, frames: int, name: str) -> None:
        if frames > self.max_frames:
            raise LimitExceeded(
                f"{name}: more than {self.max_frames} frames read (limit max_frames)",
                limit="max_frames",
                value=frames,
            )
        if seconds > self.max_duration:
            raise LimitExceeded(
                f"{name}: decoded timestamps pass {self.max_duration:.0f} s (limit max_duration)",
                limit="max_duration",
                value=round(seconds, 3),
            )


DEFAULT_LIMITS = Limits()
