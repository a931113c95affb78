"""Per-frame category scores and the evidence behind them.

A label that feeds a category contributes ``score * weight``; a frame's category score is
the maximum contribution over every model and label (so two models agreeing do not add up
beyond what the stronger one says, and one strong detection is never diluted).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .frames import Detections
from .models import ModelManifest
from .report import Evidence

if TYPE_CHECKING:
    from .lexicon import Lexicon


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


@dataclass(frozen=True)
class SignalIndex:
    """Every category-feeding signal, ``"model:label"`` (on-screen text: ``"ocr:<list>:<term>"``)
    -> (category, weight): how raw signal scores (``FrameScore.labels``, the report's
    ``timeline.labels``) make the category scores a policy compares. The scan and
    ``framescan eval --rescore`` both score frames through it."""

    signals: dict[str, tuple[str, float]]

    @classmethod
    def of(cls, manifests: Iterable[ModelManifest], lexicon: Lexicon | None = None) -> SignalIndex:
        out = {
            f"{m.name}:{lab.name}": (lab.category, float(lab.weight))
            for m in manifests
            for lab in m.labels
            if lab.category is not None
        }
        if lexicon is not None:
            from .ocr import OCR_MODEL

            out.update({f"{OCR_MODEL}:{t.list_name}:{t.term}": (t.category, float(t.weight)) for t in lexicon.terms})
        return cls(out)

    def category_scores(self, labels: dict[str, float]) -> dict[str, float]:
        """A frame's category scores from its raw signal scores: per category, the strongest
        weighted signal (signals not in the index are ignored)."""
        out: dict[str, float] = {}
        for key, score in labels.items():
            entry = self.signals.get(key)
            if entry is None:
                continue
            cat, weight = entry
            if score * weight > out.get(cat, 0.0):
                out[cat] = score * weight
        return out


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
        if not dets.has_boxes:  # every class's score counts, also below the evidence floor
            for i in np.flatnonzero(feeding):
                cid = int(ids[i])
                key, score = f"{self.model}:{self.names[cid]}", float(dets.score[i])
                frame.labels[key] = max(frame.labels.get(key, 0.0), score)
                cat, weighted = self.category[cid], score * float(self.weight[cid])
                if weighted > frame.scores.get(cat, 0.0):  # type: ignore[arg-type]
                    frame.scores[cat] = weighted  # type: ignore[index]
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
