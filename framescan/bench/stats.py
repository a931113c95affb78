"""Statistics over the runs: medians with min-max, percentiles, ratios, detection agreement."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from .options import CLIP_FPS, EVIDENCE_CAP, IMPLS, QUIET_CORES, STAGES, Config

#: Floor of "cores left by other processes" in the contention-corrected efficiency.
MIN_FREE_CORES = 0.25
_FRAME_TOLERANCE = 0.5  # frame intervals: two timestamps closer than this are the same frame


def stat(values: Iterable[float | None]) -> dict[str, Any] | None:
    """Median with min and max (None when there is no value)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation percentile (NumPy's default) without NumPy."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def median_of(s: dict[str, Any] | None) -> float | None:
    return None if s is None else s["median"]


def _model_idle(run: dict[str, Any]) -> float:
    """Wall time during which no model ran: wall minus probe, infer, postprocess and
    aggregate (the stages on the inference thread, in framescan and in the naive loop). It
    is the time inference waited for decoded and preprocessed frames: the headroom left
    for overlapping the other stages with inference."""
    busy = run.get("probe_s", 0.0) + sum(run["stages_s"].get(k, 0.0) for k in ("infer", "postprocess", "aggregate"))
    return run["wall_s"] - busy


def summarize_impl(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians (min-max) of one implementation's runs of one configuration."""
    ok = [r for r in runs if r.get("ok") and "wall_s" in r]
    out: dict[str, Any] = {"runs": len(runs), "ok_runs": len(ok)}
    if not ok:
        out["errors"] = [r.get("error") for r in runs]
        return out
    scored = [r["scored_frames"] for r in ok if r.get("scored_frames")]
    lat = [v for r in ok for v in r.get("latency_ms", [])]
    cores = ok[0].get("cores") or 1
    out.update(
        scored_frames=scored[0] if scored else None,
        decoded_frames=ok[0].get("decoded_frames"),
        total_s=stat(r["wall_s"] for r in ok),
        per_frame_ms=stat(r["wall_s"] / r["scored_frames"] * 1e3 for r in ok if r.get("scored_frames")),
        scored_fps=stat(r["scored_frames"] / r["wall_s"] for r in ok if r.get("scored_frames")),
        decoded_fps=stat(r["decoded_frames"] / r["wall_s"] for r in ok if r.get("decoded_frames")),
        stages_s={k: stat(r["stages_s"].get(k) for r in ok) for k in STAGES},
        latency_ms={
            "p50": percentile(lat, 50),
            "p95": percentile(lat, 95),
            "n": len(lat),
            "method": "time between consecutive results / frames in the result, pooled over repeats",
        },
        cpu_s=stat(r.get("cpu_s") for r in ok),
        cores=cores,
        cores_busy=stat(r["cpu_s"] / r["wall_s"] for r in ok if r.get("cpu_s")),
        efficiency=stat(r["wall_s"] / (r["cpu_s"] / cores) for r in ok if r.get("cpu_s")),
        efficiency_quiet=stat(
            r["wall_s"] / (r["cpu_s"] / cores)
            for r in ok
            if r.get("cpu_s") and r.get("others_cores") is not None and r["others_cores"] < QUIET_CORES
        ),
        efficiency_stages=stat(r["wall_s"] / (sum(r["stages_s"].values()) / cores) for r in ok),
        model_idle_s=stat(_model_idle(r) for r in ok),
        others_cores=stat(r.get("others_cores") for r in ok),
        efficiency_free=stat(
            r["wall_s"] / (r["cpu_s"] / max(MIN_FREE_CORES, cores - r["others_cores"]))
            for r in ok
            if r.get("cpu_s") and r.get("others_cores") is not None
        ),
        import_s=stat(r.get("import_s") for r in ok),
        load_s=stat(r.get("load_s") for r in ok),
        warmup_s=stat(r.get("warmup_s") for r in ok),
        jit_s=stat(r.get("jit_s") for r in ok),
        cold_start_s=stat(r.get("cold_start_s") for r in ok),
        ready_s=stat(r.get("ready_s") for r in ok),
        peak_rss_mb=stat(r.get("peak_rss_mb") for r in ok),
        ready_rss_mb=stat(r.get("ready_rss_mb") for r in ok),
        threads=ok[0].get("threads"),
        models=ok[0].get("models"),
    )
    if any("probe_s" in r for r in ok):
        out["probe_s"] = stat(r.get("probe_s") for r in ok)
    extra = sorted({k for r in ok for k in (r.get("extra_stages_s") or {})})
    if extra:
        out["extra_stages_s"] = {k: stat((r.get("extra_stages_s") or {}).get(k) for r in ok) for k in extra}
    if len(ok) < len(runs):
        out["errors"] = [r.get("error") for r in runs if not r.get("ok")]
    return out


def ratio_of(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b and b > 0 else None


def compare_detections(fs: dict[str, Any] | None, nv: dict[str, Any] | None, frame_step: float) -> dict[str, Any]:
    """Agreement of the sampled frame times where each implementation detects a sexual label."""
    if fs is None or nv is None:
        return {"checked": False, "reason": "a run is missing"}
    if fs.get("evidence_truncated"):
        return {
            "checked": False,
            "reason": f"framescan's report keeps {EVIDENCE_CAP} evidence items: the set may be cut",
        }
    tol = _FRAME_TOLERANCE * frame_step
    a = {float(d["time"]): d["labels"] for d in fs.get("detections", [])}
    b = {float(d["time"]): d["labels"] for d in nv.get("detections", [])}
    both, only_a = [], []
    unmatched_b = set(b)
    label_mismatch = []
    for t in sorted(a):
        m = min(unmatched_b, key=lambda x: abs(x - t), default=None)
        if m is not None and abs(m - t) <= tol:
            unmatched_b.discard(m)
            both.append(t)
            if sorted(a[t]) != sorted(b[m]):
                label_mismatch.append({"time": t, "framescan": a[t], "naive": b[m]})
        else:
            only_a.append(t)
    union = len(both) + len(only_a) + len(unmatched_b)
    return {
        "checked": True,
        "agree": not only_a and not unmatched_b,
        "both": both,
        "only_framescan": only_a,
        "only_naive": sorted(unmatched_b),
        "jaccard": len(both) / union if union else 1.0,
        "labels_differ": label_mismatch,
        "sampled_frames": {"framescan": fs.get("scored_frames"), "naive": nv.get("scored_frames")},
        "same_sampled_count": fs.get("scored_frames") == nv.get("scored_frames"),
    }


def summarize(configs: list[Config], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for cfg in configs:
        entry: dict[str, Any] = cfg.to_dict()
        by_impl = {i: [r for r in runs if r["config"] == cfg.name and r["impl"] == i] for i in IMPLS}
        for impl in IMPLS:
            if by_impl[impl]:
                entry[impl] = summarize_impl(by_impl[impl])
        fs, nv = entry.get("framescan"), entry.get("naive")
        if fs and nv and fs.get("ok_runs") and nv.get("ok_runs"):
            pairs = {}
            for r in by_impl["framescan"]:
                pairs.setdefault(r["repeat"], {})["framescan"] = r
            for r in by_impl["naive"]:
                pairs.setdefault(r["repeat"], {})["naive"] = r
            paired = [
                p["naive"]["wall_s"] / p["framescan"]["wall_s"]
                for p in pairs.values()
                if len(p) == 2 and p["naive"].get("ok") and p["framescan"].get("ok")
            ]
            quiet = [
                p["naive"]["wall_s"] / p["framescan"]["wall_s"]
                for p in pairs.values()
                if len(p) == 2
                and all(p[i].get("ok") and (p[i].get("others_cores") or 0.0) < QUIET_CORES for i in IMPLS)
            ]
            entry["ratio"] = {
                "speedup": ratio_of(median_of(nv["total_s"]), median_of(fs["total_s"])),
                "speedup_paired": stat(paired),
                "speedup_quiet": stat(quiet),
                "per_frame": ratio_of(median_of(nv["per_frame_ms"]), median_of(fs["per_frame_ms"])),
                "latency_p50": ratio_of(nv["latency_ms"]["p50"], fs["latency_ms"]["p50"]),
                "latency_p95": ratio_of(nv["latency_ms"]["p95"], fs["latency_ms"]["p95"]),
                "peak_rss": ratio_of(median_of(nv["peak_rss_mb"]), median_of(fs["peak_rss_mb"])),
                "cold_start": ratio_of(median_of(nv["cold_start_s"]), median_of(fs["cold_start_s"])),
                "meaning": "naive / framescan: above 1 means framescan is faster (or smaller); paired: per repeat "
                "(the two runs next to each other); quiet: pairs where other processes used < "
                f"{QUIET_CORES} cores during both runs",
            }
            first = {
                i: next((r for r in sorted(by_impl[i], key=lambda r: r["repeat"]) if r.get("ok")), None) for i in IMPLS
            }
            step = 1.0 / cfg.fps if cfg.fps else 1.0 / CLIP_FPS
            agreement = compare_detections(first["framescan"], first["naive"], step)
            # framescan is deterministic: every repeat must report the same detection times
            fs_sets = {tuple(d["time"] for d in r.get("detections", [])) for r in by_impl["framescan"] if r.get("ok")}
            agreement["framescan_repeats_consistent"] = len(fs_sets) <= 1
            entry["agreement"] = agreement
        out.append(entry)
    return out
