"""An eval run: scan the set through the archive machinery into the eval's own result store
(isolated workers, resumable, content-keyed: a rerun scans nothing it has already), read the
stored reports back, decide them (as scanned, or again under a policy with ``--rescore``) and
compute the figures per category, with the signal behind every false flag and miss."""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..config import ScanConfig
from ..errors import ConfigError
from .manifest import LabelledSet
from .metrics import DEFAULT_BOOTSTRAP, DEFAULT_SEED, Row, category_figures
from .rescore import ClipView, Rescorer, of_report, strongest_signal

#: The JSON output's format version.
EVAL_FORMAT = 1
#: Settings in an archive fingerprint that ``--rescore`` decides again from the stored timelines
#: (a report scanned under other values of these is rescored, not refused).
RESCORED_SETTINGS = ("policy", "calibration")


@dataclass
class EvalOptions:
    db: str
    scan: ScanConfig = field(default_factory=ScanConfig)
    workers: int | None = None
    rescore: bool = False  # decide the stored timelines again under scan.policy, scan nothing
    seed: int = DEFAULT_SEED
    n_boot: int = DEFAULT_BOOTSTRAP
    quiet: bool = True
    progress_stream: TextIO | None = None


@dataclass
class Scanned:
    """The stored report of each clip of the set (None: no usable result; ``errors`` says why)."""

    reports: dict[str, dict[str, Any]]
    errors: dict[str, str]
    scan_seconds: float
    scanned: int  # clips scanned by this run (0 on a rerun or a rescore)


def scan_set(ls: LabelledSet, opts: EvalOptions) -> Scanned:
    """Scan every clip not yet in the store under these settings (``framescan.archive``)."""
    from ..archive import ArchiveOptions, run_archive

    t0 = time.perf_counter()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("".join(os.path.abspath(it.path) + "\n" for it in ls.items))
        listing = f.name
    try:
        summary = run_archive(
            ArchiveOptions(
                db=opts.db,
                list_file=listing,
                workers=opts.workers,
                scan=opts.scan,
                quiet=opts.quiet,
                progress_stream=opts.progress_stream,
            )
        )
    finally:
        os.unlink(listing)
    reports, errors = stored_reports(ls, opts.db, opts.scan, any_policy=False)
    return Scanned(reports, errors, time.perf_counter() - t0, int(summary.counts["scanned"]))


def _sha(store: Any, path: str) -> str | None:
    from ..archive.fingerprint import hash_file

    st = os.stat(path)
    return store.cached_sha(path, st.st_size, st.st_mtime_ns) or hash_file(path, False)


