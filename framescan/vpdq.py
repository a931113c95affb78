"""vPDQ: PDQ hashes of a video's frames, their file forms, and vPDQ-style video matching.

Which frames, which luma (as Meta's vPDQ, ``vpdq/cpp/vpdq/cpp/hashing/filehasher.cpp``):

* frames are numbered in decode (presentation) order from 0; with ``seconds_per_hash`` S > 0
  vPDQ hashes the frames whose number is a multiple of ``max(1, int(S * fps))`` (``fps`` is the
  stream's average frame rate), with S = 0 every frame. ``hash_frames`` applies that rule when
  it is given ``frame_rate``; without it, it picks the first frame at or after each multiple
  of S seconds from the timestamps (the rule for variable frame rate input);
* vPDQ converts each frame to RGB24 with swscale and hashes ``0.299 R + 0.587 G + 0.114 B``
  at native size; framescan hashes the decoded Y plane expanded from limited range, which is
  the same luma up to rounding and saturated-colour clipping (see ``framescan.pdq``);
* vPDQ's timestamp is ``frame_number / fps``; framescan reports the frame's presentation time
  (PTS - stream start), the same value for constant frame rate video and the true one otherwise.

File forms:

* text, one line per hashed frame: ``frame_number,quality,hex,timestamp`` with 3 decimals
  (``vpdqio.cpp``, and the files under ``vpdq/sample-hashes``);
* JSON, the ThreatExchange signal form: a list of ``"hex,quality,timestamp"`` strings
  (``vpdq_util.py``); it has no frame numbers, which read back as -1.

Matching is by time coverage, so that two hash lists of the same video match whatever their
sampling rates (a 1 fps bank item against a 2 fps scan, or every frame): frames below quality
50 are dropped, and a frame matches when some frame of the other video is within 31 bits
(``<=``, as ``python-threatexchange``'s matchers; Meta's C++ ``matchTwoHash`` counts ``< 31``).
Each hashed frame stands for the time until the video's next hashed frame (the last one for
the median spacing). A frame is *covered* by the other video when it matches directly, or when
it lies less than the other video's hash spacing after an *anchor*: the closest frame here to a
frame there that it matches (that frame stands for the other video's next spacing seconds, and
the anchor says where they start here). ``query_match_percent`` is the share of the query's
usable duration covered by the compared video, ``compared_match_percent`` the converse; a
video match is query share >= 80% (vPDQ's threshold, which vPDQ applies to frame counts: with
frame counts a 1 fps item could match at most half of a 2 fps query of the same video).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from framescan import pdq
from framescan.errors import FileNotFound, NoFrames, NoVideoStream, Truncated, UnsupportedFormat

log = logging.getLogger(__name__)

DEFAULT_SECONDS_PER_HASH = 1.0  # vPDQ's and ThreatExchange's default
QUALITY_THRESHOLD = 50  # frames below this quality are not compared
DISTANCE_THRESHOLD = 31  # frames match at a Hamming distance <= this
QUERY_MATCH_THRESHOLD_PERCENT = 80.0
COMPARED_MATCH_THRESHOLD_PERCENT = 0.0
TIMESTAMP_DECIMALS = 3  # vPDQ files print timestamps with 3 decimals
TIMESTAMP_TOLERANCE_S = 1e-6  # slack when a frame's timestamp lands on a sampling instant
UNKNOWN_FRAME_NUMBER = -1
#: Slack when comparing times in coverage: hash files round timestamps to the millisecond.
COVERAGE_TOLERANCE_S = 0.5 * 10.0**-TIMESTAMP_DECIMALS

# 8-bit YUV formats whose plane 0 is limited-range luma usable as it is; others are converted.
_Y_PLANE_FORMATS = frozenset({"yuv420p", "yuv422p", "yuv444p", "yuv410p", "yuv411p", "yuv440p", "nv12", "nv21"})


@dataclass(frozen=True)
class VpdqFeature:
    """One hashed frame."""

    frame_number: int  #: decode-order frame number from 0 (-1 when unknown, e.g. from JSON)
    timestamp: float  #: seconds from the start of the stream
    quality: int  #: PDQ quality 0-100; below 50 the hash is not used for matching
    hash: np.ndarray = field(repr=False)  #: (4,) uint64, see ``framescan.pdq``

    @property
    def hex(self) -> str:
        return pdq.hash_to_hex(self.hash)

    def __repr__(self) -> str:
        return (
            f"VpdqFeature(frame_number={self.frame_number}, timestamp={self.timestamp:.3f}, "
            f"quality={self.quality}, hex={self.hex})"
        )


@dataclass
class VideoHash:
    """A video's vPDQ hash as parallel arrays, one entry per hashed frame."""

    frame_numbers: np.ndarray  #: (N,) int64
    timestamps: np.ndarray  #: (N,) float64 seconds
    qualities: np.ndarray  #: (N,) int32, 0-100
    hashes: np.ndarray  #: (N, 4) uint64

    def __post_init__(self) -> None:
        self.frame_numbers = np.asarray(self.frame_numbers, dtype=np.int64).reshape(-1)
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64).reshape(-1)
        self.qualities = np.asarray(self.qualities, dtype=np.int32).reshape(-1)
        self.hashes = np.asarray(self.hashes, dtype=np.uint64).reshape(-1, pdq.HASH_WORDS)
        n = len(self.frame_numbers)
        if not (len(self.timestamps) == len(self.qualities) == len(self.hashes) == n):
            raise ValueError(
                "VideoHash arrays differ in length: "
                f"{self.frame_numbers.shape = }, {self.timestamps.shape = }, "
                f"{self.qualities.shape = }, {self.hashes.shape = }"
            )

    @classmethod
    def empty(cls) -> VideoHash:
        return cls(np.empty(0), np.empty(0), np.empty(0), np.empty((0, pdq.HASH_WORDS)))

    @classmethod
    def from_features(cls, features: Iterable[VpdqFeature]) -> VideoHash:
        feats = list(features)
        if not feats:
            return cls.empty()
        return cls(
            np.array([f.frame_number for f in feats]),
            np.array([f.timestamp for f in feats]),
            np.array([f.quality for f in feats]),
            np.stack([np.asarray(f.hash, dtype=np.uint64) for f in feats]),
        )

    def __len__(self) -> int:
        return len(self.frame_numbers)

    def __iter__(self) -> Iterator[VpdqFeature]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, i: int) -> VpdqFeature:
        return VpdqFeature(
            int(self.frame_numbers[i]), float(self.timestamps[i]), int(self.qualities[i]), self.hashes[i]
        )

    def select(self, mask_or_index: np.ndarray) -> VideoHash:
        """A VideoHash of the entries picked by a boolean mask or an index array."""
        return VideoHash(
            self.frame_numbers[mask_or_index],
            self.timestamps[mask_or_index],
            self.qualities[mask_or_index],
            self.hashes[mask_or_index],
        )

    def quality_filtered(self, threshold: int = QUALITY_THRESHOLD) -> VideoHash:
        return self.select(self.qualities >= threshold)

    def __repr__(self) -> str:
        return f"VideoHash(frames={len(self)}, hashes.shape={self.hashes.shape})"


