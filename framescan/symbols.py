"""Symbol banks: reference images (flags, emblems, logos) found inside sampled frames with local
features, in the scan's own pass.

A symbol bank item is a reference image. Its ORB keypoints and descriptors are extracted once,
when the item is added (``reference_features``), and stored in the bank database with the
extractor's name, version and parameters (``framescan.banks``); the reference itself is kept too
(grey, at ``REFERENCE_SIDE``), so features are extracted again at load time when the extractor
changes. A scan extracts ORB features from each sampled frame's Y plane (upright, downscaled to
``FRAME_SIDE``, keypoints spread over a grid), compares them with a few descriptors of every
item (the gate, a Numba brute-force Hamming kernel: most frames stop here), then with all of a
candidate item's (Lowe's ratio test), and fits a homography with RANSAC. A match must be
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
    from .frames import YuvFrame
    from .policy import Policy
    from .report import Evidence

log = logging.getLogger(__name__)

#: The feature extractor and its version: stored with each item's features. Bump the version
#: when extraction changes in a way that makes stored descriptors incomparable.
EXTRACTOR = "orb"
EXTRACTOR_VERSION = 1
#: References are resized (keeping their aspect) so that their longer side is this many pixels.
REFERENCE_SIDE = 320
#: References are also extracted at this share of their size (features for small symbols).
SMALL_COPY = 0.5
#: Frames are matched at this longer side (downscaled from the decoded Y plane, never upscaled).
FRAME_SIDE = 960
#: An item with fewer keypoints than this is matched unreliably (``bank show`` warns).
MIN_RELIABLE_KEYPOINTS = 60
#: Items per symbol bank: bounds the matcher's memory (each item holds at most
#: ``ExtractorParams.reference_features`` descriptors of 32 bytes and their points).
MAX_ITEMS_PER_BANK = 2000
#: The gate: each item's descriptors a frame is matched against first (evenly spread over the
#: item's), the distance (bits) a gate match may have, and the gate matches (ratio test passed)
#: an item needs before the frame is matched against all of its descriptors.
GATE_PER_ITEM = 128
GATE_DISTANCE = 64
GATE_MIN = 2
#: The per-bank overrides ``framescan bank add --kind symbol`` accepts (``MatchParams`` fields).
OVERRIDES = ("ratio", "min_inliers")


@dataclass(frozen=True)
class ExtractorParams:
    """ORB parameters. The reference side's are stored with the features."""

    reference_features: int = 300
    #: frames: up to ``frame_detect`` keypoints detected, then at most ``frame_per_tile`` (the
    #: strongest) kept in each cell of a ``frame_grid`` x ``frame_grid`` grid, so that a textured
    #: background does not take every keypoint from a small symbol
    frame_detect: int = 6000
    frame_grid: int = 8
    frame_per_tile: int = 50
    scale_factor: float = 1.2
    levels: int = 8
    fast_threshold: int = 12
    edge: int = 15  # border (px) with no keypoints; also ORB's patch size

    def reference_dict(self) -> dict[str, Any]:
        """What of these parameters the stored reference features depend on."""
        d = {k: v for k, v in asdict(self).items() if not k.startswith("frame_")}
        return {"side": REFERENCE_SIDE, "small_copy": SMALL_COPY, **d}

    def orb(self, features: int) -> Any:
        import cv2

        return cv2.ORB_create(
            nfeatures=features,
            scaleFactor=self.scale_factor,
            nlevels=self.levels,
            edgeThreshold=self.edge,
            patchSize=self.edge * 2 + 1 if self.edge < 15 else 31,
            fastThreshold=self.fast_threshold,
        )


@dataclass(frozen=True)
class MatchParams:
    """When a homography counts as a match (chosen on the generated set: ``docs/symbols.md``)."""

    ratio: float = 0.8  #: Lowe's ratio test: best distance < ratio x second best
    max_distance: int = 64  #: and the best at most this many bits (of 256)
    min_good: int = 10  #: the gate: ratio-test matches an item needs before RANSAC
    min_inliers: int = 12  #: RANSAC inliers a match needs
    min_inlier_share: float = 0.25  #: inliers / ratio-test matches of the item
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
    """``orb/1``: stored with each item's features."""
    return f"{EXTRACTOR}/{EXTRACTOR_VERSION}"


