"""Reports as text (the table, two reports side by side), JSON and a stage chart."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .options import IMPLS, SCHEMA, STAGES, BenchError
from .stats import median_of, ratio_of


def _fmt(s: dict[str, Any] | None, scale: float = 1.0, digits: int = 2) -> str:
    if not s:
        return "-"
    m, lo, hi = s["median"] * scale, s["min"] * scale, s["max"] * scale
    if s.get("n", 1) <= 1 or lo == hi:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}]"


def _fx(v: float | None, digits: int = 2, suffix: str = "x") -> str:
    return "-" if v is None else f"{v:.{digits}f}{suffix}"


def _threads_line(name: str, t: dict[str, Any] | None) -> str:
    if not t:
        return f"  {name}: -"
    ort = t.get("ort") or {}
    parts = []
    if "infer" in t:
        parts.append(f"ORT intra-op {ort.get('intra_op', t['infer'])}, spinning {ort.get('spinning')}")
        parts.append(f"decode {t.get('decode')} threads, batch {t.get('batch_size')}")
    else:
        intra = ort.get("intra_op")
        parts.append(f"ORT intra-op {intra}{' (ORT default: one per physical core)' if intra == 0 else ''}, "
                     f"spinning {ort.get('spinning')}")  # fmt: skip
        parts.append(f"OpenCV {t.get('opencv')} threads")
    if ort.get("providers"):
        parts.append("/".join(ort["providers"]))
    if ort.get("input_type"):
        parts.append(ort["input_type"])
    return f"  {name}: " + "; ".join(parts)


def device_lines(report: dict[str, Any]) -> list[str]:
    d = report.get("device", {})
    v = d.get("versions", {})
    vs = ", ".join(f"{k} {v[k]}" for k in ("framescan", "av", "numba", "onnxruntime", "numpy", "opencv", "nudenet", "python")
                   if v.get(k))  # fmt: skip
    lines = [
        f"device: {d.get('cpu')}{' (' + d['board'] + ')' if d.get('board') else ''}, {d.get('machine')}, "
        f"{d.get('cores')} cores ({d.get('cores_available')} available), {d.get('memory_mb')} MB",
        f"  {d.get('os')}; flags: {' '.join(d.get('cpu_flags') or []) or '-'}"
        + (f"; governor {d['governor']}" if d.get("governor") else ""),
        f"  {vs}",
        f"  ORT providers: {', '.join(d.get('ort_available_providers') or []) or '-'} "
        f"(used: {', '.join(d.get('ort_providers_used') or []) or '-'})",
    ]
    return lines


def _split_cold(x: dict[str, Any]) -> str:
    if not x.get("import_s"):
        return "-"
    return " / ".join(f"{median_of(x.get(k)) or 0.0:.2f}" for k in ("import_s", "load_s", "warmup_s"))


def _config_rows(fs: dict[str, Any], nv: dict[str, Any], ra: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Rows (label, framescan, naive, naive/framescan) of one configuration's table."""
    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, key: str, digits: int = 2, ratio: str = "") -> None:
        rows.append((label, _fmt(fs.get(key), digits=digits), _fmt(nv.get(key), digits=digits), ratio))

    paired, quiet = ra.get("speedup_paired"), ra.get("speedup_quiet")
    paired_text = f" (paired {_fmt(paired)})" if paired and paired["n"] > 1 else ""
    paired_text += f" (quiet {_fmt(quiet)}, n={quiet['n']})" if quiet else ""
    row("total s", "total_s", ratio=_fx(ra.get("speedup")) + paired_text)
    row("per scored frame ms", "per_frame_ms", 1, _fx(ra.get("per_frame")))
    row("scored frames/s", "scored_fps", 1)
    row("decoded frames/s", "decoded_fps", 0)
    lat = [(x.get("latency_ms") or {}) for x in (fs, nv)]
    lat_text = [f"{v['p50']:.1f} / {v['p95']:.1f}" if v.get("p50") is not None else "-" for v in lat]
    rows.append(("latency p50 / p95 ms", *lat_text, f"{_fx(ra.get('latency_p50'))} / {_fx(ra.get('latency_p95'))}"))
    for s in STAGES:
        a, b = ((x.get("stages_s") or {}).get(s) for x in (fs, nv))
        rows.append((f"  {s} s", _fmt(a, digits=3), _fmt(b, digits=3), ""))
    for k in sorted(set(fs.get("extra_stages_s") or {}) | set(nv.get("extra_stages_s") or {})):
        a, b = ((x.get("extra_stages_s") or {}).get(k) for x in (fs, nv))
        rows.append((f"  {k} s (extra)", _fmt(a, digits=3), _fmt(b, digits=3), ""))
    row("model idle s (waiting for frames)", "model_idle_s", 3)
    row("CPU s", "cpu_s")
    row("cores busy (CPU/wall)", "cores_busy")
    row("efficiency wall/(CPU/cores)", "efficiency")
    row("  with stage times", "efficiency_stages")
    row("other processes, cores", "others_cores")
    row("  efficiency on cores left", "efficiency_free")
    row("  efficiency, quiet runs", "efficiency_quiet")
    row("cold start s", "cold_start_s", ratio=_fx(ra.get("cold_start")))
    rows.append(("  import / load / warm-up s", _split_cold(fs), _split_cold(nv), ""))
    row("peak RSS MB", "peak_rss_mb", 0, _fx(ra.get("peak_rss")))
    row("  RSS when ready to scan MB", "ready_rss_mb", 0)
    return rows


