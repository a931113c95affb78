"""Output decoders: raw model outputs -> per-frame ``Detections``. Vectorised NumPy; the only
Python loop left is NMS's loop over *kept* boxes (a handful per frame), never over anchors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from .errors import ModelError
from .frames import Detections, Geometry
from .models import DECODERS as DECODER_NAMES

# NudeNet's own post-processing constants (nudenet.py: ``_postprocess``).
YOLO_CANDIDATE_THRESHOLD = 0.2
YOLO_SCORE_THRESHOLD = 0.25
YOLO_IOU_THRESHOLD = 0.45


def nms(xyxy: np.ndarray, score: np.ndarray, score_threshold: float, iou_threshold: float) -> np.ndarray:
    """Class-agnostic greedy NMS with OpenCV ``NMSBoxes`` semantics.

    Keeps boxes with ``score > score_threshold`` in decreasing score order, suppressing any
    box whose IoU with a kept box exceeds ``iou_threshold``. Returns kept indices.
    """
    cand = np.flatnonzero(score > score_threshold)
    if cand.size == 0:
        return cand
    order = cand[np.argsort(-score[cand], kind="stable")]
    x1, y1, x2, y2 = (xyxy[order, i].astype(np.float64) for i in range(4))
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    alive = np.ones(order.size, bool)
    keep = []
    for i in range(order.size):
        if not alive[i]:
            continue
        keep.append(order[i])
        rest = np.flatnonzero(alive[i + 1 :]) + i + 1
        if rest.size == 0:
            break
        iw = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
        ih = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
        inter = iw * ih
        union = area[i] + area[rest] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
        alive[rest[iou > iou_threshold]] = False
    return np.asarray(keep, np.int64)


def decode_yolov8(outputs: np.ndarray, geometries: Sequence[Geometry], params: dict[str, Any]) -> list[Detections]:
    """YOLOv8 head without NMS in the graph: ``[N, 4 + C, A]`` with (cx, cy, w, h) in input pixels."""
    if outputs.ndim != 3:
        raise ModelError(f"yolov8 decoder expects a [N, 4+C, anchors] output, got {outputs.shape = }")
    cand_t = float(params.get("candidate_threshold", YOLO_CANDIDATE_THRESHOLD))
    score_t = float(params.get("score_threshold", YOLO_SCORE_THRESHOLD))
    iou_t = float(params.get("iou_threshold", YOLO_IOU_THRESHOLD))
    result = []
    for i, geo in enumerate(geometries):
        pred = outputs[i]
        cls_scores = pred[4:]
        best = cls_scores.max(axis=0)
        cand = np.flatnonzero(best >= cand_t)
        if cand.size == 0:
            result.append(Detections.empty())
            continue
        cls = cls_scores[:, cand].argmax(axis=0).astype(np.int32)
        score = best[cand].astype(np.float32)
        cx, cy, w, h = pred[0, cand], pred[1, cand], pred[2, cand], pred[3, cand]
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        xyxy = geo.to_frame(xyxy)
        keep = nms(xyxy, score, score_t, iou_t)
        result.append(Detections(xyxy[keep], score[keep], cls[keep]))
    return result


# human's NanoDet post-processing (@vladmandic/human src/object/nanodet.ts and its config defaults).
NANODET_SCORE_THRESHOLD = 0.2
NANODET_IOU_THRESHOLD = 0.4
# human's maxDetected is 10, a display setting; more are kept so a weapon is not crowded out by people.
NANODET_MAX_DETECTIONS = 100
# human scales the arg-max bin by 2.5 / (32 * s) of the image for stride 32 / s: 1.015625 strides.
NANODET_DISTANCE_SCALE = 2.5 * 13 / 32
# Highest-scoring candidates that go into NMS (human has no cap; this bounds NMS on pathological frames).
NANODET_CANDIDATE_LIMIT = 1000


@lru_cache(maxsize=8)
def _nanodet_centres(input_size: int, strides: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchor centres (x, y) in input pixels and each anchor's stride, grids in ``strides`` order, row-major."""
    cx, cy, st = [], [], []
    for s in strides:
        n = input_size // s
        rows, cols = np.divmod(np.arange(n * n), n)
        cx.append((cols + 0.5) * s)
        cy.append((rows + 0.5) * s)
        st.append(np.full(n * n, s, np.float64))
    return np.concatenate(cx), np.concatenate(cy), np.concatenate(st)


