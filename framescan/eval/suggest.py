"""``--suggest-policy --target precision=0.9`` (or ``recall=``): per labelled category, the
review threshold that meets the target on the set (precision: the one with the most recall;
recall: the highest, so the fewest false flags), written as a policy file, with the interval of
the target figure on the set; or a one-line reason why no threshold can."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..policy import CategoryRule, Policy
from .metrics import DEFAULT_BOOTSTRAP, DEFAULT_SEED, Row, category_figures

TARGET_METRICS = ("precision", "recall")


@dataclass(frozen=True)
class Target:
    metric: str
    value: float

    def __str__(self) -> str:
        return f"{self.metric}={self.value:g}"


def parse_target(text: str) -> Target:
    """``precision=0.9`` / ``recall=0.95`` -> ``Target``; ``ConfigError`` naming what is wrong."""
    name, sep, value = text.partition("=")
    name = name.strip().lower()
    if not sep or name not in TARGET_METRICS:
        raise ConfigError(f"--target must be precision=X or recall=X (0 < X <= 1), got {text!r}")
    try:
        v = float(value)
    except ValueError:
        raise ConfigError(f"--target {name}= needs a number between 0 and 1, got {value!r}") from None
    if not 0 < v <= 1:
        raise ConfigError(f"--target {name}= must be above 0 and at most 1, got {v:g}")
    return Target(name, v)


def _flagged_at(rows: list[Row], t: float, matched: set[str]) -> list[Row]:
    """``rows`` as a policy reviewing at ``t`` decides them (a bank match flags whatever the score)."""
    return [
        Row(r.path, r.label, r.score, "review" if (r.score >= t or r.path in matched) else "allow", r.duration)
        for r in rows
    ]


def choose(rows: list[Row], matched: set[str], target: Target) -> float | None:
    """The review threshold for one category that meets ``target`` on ``rows``, or None."""
    scores = sorted({r.score for r in rows if r.score > 0}, reverse=True)
    best: tuple[float, float] | None = None  # (threshold, recall)
    for t in scores:  # descending: recall grows, false flags too
        flagged = _flagged_at(rows, t, matched)
        tp = sum(r.label and r.flagged for r in flagged)
        fp = sum(not r.label and r.flagged for r in flagged)
        pos = sum(r.label for r in rows)
        precision = tp / (tp + fp) if tp + fp else None
        recall = tp / pos if pos else None
        if target.metric == "precision":
            if precision is not None and precision >= target.value and (best is None or (recall or 0) > best[1]):
                best = (t, recall or 0.0)
        elif recall is not None and recall >= target.value:
            best = (t, recall)
            break
    if best is None:
        return None
    t = best[0]
    lower = [s for s in (r.score for r in rows) if s < t]
    if lower:  # halfway to the next score below: no clip of the set sits between the two
        mid = round((t + max(lower)) / 2, 4)
        if max(lower) < mid <= t:
            t = mid
    return t


def suggest(
    rows_by_cat: dict[str, list[Row]],
    matched_by_cat: dict[str, set[str]],
    base: Policy,
    target: Target,
    *,
    seed: int = DEFAULT_SEED,
    n_boot: int = DEFAULT_BOOTSTRAP,
) -> tuple[Policy | None, dict[str, Any]]:
    """A policy meeting ``target`` for every category (None when a category cannot), and what
    each category gets: threshold, precision, recall, the target figure's 95% interval."""
    rules = dict(base.rules)
    summary: dict[str, Any] = {"target": str(target), "categories": {}, "failed": []}
    for cat, rows in rows_by_cat.items():
        t = choose(rows, matched_by_cat.get(cat, set()), target)
        if t is None:
            summary["failed"].append(cat)
            continue
        rule = base.rule(cat)
        rules[cat] = CategoryRule(review=t, block=max(rule.block, t), min_block_frames=rule.min_block_frames)
        fig = category_figures(_flagged_at(rows, t, matched_by_cat.get(cat, set())), seed, n_boot)
        summary["categories"][cat] = {
            "review": t,
            "block": rules[cat].block,
            "precision": fig["precision"],
            "recall": fig["recall"],
            "false_flag_rate": fig["false_flag_rate"],
            "ci95": fig["ci95"][target.metric],
        }
    if summary["failed"]:
        return None, summary
    name = f"suggested-{target.metric}-{target.value:g}"
    return Policy(name=name, rules=rules, max_gap=base.max_gap), summary
