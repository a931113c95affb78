"""On-screen text: which frames to read (``TextGate``), reading them (``OcrReader``: RapidOCR running the
PP-OCRv4 ONNX models that ship in framescan's models/, see models/build_ocr.py: nothing is downloaded), and
matching the text against a ``Lexicon`` (``find_terms``). Needs the ``ocr`` extra: ``pip install "framescan[ocr]"``.

Cost on 2 cores: ~140 ms per read 720x1280 frame without text, ~200 ms with a caption (at 540x960), so
the gate decides which frames to read; see docs/ocr.md.
"""

from __future__ import annotations

import importlib.resources
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError
from .frames import YuvFrame
from .lexicon import Lexicon, TermMatch
from .preprocess import _MATRIX
from .score import Evidence

#: ``Evidence.model`` of text evidence.
OCR_MODEL = "ocr"
#: PP-OCRv4 text detection and recognition (framescan._models, copied by models/build_ocr.py).
OCR_DET_FILE = "ch_PP-OCRv4_det_infer.onnx"
OCR_REC_FILE = "ch_PP-OCRv4_rec_infer.onnx"

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class TextLine:
    """A line of text: ``box`` is (x1, y1, x2, y2) in pixels of the image given to ``OcrReader.read``."""

    text: str
    score: float
    box: Box


# --------------------------------------------------------------------------- frames


def _yuv_to_rgb_matrix(matrix: str, full_range: bool) -> np.ndarray:
    """3x4 affine map (Y, U, V, 1) -> (R, G, B) for ``cv2.transform``."""
    kr, kb = _MATRIX[matrix]
    kg = 1.0 - kr - kb
    ys, cs, y0 = (1.0, 1.0, 0.0) if full_range else (255.0 / 219.0, 255.0 / 224.0, 16.0)
    rows = np.array(
        [
            [ys, 0.0, 2.0 * (1.0 - kr) * cs],
            [ys, -(2.0 * kb * (1.0 - kb) / kg) * cs, -(2.0 * kr * (1.0 - kr) / kg) * cs],
            [ys, 2.0 * (1.0 - kb) * cs, 0.0],
        ]
    )
    offset = -(rows @ np.array([y0, 128.0, 128.0]))
    return np.concatenate([rows, offset[:, None]], 1).astype(np.float32)


def _fit(w: int, h: int, max_side: int | None) -> tuple[int, int]:
    """(w, h) scaled down so the longer side is at most ``max_side`` (never up)."""
    if not max_side or max(w, h) <= max_side:
        return w, h
    r = max_side / max(w, h)
    return max(1, round(w * r)), max(1, round(h * r))


def frame_to_rgb(frame: YuvFrame, max_side: int | None = None) -> np.ndarray:
    """Upright RGB uint8 ``(H, W, 3)`` of ``frame`` (rotation and mirror applied, the stream's matrix and
    range), shrunk so its longer side is at most ``max_side`` (``None``: full size).

    Full size uses nearest chroma like ``preprocess.yuv_to_rgb_reference`` (equal within 1 level); shrinking
    resizes the planes first (luma area-averaged), so a small image costs less than a full one.
    """
    import cv2

    w, h = frame.width, frame.height
    y, u, v = (np.ascontiguousarray(p) for p in (frame.y, frame.u, frame.v))  # cv2 wants dense planes
    nw, nh = _fit(w, h, max_side)  # in stored orientation: the longer side is the same upright
    if (nw, nh) == (w, h):
        cw, ch = u.shape[1] * 2, u.shape[0] * 2
        u = cv2.resize(u, (cw, ch), interpolation=cv2.INTER_NEAREST)[:h, :w]
        v = cv2.resize(v, (cw, ch), interpolation=cv2.INTER_NEAREST)[:h, :w]
    else:
        y = cv2.resize(y, (nw, nh), interpolation=cv2.INTER_AREA)
        u = cv2.resize(u, (nw, nh), interpolation=cv2.INTER_LINEAR)
        v = cv2.resize(v, (nw, nh), interpolation=cv2.INTER_LINEAR)
    yuv = cv2.merge([y, np.ascontiguousarray(u), np.ascontiguousarray(v)])
    rgb = cv2.transform(yuv, _yuv_to_rgb_matrix(frame.color.matrix, frame.color.full_range))
    if frame.rotation == 90:
        rgb = cv2.rotate(rgb, cv2.ROTATE_90_COUNTERCLOCKWISE)
    elif frame.rotation == 180:
        rgb = cv2.rotate(rgb, cv2.ROTATE_180)
    elif frame.rotation == -90:
        rgb = cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE)
    if frame.mirror:
        rgb = cv2.flip(rgb, 1)
    return rgb


# --------------------------------------------------------------------------- which frames to read


