"""Symbol banks: reference images (flags, emblems, logos) found inside sampled frames with local
features, in the scan's own pass.

A symbol bank item is a reference image. Its ORB keypoints and descriptors are extracted once,
when the item is added (``reference_features``), and stored in the bank database with the
extractor's name, version and parameters (``framescan.banks``); the reference itself is kept too
(grey, at ``REFERENCE_SIDE``), so features are extracted again at load time when the extractor
changes. A scan extracts ORB features from each sampled frame's Y plane (upright, downscaled to
``FRAME_SIDE``, keypoints spread over a grid) and looks each descriptor up among every item's
(the gate: a locality-sensitive hash of all the bank's descriptors, ``LshIndex``, and a Numba
kernel). The gate's ratio-test matches vote, each for its item, rotation, scale and the
reference's centre it predicts (``hough_votes``); an item with enough votes in one such bin is a
candidate, and only a candidate's descriptors are matched exactly (a Numba brute-force Hamming
kernel, Lowe's ratio test) and fitted with RANSAC: a homography, or an affine transform when
the homography fails its checks. A match must be
geometrically consistent (``MatchParams``): enough inliers, the reference's corners projected
to a convex quadrilateral of the same orientation (no mirror), corner angles and sides not
collapsed by perspective, its centre in the frame, a size within the scale bounds. A match is
reported as ``framescan.report.Evidence`` (model ``bank:NAME``, label the item, box and
quadrilateral in upright frame pixels, inliers), which feeds the bank's category through the
usual aggregation (``framescan.decide.symbol_weight`` turns the bank's action into the
evidence's weight).

Thresholds are measured on a generated set (``benchmarks/bench_symbols.py``, ``docs/symbols.md``);
a bank may override them (``framescan bank add ... --min-inliers N --ratio R``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ._jit import kernel
from .errors import ConfigError
from .known import BANK_SIGNAL_PREFIX
from .pdq import _popcount64

if TYPE_CHECKING:
    from concurrent.futures import Future

    from .frames import YuvFrame
    from .policy import Policy
    from .report import Evidence

log = logging.getLogger(__name__)

#: The feature extractor and its version: stored with each item's features. Bump the version
#: when extraction changes in a way that makes stored descriptors incomparable.
EXTRACTOR = "orb"
#: 2: each keypoint's angle and size are stored with its position (the gate's votes need them).
EXTRACTOR_VERSION = 2
#: References are resized (keeping their aspect) so that their longer side is this many pixels.
REFERENCE_SIDE = 320
#: References are also extracted at this share of their size (features for small symbols).
SMALL_COPY = 0.5
#: Frames are matched at this longer side (downscaled from the decoded Y plane, never upscaled).
FRAME_SIDE = 960
#: An item with fewer keypoints than this is matched unreliably (``bank show`` warns).
MIN_RELIABLE_KEYPOINTS = 60
#: Items per symbol bank: bounds the matcher's memory (each item holds at most
#: 1.5 x ``ExtractorParams.reference_features`` descriptors of 32 bytes, their keypoints and
#: their places in the gate's hash tables: ``BYTES_PER_DESCRIPTOR``).
MAX_ITEMS_PER_BANK = 2000
#: The gate's locality-sensitive hash: ``LSH_TABLES`` tables, each keyed by ``LSH_BITS`` of the
#: 256 bits of a descriptor (chosen once, seeded); a frame descriptor is compared with the bank
#: descriptors that share its key in any table. The distance (bits) a gate match may have.
LSH_TABLES = 8
LSH_BITS = 12
LSH_SEED = 20261207
#: Buckets with more rows than this are skipped: keys many descriptors share (generic ones,
#: which rarely pass the ratio test) are most of the gate's work.
LSH_MAX_BUCKET = 16
GATE_DISTANCE = 64
#: The gate's vote bins: rotation (degrees), scale (octaves), the predicted centre (a share of
#: the symbol's predicted size); each match votes for the two nearest bins in each dimension.
HOUGH_ANGLE = 30.0
HOUGH_SCALE = 1.0
HOUGH_PLACE = 0.5
#: A candidate is matched exactly with the frame keypoints within ``NEAR`` x its predicted
#: longer side (plus ``NEAR_MARGIN`` pixels) of its predicted centre, in x and in y.
NEAR = 1.0
NEAR_MARGIN = 16.0
#: ... and only with the matches within ``AGREE_ANGLE`` degrees and ``AGREE_SCALE`` octaves of
#: the bin's rotation and scale.
AGREE_ANGLE = 30.0
AGREE_SCALE = 1.0
#: Matcher bytes per bank descriptor: 32 (descriptor) + 16 (x, y, angle, size) + 4 (owner) +
#: 4 per hash table.
BYTES_PER_DESCRIPTOR = 32 + 16 + 4 + 4 * LSH_TABLES
#: The per-bank overrides ``framescan bank add --kind symbol`` accepts (``MatchParams`` fields).
OVERRIDES = ("ratio", "min_inliers")


@dataclass(frozen=True)
class ExtractorParams:
    """ORB parameters. The reference side's are stored with the features."""

    reference_features: int = 300
    #: frames: up to this many keypoints (ORB keeps the strongest of each pyramid level, ranked by
    #: the FAST score: Harris's adds cost and found no more). Fewer crowd small symbols out: 3200
    #: spread over an 8 x 8 grid found 5 of 22 symbols at 10-20% of the frame width, 4000 or
    #: 6000 with or without the grid 14 (docs/symbols.md)
    frame_detect: int = 4000
    #: the frame's pyramid is sparser than the references' (which step by ``scale_factor`` over
    #: ``levels``): a frame keypoint still finds a reference level within 1.1x of its scale, and
    #: the frame's pyramid costs 1.7x its base image instead of 3.1x. Steps of 1.4, 1.5, 1.6,
    #: 1.7 found 86, 89, 87, 85 of 96 tuning clips (docs/symbols.md)
    frame_levels: int = 4
    frame_scale_factor: float = 1.5
    #: frames: a lower FAST threshold than the references' finds more of the keypoints of a
    #: symbol whose parts differ more in colour than in luma (two such stand-ins of a held-out
    #: set: 40 -> 42 of 48 clips found; the tuning sets unchanged, 89 of 96; about 3% more CPU)
    frame_fast_threshold: int = 10
    scale_factor: float = 1.2
    levels: int = 8
    fast_threshold: int = 12
    edge: int = 15  # border (px) with no keypoints; also ORB's patch size

    def reference_dict(self) -> dict[str, Any]:
        """What of these parameters the stored reference features depend on."""
        d = {k: v for k, v in asdict(self).items() if not k.startswith("frame_")}
        return {"side": REFERENCE_SIDE, "small_copy": SMALL_COPY, **d}

    def orb(self, features: int, frame: bool = False) -> Any:
        """An ORB extractor for references, or (``frame``) for frames."""
        import cv2

        return cv2.ORB_create(
            nfeatures=features,
            scaleFactor=self.frame_scale_factor if frame else self.scale_factor,
            nlevels=self.frame_levels if frame else self.levels,
            edgeThreshold=self.edge,
            patchSize=self.edge * 2 + 1 if self.edge < 15 else 31,
            fastThreshold=self.frame_fast_threshold if frame else self.fast_threshold,
            scoreType=cv2.ORB_FAST_SCORE if frame else cv2.ORB_HARRIS_SCORE,
        )


