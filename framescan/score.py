"""Per-frame category scores and the evidence behind them.

A label that feeds a category contributes ``score * weight``; a frame's category score is
the maximum contribution over every model and label (so two models agreeing do not add up
beyond what the stronger one says, and one strong detection is never diluted).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .frames import Detections
from .models import ModelManifest
from .report import Evidence


@dataclass
class FrameScore:
    """Scores of one sampled frame: per-category maximum and all contributing evidence.
    ``index`` and ``pts`` are the frame's (``YuvFrame.index``, ``YuvFrame.pts``)."""

    index: int
    time: float
    scores: dict[str, float] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    context: dict[str, int] = field(default_factory=dict)  # "model:label" -> detections on this frame
    pts: int | None = None
    #: "model:label" -> the highest raw (unweighted) score of that category-feeding signal on this
    #: frame, evidence or not (the report's timeline; offline rescoring)
    labels: dict[str, float] = field(default_factory=dict)

    def add(self, ev: Evidence) -> None:
        self.evidence.append(ev)
        if ev.weighted > self.scores.get(ev.category, 0.0):
            self.scores[ev.category] = ev.weighted
        key = f"{ev.model}:{ev.label}"
        if ev.score > self.labels.get(key, 0.0):
            self.labels[key] = ev.score


#: A classifier reports every class on every frame: probabilities below this are not kept as
#: evidence (they are far below any review threshold; the category score is their maximum).
CLASSIFIER_EVIDENCE_MIN = 0.05


class LabelMap:
    """Which class ids of a model feed which category, with their weights (from the manifest)."""

    def __init__(self, manifest: ModelManifest) -> None:
        self.model = manifest.name
        self.names = [lab.name for lab in manifest.labels]
        self.category = [lab.category for lab in manifest.labels]
        self.weight = np.array([lab.weight for lab in manifest.labels], np.float32)
        self.feeds = np.array([lab.category is not None for lab in manifest.labels], bool)
        self.context_ids = [i for i, lab in enumerate(manifest.labels) if lab.context]

    def evidence(self, dets: Detections, frame: FrameScore) -> None:
        """Add this model's category-feeding detections on ``frame`` to it (and count its context
        labels)."""
        if len(dets) == 0:
            return
        for cid in self.context_ids:
            n = int(np.count_nonzero((dets.class_id == cid) & (dets.score > 0)))
            if n:
                frame.context[f"{self.model}:{self.names[cid]}"] = n
        ids = dets.class_id
        valid = (ids >= 0) & (ids < len(self.names))
        ids = np.where(valid, ids, 0)
        feeding = valid & self.feeds[ids] & (dets.score > 0)
        if not dets.has_boxes:  # every class's score, also those below the evidence floor
            for i in np.flatnonzero(feeding):
                key = f"{self.model}:{self.names[int(ids[i])]}"
                frame.labels[key] = max(frame.labels.get(key, 0.0), float(dets.score[i]))
        floor = 0.0 if dets.has_boxes else CLASSIFIER_EVIDENCE_MIN
        sel = np.flatnonzero(feeding & (dets.score > floor))
        for i in sel:
            cid = int(ids[i])
            score = float(dets.score[i])
            box = tuple(float(v) for v in dets.xyxy[i]) if dets.has_boxes else None
            frame.add(
                Evidence(
                    time=frame.time,
                    frame_index=frame.index,
                    pts=frame.pts,
                    model=self.model,
                    label=self.names[cid],
                    category=self.category[cid],  # type: ignore[arg-type]
                    score=score,
                    weighted=score * float(self.weight[cid]),
                    box=box,  # type: ignore[arg-type]
                )
            )
