"""Per-clip aggregation: category scores, segments with start/end, evidence.

``ClipAggregator`` follows the ``update() / compute()`` shape: feed it every scored frame
in presentation order, then ask for the per-category results.

A frame *hits* a category when its score reaches the policy's ``review`` threshold. Hits
less than ``policy.max_gap`` seconds apart form one segment: ``start`` is the time of its first
hitting frame, ``last_hit`` of its last, ``end`` the time of the first scored frame after the last
hit that does not hit (the content was gone by then; under fixed-rate sampling the last hit plus
the sampling interval), or the end given to ``finish`` when no scored frame follows; ``peak`` is
the highest score in it.
"""

from __future__ import annotations

from typing import Any

from .categories import Decision
from .decide import category_decision, clip_decision
from .policy import Policy
from .report import CategoryResult, Evidence, Segment
from .score import FrameScore

#: Evidence items kept per segment (highest weighted score first) and in the clip summary.
EVIDENCE_PER_SEGMENT = 10
EVIDENCE_PER_CLIP = 50
#: The timeline keeps a signal's series only when it exceeds this on some frame (the rest are
#: noise no policy acts on), and rounds scores to this many decimals.
TIMELINE_MIN_SCORE = 0.01
TIMELINE_DECIMALS = 4


class ClipAggregator:
    """Accumulates frame scores of one clip into category results."""

    def __init__(self, policy: Policy, signals: dict[str, list[str]], timeline: bool = False) -> None:
        self.policy = policy
        self.signals = signals
        self.keep_timeline = timeline
        self.reset()

    def reset(self) -> None:
        self.results = {c: CategoryResult(c, list(s)) for c, s in self.signals.items()}
        self.frames = 0
        self._open: dict[str, Segment] = {}  # per category: the segment no non-hit frame has ended yet
        self._top: list[Evidence] = []
        #: context labels (e.g. people): "model:label" -> {max_count, frames, first_time, peak_time}
        self.context: dict[str, dict[str, float | int]] = {}
        self._frames: list[FrameScore] = []  # every scored frame, when the timeline is kept

    def update(self, frame: FrameScore, *, point: bool = False) -> None:
        """Add the next scored frame (presentation order). ``point``: not a frame but a point in time
        with evidence of its own (speech: where a term was heard); it is not counted in ``frames``
        but hits like a frame (segments, ``hit_frames``, ``block_frames``)."""
        if not point:
            self.frames += 1
        if self.keep_timeline and not point:
            self._frames.append(frame)
        for key, n in frame.context.items():
            c = self.context.setdefault(key, {"max_count": 0, "frames": 0, "first_time": frame.time})
            c["frames"] += 1
            if n > c["max_count"]:
                c["max_count"], c["peak_time"] = n, frame.time
        self._top.extend(frame.evidence)
        if len(self._top) > 4 * EVIDENCE_PER_CLIP:
            self._top = sorted(self._top, key=lambda e: -e.weighted)[:EVIDENCE_PER_CLIP]
        for cat, res in self.results.items():
            if not res.signals:
                continue
            score = frame.scores.get(cat, 0.0)
            if score > res.score:
                res.score, res.peak_time = score, frame.time
            rule = self.policy.rule(cat)
            if score < rule.review:
                ended = self._open.pop(cat, None)
                if ended is not None:
                    ended.end = frame.time
                continue
            res.hit_frames += 1
            if score >= rule.block:
                res.block_frames += 1
            ev = [e for e in frame.evidence if e.category == cat]
            seg = res.segments[-1] if res.segments else None
            if seg is not None and frame.time - seg.last_hit <= self.policy.max_gap:
                seg.end = seg.last_hit = frame.time
                seg.frames += 1
                if score > seg.peak:
                    seg.peak, seg.peak_time = score, frame.time
                seg.evidence = sorted(seg.evidence + ev, key=lambda e: -e.weighted)[:EVIDENCE_PER_SEGMENT]
            else:
                ev = sorted(ev, key=lambda e: -e.weighted)[:EVIDENCE_PER_SEGMENT]
                seg = Segment(cat, frame.time, frame.time, frame.time, score, frame.time, 1, ev)
                res.segments.append(seg)
            self._open[cat] = seg
            res.decision = category_decision(rule, res.score, res.block_frames)

    def finish(self, end: float) -> None:
        """Close the segments whose last scored frame was a hit: they end at ``end`` (the end of
        what was read, or where an early exit stopped). Call once all frames are in."""
        for seg in self._open.values():
            seg.end = max(end, seg.last_hit)
        self._open.clear()

    def decision(self) -> Decision:
        """The models' decision so far: the most severe category decision."""
        return clip_decision(self.results.values())

    def top_evidence(self) -> list[Evidence]:
        return sorted(self._top, key=lambda e: -e.weighted)[:EVIDENCE_PER_CLIP]

    def timeline(self) -> dict[str, Any] | None:
        """Every scored frame's scores, in time order (None unless asked for): ``time``,
        ``frame_index``, per category the score the policy compared (``scores``), and per
        category-feeding signal ("model:label") its raw score (``labels``; a signal that never
        exceeds ``TIMELINE_MIN_SCORE`` is left out)."""
        if not self.keep_timeline:
            return None
        frames = sorted(self._frames, key=lambda f: f.time)
        nd = TIMELINE_DECIMALS
        scores = {
            cat: [round(f.scores.get(cat, 0.0), nd) for f in frames] for cat, res in self.results.items() if res.signals
        }
        keys = sorted({k for f in frames for k, v in f.labels.items() if v > TIMELINE_MIN_SCORE})
        return {
            "time": [round(f.time, 3) for f in frames],
            "frame_index": [f.index for f in frames],
            "scores": scores,
            "labels": {k: [round(f.labels.get(k, 0.0), nd) for f in frames] for k in keys},
        }