# ---------------------------------------------------------------------------------------------
# Hashing.


def hash_luma(
    frame_number: int, timestamp: float, luma: np.ndarray, *, luma_range: pdq.LumaRange = "limited"
) -> VpdqFeature:
    """Hash one frame's Y plane (2-D uint8, any strides). Video Y planes are limited range."""
    h, quality = pdq.pdq_hash(luma, luma_range=luma_range)
    return VpdqFeature(int(frame_number), float(timestamp), int(quality), h)


def hash_frames(
    frames: Iterable[tuple[int, float, np.ndarray]],
    *,
    seconds_per_hash: float = DEFAULT_SECONDS_PER_HASH,
    frame_rate: float | None = None,
    luma_range: pdq.LumaRange = "limited",
) -> VideoHash:
    """Hash ``(frame_number, timestamp, luma)`` frames picked vPDQ's way (see module docstring).

    ``seconds_per_hash=0`` hashes every frame. Frames that are not picked are skipped without
    touching their pixels.
    """
    if not (seconds_per_hash >= 0 and math.isfinite(seconds_per_hash)):
        raise ValueError(f"seconds_per_hash must be >= 0, got {seconds_per_hash!r}")
    frame_mod = 1
    if seconds_per_hash > 0 and frame_rate is not None:
        if not frame_rate > 0:
            raise ValueError(f"frame_rate must be > 0, got {frame_rate!r}")
        frame_mod = max(1, int(seconds_per_hash * frame_rate))
    by_time = seconds_per_hash > 0 and frame_rate is None
    next_due: float | None = None
    features = []
    for frame_number, timestamp, luma in frames:
        if by_time:
            if next_due is not None and timestamp < next_due - TIMESTAMP_TOLERANCE_S:
                continue
            if next_due is None:
                next_due = timestamp
            while next_due <= timestamp + TIMESTAMP_TOLERANCE_S:
                next_due += seconds_per_hash
        elif frame_number % frame_mod != 0:
            continue
        features.append(hash_luma(frame_number, timestamp, luma, luma_range=luma_range))
    return VideoHash.from_features(features)