@dataclass(frozen=True)
class MatchParams:
    """When a homography counts as a match (chosen on the generated set: ``docs/symbols.md``)."""

    ratio: float = 0.8  #: Lowe's ratio test: best distance < ratio x second best
    max_distance: int = 64  #: and the best at most this many bits (of 256)
    min_good: int = 10  #: ratio-test matches an item needs before RANSAC
    min_votes: int = 5  #: the gate: votes an item needs in one bin (rotation, scale, centre)
    min_inliers: int = 10  #: RANSAC inliers a match needs
    min_inlier_share: float = 0.28  #: inliers / ratio-test matches of the item
    reprojection: float = 5.0  #: RANSAC's inlier distance, pixels at FRAME_SIDE
    min_spread: float = 0.01  #: inliers' bounding box / the reference's area
    min_side: float = 12.0  #: shortest side of the projected quadrilateral, pixels at FRAME_SIDE
    min_side_ratio: float = 0.25  #: shortest / longest side (perspective, not a collapsed quad)
    max_scale: float = 4.0  #: projected size / reference size (linear), an upper bound
    min_angle: float = 40.0  #: the quadrilateral's corner angles within [min_angle, 180 - min_angle] degrees

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> MatchParams:
        if not overrides:
            return self
        check_overrides(overrides)
        return replace(self, **{k: overrides[k] for k in OVERRIDES if k in overrides})