def _agreement_line(ag: dict[str, Any]) -> str:
    if not ag.get("checked"):
        return f"  detections: not compared ({ag.get('reason')})"
    verdict = "AGREE" if ag["agree"] else "DIFFER"
    return (
        f"  detections (sexual label, sampled frames): {verdict}; both at {_times(ag['both'])}"
        + (f"; only framescan {_times(ag['only_framescan'])}" if ag["only_framescan"] else "")
        + (f"; only naive {_times(ag['only_naive'])}" if ag["only_naive"] else "")
        + f"; sampled {ag['sampled_frames']['framescan']} vs {ag['sampled_frames']['naive']}"
    )


def _columns(rows: list[tuple[str, str, str, str]], head: tuple[str, str, str], indent: str = "") -> list[str]:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(head[0]), *(len(r[1]) for r in rows))
    w2 = max(len(head[1]), *(len(r[2]) for r in rows))
    out = [f"{indent}{'':<{w0}}  {head[0]:<{w1}}  {head[1]:<{w2}}  {head[2]}"]
    out += [f"{indent}{a:<{w0}}  {b:<{w1}}  {c:<{w2}}  {d}".rstrip() for a, b, c, d in rows]
    return out


def render_table(report: dict[str, Any]) -> str:
    """The human-readable summary of a benchmark report."""
    st = report.get("settings", {})
    lines = [f"framescan bench ({report.get('schema')}), {report.get('created')}", *device_lines(report)]
    cfgs = report.get("configs", [])
    th = next((c["framescan"].get("threads") for c in cfgs if c.get("framescan")), None)
    tn = next((c["naive"].get("threads") for c in cfgs if c.get("naive")), None)
    lines += ["threads:", _threads_line("framescan", th), _threads_line("naive", tn)]
    lines.append(f"repeats: {st.get('repeats')}, fresh process per run, interleaved; median [min-max]")
    la = report.get("load_average") or {}
    if la.get("before") and la.get("after"):
        lines.append(f"load average (1 min) before/after: {la['before'][0]:.2f} / {la['after'][0]:.2f}")
    cu = report.get("cold_start_uncached")
    if cu and cu.get("ok"):
        lines.append(
            f"framescan cold start with empty Numba and framescan caches: {cu['cold_start_s']:.2f} s (import {cu['import_s']:.2f}, "
            f"load {cu['load_s']:.2f}, JIT + first batch {cu['warmup_s']:.2f})"
        )
    for c in cfgs:
        fr = f", {c['frames']} frames" if c.get("frames") else ""
        secs = f"{c['seconds']:g} s" if c.get("seconds") else "? s"
        fs, nv = c.get("framescan") or {}, c.get("naive") or {}
        model = f"; model {', '.join(fs['models'])}" if fs.get("models") else ""
        lines += ["", f"{c['name']}  ({c['width']}x{c['height']}, {secs}{fr}; {Path(c['clip']).name}{model})"]
        lines += _columns(_config_rows(fs, nv, c.get("ratio") or {}), ("framescan", "naive", "naive/framescan"), "  ")
        for impl, x in (("framescan", fs), ("naive", nv)):
            if x.get("errors"):
                lines.append(f"  {impl} failures: {x['errors']}")
        if c.get("agreement"):
            lines.append(_agreement_line(c["agreement"]))
    targets = report.get("targets") or []
    if st.get("quick"):
        lines += ["", "targets: not judged (a --quick smoke run: tiny clips, one repeat)"]
    elif targets:
        lines += ["", "targets:"]
        for t in targets:
            mark = {True: "MET ", False: "MISS", None: "n/a "}[t["met"]]
            v = t["value"]
            vs = "-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)
            lines.append(
                f"  [{mark}] {t['description']}: {vs} (target {t['target']})" + (f"; {t['note']}" if t["note"] else "")
            )
    for w in report.get("warnings") or []:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def _times(ts: Sequence[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in ts) + " s" if ts else "-"


_COMPARE_METRICS: tuple[tuple[str, Callable[[dict[str, Any]], float | None], int], ...] = (
    ("framescan total s", lambda f: median_of(f.get("total_s")), 2),
    ("per scored frame ms", lambda f: median_of(f.get("per_frame_ms")), 1),
    ("scored frames/s", lambda f: median_of(f.get("scored_fps")), 1),
    ("latency p50 ms", lambda f: (f.get("latency_ms") or {}).get("p50"), 1),
    ("latency p95 ms", lambda f: (f.get("latency_ms") or {}).get("p95"), 1),
    *((f"{s} s", (lambda f, s=s: median_of((f.get("stages_s") or {}).get(s))), 3) for s in STAGES),
    ("efficiency", lambda f: median_of(f.get("efficiency")), 2),
    ("cold start s", lambda f: median_of(f.get("cold_start_s")), 2),
    ("peak RSS MB", lambda f: median_of(f.get("peak_rss_mb")), 0),
)


def _device_field(r: dict[str, Any], key: str) -> str:
    d = r.get("device", {})
    if key == "versions":
        v = d.get("versions", {})
        return ", ".join(f"{k} {v[k]}" for k in ("framescan", "onnxruntime", "av", "numba") if v.get(k))
    if key == "cores":
        return f"{d.get('cores')} ({d.get('cores_available')} available)"
    val = d.get(key)
    return ", ".join(val) if isinstance(val, list) else str(val)


def _compare_config(x: dict[str, Any], y: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    fx, fy = x.get("framescan") or {}, y.get("framescan") or {}
    rows = []
    for label, get, digits in _COMPARE_METRICS:
        va, vb = (get(f) if f else None for f in (fx, fy))
        rows.append((f"  {label}", *("-" if v is None else f"{v:.{digits}f}" for v in (va, vb)), _fx(ratio_of(vb, va))))
    sa, sb = ((c.get("ratio") or {}).get("speedup") for c in (x, y))
    rows.append(("  speedup vs naive", _fx(sa), _fx(sb), ""))
    aa, ab = x.get("agreement") or {}, y.get("agreement") or {}
    if aa or ab:
        rows.append(("  detections agree", str(aa.get("agree", "-")), str(ab.get("agree", "-")), ""))
    return rows


def render_compare(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str] = ("A", "B")) -> str:
    """Side by side: two benchmark reports (e.g. two devices), framescan's medians and B/A."""
    for r in (a, b):
        if r.get("schema") != SCHEMA:
            raise BenchError(f"not a {SCHEMA} report (schema {r.get('schema')!r})")
    fields = (("cpu", "cpu"), ("board", "board"), ("machine", "machine"), ("cores", "cores"), ("memory MB", "memory_mb"),
              ("versions", "versions"), ("ORT providers", "ort_providers_used"))  # fmt: skip
    rows = [(label, _device_field(a, key), _device_field(b, key), "") for label, key in fields]
    rows.append(("created", str(a.get("created")), str(b.get("created")), ""))
    ca = {c["name"]: c for c in a.get("configs", [])}
    cb = {c["name"]: c for c in b.get("configs", [])}
    for name in list(ca) + [n for n in cb if n not in ca]:
        x, y = ca.get(name, {}), cb.get(name, {})
        rows += [("", "", "", ""), (name, "" if x else "(not run)", "" if y else "(not run)", "")]
        rows += _compare_config(x, y)
    return "\n".join(_columns(rows, (names[0], names[1], "B/A")))


def load_report(path: str | os.PathLike) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as ex:
        raise BenchError(f"cannot read benchmark report {path}: {ex}") from ex
    if not isinstance(data, dict):
        raise BenchError(f"{path}: not a benchmark report")
    return data


def write_chart(report: dict[str, Any], out: str | os.PathLike) -> bool:
    """A PNG of the median stage times per configuration (framescan and naive side by side),
    with the median wall time marked. Returns False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    cfgs = [c for c in report.get("configs", []) if c.get("framescan") or c.get("naive")]
    labels: list[str] = []
    bars: list[dict[str, float]] = []
    walls: list[float | None] = []
    for c in cfgs:
        for impl in IMPLS:
            x = c.get(impl)
            if not x or not x.get("ok_runs"):
                continue
            labels.append(f"{c['name']}\n{impl}")
            bars.append({s: median_of(x["stages_s"].get(s)) or 0.0 for s in STAGES})
            walls.append(median_of(x.get("total_s")))
    fig, ax = plt.subplots(figsize=(10, 0.55 * max(2, len(labels)) + 1.6))
    colors = {"decode": "#4c72b0", "preprocess": "#dd8452", "infer": "#55a868", "postprocess": "#c44e52",
              "aggregate": "#8172b3"}  # fmt: skip
    ys = list(range(len(labels)))[::-1]
    left = [0.0] * len(labels)
    for s in STAGES:
        vals = [b[s] for b in bars]
        ax.barh(ys, vals, left=left, color=colors[s], label=s, height=0.6)
        left = [lo + v for lo, v in zip(left, vals)]
    for y, w in zip(ys, walls):
        if w is not None:
            ax.plot([w, w], [y - 0.38, y + 0.38], color="black", linewidth=2)
            ax.text(w, y + 0.33, f" wall {w:.2f} s", va="bottom", fontsize=7)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("seconds (median over repeats); black mark: wall time (framescan's stages overlap)")
    d = report.get("device", {})
    ax.set_title(f"framescan vs naive, stage times\n{d.get('cpu')}, {d.get('cores_available')} cores", fontsize=10)
    ax.set_xlim(0, max([*left, *(w or 0.0 for w in walls)], default=1.0) * 1.18)
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=len(STAGES), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(str(out), dpi=120)
    plt.close(fig)
    return True


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, default=str) + "\n"
