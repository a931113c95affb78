"""An eval result on a terminal (``render_table``), as Markdown (``render_markdown``) and as PNG
charts (``write_charts``: PR curves per category, score histograms of positives vs negatives;
needs matplotlib, the optional extra ``charts``, as ``framescan bench --chart`` does)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SMALL_SET = 100  # below this many labelled clips per category, the summary warns about wide intervals


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def _ci(ci: list[float] | None) -> str:
    return "" if ci is None else f" [{100 * ci[0]:.0f}-{100 * ci[1]:.0f}]"


def _num(v: float | None, fmt: str = ".2f") -> str:
    return "-" if v is None else format(v, fmt)


COLUMNS = (
    "category", "pos", "neg", "TP", "FP", "FN", "precision [95% CI]", "recall [95% CI]", "F1",
    "false review", "false block", "flags/100 clean", "flags/clean h", "AP", "ROC AUC", "seg recall",
    "delay med/max s",
)  # fmt: skip


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for cat, f in result["categories"].items():
        ci = f["ci95"]
        d = f["detection_delay_s"]
        rows.append(
            [
                cat,
                str(f["positives"]),
                str(f["negatives"]),
                str(f["tp"]),
                str(f["fp"]),
                str(f["fn"]),
                _pct(f["precision"]) + _ci(ci["precision"]),
                _pct(f["recall"]) + _ci(ci["recall"]),
                _num(f["f1"]),
                _pct(f["false_review_rate"]) + _ci(ci["false_review_rate"]),
                _pct(f["false_block_rate"]) + _ci(ci["false_block_rate"]),
                _num(f["false_flags_per_100_clean"], ".1f"),
                _num(f["false_flags_per_clean_hour"], ".1f"),
                _num(f["average_precision"]),
                _num(f["roc_auc"]),
                "-"
                if f["segment_recall"] is None
                else f"{f['segments_found']}/{f['labelled_segments']}" + _ci(ci["segment_recall"]),
                "-" if d["median"] is None else f"{d['median']:.2f}/{d['max']:.2f}",
            ]
        )
    return rows


def _short(path: str, result: dict[str, Any]) -> str:
    """``path`` relative to the set's folder when it is inside it."""
    base = result["set"] if os.path.isdir(result["set"]) else os.path.dirname(result["set"])
    rel = os.path.relpath(path, base or ".")
    return path if rel.startswith("..") else rel


def _attribution_lines(result: dict[str, Any]) -> list[str]:
    out = []
    for a in result["attribution"]:
        what = "false flag" if a["kind"] == "false_flag" else "miss"
        sig = a["signal"] or "no signal scored it"
        at = "" if a["time"] is None else f" at {a['time']:.2f} s"
        out.append(
            f"{what:<10} {a['category']:<9} {_short(a['path'], result)}: {sig} {a['score']:.2f}{at} -> {a['decision']}"
        )
    return out


def notes(result: dict[str, Any]) -> list[str]:
    n = max((f["positives"] + f["negatives"] for f in result["categories"].values()), default=0)
    out = [
        f"{result['clips']} clips ({result['mode']}, policy {result['policy']['name']}); intervals: 95% bootstrap "
        f"over clips ({result['bootstrap']} resamples, seed {result['seed']})"
    ]
    if n < SMALL_SET:
        out.append(f"a small set ({n} labelled clips per category at most): the intervals are wide, read them first")
    if result["errors"]:
        out.append(f"{len(result['errors'])} clip(s) without a result are left out: " + "; ".join(
            f"{p}: {e}" for p, e in sorted(result["errors"].items())
        ))  # fmt: skip
    if result["not_scanned"]:
        out.append("labelled but no signal of these settings feeds it: " + ", ".join(result["not_scanned"]))
    return out


def render_table(result: dict[str, Any]) -> str:
    rows = [list(COLUMNS), *table_rows(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    attr = _attribution_lines(result)
    if attr:
        lines += ["", "why (the signal with the highest weighted score for the category, its score and time):", *attr]
    return "\n".join([*lines, "", *notes(result)])


def render_markdown(result: dict[str, Any]) -> str:
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS)
    body = "\n".join("| " + " | ".join(r) + " |" for r in table_rows(result))
    out = [f"# framescan eval: {result['set']}", "", head, body, ""]
    out += [f"- {n}" for n in notes(result)]
    attr = result["attribution"]
    if attr:
        out += ["", "## False flags and misses", "", "| kind | category | clip | signal | score | time s | decision |"]
        out.append("|---|---|---|---|---|---|---|")
        for a in attr:
            t = "-" if a["time"] is None else f"{a['time']:.2f}"
            sig = a["signal"] or "none"
            out.append(
                f"| {a['kind']} | {a['category']} | {a['path']} | {sig} | {a['score']:.2f} | {t} | {a['decision']} |"
            )
    return "\n".join(out) + "\n"


def write_charts(result: dict[str, Any], folder: str | os.PathLike[str]) -> list[Path] | None:
    """``pr.png`` (precision-recall per category) and ``scores.png`` (per category, clip peak
    scores of positives vs negatives, with the review threshold) in ``folder``; None when
    matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    cats = result["categories"]
    fig, ax = plt.subplots(figsize=(6, 5))
    for cat, f in cats.items():
        pts = sorted(f["pr"], key=lambda p: p[2])
        ax.step(
            [p[2] for p in pts], [p[1] for p in pts], where="post", label=f"{cat} (AP {_num(f['average_precision'])})"
        )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"precision-recall per category\n{result['set']}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(out / "pr.png"), dpi=110)
    plt.close(fig)
    n = max(1, len(cats))
    fig, axes = plt.subplots(n, 1, figsize=(6, 2.2 * n + 0.6), squeeze=False)
    bins = [i / 20 for i in range(21)]
    for ax, (cat, f) in zip(axes[:, 0], cats.items()):
        pos = [c["score"] for c in f["clips"] if c["label"]]
        neg = [c["score"] for c in f["clips"] if not c["label"]]
        ax.hist([neg, pos], bins=bins, label=["negatives", "positives"], color=["#4c72b0", "#c44e52"])
        review = result["policy"]["categories"].get(cat, {}).get("review")
        if review is not None:
            ax.axvline(review, color="black", linewidth=1, linestyle="--", label=f"review {review:g}")
        ax.set_title(f"{cat}: clip peak scores", fontsize=9)
        ax.set_ylabel("clips")
        ax.legend(fontsize=7)
    axes[-1, 0].set_xlabel("peak score (a bank match counts 1.0)")
    fig.tight_layout()
    fig.savefig(str(out / "scores.png"), dpi=110)
    plt.close(fig)
    return [out / "pr.png", out / "scores.png"]
