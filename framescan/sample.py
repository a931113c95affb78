"""Which decoded frames are scored.

Every sampler sees every frame the decoder outputs, in presentation order, with its
timestamp from PTS, and says whether to keep it. Timestamps (not frame indices) drive
``fps`` sampling, so it stays correct on variable-frame-rate input.

The default is ``fps=2``: an event shown for half a second or more is always sampled,
a 15 s clip costs about 30 inferences, and the result does not depend on how the
encoder placed its keyframes (``keyframes`` alone can leave 10 s gaps).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from .errors import ConfigError

DEFAULT_FPS = 2.0
# A frame whose timestamp is within this of the next sampling instant counts as on time
# (absorbs rounding of PTS to the stream time base).
_TIME_EPSILON = 1e-6


class Sampler(ABC):
    """Decides, frame by frame, which decoded frames to score."""

    #: Value for PyAV's ``codec_context.skip_frame`` (``"NONKEY"`` makes the decoder skip
    #: everything but keyframes), or ``None`` to decode every frame.
    skip_frame: str | None = None

    @abstractmethod
    def keep(self, index: int, time: float, keyframe: bool) -> bool:
        """Whether the frame (decode-order ``index``, ``time`` in seconds) is scored."""

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget state before a new clip."""

    def next_needed(self) -> float | None:
        """The earliest timestamp a frame can still be kept at, or None when any frame may be.
        The decoder skips non-reference frames presented before it (they cannot be kept and
        nothing is predicted from them)."""
        return None

    @abstractmethod
    def describe(self) -> dict[str, object]:
        """The sampling settings as they go into the report."""


class FpsSampler(Sampler):
    """Keep the first frame at or after each instant ``k / fps`` (k = 0, 1, ...)."""

    def __init__(self, fps: float = DEFAULT_FPS) -> None:
        if not fps > 0:
            raise ConfigError(f"sampling fps must be > 0, got {fps!r}")
        self.fps = float(fps)
        self.reset()

    def reset(self) -> None:
        self._next = 0.0

    def next_needed(self) -> float | None:
        return self._next

    def keep(self, index: int, time: float, keyframe: bool) -> bool:
        if time + _TIME_EPSILON < self._next:
            return False
        # Jump to the first instant after this frame (VFR gaps skip instants, not frames).
        step = 1.0 / self.fps
        k = int((time + _TIME_EPSILON) // step) + 1
        self._next = max(self._next + step, k * step)
        return True

    def describe(self) -> dict[str, object]:
        return {"mode": "fps", "fps": self.fps}


class EverySampler(Sampler):
    """Keep every Nth decoded frame (frames 0, N, 2N, ...)."""

    def __init__(self, n: int) -> None:
        if int(n) < 1:
            raise ConfigError(f"--every takes a whole number >= 1, got {n!r}")
        self.n = int(n)

    def keep(self, index: int, time: float, keyframe: bool) -> bool:
        return index % self.n == 0

    def describe(self) -> dict[str, object]:
        return {"mode": "every", "every": self.n}


class KeyframeSampler(Sampler):
    """Keep keyframes only; the decoder is told to skip every other frame."""

    skip_frame = "NONKEY"

    def keep(self, index: int, time: float, keyframe: bool) -> bool:
        return True

    def describe(self) -> dict[str, object]:
        return {"mode": "keyframes"}


class AllSampler(Sampler):
    """Keep every decoded frame."""

    def keep(self, index: int, time: float, keyframe: bool) -> bool:
        return True

    def describe(self) -> dict[str, object]:
        return {"mode": "all"}


def make_sampler(
    fps: float | None = None, every: int | None = None, keyframes: bool = False, all_frames: bool = False
) -> Sampler:
    """Build the sampler for the options given; at most one may be set (default: ``fps=2``)."""
    chosen = [x for x in (fps is not None, every is not None, keyframes, all_frames) if x]
    if len(chosen) > 1:
        raise ConfigError("choose one sampling mode: fps, every, keyframes or all")
    if every is not None:
        return EverySampler(every)
    if keyframes:
        return KeyframeSampler()
    if all_frames:
        return AllSampler()
    return FpsSampler(DEFAULT_FPS if fps is None else fps)