def stored_reports(
    ls: LabelledSet, db: str, scan: ScanConfig, any_policy: bool
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Each clip's stored report under ``scan``'s models and settings. ``any_policy``: a report
    scanned under any policy will do (its timeline is rescored), the newest one."""
    from ..archive.store import Store, unpack_report

    fp = scan.fingerprint()
    ok_config: dict[str, bool] = {fp.config: True}
    # what a rescore decides again (the policy, the manifests' calibration rules) may differ
    mine = {k: v for k, v in fp.config_body.items() if k not in RESCORED_SETTINGS}

    def same_settings(config_fp: str, store: Any) -> bool:
        if config_fp not in ok_config:
            rows = store.execute("SELECT body FROM fingerprints WHERE fp = ?", (config_fp,))
            body = json.loads(rows[0][0]) if rows else {}
            ok_config[config_fp] = {k: v for k, v in body.items() if k not in RESCORED_SETTINGS} == mine
        return ok_config[config_fp]

    reports: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    with Store(db, create=False) as store:
        for it in ls.items:
            path = os.path.abspath(it.path)
            try:
                sha = _sha(store, path)
            except OSError as ex:
                errors[it.path] = f"cannot be read: {ex.strerror or ex}"
                continue
            sql = (
                "SELECT config_fp, state, error_code, error_message, report FROM results "
                "WHERE sha256 = ? AND models_fp = ? "
                + ("" if any_policy else "AND config_fp = ? ")
                + "ORDER BY updated DESC"
            )
            rows = store.execute(sql, (sha, fp.models) if any_policy else (sha, fp.models, fp.config))
            found = None
            for config_fp, state, code, message, blob in rows:
                if state != "done":
                    if not any_policy:
                        errors[it.path] = f"{state}: {code}: {message}"
                    continue
                report = unpack_report(blob)
                if report is not None and (not any_policy or same_settings(config_fp, store)):
                    found = report
                    break
            if found is not None:
                reports[it.path] = found
                errors.pop(it.path, None)
            elif it.path not in errors:
                errors[it.path] = "not in the store under these models and settings (run without --rescore first)"
    return reports, errors


def views(reports: dict[str, dict[str, Any]], rescorer: Rescorer, rescore: bool) -> dict[str, ClipView]:
    """Each report as scanned, or (``rescore``) decided again by ``rescorer``."""
    if rescore:
        return {p: rescorer.rescore(r) for p, r in reports.items()}
    return {p: of_report(r, rescorer.index(r)) for p, r in reports.items()}


def _attribution(
    path: str, cat: str, label: bool, view: ClipView, report: dict[str, Any], rescorer: Rescorer
) -> dict[str, Any]:
    """Which signal made a false flag or a miss: the bank(s) that matched, else the signal with
    the highest weighted score for the category on any frame (for a miss: the closest call)."""
    cv = view.categories[cat]
    out: dict[str, Any] = {"path": path, "category": cat, "kind": "false_flag" if not label else "miss"}
    out["decision"] = cv.decision
    if cv.matches and not label:
        out.update(signal=", ".join(f"bank:{b}" for b in cv.matches), score=1.0, time=None)
        return out
    best = strongest_signal(report, cat, rescorer.index(report))
    if best is None:
        out.update(signal=None, score=0.0, time=None)
    else:
        out.update(signal=best[0], score=best[1], time=best[2])
    return out


def rows_for(
    ls: LabelledSet, clip_views: dict[str, ClipView], rank: bool = True
) -> tuple[dict[str, list[Row]], dict[str, set[str]], list[str]]:
    """Per labelled category, a ``Row`` per clip with a result; the clips a bank match flagged;
    the labelled categories no signal of these settings feeds. ``rank``: a bank match scores
    ``MATCH_SCORE`` (curves); else the models' peak (``--suggest-policy``)."""
    rows: dict[str, list[Row]] = {}
    matched: dict[str, set[str]] = {}
    unscanned: list[str] = []
    for cat in ls.categories():
        for it in ls.items:
            if cat not in it.labels or it.path not in clip_views:
                continue
            view = clip_views[it.path]
            cv = view.categories.get(cat)
            if cv is None:
                if cat not in unscanned:
                    unscanned.append(cat)
                continue
            score = cv.rank_score if rank else cv.score
            segs = it.segments.get(cat, [])
            rows.setdefault(cat, []).append(
                Row(it.path, it.labels[cat], score, cv.decision, view.duration, segs, cv.segments)
            )
            if cv.matches:
                matched.setdefault(cat, set()).add(it.path)
    return rows, matched, unscanned


def evaluate(
    ls: LabelledSet,
    reports: dict[str, dict[str, Any]],
    clip_views: dict[str, ClipView],
    rescorer: Rescorer,
    *,
    seed: int = DEFAULT_SEED,
    n_boot: int = DEFAULT_BOOTSTRAP,
) -> dict[str, Any]:
    """The figures of every category the set labels, over its clips that have a result, and the
    signal behind every false flag and miss."""
    rows, _, unscanned = rows_for(ls, clip_views)
    attributions = [
        _attribution(r.path, cat, r.label, clip_views[r.path], reports[r.path], rescorer)
        for cat, rs in rows.items()
        for r in rs
        if r.label != r.flagged
    ]
    return {
        "categories": {cat: category_figures(rs, seed, n_boot) for cat, rs in rows.items()},
        "not_scanned": unscanned,  # labelled categories no signal of these settings feeds
        "attribution": attributions,
        "clips": len(clip_views),
        "seed": seed,
        "bootstrap": n_boot,
    }


def run_eval(ls: LabelledSet, opts: EvalOptions) -> tuple[dict[str, Any], dict[str, ClipView]]:
    """Scan (or, with ``rescore``, only read the store) and evaluate: the JSON result, and each
    clip as decided (for ``--suggest-policy``)."""
    t0 = time.perf_counter()
    policy = opts.scan.load_policy()
    rescorer = Rescorer(policy, opts.scan.lexicons)
    if opts.rescore:
        if not os.path.isfile(opts.db):
            raise ConfigError(f"result store {opts.db} does not exist: run 'framescan eval' without --rescore first")
        reports, errors = stored_reports(ls, opts.db, opts.scan, any_policy=True)
        scanned = Scanned(reports, errors, 0.0, 0)
        clip_views = views(reports, rescorer, rescore=True)
    else:
        scanned = scan_set(ls, opts)
        clip_views = views(scanned.reports, rescorer, rescore=False)
    result = evaluate(ls, scanned.reports, clip_views, rescorer, seed=opts.seed, n_boot=opts.n_boot)
    result = {
        "format": EVAL_FORMAT,
        "set": ls.source,
        "mode": "rescore" if opts.rescore else "scan",
        "policy": policy.to_dict(),
        "settings": json.loads(json.dumps(opts.scan.to_dict())),
        "models": sorted({m["name"] for r in scanned.reports.values() for m in r.get("models") or []}),
        "errors": scanned.errors,
        "scanned_now": scanned.scanned,
        **result,
        "decisions": {p: v.decision for p, v in sorted(clip_views.items())},
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return result, clip_views
