"""The one place that decides: policy thresholds per category, known-content matches, partial
coverage and early exit -> allow / review / block, with the reasons."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .categories import Decision
from .report import CategoryResult

if TYPE_CHECKING:
    from .known import KnownContentResult
    from .policy import CategoryRule


def category_decision(rule: CategoryRule, peak: float, block_frames: int) -> Decision:
    """One category's decision from its peak score and how many frames reached ``block``."""
    if peak >= rule.block and block_frames >= rule.min_block_frames:
        return Decision.BLOCK
    if peak >= rule.review:
        return Decision.REVIEW
    return Decision.ALLOW


def match_decision(action: str, video_match: bool) -> Decision:
    """A known-content match's decision: a video match takes its bank's action; frame matches
    only send the clip to review."""
    return Decision(action) if video_match else Decision.REVIEW


def symbol_weight(action: str, rule: CategoryRule) -> float:
    """The weighted score a symbol-bank match (``framescan.symbols``) gives its category on its
    frame: a geometrically verified match of a ``block`` bank scores 1.0 (it blocks once it is on
    ``min_block_frames`` sampled frames, like any detection: a one-frame flash goes to review);
    one of a ``review`` bank scores the category's ``review`` threshold, so it reviews and never
    blocks (unless the policy blocks at its review threshold)."""
    return 1.0 if action == "block" else rule.review


def clip_decision(categories: Iterable[CategoryResult]) -> Decision:
    """The most severe decision of the categories that were scanned (have a signal)."""
    return max((r.decision for r in categories if r.signals), default=Decision.ALLOW)


def should_stop(decision: Decision) -> bool:
    """Early exit: whether scanning can stop at the models' decision so far (``block``: no
    further frame can lower it)."""
    return decision is Decision.BLOCK


@dataclass
class Verdict:
    decision: Decision
    reasons: list[str]
    categories: dict[str, CategoryResult]  # with their known-content matches and final decisions


def decide(categories: dict[str, CategoryResult], known: KnownContentResult | None, partial: bool) -> Verdict:
    """The clip's verdict: every category's threshold decision (``category_decision``), raised by
    its known-content matches; the most severe of them; a clip not read completely (``partial``)
    is never a plain ``allow`` (it becomes ``review``)."""
    if known is not None:
        categories = {c: _with_matches(r, known.for_category(c)) for c, r in categories.items()}
    decision = clip_decision(categories.values())
    reasons = [
        f"{r.category}: peak {r.score:.2f} at {r.peak_time:.2f} s, {r.hit_frames} frame(s) >= review, "
        f"{r.block_frames} >= block -> {r.decision}"
        for r in categories.values()
        if r.signals and r.decision is not Decision.ALLOW and r.hit_frames and r.peak_time is not None
    ]
    if known is not None:
        reasons += known.reasons()
    if partial and decision is Decision.ALLOW:
        decision = Decision.REVIEW
        reasons.append("clip was not read completely: a partial scan is never a plain allow")
    return Verdict(decision, reasons, categories)


def _with_matches(result: CategoryResult, matches: list[dict]) -> CategoryResult:
    decision = max([result.decision, *(Decision(m["decision"]) for m in matches)])
    return dataclasses.replace(result, known_content=matches, decision=decision)
