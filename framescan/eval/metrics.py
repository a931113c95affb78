"""The figures of a labelled set, per category: clip-level counts, precision / recall / F1,
false review and block rates, precision-recall and ROC curves with their areas, false flags per
100 clean clips and per hour of clean video, segment recall and detection delay, and seeded
bootstrap 95% intervals (resampling clips) for every rate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_BOOTSTRAP = 1000
DEFAULT_SEED = 0
#: The rates that get a bootstrap interval.
RATES = ("precision", "recall", "f1", "false_flag_rate", "false_review_rate", "false_block_rate", "segment_recall")


@dataclass(frozen=True)
class Row:
    """One labelled clip of one category."""

    path: str
    label: bool
    score: float  # rank score (peak, or 1.0 with a bank match)
    decision: str  # the category's decision
    duration: float
    segments: list[tuple[float, float]] = field(default_factory=list)  # labelled (positives)
    found: list[tuple[float, float]] = field(default_factory=list)  # the scan's segments

    @property
    def flagged(self) -> bool:
        return self.decision in ("review", "block")


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else num / den


def _f1(p: float | None, r: float | None) -> float | None:
    if p is None or r is None:
        return None
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def segment_hits(row: Row) -> tuple[int, list[float]]:
    """(labelled segments overlapped by a found segment, detection delays in seconds: the first
    overlapping found segment's start minus the labelled start, 0 when it starts before)."""
    hit, delays = 0, []
    for a, b in row.segments:
        starts = [s for s, e in row.found if s <= b and e >= a]
        if starts:
            hit += 1
            delays.append(max(0.0, min(starts) - a))
    return hit, delays


def curves(scores: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """PR and ROC points at every distinct score (flagged = score >= threshold), average
    precision (sum over thresholds of recall gained x precision) and ROC AUC (the chance a
    random positive outscores a random negative, ties half)."""
    pos, neg = int(labels.sum()), int((~labels).sum())
    pr: list[list[float]] = []
    roc: list[list[float]] = [[0.0, 0.0]]
    ap, last_r = 0.0, 0.0
    for t in sorted(set(scores.tolist()), reverse=True):
        sel = scores >= t
        tp, fp = int((sel & labels).sum()), int((sel & ~labels).sum())
        p = tp / (tp + fp)
        r = tp / pos if pos else 0.0
        pr.append([round(t, 4), round(p, 4), round(r, 4)])
        roc.append([round(fp / neg, 4) if neg else 0.0, round(r, 4)])
        ap += (r - last_r) * p
        last_r = r
    if roc[-1] != [1.0, 1.0] and pos and neg:
        roc.append([1.0, 1.0])
    auc = None
    if pos and neg:
        sp, sn = scores[labels][:, None], scores[~labels][None, :]
        auc = float(((sp > sn).sum() + 0.5 * (sp == sn).sum()) / (pos * neg))
    return {
        "pr": pr,
        "roc": roc,
        "average_precision": round(ap, 4) if pos else None,
        "roc_auc": None if auc is None else round(auc, 4),
    }


def _rates(lab: np.ndarray, flag: np.ndarray, block: np.ndarray, seg_n: np.ndarray, seg_hit: np.ndarray) -> dict:
    """Every rate over the last axis (one row per bootstrap sample, or one row): NaN when undefined."""
    with np.errstate(invalid="ignore", divide="ignore"):
        tp = (lab & flag).sum(-1)
        fp = (~lab & flag).sum(-1)
        fn = (lab & ~flag).sum(-1)
        neg = (~lab).sum(-1)
        p = tp / (tp + fp)
        r = tp / (tp + fn)
        f1 = np.where((p + r) > 0, 2 * p * r / (p + r), np.where(np.isnan(p) | np.isnan(r), np.nan, 0.0))
        fb = (~lab & block).sum(-1)
        return {
            "precision": p,
            "recall": r,
            "f1": f1,
            "false_flag_rate": fp / neg,
            "false_review_rate": (fp - fb) / neg,
            "false_block_rate": fb / neg,
            "segment_recall": seg_hit.sum(-1) / seg_n.sum(-1),
        }


def category_figures(rows: list[Row], seed: int = DEFAULT_SEED, n_boot: int = DEFAULT_BOOTSTRAP) -> dict[str, Any]:
    """Every figure of one category over its labelled clips."""
    lab = np.array([r.label for r in rows], bool)
    flag = np.array([r.flagged for r in rows], bool)
    block = np.array([r.decision == "block" for r in rows], bool)
    scores = np.array([r.score for r in rows], float)
    hits = [segment_hits(r) for r in rows]
    seg_n = np.array([len(r.segments) for r in rows], int)
    seg_hit = np.array([h for h, _ in hits], int)
    delays = sorted(d for _, ds in hits for d in ds)
    tp, fp = int((lab & flag).sum()), int((~lab & flag).sum())
    fn, tn = int((lab & ~flag).sum()), int((~lab & ~flag).sum())
    fb = int((~lab & block).sum())
    neg = int((~lab).sum())
    clean_hours = sum(r.duration for r in rows if not r.label) / 3600.0
    p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    out: dict[str, Any] = {
        "positives": int(lab.sum()),
        "negatives": neg,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "false_reviews": fp - fb,
        "false_blocks": fb,
        "precision": p,
        "recall": r,
        "f1": _f1(p, r),
        "false_flag_rate": _ratio(fp, neg),
        "false_review_rate": _ratio(fp - fb, neg),
        "false_block_rate": _ratio(fb, neg),
        "false_flags_per_100_clean": None if not neg else 100.0 * fp / neg,
        "clean_hours": clean_hours,
        "false_flags_per_clean_hour": None if clean_hours == 0 else fp / clean_hours,
        "labelled_segments": int(seg_n.sum()),
        "segments_found": int(seg_hit.sum()),
        "segment_recall": _ratio(int(seg_hit.sum()), int(seg_n.sum())),
        "detection_delay_s": {
            "median": round(float(np.median(delays)), 4) if delays else None,
            "max": round(max(delays), 4) if delays else None,
            "values": [round(d, 3) for d in delays],
        },
        **curves(scores, lab),
        "clips": [{"path": r.path, "label": r.label, "score": round(r.score, 4), "decision": r.decision} for r in rows],
    }
    out["ci95"] = bootstrap(lab, flag, block, seg_n, seg_hit, seed, n_boot)
    for k, v in list(out.items()):
        if isinstance(v, float):
            out[k] = round(v, 4)
    return out


def bootstrap(
    lab: np.ndarray, flag: np.ndarray, block: np.ndarray, seg_n: np.ndarray, seg_hit: np.ndarray, seed: int, n_boot: int
) -> dict[str, list[float] | None]:
    """Percentile 95% intervals of every rate over ``n_boot`` resamples of the clips (with
    replacement, ``numpy.random.default_rng(seed)``); None for a rate never defined."""
    n = len(lab)
    if n == 0 or n_boot < 1:
        return dict.fromkeys(RATES)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    rates = _rates(lab[idx], flag[idx], block[idx], seg_n[idx], seg_hit[idx])
    out: dict[str, list[float] | None] = {}
    for name, values in rates.items():
        v = values[~np.isnan(values)]
        out[name] = (
            None if v.size == 0 else [round(float(np.percentile(v, 2.5)), 4), round(float(np.percentile(v, 97.5)), 4)]
        )
    return out
