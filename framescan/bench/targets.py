"""The project's speed and memory targets, each judged on the configuration it names."""

from __future__ import annotations

from typing import Any

from .options import DEFAULT_SECONDS, Mode
from .stats import median_of

# Targets from the issue (fp32, 720x1280 15 s unless said otherwise).
TARGET_SPEEDUP_FPS1 = 3.5
TARGET_SPEEDUP_ALL = 2.0
TARGET_EFFICIENCY = 1.25
TARGET_RSS_1080_MB = 400.0
TARGET_SPEEDUP_ALL_INT8 = 3.0
#: Adaptive sampling vs the naive loop at 1 fps, as restated in issue 21 (the first round's 8x
#: was withdrawn: 14 inferences + 174 decodes need ~0.31 core-s, RESULTS.md): >= 5x on the
#: flagged clip, >= 7x on the clean one (no refinement pass).
TARGET_SPEEDUP_ADAPTIVE = 5.0
TARGET_SPEEDUP_ADAPTIVE_CLEAN = 7.0
TARGET_EARLY_SHARE = 0.30
#: A target's note when the configuration it is judged on was not in the run.
NOT_RUN = "not run (needs the standard matrix's 720x1280 15 s configurations)"


def _find(configs: list[dict[str, Any]], w: int, h: int, mode: str, seconds: float = DEFAULT_SECONDS) -> dict | None:
    for c in configs:
        if (
            (c["width"], c["height"], c["mode"]) == (w, h, mode)
            and c.get("seconds")
            and abs(c["seconds"] - seconds) < 0.5
        ):
            return c
    return None


def _speedup(cfg: dict[str, Any]) -> tuple[float | None, str]:
    """The speedup a target is judged on: the median over quiet pairs (both runs with other
    processes under QUIET_CORES: contention slows the two sides unequally), else the ratio
    of median wall times."""
    ratio = cfg.get("ratio") or {}
    quiet = ratio.get("speedup_quiet")
    if quiet:
        return quiet["median"], f"median of {quiet['n']} quiet pair(s) [{quiet['min']:.2f}-{quiet['max']:.2f}]"
    return ratio.get("speedup"), "ratio of median wall times (no quiet pair: contended)"


def evaluate_targets(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it is met (None: not run)."""
    rows: list[dict[str, Any]] = []

    def add(tid: str, desc: str, target: str, value: Any, met: bool | None, note: str = "") -> None:
        rows.append({"id": tid, "description": desc, "target": target, "value": value, "met": met, "note": note})

    def speedup(mode: str, tid: str, desc: str, target: float, clean: float | None = None) -> None:
        """The target on the mode as given and, where it was run, on NudeNet's square canvas and
        on a clip without flagged content (``clean``: its own target there)."""
        variants = (("", ""), ("+square", ", NudeNet's square canvas"), ("+clean", ", a clip without flagged content"))
        base = target
        for variant, label in variants:
            target = clean if variant == "+clean" and clean is not None else base
            c = _find(configs, 720, 1280, mode + variant)
            if c is None and variant:
                continue
            val, note = _speedup(c) if c else (None, NOT_RUN)
            add(tid + variant, desc.format(label), f">= {target}x", val, None if val is None else val >= target, note)
            if mode == "fps1":
                ag = (c or {}).get("agreement", {})
                checked = ag.get("agree") if ag.get("checked") else None
                add("same_detections_720_fps1" + variant, f"720x1280 15 s, 1 fps{label}: same frames with a sexual "
                    "label", "agree", checked, checked, ag.get("reason", "") if c else NOT_RUN)  # fmt: skip

    speedup("fps1", "speedup_720_fps1", "720x1280 15 s, exact 1 fps, fp32{}: framescan vs naive", TARGET_SPEEDUP_FPS1)
    speedup("all", "speedup_720_all", "720x1280 15 s, every frame, fp32{}: framescan vs naive", TARGET_SPEEDUP_ALL)
    for cfg in configs:
        fs = cfg.get("framescan") or {}
        quiet = fs.get("efficiency_quiet")
        eff = median_of(quiet) if quiet else median_of(fs.get("efficiency"))
        note = f"median of {quiet['n']} quiet run(s)" if quiet else "median over repeats (no quiet run: contended)"
        add(f"efficiency {cfg['name']}", f"{cfg['name']}: wall / (CPU time / cores)", f"<= {TARGET_EFFICIENCY}",
            eff, None if eff is None else eff <= TARGET_EFFICIENCY, note)  # fmt: skip
    speedup("all+int8", "speedup_720_all_int8", "720x1280 15 s, every frame, validated int8{}: framescan vs naive "
            "(fp32)", TARGET_SPEEDUP_ALL_INT8)  # fmt: skip
    speedup("adaptive", "speedup_720_adaptive", "720x1280 15 s, adaptive sampling{} vs the naive loop at 1 fps",
            TARGET_SPEEDUP_ADAPTIVE, TARGET_SPEEDUP_ADAPTIVE_CLEAN)  # fmt: skip
    early = [c for c in configs if "+early" in c["mode"]]
    for ce in early:
        base = Mode.parse(ce["mode"]).without_early
        full = next((c for c in configs if c["clip"] == ce["clip"] and c["mode"] == base), None)
        te = ((ce.get("framescan") or {}).get("total_s") or {}).get("median")
        tf = ((full or {}).get("framescan") or {}).get("total_s", {}).get("median") if full else None
        share = te / tf if te and tf else None
        add(f"early_exit {ce['name']}", f"{ce['name']}: early-exit time / full-scan time (violation from "
            f"{(ce.get('flagged') or [None])[0]} s)", f"< {TARGET_EARLY_SHARE:.0%}", share,
            None if share is None else share < TARGET_EARLY_SHARE, "medians of framescan wall time")  # fmt: skip
    for cfg in configs:
        if (cfg["width"], cfg["height"]) == (1080, 1920):
            rss = (cfg.get("framescan") or {}).get("peak_rss_mb")
            val = rss["max"] if rss else None
            add(f"rss {cfg['name']}", f"{cfg['name']}: framescan peak RSS (MB, worst repeat)",
                f"< {TARGET_RSS_1080_MB:g} MB", val, None if val is None else val < TARGET_RSS_1080_MB)  # fmt: skip
    return rows