def hash_video(path: str | os.PathLike[str], *, seconds_per_hash: float = DEFAULT_SECONDS_PER_HASH) -> VideoHash:
    """vPDQ hash of a video file, frames picked and numbered as Meta's vPDQ does."""
    frame_rate = _frame_rate(path) if seconds_per_hash > 0 else None
    out = hash_frames(_iter_luma(path), seconds_per_hash=seconds_per_hash, frame_rate=frame_rate)
    if len(out) == 0:
        raise NoFrames(f"{path}: the video stream decoded to no frames")
    return out


def _open(path: str | os.PathLike[str]):
    import av  # heavy: imported only when a file is hashed

    from framescan.probe import ALLOWED_DEMUXERS, ALLOWED_PROTOCOLS

    if not Path(path).is_file():
        raise FileNotFound(f"no such file: {path}", path=str(path))
    # The same demuxer/protocol whitelist as framescan.probe: local video containers only.
    options = {
        "format_whitelist": ",".join(ALLOWED_DEMUXERS),
        "protocol_whitelist": ",".join(ALLOWED_PROTOCOLS),
    }
    try:
        container = av.open(str(path), options=options)
    except av.error.FFmpegError as ex:
        raise UnsupportedFormat(f"{path}: not a video file PyAV can open ({ex})", path=str(path)) from ex
    if not container.streams.video:
        container.close()
        raise NoVideoStream(f"{path}: no video stream", path=str(path))
    return container


def _frame_rate(path: str | os.PathLike[str]) -> float | None:
    """The first video stream's average frame rate (vPDQ falls back to r_frame_rate)."""
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.base_rate
        return float(rate) if rate else None