@dataclass(frozen=True)
class SymbolFeatures:
    """A reference image's features: keypoint positions ``(N, 2)`` float32 in the reference as
    extracted (``width`` x ``height``, longer side ``REFERENCE_SIDE``) and ORB descriptors
    ``(N, 32)`` uint8. ``image`` is that grey reference (to extract again after a change)."""

    width: int
    height: int
    points: np.ndarray
    descriptors: np.ndarray
    image: np.ndarray
    extractor: str = field(default_factory=extractor_id)
    params: str = field(default_factory=lambda: json.dumps(DEFAULT_EXTRACTOR.reference_dict(), sort_keys=True))

    def __len__(self) -> int:
        return len(self.points)

    @property
    def current(self) -> bool:
        """Whether these features came from this framescan's extractor and parameters."""
        return self.extractor == extractor_id() and json.loads(self.params) == DEFAULT_EXTRACTOR.reference_dict()


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
    pts, descs = [], []
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
    points = np.concatenate(pts) if pts else np.empty((0, 2), np.float32)
    des = np.concatenate(descs) if descs else np.empty((0, 32), np.uint8)
    return SymbolFeatures(w, h, points, des, grey, extractor_id(), json.dumps(params.reference_dict(), sort_keys=True))


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
    """Every item of the loaded symbol banks, their descriptors stacked in one array. ``match``
    finds items in one grey (upright) image. Memory: the descriptors and points of every item
    (``nbytes``), at most ``MAX_ITEMS_PER_BANK`` items of ``reference_features`` each per bank."""

    def __init__(self, items: Sequence[SymbolItem], params: ExtractorParams = DEFAULT_EXTRACTOR) -> None:

        self.items = list(items)
        self.params = params
        feats = [current_features(it.features) for it in self.items]
        self.features = feats
        self.descriptors = (
            np.ascontiguousarray(np.concatenate([f.descriptors for f in feats]))
            if feats
            else np.empty((0, 32), np.uint8)
        )
        self.points = np.concatenate([f.points for f in feats]) if feats else np.empty((0, 2), np.float32)
        self.owner = (
            np.concatenate([np.full(len(f), i, np.int32) for i, f in enumerate(feats)])
            if feats
            else np.empty(0, np.int32)
        )
        self.min_good = min((it.params.min_good for it in self.items), default=DEFAULT_MATCH.min_good)
        self._detector = params.orb(params.frame_detect)
        self._describer = params.orb(params.frame_grid**2 * params.frame_per_tile)
        self.offsets = np.cumsum([0] + [len(f) for f in feats])
        gate = [
            self.offsets[i] + np.unique(np.linspace(0, len(f) - 1, min(len(f), GATE_PER_ITEM)).round().astype(np.int64))
            for i, f in enumerate(feats)
            if len(f)
        ]
        gate_idx = np.concatenate(gate) if gate else np.empty(0, np.int64)
        self.words = as_words(self.descriptors)
        self.gate_words = np.ascontiguousarray(self.words[gate_idx])
        self.gate_owner = self.owner[gate_idx]
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
            + self.owner.nbytes
            + self.gate_words.nbytes
            + self.gate_owner.nbytes
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
        """The image frames are matched in: ``y`` downscaled to ``FRAME_SIDE`` (never up), and the
        scale from it back to ``y``'s pixels."""
        import cv2

        h, w = y.shape
        r = min(1.0, FRAME_SIDE / max(h, w))
        if r < 1.0:
            small = cv2.resize(y, (max(1, round(w * r)), max(1, round(h * r))), interpolation=cv2.INTER_AREA)
            return small, w / small.shape[1]
        return np.ascontiguousarray(y), 1.0

    def frame_features(self, img: np.ndarray) -> tuple[Sequence[Any], np.ndarray | None]:
        """ORB keypoints and descriptors of a frame, spread over the grid (``ExtractorParams``)."""
        kps = self._detector.detect(img, None)
        if not kps:
            return kps, None
        g, per = self.params.frame_grid, self.params.frame_per_tile
        h, w = img.shape
        pts = np.array([k.pt for k in kps], np.float32)
        response = np.array([k.response for k in kps], np.float32)
        cell = np.minimum(pts[:, 1] * g // h, g - 1).astype(np.int32) * g + np.minimum(
            pts[:, 0] * g // w, g - 1
        ).astype(np.int32)
        order = np.lexsort((-response, cell))  # by cell, the strongest first
        ranked = cell[order]
        rank = np.arange(len(order)) - np.searchsorted(ranked, ranked, side="left")
        kept = [kps[i] for i in order[rank < per]]
        return self._describer.compute(img, kept)

    def match(self, y: np.ndarray) -> list[SymbolHit]:
        """Every item found in grey image ``y`` (upright), with its quadrilateral in ``y``'s pixels."""
        if not len(self.descriptors):
            return []
        import cv2

        img, back = self.frame_image(y)
        kps, des = self.frame_features(img)
        if des is None or len(kps) < self.min_good:
            return []
        # the gate: the frame against a few descriptors of every item; most frames stop here
        words = as_words(des)
        t, d1, d2 = knn2(words, self.gate_words)
        owners = self.gate_owner[t]
        passed = (d1 < DEFAULT_MATCH.ratio * d2) & (d1 <= GATE_DISTANCE)
        counts = np.bincount(owners[passed], minlength=len(self.items))
        candidates = np.flatnonzero(counts >= GATE_MIN)
        self.gate_passed += len(candidates)
        if not len(candidates):
            return []
        frame_pts = cv2.KeyPoint_convert(kps).reshape(-1, 2)
        hits = []
        for item in candidates:
            p = self.items[item].params
            lo, hi = self.offsets[item], self.offsets[item + 1]
            t, d1, d2 = knn2(words, self.words[lo:hi])
            good = (d1 < p.ratio * d2) & (d1 <= p.max_distance)
            if np.count_nonzero(good) < p.min_good:
                continue
            hit = self._verify(
                int(item), self.points[lo + t[good]], frame_pts[good], back, (img.shape[1], img.shape[0])
            )
            if hit is not None:
                hits.append(hit)
        return _one_per_place(hits)

    def _verify(
        self, item: int, src: np.ndarray, dst: np.ndarray, back: float, size: tuple[int, int]
    ) -> SymbolHit | None:
        """The homography of ``item``'s reference points ``src`` to frame points ``dst`` and the
        geometric checks; the hit in the original frame's pixels (``back``: its scale)."""
        import cv2

        p = self.items[item].params
        f = self.features[item]
        if len(src) < p.min_good:
            return None
        H, mask = cv2.findHomography(src, dst, cv2.RANSAC, p.reprojection, maxIters=1000, confidence=0.995)
        if H is None or mask is None:
            return None
        inl = mask.ravel().astype(bool)
        # a frame point matched to two reference points counts once
        n_inliers = len(np.unique(np.round(dst[inl]).astype(np.int32), axis=0)) if inl.any() else 0
        if n_inliers < p.min_inliers or n_inliers < p.min_inlier_share * len(src):
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
        return SymbolHit(item, tuple((float(x), float(y)) for x, y in quad), box, n_inliers, len(src))


class SymbolScan:
    """Symbol matching on one clip's sampled frames, in the scan's preprocessing thread: matches
    become evidence filed under the frame's index (``found``), which the scan adds to the frame's
    score (as on-screen text evidence is)."""

    def __init__(self, matcher: SymbolMatcher, policy: Policy) -> None:
        from .decide import symbol_weight

        self.matcher = matcher
        self.weights = {
            (it.bank, it.category): symbol_weight(it.action, policy.rule(it.category)) for it in matcher.items
        }
        self.found: dict[int, list[Evidence]] = {}
        self.frames = 0
        self.seconds = 0.0

    def read(self, frame: YuvFrame) -> None:
        from .report import Evidence

        t0 = time.perf_counter()
        self.frames += 1
        hits = self.matcher.match(upright(frame.y, frame.rotation, frame.mirror))
        found = []
        for h in hits:
            it = self.matcher.items[h.item]
            found.append(
                Evidence(
                    time=frame.time,
                    frame_index=frame.index,
                    pts=frame.pts,
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
        if found:
            self.found[frame.index] = found
        self.seconds += time.perf_counter() - t0
