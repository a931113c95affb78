"""Per-frame category scores and the evidence behind them.

A label that feeds a category contributes ``score * weight``; a frame's category score is
the maximum contribution over every model and label (so two models agreeing do not add up
beyond what the stronger one says, and one strong detection is never diluted). A model's
manifest can calibrate a label (``calibration``, measured on clean footage): a raw score below
its ``min_score`` counts as 0, and a label with ``second_signal`` counts only on a frame where
another model's signal for the same category reaches that raw score (corroboration: a whole-frame
classifier that calls textures ``Porn`` cannot send clean footage to review on its own).
``SignalIndex.category_scores`` is that rule, the one fusion of the live scan and of rescoring.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .frames import Detections
from .models import LabelCalibration, ModelManifest
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
        """Add evidence: its raw score to ``labels``, and its weighted score to ``scores`` as a
        plain maximum (the scan then fuses the frame's ``labels`` with ``SignalIndex.fuse``)."""
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
    ``timeline.labels``) make the category scores a policy compares, with the calibration of
    the signals whose manifest calibrates them. The scan and ``framescan eval --rescore`` both
    score frames through it."""

    signals: dict[str, tuple[str, float]]
    #: "model:label" -> its calibration (signals not named count as score x weight)
    calibration: dict[str, LabelCalibration] = field(default_factory=dict)

    @classmethod
    def of(cls, manifests: Iterable[ModelManifest], lexicon: Lexicon | None = None) -> SignalIndex:
        out = {
            f"{m.name}:{lab.name}": (lab.category, float(lab.weight))
            for m in manifests
            for lab in m.labels
            if lab.category is not None
        }
        calibration = {f"{m.name}:{name}": cal for m in manifests for name, cal in m.calibration.items()}
        if lexicon is not None:
            from .ocr import OCR_MODEL

            out.update({f"{OCR_MODEL}:{t.list_name}:{t.term}": (t.category, float(t.weight)) for t in lexicon.terms})
        return cls(out, calibration)

    def category_scores(self, labels: dict[str, float]) -> dict[str, float]:
        """A frame's category scores from its raw signal scores: per category, the strongest
        weighted signal that counts (signals not in the index are ignored). A calibrated signal
        counts from its ``min_score``; one that needs a ``second_signal`` counts only when a
        signal of another model (its own ``min_score`` passed) feeds the same category with at
        least that raw score on this frame."""
        out: dict[str, float] = {}
        waiting: list[tuple[str, str, float, float]] = []  # (key, category, weighted, second signal needed)
        for key, score in labels.items():
            entry = self.signals.get(key)
            if entry is None:
                continue
            cat, weight = entry
            cal = self.calibration.get(key)
            if cal is not None:
                if score < cal.min_score:
                    continue
                if cal.second_signal is not None:
                    waiting.append((key, cat, score * weight, cal.second_signal))
                    continue
            if score * weight > out.get(cat, 0.0):
                out[cat] = score * weight
        for key, cat, weighted, needed in waiting:
            if weighted > out.get(cat, 0.0) and self._corroborated(key, cat, needed, labels):
                out[cat] = weighted
        return out

    def _corroborated(self, key: str, category: str, needed: float, labels: dict[str, float]) -> bool:
        """Whether a signal of another model than ``key``'s feeds ``category`` with a raw score
        of at least ``needed`` (and its own ``min_score``) in ``labels``."""
        model = key.split(":", 1)[0]
        for other, score in labels.items():
            entry = self.signals.get(other)
            if entry is None or entry[0] != category or other.split(":", 1)[0] == model or score < needed:
                continue
            cal = self.calibration.get(other)
            if cal is None or score >= cal.min_score:
                return True
        return False

    def fuse(self, frame: FrameScore) -> FrameScore:
        """Set ``frame.scores`` from ``frame.labels`` (``category_scores``); returns the frame."""
        frame.scores = self.category_scores(frame.labels)
        return frame


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
        """Add this model's category-feeding detections on ``frame`` to it (raw scores in
        ``frame.labels``, evidence above the floor; and count its context labels). The frame's
        category scores come from ``SignalIndex.fuse`` once every model has run on it."""
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
