"""Output decoders: raw model outputs -> per-frame ``Detections``. Vectorised NumPy; the only
Python loop left is NMS's loop over *kept* boxes (a handful per frame), never over anchors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import ModelError
from .frames import Detections, Geometry

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


DECODERS: dict[str, Callable[..., list[Detections]]] = {
    "yolov8": decode_yolov8,
    "softmax": _classifier(_softmax),
    "sigmoid": _classifier(_sigmoid),
}