def _iter_luma(path: str | os.PathLike[str]) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decode the first video stream: ``(frame_number, seconds from stream start, Y plane)``.

    The Y plane is a uint8 view of ``frame.planes[0]`` without the line padding (no copy);
    it is valid until the next frame is requested. Frames in other pixel formats (10-bit,
    RGB, full-range ``yuvj``, grey) are converted to limited-range yuv420p first, so every
    plane yielded is limited-range luma. The scan pipeline replaces this with its decoder.
    """
    import av

    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base = stream.time_base
        start = stream.start_time or 0
        index = -1
        try:
            for frame in container.decode(stream):
                index += 1
                if frame.format.name not in _Y_PLANE_FORMATS:
                    frame = frame.reformat(format="yuv420p", threads=1)
                plane = frame.planes[0]
                y = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)
                y = y[: frame.height, : frame.width]
                if frame.pts is not None and time_base is not None:
                    timestamp = float((frame.pts - start) * time_base)
                else:
                    timestamp = float(frame.time or 0.0)
                yield index, timestamp, y
        except av.error.FFmpegError as ex:
            raise Truncated(f"{path}: decoding failed after {index + 1} frames ({ex})", path=str(path)) from ex


# ---------------------------------------------------------------------------------------------
# File forms.


def format_text(video_hash: VideoHash) -> str:
    """vPDQ text form: ``frame_number,quality,hex,timestamp`` lines."""
    lines = [f"{f.frame_number},{f.quality},{f.hex},{f.timestamp:.{TIMESTAMP_DECIMALS}f}\n" for f in video_hash]
    return "".join(lines)


def parse_text(text: str, *, source: str = "<text>") -> VideoHash:
    """Parse the vPDQ text form (blank lines ignored)."""
    feats = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(",")
        if len(parts) < 4:
            raise ValueError(f"{source}:{lineno}: expected frame,quality,hex,timestamp, got {line!r}")
        try:
            feats.append(VpdqFeature(int(parts[0]), float(parts[3]), int(parts[1]), pdq.hex_to_hash(parts[2])))
        except ValueError as ex:
            raise ValueError(f"{source}:{lineno}: {ex}") from ex
    return VideoHash.from_features(feats)


def to_json(video_hash: VideoHash, *, indent: int | None = None) -> str:
    """ThreatExchange's vPDQ signal form: a JSON list of ``"hex,quality,timestamp"``."""
    items = [f"{f.hex},{f.quality},{f.timestamp:.{TIMESTAMP_DECIMALS}f}" for f in video_hash]
    return json.dumps(items, indent=indent)


def from_json(text: str, *, source: str = "<json>") -> VideoHash:
    """Parse the JSON list form; frame numbers are unknown (-1)."""
    items = json.loads(text or "[]")
    if not isinstance(items, list):
        raise ValueError(f"{source}: expected a JSON list of 'hex,quality,timestamp' strings")
    feats = []
    for i, item in enumerate(items):
        parts = str(item).split(",")
        if len(parts) != 3:
            raise ValueError(f"{source}[{i}]: expected 'hex,quality,timestamp', got {item!r}")
        hex_, quality, timestamp = parts
        q = int(quality)
        if not 0 <= q <= pdq.MAX_QUALITY:
            raise ValueError(f"{source}[{i}]: quality must be 0-100, got {q}")
        feats.append(VpdqFeature(UNKNOWN_FRAME_NUMBER, float(timestamp), q, pdq.hex_to_hash(hex_)))
    return VideoHash.from_features(feats)


def write_hashes(video_hash: VideoHash, path: str | os.PathLike[str]) -> None:
    """Write the text form, or the JSON form when ``path`` ends in ``.json``."""
    text = to_json(video_hash) if str(path).endswith(".json") else format_text(video_hash)
    Path(path).write_text(text, encoding="utf-8")


def read_hashes(path: str | os.PathLike[str]) -> VideoHash:
    """Read either form (JSON when the file starts with ``[``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as ex:
        raise FileNotFound(f"no such file: {path}", path=str(path)) from ex
    if text.lstrip().startswith("["):
        return from_json(text, source=str(path))
    return parse_text(text, source=str(path))


# ---------------------------------------------------------------------------------------------
# Matching.


@dataclass(frozen=True)
class VpdqMatch:
    """How much of two videos match, by time coverage (percentages 0-100)."""

    query_match_percent: float  #: share of the query's usable duration the compared video covers
    compared_match_percent: float  #: share of the compared video's usable duration the query covers

    def is_match(
        self,
        query_threshold: float = QUERY_MATCH_THRESHOLD_PERCENT,
        compared_threshold: float = COMPARED_MATCH_THRESHOLD_PERCENT,
    ) -> bool:
        return self.query_match_percent >= query_threshold and self.compared_match_percent >= compared_threshold


@dataclass(frozen=True)
class TimeCoverage:
    """How much of one video's usable duration another video covers (see module docstring)."""

    percent: float  #: covered share of ``total_seconds``, 0-100
    seconds: float  #: covered duration
    total_seconds: float  #: the usable duration (frames of quality >= 50)
    segments: tuple[tuple[float, float], ...]  #: covered ``(start, end)`` spans, in order


