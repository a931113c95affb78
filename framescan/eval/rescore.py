"""What a scan decided about one clip, read from its report (``ClipView.of_report``) or decided
again from its stored timeline under another policy (``rescore``) through the scan's own
functions: ``SignalIndex.category_scores`` -> ``FrameScore`` -> ``ClipAggregator`` -> ``decide``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

#: Score given to a category a known-content (bank) match decided: a match is certain, whatever
#: the models say (curves rank it above every model score).
MATCH_SCORE = 1.0


@dataclass(frozen=True)
class CategoryView:
    """One category of one clip: the clip's peak score, decision, segments (start, end: the
    models' segments, then the time ranges of its known-content matches) and the banks that
    matched."""

    score: float
    decision: str
    segments: list[tuple[float, float]] = field(default_factory=list)
    matches: list[str] = field(default_factory=list)  # bank names

    @property
    def flagged(self) -> bool:
        return self.decision in ("review", "block")

    @property
    def rank_score(self) -> float:
        """The score curves rank clips by: the peak, or ``MATCH_SCORE`` with a bank match."""
        return MATCH_SCORE if self.matches else self.score


@dataclass(frozen=True)
class ClipView:
    """What the figures need of one scanned clip."""

    decision: str
    status: str
    duration: float
    categories: dict[str, CategoryView]


def _matches(report: dict[str, Any], category: str) -> tuple[list[str], list[tuple[float, float]]]:
    """The banks whose known-content matches raised ``category``, and the time ranges they cover."""
    kc = report.get("known_content") or {}
    found = [m for m in kc.get("matches") or [] if m.get("category") == category]
    segs = [(float(s["start"]), float(s["end"])) for m in found for s in m.get("segments") or []]
    return sorted({str(m.get("bank")) for m in found}), segs


def _duration(report: dict[str, Any]) -> float:
    cov = report.get("coverage") or {}
    clip = report.get("clip") or {}
    return float(clip.get("duration") or cov.get("decoded_seconds") or 0.0)


def timeline_peaks(report: dict[str, Any], index: Any) -> dict[str, float]:
    """Per category, the highest score over the timeline's frames, made from the raw signal
    scores by ``index`` as the scan makes them (the timeline keeps 4 decimals and leaves out
    signals that never exceed 0.01: the peaks a rescore sees)."""
    tl = report.get("timeline") or {}
    labels = tl.get("labels") or {}
    peaks: dict[str, float] = {}
    for i in range(len(tl.get("time") or [])):
        for cat, v in index.category_scores({k: s[i] for k, s in labels.items() if s[i] > 0.0}).items():
            if v > peaks.get(cat, 0.0):
                peaks[cat] = v
    return peaks


def of_report(report: dict[str, Any], index: Any = None) -> ClipView:
    """The clip as its scan decided it (the report's own decisions and segments). With the
    signal ``index``, the scores are the timeline's peaks (``timeline_peaks``), as a rescore
    computes them, so that curves over scanned and rescored clips rank alike."""
    peaks = timeline_peaks(report, index) if index is not None and report.get("timeline") else None
    cats = {}
    for cat, r in (report.get("categories") or {}).items():
        if not r.get("signals"):
            continue
        segs = [(float(s["start"]), float(s["end"])) for s in r.get("segments") or []]
        banks, matched = _matches(report, cat)
        score = round(peaks.get(cat, 0.0), 4) if peaks is not None else float(r.get("score") or 0.0)
        cats[cat] = CategoryView(score, str(r["decision"]), segs + matched, banks)
    return ClipView(str(report["decision"]), str(report.get("status")), _duration(report), cats)


class Rescorer:
    """Decides stored reports again under ``policy``, with the signal index of the given models
    (and lexicon, for reports whose scan read on-screen text)."""

    def __init__(self, policy: Any, lexicons: tuple[str, ...] | None = None) -> None:
        self.policy = policy
        self.lexicons = lexicons
        self._index: dict[tuple[tuple[str, ...], bool], Any] = {}

    def index(self, report: dict[str, Any]) -> Any:
        from ..models import load_manifest
        from ..score import SignalIndex

        names = tuple(str(m["name"]) for m in report.get("models") or [])
        ocr = (report.get("coverage") or {}).get("ocr_frames") is not None
        key = (names, ocr)
        if key not in self._index:
            lexicon = None
            if ocr:
                from ..lexicon import Lexicon

                lexicon = Lexicon.load(self.lexicons)
            self._index[key] = SignalIndex.of([load_manifest(n) for n in names], lexicon)
        return self._index[key]

    def rescore(self, report: dict[str, Any]) -> ClipView:
        """``report`` decided again from its timeline under this policy: the same functions as
        the scan (``framescan.score``, ``framescan.aggregate``, ``framescan.decide``)."""
        from ..aggregate import ClipAggregator
        from ..decide import decide
        from ..known import KnownContentResult
        from ..score import FrameScore

        tl = report.get("timeline")
        if not tl:
            raise ConfigError(f"{report.get('source')}: the stored report has no timeline: it cannot be rescored")
        index = self.index(report)
        signals = {c: list(r.get("signals") or []) for c, r in (report.get("categories") or {}).items()}
        agg = ClipAggregator(self.policy, signals)
        labels = tl.get("labels") or {}
        times = tl["time"]
        for i, (t, idx) in enumerate(zip(times, tl["frame_index"])):
            raw = {k: v[i] for k, v in labels.items() if v[i] > 0.0}
            agg.update(FrameScore(index=int(idx), time=float(t), scores=index.category_scores(raw), labels=raw))
        cov = report.get("coverage") or {}
        stopped = cov.get("stopped_at")
        # the scan closes a segment still showing at the last scored frame where decoding ended
        end = (
            float(stopped)
            if stopped is not None
            else float(times[0] if times else 0.0) + float(cov.get("decoded_seconds") or 0.0)
        )
        agg.finish(end)
        kc_d = report.get("known_content")
        kc = None
        if kc_d is not None:
            kc = KnownContentResult(int(kc_d["hashed_frames"]), int(kc_d["bank_hashes"]), list(kc_d["matches"]), 0.0)
        verdict = decide(agg.results, kc, report.get("status") == "partial")
        cats = {}
        for cat, r in verdict.categories.items():
            if not r.signals:
                continue
            segs = [(round(s.start, 3), round(s.end, 3)) for s in r.segments]
            banks, matched = _matches(report, cat)
            cats[cat] = CategoryView(round(r.score, 4), str(r.decision), segs + matched, banks)
        return ClipView(str(verdict.decision), str(report.get("status")), _duration(report), cats)


def strongest_signal(report: dict[str, Any], category: str, index: Any) -> tuple[str, float, float] | None:
    """The signal (``model:label`` or ``ocr:<list>:<term>``) with the highest weighted score for
    ``category`` on any frame of the timeline: (signal, weighted score, time); None without one."""
    tl = report.get("timeline") or {}
    best: tuple[str, float, float] | None = None
    for key, series in (tl.get("labels") or {}).items():
        entry = index.signals.get(key)
        if entry is None or entry[0] != category:
            continue
        weight = entry[1]
        for t, v in zip(tl["time"], series):
            if best is None or v * weight > best[1]:
                best = (key, round(v * weight, 4), float(t))
    return best
