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
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ConfigError

DEFAULT_FPS = 2.0
# A frame whose timestamp is within this of the next sampling instant counts as on time
# (absorbs rounding of PTS to the stream time base).
_TIME_EPSILON = 1e-6


@dataclass(frozen=True)
class PacketInfo:
    """What the demuxer says of one packet, before anything is decoded."""

    time: float  # presentation time in seconds from the stream start
    size: int  # bytes
    keyframe: bool


class Sampler(ABC):
    """Decides, frame by frame, which decoded frames to score."""

    #: Whether ``plan`` chooses a group's frames from its packets (the decoder then decodes
    #: only what they need); otherwise frames are chosen one by one with ``keep``.
    plans: bool = False

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

    def plan(self, packets: Sequence[PacketInfo]) -> list[int] | None:
        """Which of these packets (one group of pictures, in decode order) carry frames this
        sampler keeps, as positions in ``packets``; ``None`` when this sampler cannot tell
        before decoding (``plans`` is False). The decoder decodes a planned group only up to
        its last kept frame (with non-reference frames before it skipped) and keeps exactly
        the planned frames."""
        return None

    @abstractmethod
    def describe(self) -> dict[str, object]:
        """The sampling settings as they go into the report."""


class FpsSampler(Sampler):
    """Keep the first frame at or after each instant ``k / fps`` (k = 0, 1, ...)."""

    plans = True

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

    def plan(self, packets: Sequence[PacketInfo]) -> list[int]:
        # The same rule as keep(), run over the group's frames in presentation order.
        order = sorted(range(len(packets)), key=lambda i: packets[i].time)
        return [i for i in order if self.keep(i, packets[i].time, packets[i].keyframe)]

    def describe(self) -> dict[str, object]:
        return {"mode": "fps", "fps": self.fps}


class AdaptiveSampler(Sampler):
    """Keyframes + scene changes + a floor rate, chosen from the packets before decoding.

    * every keyframe (encoders such as x264 also put one at most scene cuts);
    * every *scene change* inside a group: a packet at least ``scene_ratio`` times the largest
      of the last 8 non-key packets not called cuts (a cut costs intra-coded blocks; motion
      does not: on the test clips cuts measure 1.85-4.9x, everything else at most 1.18x,
      B-frame streams included, since the largest recent packet is a P-frame's), and also
      ``scene_ratio`` times each of the last 4 non-key packets, cuts included. The second
      rule ends a run of "cuts" after a cut into a busier shot (every packet of it is larger
      than the old shot's; x264 medium scored 70 frames on a 15 s clip without it): at most
      one packet after the shot's first is called a cut. Its price: a second cut within 4
      packets of a cut is called only if its packet is ``scene_ratio`` times the first's;
    * a frame whenever ``1 / floor_fps`` seconds have passed without one.

    The scan pipeline adds the rest (``ClipScan``): frames whose thumbnail is a near-duplicate
    of the last scored frame reuse its scores, and from every frame that reaches a review
    threshold it walks the ``refine_fps`` grid both ways (the frames fixed ``refine_fps``
    sampling would score) until the grid frame is no hit, so every hit run and its edges are
    scored where fixed ``refine_fps`` sampling scores them; after a hit it also takes the grid
    up to the next frame this plan chose, scored in batches (``framescan.refine``).
    """

    plans = True
    HISTORY = 8  # non-key packet sizes a new packet is compared with
    MIN_HISTORY = 4  # no scene change is called before this many sizes are known
    RECENT = 4  # a cut is also this much larger than each of the last RECENT non-key packets

    def __init__(
        self,
        floor_fps: float = 0.5,
        scene_ratio: float = 1.5,
        refine_fps: float = DEFAULT_FPS,
        dedupe: float = 1.5,
    ) -> None:
        if not floor_fps > 0 or not refine_fps > 0:
            raise ConfigError(f"adaptive sampling rates must be > 0 ({floor_fps = }, {refine_fps = })")
        self.floor_fps = float(floor_fps)
        self.scene_ratio = float(scene_ratio)
        self.refine_fps = float(refine_fps)
        self.dedupe = float(dedupe)
        self.reset()

    def reset(self) -> None:
        self._last: float | None = None  # time of the last kept frame
        self._sizes: deque[int] = deque(maxlen=self.HISTORY)  # non-key packets not called cuts
        self._recent: deque[int] = deque(maxlen=self.RECENT)  # every non-key packet
        self.scene_changes: list[float] = []

    def _is_scene_change(self, p: PacketInfo) -> bool:
        if p.keyframe:
            return False
        sizes, recent = self._sizes, self._recent
        hit = (
            len(sizes) >= self.MIN_HISTORY
            and p.size >= self.scene_ratio * max(max(sizes), 64)
            and p.size >= self.scene_ratio * max(recent, default=0)
        )
        recent.append(p.size)
        if not hit:  # a cut's intra picture would hide the next cut
            sizes.append(p.size)
        return hit

    def _take(self, p: PacketInfo, scene: bool) -> bool:
        t = p.time
        take = p.keyframe or scene or self._last is None
        take = take or t + _TIME_EPSILON >= self._last + 1.0 / self.floor_fps  # type: ignore[operator]
        if take:
            self._last = t
        if scene:
            self.scene_changes.append(t)
        return take

    def plan(self, packets: Sequence[PacketInfo]) -> list[int]:
        scene = [self._is_scene_change(p) for p in packets]  # decode order: sizes as coded
        order = sorted(range(len(packets)), key=lambda i: packets[i].time)
        return [i for i in order if self._take(packets[i], scene[i])]

    def keep(self, index: int, time: float, keyframe: bool) -> bool:
        """Fallback when packets cannot be planned (no timestamps): keyframes and the floor."""
        return self._take(PacketInfo(time, 0, keyframe), False)

    def describe(self) -> dict[str, object]:
        return {
            "mode": "adaptive",
            "floor_fps": self.floor_fps,
            "scene_ratio": self.scene_ratio,
            "refine_fps": self.refine_fps,
            "dedupe": self.dedupe,
        }


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
    """Keep keyframes only, chosen from the packets' keyframe flags: the decoder decodes each
    group's keyframe and reads the rest of the group without decoding it (every packet is still
    read, so the whole clip is covered). Without timestamps to plan on, every frame is decoded
    and the keyframes kept."""

    plans = True

    def keep(self, index: int, time: float, keyframe: bool) -> bool:
        return keyframe

    def plan(self, packets: Sequence[PacketInfo]) -> list[int]:
        return [i for i, p in enumerate(packets) if p.keyframe]

    def describe(self) -> dict[str, object]:
        return {"mode": "keyframes"}


class AllSampler(Sampler):
    """Keep every decoded frame."""

    def keep(self, index: int, time: float, keyframe: bool) -> bool:
        return True

    def describe(self) -> dict[str, object]:
        return {"mode": "all"}


def make_sampler(
    fps: float | None = None,
    every: int | None = None,
    keyframes: bool = False,
    all_frames: bool = False,
    adaptive: bool = False,
) -> Sampler:
    """Build the sampler for the options given; at most one may be set (default: ``fps=2``)."""
    chosen = [x for x in (fps is not None, every is not None, keyframes, all_frames, adaptive) if x]
    if len(chosen) > 1:
        raise ConfigError("choose one sampling mode: fps, every, keyframes, all or adaptive")
    if adaptive:
        return AdaptiveSampler()
    if every is not None:
        return EverySampler(every)
    if keyframes:
        return KeyframeSampler()
    if all_frames:
        return AllSampler()
    return FpsSampler(DEFAULT_FPS if fps is None else fps)