def decode_nanodet(outputs: np.ndarray, geometries: Sequence[Geometry], params: dict[str, Any]) -> list[Detections]:
    """NanoDet head decoded as human's ``nanodet.ts`` does: ``[N, A, C + 4 * bins]``, per anchor ``C``
    sigmoid class scores then the left/top/right/bottom distance-bin logits, anchors of the square
    grids of ``params["strides"]`` concatenated in that order.

    Every (anchor, class) with ``score > score_threshold`` is a candidate (classes in
    ``exclude_classes`` never are); its distances are the arg-max bin (``regression: "argmax"``,
    human) or the softmax expectation over the bins (``"expectation"``, upstream NanoDet), times
    the stride and ``distance_scale``. Class-agnostic NMS, as human, over the ``candidate_limit``
    highest-scoring candidates, then at most ``max_detections``.
    """
    size = int(params["input_size"])
    strides = tuple(int(s) for s in params["strides"])
    n_cls = int(params.get("num_classes", 80))
    regression = params.get("regression", "argmax")
    if regression not in ("argmax", "expectation"):
        raise ModelError(f"nanodet decoder: regression {regression!r} must be 'argmax' or 'expectation'")
    cx, cy, stride = _nanodet_centres(size, strides)
    if outputs.ndim != 3 or outputs.shape[1] != cx.size or (outputs.shape[2] - n_cls) % 4 or outputs.shape[2] <= n_cls:
        raise ModelError(
            f"nanodet decoder expects a [N, {cx.size}, {n_cls} + 4 * bins] output for input {size} and strides "
            f"{strides}, got {outputs.shape = }"
        )
    bins = (outputs.shape[2] - n_cls) // 4
    score_t = float(params.get("score_threshold", NANODET_SCORE_THRESHOLD))
    iou_t = float(params.get("iou_threshold", NANODET_IOU_THRESHOLD))
    max_det = int(params.get("max_detections", NANODET_MAX_DETECTIONS))
    scale = float(params.get("distance_scale", NANODET_DISTANCE_SCALE))
    limit = max(1, int(params.get("candidate_limit", NANODET_CANDIDATE_LIMIT)))
    allowed = np.ones(n_cls, bool)
    allowed[[int(c) for c in params.get("exclude_classes", ()) if 0 <= int(c) < n_cls]] = False
    result = []
    for i, geo in enumerate(geometries):
        scores = outputs[i, :, :n_cls]
        anchor, cls = np.nonzero((scores > score_t) & allowed)
        if anchor.size == 0:
            result.append(Detections.empty())
            continue
        score = scores[anchor, cls].astype(np.float32)
        if score.size > limit:
            top = np.argpartition(-score, limit - 1)[:limit]
            anchor, cls, score = anchor[top], cls[top], score[top]
        logits = outputs[i, anchor, n_cls:].reshape(-1, 4, bins).astype(np.float64)
        if regression == "argmax":
            dist = logits.argmax(axis=2).astype(np.float64)
        else:
            e = np.exp(logits - logits.max(axis=2, keepdims=True))
            dist = (e / e.sum(axis=2, keepdims=True)) @ np.arange(bins, dtype=np.float64)
        dist *= (stride[anchor] * scale)[:, None]
        x, y = cx[anchor], cy[anchor]
        xyxy = np.stack([x - dist[:, 0], y - dist[:, 1], x + dist[:, 2], y + dist[:, 3]], axis=1)
        xyxy = geo.to_frame(xyxy)
        keep = nms(xyxy, score, score_t, iou_t)[:max_det]
        result.append(Detections(xyxy[keep], score[keep], cls[keep].astype(np.int32)))
    return result


def _classifier(activation: Callable[[np.ndarray], np.ndarray]) -> Callable[..., list[Detections]]:
    def decode(outputs: np.ndarray, geometries: Sequence[Geometry], params: dict[str, Any]) -> list[Detections]:
        logits = outputs.reshape(outputs.shape[0], -1).astype(np.float32)
        probs = activation(logits) if params.get("apply_activation", True) else logits
        n_cls = probs.shape[1]
        ids = np.arange(n_cls, dtype=np.int32)
        empty = np.zeros((0, 4), np.float32)
        return [Detections(empty, probs[i].astype(np.float32), ids.copy()) for i in range(len(geometries))]

    return decode


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


decode_softmax = _classifier(_softmax)
decode_sigmoid = _classifier(_sigmoid)

#: ``output.decoder`` name (``framescan.models.DECODERS``) -> its ``decode_<name>`` function.
DECODERS: dict[str, Callable[..., list[Detections]]] = {name: globals()[f"decode_{name}"] for name in DECODER_NAMES}