def check_overrides(overrides: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` on an unknown or out-of-range per-bank override."""
    for key, value in overrides.items():
        if key not in OVERRIDES:
            raise ConfigError(f"unknown symbol-bank setting {key!r}; known: {', '.join(OVERRIDES)}")
        if key == "ratio" and not (isinstance(value, (int, float)) and 0.5 <= value <= 0.95):
            raise ConfigError(f"ratio must be between 0.5 and 0.95, got {value!r}")
        if key == "min_inliers" and not (isinstance(value, int) and 6 <= value <= 500):
            raise ConfigError(f"min_inliers must be a whole number from 6 to 500, got {value!r}")


DEFAULT_EXTRACTOR = ExtractorParams()
DEFAULT_MATCH = MatchParams()


def extractor_id() -> str:
    """``orb/2``: stored with each item's features."""
    return f"{EXTRACTOR}/{EXTRACTOR_VERSION}"


@dataclass(frozen=True)
class SymbolFeatures:
    """A reference image's features: keypoint positions ``(N, 2)`` float32 in the reference as
    extracted (``width`` x ``height``, longer side ``REFERENCE_SIDE``), ORB descriptors
    ``(N, 32)`` uint8, each keypoint's ``angles`` (degrees) and ``sizes`` (reference pixels).
    ``image`` is that grey reference (to extract again after a change)."""

    width: int
    height: int
    points: np.ndarray
    descriptors: np.ndarray
    image: np.ndarray
    extractor: str = field(default_factory=extractor_id)
    params: str = field(default_factory=lambda: json.dumps(DEFAULT_EXTRACTOR.reference_dict(), sort_keys=True))
    angles: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    sizes: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))

    def __len__(self) -> int:
        return len(self.points)

    @property
    def current(self) -> bool:
        """Whether these features came from this framescan's extractor and parameters."""
        return (
            self.extractor == extractor_id()
            and json.loads(self.params) == DEFAULT_EXTRACTOR.reference_dict()
            and len(self.angles) == len(self.sizes) == len(self.points)
        )

    def keypoints(self) -> np.ndarray:
        """``(N, 4)`` float32: x, y, angle, size (as stored in a bank)."""
        return np.column_stack([self.points, self.angles, self.sizes]).astype(np.float32)


def as_grey(image: np.ndarray) -> np.ndarray:
    """A grey uint8 image from grey, RGB or RGBA (transparent parts over mid-grey)."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).astype(np.uint8) if img.max() <= 1.0 else np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return np.ascontiguousarray(img)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ConfigError(f"a symbol image must be grey, RGB or RGBA, got shape {img.shape}")
    rgb = img[..., :3].astype(np.float32)
    if img.shape[2] == 4:
        a = img[..., 3:4].astype(np.float32) / 255.0
        rgb = rgb * a + 128.0 * (1.0 - a)
    grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(grey + 0.5, 0, 255).astype(np.uint8)


def reference_features(image: np.ndarray, params: ExtractorParams = DEFAULT_EXTRACTOR) -> SymbolFeatures:
    """Extract a reference image's features (grey, RGB or RGBA array), resized to ``REFERENCE_SIDE``."""
    import cv2

    grey = as_grey(image)
    h, w = grey.shape
    if min(h, w) < 16:
        raise ConfigError(f"a symbol image must be at least 16x16 pixels, got {w}x{h}")
    r = REFERENCE_SIDE / max(h, w)
    size = (max(1, round(w * r)), max(1, round(h * r)))
    grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_CUBIC)
    return _extract(grey, params)


def _extract(grey: np.ndarray, params: ExtractorParams) -> SymbolFeatures:
    import cv2

    h, w = grey.shape
    pts, descs, angles, sizes = [], [], [], []
    # the reference as it is and at half its size: ORB's pyramid gives the coarse levels few
    # features, and a symbol at 10% of the frame width is matched by the small copy's
    for scale, n in ((1.0, params.reference_features), (SMALL_COPY, params.reference_features // 2)):
        img = (
            grey
            if scale == 1.0
            else cv2.resize(grey, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        )
        kps, des = params.orb(n).detectAndCompute(img, None)
        if des is not None:
            pts.append(np.array([k.pt for k in kps], np.float32).reshape(-1, 2) / scale)
            descs.append(des)
            angles.append(np.array([k.angle for k in kps], np.float32))
            sizes.append(np.array([k.size for k in kps], np.float32) / scale)
    points = np.concatenate(pts) if pts else np.empty((0, 2), np.float32)
    des = np.concatenate(descs) if descs else np.empty((0, 32), np.uint8)
    return SymbolFeatures(
        w,
        h,
        points,
        des,
        grey,
        extractor_id(),
        json.dumps(params.reference_dict(), sort_keys=True),
        np.concatenate(angles) if angles else np.empty(0, np.float32),
        np.concatenate(sizes) if sizes else np.empty(0, np.float32),
    )


def current_features(features: SymbolFeatures) -> SymbolFeatures:
    """``features``, extracted again from the stored reference when the extractor changed."""
    return features if features.current else _extract(features.image, DEFAULT_EXTRACTOR)


@dataclass(frozen=True)
class SymbolItem:
    """One reference image of a loaded symbol bank."""

    bank: str
    category: str
    action: str
    name: str
    features: SymbolFeatures
    params: MatchParams = DEFAULT_MATCH


@dataclass(frozen=True)
class SymbolHit:
    """One item found in one frame: the reference's corners in upright frame pixels (``quad``,
    clockwise from the top left of the reference), their bounding box, the inliers."""

    item: int  # index into the matcher's items
    quad: tuple[tuple[float, float], ...]
    box: tuple[float, float, float, float]
    inliers: int
    good: int  # ratio-test matches


def upright(y: np.ndarray, rotation: int, mirror: bool) -> np.ndarray:
    """The Y plane as displayed (``YuvFrame.rotation`` counter-clockwise, then the mirror): a view."""
    k = (rotation // 90) % 4
    out = np.rot90(y, k) if k else y
    return out[:, ::-1] if mirror else out


def _convex_same_orientation(quad: np.ndarray) -> bool:
    """Whether the quadrilateral is strictly convex with the reference's orientation (clockwise in
    image coordinates: a mirrored or twisted projection fails)."""
    d = np.roll(quad, -1, axis=0) - quad
    cross = d[:, 0] * np.roll(d, -1, axis=0)[:, 1] - d[:, 1] * np.roll(d, -1, axis=0)[:, 0]
    return bool(np.all(cross > 0))


@kernel()
def _knn2(queries, train, out_idx, out_d1, out_d2):  # pragma: no cover - compiled
    """For each query row (4 uint64: a 256-bit ORB descriptor) its nearest ``train`` row's
    index and Hamming distance, and the second nearest's distance (257 when there is none)."""
    for i in range(queries.shape[0]):
        q0 = queries[i, 0]
        q1 = queries[i, 1]
        q2 = queries[i, 2]
        q3 = queries[i, 3]
        best = 257
        second = 257
        arg = -1
        for j in range(train.shape[0]):
            d = (
                _popcount64(q0 ^ train[j, 0])
                + _popcount64(q1 ^ train[j, 1])
                + _popcount64(q2 ^ train[j, 2])
                + _popcount64(q3 ^ train[j, 3])
            )
            if d < second:
                if d < best:
                    second = best
                    best = d
                    arg = j
                else:
                    second = d
        out_idx[i] = arg
        out_d1[i] = best
        out_d2[i] = second


def as_words(descriptors: np.ndarray) -> np.ndarray:
    """``(N, 32)`` uint8 ORB descriptors as ``(N, 4)`` uint64 rows (for ``knn2``)."""
    return np.ascontiguousarray(descriptors, np.uint8).view(np.uint64).reshape(-1, 4)


def knn2(queries: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brute-force Hamming 2-nearest neighbours of ``(N, 4)`` uint64 rows in ``train``: the
    nearest's index (-1 when ``train`` is empty), its distance, the second's (257 when none)."""
    n = len(queries)
    idx, d1, d2 = np.empty(n, np.int64), np.empty(n, np.int32), np.empty(n, np.int32)
    if n:
        _knn2(queries, train, idx, d1, d2)
    return idx, d1, d2


def knn2_reference(queries: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NumPy reference of ``knn2``."""
    n = len(queries)
    if not len(train):
        return np.full(n, -1, np.int64), np.full(n, 257, np.int32), np.full(n, 257, np.int32)
    d = np.bitwise_count(queries[:, None, :] ^ train[None, :, :]).sum(-1).astype(np.int32)
    idx = np.argmin(d, axis=1)
    s = np.sort(d, axis=1)
    second = s[:, 1] if d.shape[1] > 1 else np.full(n, 257, np.int32)
    return idx.astype(np.int64), s[:, 0], second.astype(np.int32)


@kernel()
def _lsh_keys(words, bits, out):  # pragma: no cover - compiled
    """``out[i, t]``: the key of row ``i`` in table ``t``, the row's bits at ``bits[t]`` (positions
    0-255 of the 256-bit descriptor, first position most significant)."""
    for i in range(words.shape[0]):
        for t in range(bits.shape[0]):
            key = 0
            for b in range(bits.shape[1]):
                p = bits[t, b]
                key = (key << 1) | np.int64((words[i, p >> 6] >> np.uint64(p & 63)) & np.uint64(1))
            out[i, t] = key


@kernel()
def _lsh_knn2(queries, keys, train, order, offsets, max_bucket, out_idx, out_d1, out_d2):  # pragma: no cover - compiled
    """As ``_knn2``, over the ``train`` rows that share a key with the query in any table
    (``order[t, offsets[t, k]:offsets[t, k + 1]]``: the rows with key ``k`` in table ``t``), in
    buckets of at most ``max_bucket`` rows. A row found in several tables counts once."""
    for i in range(queries.shape[0]):
        q0 = queries[i, 0]
        q1 = queries[i, 1]
        q2 = queries[i, 2]
        q3 = queries[i, 3]
        best = 257
        second = 257
        arg = -1
        for t in range(keys.shape[1]):
            key = keys[i, t]
            if offsets[t, key + 1] - offsets[t, key] > max_bucket:
                continue
            for s in range(offsets[t, key], offsets[t, key + 1]):
                j = order[t, s]
                if j == arg:  # the best so far, found again in another table
                    continue
                d = (
                    _popcount64(q0 ^ train[j, 0])
                    + _popcount64(q1 ^ train[j, 1])
                    + _popcount64(q2 ^ train[j, 2])
                    + _popcount64(q3 ^ train[j, 3])
                )
                if d < second:
                    if d < best:
                        second = best
                        best = d
                        arg = j
                    else:
                        second = d
        out_idx[i] = arg
        out_d1[i] = best
        out_d2[i] = second


def lsh_keys_reference(words: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """NumPy reference of ``_lsh_keys``."""
    unpacked = np.unpackbits(words.view(np.uint8).reshape(len(words), 32), axis=1, bitorder="little")
    sel = unpacked[:, bits].astype(np.int64)  # rows x tables x bits
    weights = 1 << np.arange(bits.shape[1] - 1, -1, -1, dtype=np.int64)
    return (sel * weights).sum(-1)


class LshIndex:
    """A locality-sensitive hash of ``(N, 4)`` uint64 descriptors (bit sampling): ``tables`` tables,
    each keyed by ``bits`` of the 256 bits. ``knn2`` finds, among the rows that share a key with a
    query in any table, the nearest and the second nearest: a near neighbour (a few tens of bits
    away) shares a key in at least one table with high probability, a far one rarely."""

    def __init__(
        self,
        words: np.ndarray,
        tables: int = LSH_TABLES,
        bits: int = LSH_BITS,
        seed: int = LSH_SEED,
        max_bucket: int = LSH_MAX_BUCKET,
    ) -> None:
        self.max_bucket = max_bucket
        rng = np.random.default_rng(seed)
        self.words = np.ascontiguousarray(words, np.uint64)
        self.bits = np.stack([rng.choice(256, bits, replace=False) for _ in range(tables)]).astype(np.int64)
        keys = self.keys(self.words)
        self.order = np.ascontiguousarray(np.argsort(keys, axis=0, kind="stable").T, np.int32)
        self.offsets = np.ascontiguousarray(
            np.stack([np.searchsorted(np.sort(keys[:, t]), np.arange(2**bits + 1)) for t in range(tables)]), np.int32
        )

    def keys(self, words: np.ndarray) -> np.ndarray:
        out = np.empty((len(words), len(self.bits)), np.int64)
        if len(words):
            _lsh_keys(words, self.bits, out)
        return out

    @property
    def nbytes(self) -> int:
        return int(self.order.nbytes + self.offsets.nbytes)

    def knn2(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per query row: the nearest candidate's index (-1 when none), its distance (257 when
        none), the second's (257 when none)."""
        n = len(queries)
        idx, d1, d2 = np.empty(n, np.int64), np.empty(n, np.int32), np.empty(n, np.int32)
        if n:
            _lsh_knn2(queries, self.keys(queries), self.words, self.order, self.offsets, self.max_bucket, idx, d1, d2)
        return idx, d1, d2

    def knn2_reference(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """NumPy reference of ``knn2`` (ties between candidates may name another index)."""
        qk, tk = lsh_keys_reference(queries, self.bits), lsh_keys_reference(self.words, self.bits)
        bucket = np.stack([np.diff(o)[k] for o, k in zip(self.offsets, qk.T)], axis=1)  # queries x tables
        n = len(queries)
        idx, d1, d2 = np.full(n, -1, np.int64), np.full(n, 257, np.int32), np.full(n, 257, np.int32)
        for i in range(n):
            cand = np.flatnonzero(((tk == qk[i]) & (bucket[i] <= self.max_bucket)).any(axis=1))
            if not len(cand):
                continue
            d = np.bitwise_count(queries[i] ^ self.words[cand]).sum(-1).astype(np.int32)
            o = np.argsort(d, kind="stable")
            idx[i], d1[i] = cand[o[0]], d[o[0]]
            if len(o) > 1:
                d2[i] = d[o[1]]
        return idx, d1, d2


#: Each match votes for the two nearest bins in each of the four dimensions: 16 bins.
_CORNERS = np.array(np.meshgrid([0, 1], [0, 1], [0, 1], [0, 1], indexing="ij")).reshape(4, -1).T


def hough_votes(
    item: np.ndarray, rotation: np.ndarray, log_scale: np.ndarray, cx: np.ndarray, cy: np.ndarray, size: np.ndarray
) -> np.ndarray:
    """Each match's vote count: the most matches in one of the bins it votes for. A match is an
    item, the rotation from the reference keypoint to the frame's (degrees), the scale (log2),
    and where it puts the reference's centre in the frame (``cx``, ``cy``; ``size``: the
    reference's longer side there). Matches of one symbol agree on all four; chance matches
    scatter (Lowe 2004, 7.3)."""
    if not len(item):
        return np.empty(0, np.int64)
    f = np.stack(
        [
            (rotation % 360.0) / HOUGH_ANGLE,
            log_scale / HOUGH_SCALE,
            cx / (HOUGH_PLACE * size),
            cy / (HOUGH_PLACE * size),
        ],
        axis=1,
    )
    bins = np.floor(f - 0.5).astype(np.int64)[:, None, :] + _CORNERS[None]  # matches x 16 x 4
    bins[..., 0] %= round(360 / HOUGH_ANGLE)
    bins[..., 1:] = np.clip(bins[..., 1:], -(2**11), 2**11 - 1)  # 12 bits each: the key fits 64 bits
    key = np.repeat(item.astype(np.int64), 16) * 16 + bins[..., 0].ravel()
    for d in (1, 2, 3):
        key = key * 2**12 + (bins[..., d].ravel() + 2**11)
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return counts[inverse.reshape(-1, 16)].max(axis=1)


#: Two hits whose boxes overlap more than this (intersection over union) are one symbol.
SAME_PLACE_IOU = 0.3


def _one_per_place(hits: list[SymbolHit]) -> list[SymbolHit]:
    """The hit with the most inliers where several items matched at one place (references that
    share elements, e.g. the same lettering, can both fit a symbol; the right one fits best)."""
    kept: list[SymbolHit] = []
    for h in sorted(hits, key=lambda h: -h.inliers):
        if all(_iou(h.box, k.box) <= SAME_PLACE_IOU for k in kept):
            kept.append(h)
    return kept


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _angles_within(quad: np.ndarray, min_angle: float) -> bool:
    """Whether every corner angle of the quadrilateral lies in [min_angle, 180 - min_angle] degrees."""
    prev = np.roll(quad, 1, axis=0) - quad
    nxt = np.roll(quad, -1, axis=0) - quad
    cos = (prev * nxt).sum(1) / (np.linalg.norm(prev, axis=1) * np.linalg.norm(nxt, axis=1) + 1e-9)
    angles = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    return bool(np.all((angles >= min_angle) & (angles <= 180 - min_angle)))


class SymbolMatcher:
    """Every item of the loaded symbol banks, their descriptors stacked in one array and hashed
    for the gate (``LshIndex``). ``match`` finds items in one grey (upright) image. Memory
    (``nbytes``): ``BYTES_PER_DESCRIPTOR`` per descriptor, at most ``MAX_ITEMS_PER_BANK`` items of
    at most 1.5 x ``reference_features`` descriptors per bank, plus the hash tables' offsets."""

    def __init__(self, items: Sequence[SymbolItem], params: ExtractorParams = DEFAULT_EXTRACTOR) -> None:
        self.items = list(items)
        self.params = params
        feats = [current_features(it.features) for it in self.items]
        self.features = feats

        def stack(parts: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(np.concatenate(parts)) if parts else empty

        self.descriptors = stack([f.descriptors for f in feats], np.empty((0, 32), np.uint8))
        self.points = stack([f.points for f in feats], np.empty((0, 2), np.float32))
        self.angles = stack([f.angles for f in feats], np.empty(0, np.float32))
        self.sizes = stack([f.sizes for f in feats], np.empty(0, np.float32))
        self.owner = stack([np.full(len(f), i, np.int32) for i, f in enumerate(feats)], np.empty(0, np.int32))
        self.offsets = np.cumsum([0] + [len(f) for f in feats])
        self.centres = np.array([[f.width / 2, f.height / 2] for f in feats], np.float32).reshape(-1, 2)
        self.sides = np.array([max(f.width, f.height) for f in feats], np.float32)
        self.min_good = min((it.params.min_good for it in self.items), default=DEFAULT_MATCH.min_good)
        self.min_votes = min((it.params.min_votes for it in self.items), default=DEFAULT_MATCH.min_votes)
        self._orb = params.orb(params.frame_detect, frame=True)
        self.words = as_words(self.descriptors)
        self.index = LshIndex(self.words)
        self.gate_passed = 0  # (frame, item) pairs past the gate
        log.info(
            "symbol matcher: %d items, %d descriptors (%d bytes)", len(self.items), len(self.descriptors), self.nbytes
        )

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[Any, str, SymbolFeatures]]) -> SymbolMatcher:
        """From ``(bank, item name, features)`` (``framescan.banks.BankStore.iter_symbols``)."""
        items = [
            SymbolItem(b.name, b.category, b.action, name, f, DEFAULT_MATCH.with_overrides(b.overrides))
            for b, name, f in rows
        ]
        return cls(items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def nbytes(self) -> int:
        return int(
            self.words.nbytes  # the descriptors (as 64-bit words; ``descriptors`` is a view of the same rows)
            + self.points.nbytes
            + self.angles.nbytes
            + self.sizes.nbytes
            + self.owner.nbytes
            + self.index.nbytes
        )

    @property
    def categories(self) -> dict[str, list[str]]:
        """{category: [bank names]} of the loaded items."""
        out: dict[str, list[str]] = {}
        for it in self.items:
            names = out.setdefault(it.category, [])
            if it.bank not in names:
                names.append(it.bank)
        return out

    def frame_image(self, y: np.ndarray) -> tuple[np.ndarray, float]:
        """The image frames are matched in: ``y`` downscaled to ``FRAME_SIDE`` (never up;
        bilinear: 4x cheaper than area averaging, and found the same symbols), and the scale from
        it back to ``y``'s pixels."""
        import cv2

        h, w = y.shape
        r = min(1.0, FRAME_SIDE / max(h, w))
        if r < 1.0:
            small = cv2.resize(y, (max(1, round(w * r)), max(1, round(h * r))), interpolation=cv2.INTER_LINEAR)
            return small, w / small.shape[1]
        return np.ascontiguousarray(y), 1.0

    def frame_features(self, img: np.ndarray) -> tuple[Sequence[Any], np.ndarray | None]:
        """ORB keypoints and descriptors of a frame (``ExtractorParams``)."""
        kps, des = self._orb.detectAndCompute(img, None)
        if des is None or not kps:
            return (), None
        return kps, des

    def _votes(
        self, ref: np.ndarray, frame_pts: np.ndarray, angles: np.ndarray, sizes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Matches of bank descriptors ``ref`` to frame keypoints: their items, vote counts, and
        the place each predicts for its reference (centre x, y and longer side in frame pixels,
        rotation in degrees, log2 scale)."""
        item = self.owner[ref]
        rotation = angles - self.angles[ref]
        scale = sizes / np.maximum(self.sizes[ref], 1e-3)
        th = np.radians(rotation)
        v = self.centres[item] - self.points[ref]  # keypoint -> the reference's centre
        cx = frame_pts[:, 0] + scale * (np.cos(th) * v[:, 0] - np.sin(th) * v[:, 1])
        cy = frame_pts[:, 1] + scale * (np.sin(th) * v[:, 0] + np.cos(th) * v[:, 1])
        side = np.maximum(scale * self.sides[item], 1.0)
        log_scale = np.log2(scale)
        votes = hough_votes(item, rotation, log_scale, cx, cy, side)
        return item, votes, np.stack([cx, cy, side, rotation, log_scale], axis=1)

    def match(self, y: np.ndarray) -> list[SymbolHit]:
        """Every item found in grey image ``y`` (upright), with its quadrilateral in ``y``'s pixels."""
        return self.match_image(*self.frame_image(y))

    def match_image(self, img: np.ndarray, back: float) -> list[SymbolHit]:
        """``match`` on a frame already downscaled by ``frame_image`` (``back``: the scale from
        ``img`` back to the frame's pixels)."""
        if not len(self.descriptors):
            return []
        import cv2

        kps, des = self.frame_features(img)
        if des is None or len(kps) < self.min_good:
            return []
        # the gate: every frame descriptor looked up in the hash of every item's; the ratio-test
        # matches vote (item, rotation, scale, centre); most frames stop here
        words = as_words(des)
        t, d1, d2 = self.index.knn2(words)
        passed = np.flatnonzero((t >= 0) & (d1 < DEFAULT_MATCH.ratio * d2) & (d1 <= GATE_DISTANCE))
        if len(passed) < self.min_votes:
            return []
        frame_pts = cv2.KeyPoint_convert(kps).reshape(-1, 2)
        angles = np.array([kps[i].angle for i in passed], np.float32)
        sizes = np.array([kps[i].size for i in passed], np.float32)
        item, votes, place = self._votes(t[passed], frame_pts[passed], angles, sizes)
        best = np.zeros(len(self.items), np.int64)
        np.maximum.at(best, item, votes)
        candidates = [i for i in np.flatnonzero(best) if best[i] >= self.items[i].params.min_votes]
        self.gate_passed += len(candidates)
        hits = []
        for it in candidates:
            p = self.items[it].params
            lo, hi = self.offsets[it], self.offsets[it + 1]
            # the frame's keypoints where the best-voted bin puts the symbol, matched exactly
            # against all of the item's descriptors
            voted = place[(item == it) & (votes == best[it])]
            cx, cy, side, _, log_scale = np.median(voted, axis=0)
            th = np.radians(voted[:, 3])
            rotation = np.degrees(np.arctan2(np.sin(th).sum(), np.cos(th).sum()))
            reach = NEAR * side + NEAR_MARGIN
            near = np.flatnonzero((np.abs(frame_pts[:, 0] - cx) <= reach) & (np.abs(frame_pts[:, 1] - cy) <= reach))
            t2, e1, e2 = knn2(words[near], self.words[lo:hi])
            good = np.flatnonzero((e1 < p.ratio * e2) & (e1 <= p.max_distance))
            # and only the matches that agree with the bin's rotation and scale (fewer outliers:
            # RANSAC converges in fewer iterations, and fits the symbol rather than chance pairs)
            ref, fr = lo + t2[good], near[good]
            turn = (
                np.array([kps[i].angle for i in fr], np.float32) - self.angles[ref] - rotation + 180.0
            ) % 360.0 - 180.0
            scale = np.log2(np.array([kps[i].size for i in fr], np.float32) / np.maximum(self.sizes[ref], 1e-3))
            agree = (np.abs(turn) <= AGREE_ANGLE) & (np.abs(scale - log_scale) <= AGREE_SCALE)
            if np.count_nonzero(agree) < p.min_good:
                continue
            hit = self._verify(
                int(it), self.points[ref[agree]], frame_pts[fr[agree]], back, (img.shape[1], img.shape[0]), len(good)
            )
            if hit is not None:
                hits.append(hit)
        return _one_per_place(hits)

    def _verify(
        self,
        item: int,
        src: np.ndarray,
        dst: np.ndarray,
        back: float,
        size: tuple[int, int],
        matches: int | None = None,
    ) -> SymbolHit | None:
        """RANSAC of ``item``'s reference points ``src`` to frame points ``dst``: a homography, or
        when it fails the checks (inliers on a few lines or a small part of the symbol make it
        extrapolate wildly) an affine transform; the hit in the original frame's pixels (``back``:
        its scale). ``matches``: the ratio-test matches ``src`` was chosen from (the inlier share's
        denominator; default ``len(src)``)."""
        import cv2

        p = self.items[item].params
        if len(src) < p.min_good:
            return None
        H, mask = cv2.findHomography(src, dst, cv2.RANSAC, p.reprojection, maxIters=1000, confidence=0.995)
        if H is not None and mask is not None:
            hit = self._check(item, H, mask.ravel().astype(bool), src, dst, back, size, matches)
            if hit is not None:
                return hit
        A, mask = cv2.estimateAffine2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=p.reprojection, maxIters=2000, confidence=0.995
        )
        if A is None or mask is None:
            return None
        return self._check(
            item, np.vstack([A, [0.0, 0.0, 1.0]]), mask.ravel().astype(bool), src, dst, back, size, matches
        )

    def _check(
        self,
        item: int,
        H: np.ndarray,
        inl: np.ndarray,
        src: np.ndarray,
        dst: np.ndarray,
        back: float,
        size: tuple[int, int],
        matches: int | None = None,
    ) -> SymbolHit | None:
        """The geometric checks (``MatchParams``) of transform ``H`` with inliers ``inl``."""
        import cv2

        p = self.items[item].params
        f = self.features[item]
        matches = len(src) if matches is None else matches
        # a frame point matched to two reference points counts once
        n_inliers = len(np.unique(np.round(dst[inl]).astype(np.int32), axis=0)) if inl.any() else 0
        if n_inliers < p.min_inliers or n_inliers < p.min_inlier_share * matches:
            return None
        s = src[inl]
        spread = float(np.ptp(s[:, 0]) * np.ptp(s[:, 1])) / float(f.width * f.height)
        if spread < p.min_spread:
            return None
        corners = np.array([[0, 0], [f.width, 0], [f.width, f.height], [0, f.height]], np.float32)
        quad = cv2.perspectiveTransform(corners[None], H)[0]
        if not np.all(np.isfinite(quad)) or not _convex_same_orientation(quad):
            return None
        if not _angles_within(quad, p.min_angle):
            return None
        centre = quad.mean(axis=0)
        if not (0 <= centre[0] <= size[0] and 0 <= centre[1] <= size[1]):  # mostly outside the frame
            return None
        sides = np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1)
        if sides.min() < p.min_side or sides.min() < p.min_side_ratio * sides.max():
            return None
        area = 0.5 * abs(
            float(np.dot(quad[:, 0], np.roll(quad[:, 1], -1)) - np.dot(quad[:, 1], np.roll(quad[:, 0], -1)))
        )
        if np.sqrt(area / (f.width * f.height)) > p.max_scale:
            return None
        quad = quad * back
        box = (float(quad[:, 0].min()), float(quad[:, 1].min()), float(quad[:, 0].max()), float(quad[:, 1].max()))
        return SymbolHit(item, tuple((float(x), float(y)) for x, y in quad), box, n_inliers, matches)


class SymbolScan:
    """Symbol matching on one clip's sampled frames, on a thread of its own: the scan's
    preprocessing thread downscales each frame (``read``, which frees the decoder's buffer) and
    hands it over; the matching (OpenCV and the Numba kernels release the GIL) runs beside the
    models' inference, and the scan collects a frame's matches as evidence when it aggregates
    that frame (``take``, which waits for them), as it does on-screen text evidence. Frames in
    flight are bounded by the scan's own queues (a few batches of downscaled frames)."""

    def __init__(self, matcher: SymbolMatcher, policy: Policy) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from .decide import symbol_weight

        self.matcher = matcher
        self.weights = {
            (it.bank, it.category): symbol_weight(it.action, policy.rule(it.category)) for it in matcher.items
        }
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="framescan-symbols")
        self._pending: dict[int, Future[list[Evidence]]] = {}
        self.frames = 0
        self.seconds = 0.0  #: matching time, on the symbols thread

    def read(self, frame: YuvFrame) -> None:
        """Queue ``frame`` for matching (called in frame order)."""
        img, back = self.matcher.frame_image(upright(frame.y, frame.rotation, frame.mirror))
        self.frames += 1
        self._pending[frame.index] = self._pool.submit(self._match, img, back, frame.time, frame.index, frame.pts)

    def take(self, index: int) -> list[Evidence]:
        """The matches of frame ``index`` as evidence (waits for them; [] for a frame not read).
        A matching error is raised here, in the scan's thread."""
        pending = self._pending.pop(index, None)
        return pending.result() if pending is not None else []

    def close(self) -> None:
        """Stop the symbols thread; frames still queued are dropped."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()

    def _match(self, img: np.ndarray, back: float, t: float, index: int, pts: int | None) -> list[Evidence]:
        from .report import Evidence

        t0 = time.perf_counter()
        found = []
        for h in self.matcher.match_image(img, back):
            it = self.matcher.items[h.item]
            found.append(
                Evidence(
                    time=t,
                    frame_index=index,
                    pts=pts,
                    model=f"{BANK_SIGNAL_PREFIX}{it.bank}",
                    label=it.name,
                    category=it.category,
                    score=1.0,
                    weighted=self.weights[(it.bank, it.category)],
                    box=h.box,
                    quad=h.quad,
                    inliers=h.inliers,
                )
            )
        self.seconds += time.perf_counter() - t0
        return found