class TextGate:
    """Decides which frames to OCR, from a low-resolution luma thumbnail (about ``width`` pixels wide).

    The thumbnail's edge energy (mean absolute luma step to the right and down neighbours) is pooled into
    a ``grid`` of cells (columns, rows). A frame is read when it is the first one, when ``max_interval``
    seconds passed since the last read frame, or when some cell's edge energy differs from the last read
    frame's by more than ``threshold`` (luma levels per pixel): a caption appearing or going, a cut. Edge
    energy, unlike a plain luma difference, hardly moves when the camera pans over the same scene.
    Never sooner than ``min_interval`` after the last read (caps the cost when everything keeps changing;
    a caption that is still there then is read at the next frame).

    Cell changes measured on 720x1280 clips with the defaults: panning over a noisy background ~2, a caption
    appearing or going ~35, a caption replaced by another of similar length 9-27, photographs drifting
    across the frame 8-18, a cut 20-33.
    """

    def __init__(
        self,
        threshold: float = 8.0,
        max_interval: float = 2.0,
        min_interval: float = 0.5,
        width: int = 160,
        grid: tuple[int, int] = (8, 16),
    ) -> None:
        if threshold < 0 or max_interval <= 0 or min_interval < 0 or width < 16 or min(grid) < 1:
            raise ConfigError(
                f"bad TextGate options: {threshold = }, {max_interval = }, {min_interval = }, {width = }, {grid = }"
            )
        self.threshold = threshold
        self.max_interval = max_interval
        self.min_interval = min_interval
        self.width = width
        self.grid = grid
        self.reset()

    def reset(self) -> None:
        """Forget the last read frame (start of a new clip)."""
        self._cells: np.ndarray | None = None
        self._time = -math.inf
        self.last_change = math.nan  #: the change measured by the last ``should_read``

    def thumbnail(self, image: YuvFrame | np.ndarray) -> np.ndarray:
        """float32 luma thumbnail, ``width`` to ``2 * width`` pixels wide (the frame shrunk by an integer
        factor; the stored picture: rotation does not matter)."""
        import cv2

        if isinstance(image, YuvFrame):
            gray = np.ascontiguousarray(image.y)
        elif image.ndim == 3:
            gray = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
        else:
            gray = np.ascontiguousarray(image)
        h, w = gray.shape
        k = max(1, min(w // self.width, h // self.grid[1]))  # an integer factor: INTER_AREA is 3x faster then
        return cv2.resize(gray, (w // k, h // k), interpolation=cv2.INTER_AREA).astype(np.float32)

    def cells(self, image: YuvFrame | np.ndarray) -> np.ndarray:
        """Edge energy of the thumbnail pooled into ``grid`` cells, shape (rows, columns)."""
        import cv2

        t = self.thumbnail(image)
        edges = np.zeros_like(t)
        edges[:, :-1] += np.abs(np.diff(t, axis=1))
        edges[:-1] += np.abs(np.diff(t, axis=0))
        return cv2.resize(edges, self.grid, interpolation=cv2.INTER_AREA)

    def should_read(self, image: YuvFrame | np.ndarray, time: float | None = None) -> bool:
        """Whether to OCR this frame (``time`` in seconds; defaults to ``image.time`` for a YuvFrame).

        A True answer counts as a read: the next frames are compared with this one.
        """
        if time is None:
            if not isinstance(image, YuvFrame):
                raise ValueError("time is required for an ndarray image")
            time = image.time
        cells = self.cells(image)
        same_shape = self._cells is not None and self._cells.shape == cells.shape
        self.last_change = float(np.abs(cells - self._cells).max()) if same_shape else math.inf  # type: ignore[operator]
        elapsed = time - self._time
        read = not same_shape or elapsed >= self.max_interval or elapsed < 0  # < 0: a seek back
        if not read and elapsed >= self.min_interval:
            read = self.last_change > self.threshold
        if read:
            self._cells, self._time = cells, time
        return read


# --------------------------------------------------------------------------- reading


class OcrReader:
    """RapidOCR (PP-OCRv4 detection + recognition, ONNX Runtime) on one image at a time.

    The image is shrunk so its longer side is at most ``max_side`` (960: 540x960 for a 720x1280 frame)
    and the detector runs at that size (RapidOCR would otherwise scale the short side up to 736).
    ``unclip_ratio`` grows the detected boxes before recognition: RapidOCR's 1.6 crops captions so tight
    that the recogniser drops most spaces between words (46% word recall on our caption set at 540x960);
    2.4 gives 100%. ``threads`` is ONNX Runtime's intra-op thread count of each model (inter-op 1; at
    most the core count).
    Lines scoring below ``min_score`` are dropped. ``use_cls`` runs the 180-degree text direction
    classifier (off by default: captions are upright).
    """

    def __init__(
        self,
        max_side: int = 960,
        threads: int = 2,
        min_score: float = 0.5,
        unclip_ratio: float = 2.4,
        use_cls: bool = False,
    ) -> None:
        try:
            from rapidocr import ModelType, OCRVersion, RapidOCR
        except ImportError as ex:
            raise ConfigError(f'on-screen text reading needs RapidOCR: pip install "framescan[ocr]" ({ex})') from None
        if max_side < 32 or threads < 1 or not 0.0 <= min_score <= 1.0 or unclip_ratio < 1.0:
            raise ConfigError(f"bad OcrReader options: {max_side = }, {threads = }, {min_score = }, {unclip_ratio = }")
        self.max_side = max_side
        # RapidOCR ignores a count above the core count (ONNX Runtime then takes every core): clamp it
        self.threads = threads = min(threads, os.cpu_count() or 1)
        self.min_score = min_score
        self.unclip_ratio = unclip_ratio
        self.use_cls = use_cls
        models = importlib.resources.files("framescan._models")
        self._engine: Any = RapidOCR(
            params={
                # PP-OCRv4 mobile from framescan's own files (RapidOCR's wheel has other models)
                "Det.ocr_version": OCRVersion.PPOCRV4,
                "Det.model_type": ModelType.MOBILE,
                "Det.model_path": str(models.joinpath(OCR_DET_FILE)),
                "Rec.ocr_version": OCRVersion.PPOCRV4,
                "Rec.model_type": ModelType.MOBILE,
                "Rec.model_path": str(models.joinpath(OCR_REC_FILE)),
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                "Global.text_score": min_score,
                "Global.use_cls": use_cls,
                "Global.log_level": "error",
                "Det.limit_type": "max",
                "Det.limit_side_len": max_side,
                "Det.unclip_ratio": unclip_ratio,
            }
        )

    def read(self, rgb: np.ndarray) -> list[TextLine]:
        """Text lines of an RGB uint8 ``(H, W, 3)`` image, top to bottom; boxes in ``rgb``'s pixels."""
        import cv2

        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        nw, nh = _fit(w, h, self.max_side)
        small = rgb if (nw, nh) == (w, h) else cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(small[..., ::-1])  # RapidOCR takes ndarrays as BGR
        out = self._engine(bgr, use_cls=self.use_cls)
        result = zip(out.boxes, out.txts, out.scores) if out.txts else ()
        sx, sy = w / nw, h / nh
        lines = []
        for quad, text, score in result:
            q = np.asarray(quad, np.float32)
            box = (
                float(np.clip(q[:, 0].min() * sx, 0, w)),
                float(np.clip(q[:, 1].min() * sy, 0, h)),
                float(np.clip(q[:, 0].max() * sx, 0, w)),
                float(np.clip(q[:, 1].max() * sy, 0, h)),
            )
            text = str(text).strip()  # the grown boxes give the recogniser margins it reads as spaces
            if text:
                lines.append(TextLine(text, float(score), box))
        return lines

    def read_frame(self, frame: YuvFrame) -> list[TextLine]:
        """``read`` on the upright frame (shrunk straight from YUV); boxes in upright frame pixels."""
        w, h = frame.upright_size
        small = frame_to_rgb(frame, self.max_side)
        lines = self.read(small)
        sx, sy = w / small.shape[1], h / small.shape[0]
        return [TextLine(t.text, t.score, (t.box[0] * sx, t.box[1] * sy, t.box[2] * sx, t.box[3] * sy)) for t in lines]


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class TextHit:
    """A lexicon term found in the text of one frame: ``score`` is the lowest OCR score of the lines the
    term spans, ``box`` their union."""

    match: TermMatch
    score: float
    box: Box
    text: str  # the text as read, of the matched span


def find_terms(lines: Sequence[TextLine], lexicon: Lexicon) -> list[TextHit]:
    """Match ``lexicon`` against the lines joined in reading order (a phrase may span two lines)."""
    parts, spans, pos = [], [], 0
    for line in lines:
        parts.append(line.text)
        spans.append((pos, pos + len(line.text)))
        pos += len(line.text) + 1
    joined = " ".join(parts)
    hits = []
    for m in lexicon.match(joined):
        idx = [i for i, (s, e) in enumerate(spans) if s < m.end and m.start < e]
        box = (
            min(lines[i].box[0] for i in idx),
            min(lines[i].box[1] for i in idx),
            max(lines[i].box[2] for i in idx),
            max(lines[i].box[3] for i in idx),
        )
        hits.append(TextHit(m, min(lines[i].score for i in idx), box, joined[m.start : m.end]))
    return hits


def evidence(hits: Sequence[TextHit], frame_index: int, time: float, pts: int | None = None) -> list[Evidence]:
    """Evidence items for ``FrameScore.add``: label ``<list>:<term>``, weighted = OCR score x term weight,
    ``text`` the matched span as read; ``frame_index``, ``time`` and ``pts`` are the frame's
    (``YuvFrame``)."""
    return [
        Evidence(
            time=time,
            frame_index=frame_index,
            model=OCR_MODEL,
            label=f"{h.match.list_name}:{h.match.term}",
            category=h.match.category,
            score=h.score,
            weighted=h.score * h.match.weight,
            box=h.box,
            text=h.text,
            pts=pts,
        )
        for h in hits
    ]