def hash_spacing(timestamps: np.ndarray) -> float:
    """The usual time between a video's hashed frames: the median gap (0 for one frame)."""
    t = np.unique(np.asarray(timestamps, dtype=np.float64))
    return float(np.median(np.diff(t))) if len(t) > 1 else 0.0


def frame_durations(timestamps: np.ndarray) -> np.ndarray:
    """The time each hashed frame (timestamps in order) stands for: until the next hashed frame;
    the last one for the median spacing."""
    t = np.asarray(timestamps, dtype=np.float64)
    out = np.empty(len(t))
    out[:-1] = np.diff(t)
    out[-1:] = hash_spacing(t)
    return out


def usable_timeline(video_hash: VideoHash, quality_threshold: int = QUALITY_THRESHOLD) -> tuple[VideoHash, np.ndarray]:
    """The frames matching compares (quality >= threshold, in time order) and each one's duration.

    Durations come from every hashed frame, so a low-quality frame's time counts for no frame.
    """
    ordered = video_hash.select(np.argsort(video_hash.timestamps, kind="stable"))
    usable = ordered.qualities >= quality_threshold
    return ordered.select(usable), frame_durations(ordered.timestamps)[usable]


def time_coverage(
    times: np.ndarray,
    durations: np.ndarray,
    here: np.ndarray,
    there: np.ndarray,
    distances: np.ndarray,
    there_spacing: float,
) -> TimeCoverage:
    """Coverage of one video's usable frames (``times`` in order, ``durations``) by another, from
    the matching pairs ``(here[k], there[k])`` (frame indices on each side) at ``distances[k]``
    bits and the other video's hash spacing (see module docstring)."""
    times = np.asarray(times, dtype=np.float64)
    here = np.asarray(here, dtype=np.int64)
    there = np.asarray(there, dtype=np.int64)
    covered = np.zeros(len(times), dtype=bool)
    covered[here] = True
    if len(here):
        # the anchor of each frame there: its closest frame here (the earliest of equals)
        order = np.lexsort((times[here], distances, there))
        first = np.ones(len(order), dtype=bool)
        first[1:] = there[order][1:] != there[order][:-1]
        anchors = np.sort(times[here][order][first])
        k = np.searchsorted(anchors, times + COVERAGE_TOLERANCE_S, side="right") - 1
        gap = times - anchors[np.maximum(k, 0)]
        covered |= (k >= 0) & (gap < there_spacing - COVERAGE_TOLERANCE_S)
    weights = np.asarray(durations, dtype=np.float64)
    if weights.sum() <= 0:  # a single frame (an image): count frames
        weights = np.ones(len(times))
    total = float(weights.sum())
    seconds = float(weights[covered].sum())
    segments: list[tuple[float, float]] = []
    for start, length in zip(times[covered], weights[covered], strict=True):
        if segments and start <= segments[-1][1] + COVERAGE_TOLERANCE_S:
            segments[-1] = (segments[-1][0], float(start + length))
        else:
            segments.append((float(start), float(start + length)))
    return TimeCoverage(100.0 * seconds / total if total else 0.0, seconds, total, tuple(segments))


def match_hashes(
    query: VideoHash,
    compared: VideoHash,
    *,
    distance_threshold: int = DISTANCE_THRESHOLD,
    quality_threshold: int = QUALITY_THRESHOLD,
) -> VpdqMatch:
    """Brute-force match of two videos by time coverage (see module docstring)."""
    q, q_durations = usable_timeline(query, quality_threshold)
    c, c_durations = usable_timeline(compared, quality_threshold)
    if len(q) == 0 or len(c) == 0:
        return VpdqMatch(0.0, 0.0)
    dist = np.stack([pdq.hamming_distance(q.hashes, h) for h in c.hashes])  # (compared, query)
    c_idx, q_idx = np.nonzero(dist <= distance_threshold)
    d = dist[c_idx, q_idx]
    q_cov = time_coverage(q.timestamps, q_durations, q_idx, c_idx, d, hash_spacing(compared.timestamps))
    c_cov = time_coverage(c.timestamps, c_durations, c_idx, q_idx, d, hash_spacing(query.timestamps))
    return VpdqMatch(q_cov.percent, c_cov.percent)
