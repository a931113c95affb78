"""Runs a benchmark: every configuration, implementation and repeat in a fresh child process,
interleaved, then the report (schema ``framescan.bench/1``)."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .clips import build_configs
from .device import device_info, machine_busy_seconds, source_state
from .options import CHILD_TIMEOUT, IMPLS, PROFILES, QUIET_CORES, SCHEMA, BenchError, BenchOptions, Config, Mode
from .stats import summarize
from .targets import evaluate_targets

log = logging.getLogger(__name__)

#: The framescan folder the benchmark's own code is in (its parent is the tree benchmarked by default).
PACKAGE_DIR = Path(__file__).resolve().parent.parent

#: Imports ``child`` from ``PACKAGE_DIR`` (argv[1]) as ``_framescan_bench.bench.child``: two empty
#: packages stand in for ``framescan`` and ``framescan.bench``, so no ``__init__`` runs and the child
#: imports only the standard-library modules ``child`` names; then runs one job (argv[2]).
CHILD_BOOTSTRAP = (
    "import importlib, sys, types\n"
    "for name, path in (('_framescan_bench', sys.argv[1]), ('_framescan_bench.bench', sys.argv[1] + '/bench')):\n"
    "    pkg = types.ModuleType(name)\n"
    "    pkg.__path__ = [path]\n"
    "    sys.modules[name] = pkg\n"
    "sys.exit(importlib.import_module('_framescan_bench.bench.child').child_main(sys.argv[2]))\n"
)


def cpu_prefix(cores: int | None) -> list[str]:
    """``taskset -c CPUS`` restricting a child to its first ``cores`` allowed CPUs (a profile's
    device class), or nothing when no restriction is asked or ``taskset`` is missing."""
    if not cores or not hasattr(os, "sched_getaffinity") or not shutil.which("taskset"):
        return []
    cpus = sorted(os.sched_getaffinity(0))[:cores]
    return ["taskset", "-c", ",".join(map(str, cpus))]


def run_child(
    job: dict[str, Any],
    timeout: float = CHILD_TIMEOUT,
    env: dict[str, str] | None = None,
    prefix: list[str] | None = None,
) -> dict[str, Any]:
    """Run one job in a fresh Python process (after ``prefix``, e.g. ``cpu_prefix``) and return its measurements."""
    with tempfile.TemporaryDirectory(prefix="framescan-bench-") as tmp:
        job = {**job, "result": str(Path(tmp) / "result.json")}
        cmd = [*(prefix or []), sys.executable, "-c", CHILD_BOOTSTRAP, str(PACKAGE_DIR), json.dumps(job)]
        spawn = time.time()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"timed out after {timeout:g} s"}
        result_path = Path(job["result"])
        if not result_path.exists():
            tail = (proc.stderr or "").strip().splitlines()[-5:]
            return {"ok": False, "error": f"child exited with {proc.returncode}: " + " | ".join(tail)}
        res = json.loads(result_path.read_text())
    if "ready_wall" in res:
        res["ready_s"] = res.pop("ready_wall") - spawn  # exec to ready, interpreter start included
    if not res.get("ok") and proc.stderr:
        res["stderr_tail"] = proc.stderr.strip().splitlines()[-5:]
    return res


def wait_for_idle(max_wait: float, threshold: float = QUIET_CORES, window: float = 1.0) -> tuple[float | None, float]:
    """Wait (up to ``max_wait`` s) until the machine is idle: every process together using
    less than ``threshold`` cores over ``window`` s (from /proc/stat; this process sleeps
    meanwhile). Returns the busy cores last measured (None without /proc/stat) and the wait."""
    t0 = time.monotonic()
    while True:
        b0 = machine_busy_seconds()
        time.sleep(window)
        b1 = machine_busy_seconds()
        busy = None if b0 is None or b1 is None else (b1 - b0) / window
        if busy is None or busy < threshold or time.monotonic() - t0 >= max_wait:
            return busy, time.monotonic() - t0


def run_bench(opts: BenchOptions, notify: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the benchmark and return the JSON-ready report (schema ``framescan.bench/1``)."""
    say = notify or (lambda msg: log.info("%s", msg))
    repeats = opts.n_repeats
    repo = Path(opts.framescan_from).resolve() if opts.framescan_from else PACKAGE_DIR.parent
    if not (repo / "framescan" / "__init__.py").is_file():
        raise BenchError(f"no framescan package in {repo}")
    source_before = source_state(repo)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    started = _dt.datetime.now(_dt.timezone.utc)
    configs = build_configs(opts, say)
    if not configs:
        raise BenchError("nothing to run")
    profile = PROFILES[opts.profile] if opts.profile else {}
    if profile.get("int8"):
        for cfg in configs:
            if "int8" not in cfg.mode.name.split("+"):
                cfg.mode = Mode.parse(cfg.mode.name + "+int8")
                cfg.name = f"{cfg.name.split()[0]} {cfg.mode.name}"
    prefix = cpu_prefix(profile.get("cores"))
    if profile and not prefix:
        say("taskset is not available: the profile's thread limits apply, not its core limit")
    base = {
        "repo": str(repo),
        "threads": opts.threads or profile.get("threads"),
        "decode_threads": opts.decode_threads or profile.get("decode_threads"),
        "batch_size": opts.batch_size,
        "naive_threads": profile.get("threads"),
    }
    impls = list(IMPLS) if opts.naive else ["framescan"]

    cold_uncached: dict[str, Any] | None = None
    if opts.cold_uncached and not opts.quick:
        say("cold start with empty Numba and framescan caches (compiles the kernels, optimises the models)")
        with tempfile.TemporaryDirectory(prefix="framescan-numba-") as cache:
            # as after an install: no compiled kernel, no optimised model graph, no verified hash
            env = {**os.environ, "NUMBA_CACHE_DIR": cache, "FRAMESCAN_CACHE": os.path.join(cache, "framescan")}
            r = run_child({**base, "impl": "framescan", "clip": configs[0].clip, "mode": configs[0].mode.name,
                           "scan": False}, opts.timeout, env, prefix)  # fmt: skip
        cold_uncached = {k: r.get(k) for k in ("ok", "error", "import_s", "load_s", "warmup_s", "cold_start_s", "ready_s",
                                               "peak_rss_mb")}  # fmt: skip

    runs: list[dict[str, Any]] = []

    def impls_for(cfg: Config) -> list[str]:
        # the early-exit clip compares framescan with itself (early exit vs full scan)
        return ["framescan"] if cfg.name.split()[0].endswith("-early") else impls

    total = repeats * sum(len(impls_for(c)) for c in configs)
    k = 0
    for rep in range(repeats):
        for ci, cfg in enumerate(configs):
            order = impls_for(cfg) if (rep + ci) % 2 == 0 else impls_for(cfg)[::-1]
            for impl in order:
                k += 1
                job = {**base, "impl": impl, "clip": cfg.clip, "mode": cfg.mode.name}
                idle: dict[str, Any] = {}
                if opts.wait_idle > 0:
                    busy, waited = wait_for_idle(opts.wait_idle)
                    idle = {"busy_before": busy, "idle_wait_s": waited}
                r = run_child(job, opts.timeout, prefix=prefix)
                r.update(impl=impl, config=cfg.name, repeat=rep, **idle)
                runs.append(r)
                if r.get("ok"):
                    say(f"[{k}/{total}] {cfg.name} {impl} repeat {rep + 1}: {r['wall_s']:.2f} s, "
                        f"{r.get('scored_frames')} frames scored, peak RSS {r['peak_rss_mb']:.0f} MB")  # fmt: skip
                else:
                    say(f"[{k}/{total}] {cfg.name} {impl} repeat {rep + 1}: FAILED: {r.get('error')}")
    summary = summarize(configs, runs)
    source_after = source_state(repo)
    device = device_info()
    fs_run = next((r for r in runs if r["impl"] == "framescan" and r.get("ok")), None)
    if fs_run:
        device["ort_available_providers"] = fs_run.get("ort_available_providers")
        device["ort_providers_used"] = (fs_run.get("threads") or {}).get("ort", {}).get("providers")
        device["ffmpeg"] = fs_run.get("ffmpeg")
    warnings = []
    if source_before["source_digest"] != source_after["source_digest"]:
        warnings.append("framescan's sources changed during the run: runs may mix two versions of the code")
    failed = [r for r in runs if not r.get("ok")]
    if failed:
        warnings.append(f"{len(failed)} of {len(runs)} runs failed")
    return {
        "schema": SCHEMA,
        "created": started.isoformat(timespec="seconds"),
        "command": opts.command,
        "device": device,
        "source": {"before": source_before, "after": source_after},
        "load_average": {"before": load_before, "after": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "settings": {
            "repeats": repeats,
            "quick": opts.quick,
            "threads": base["threads"],
            "decode_threads": base["decode_threads"],
            "batch_size": opts.batch_size,
            "profile": opts.profile,
            "cpu_prefix": prefix,
            "precision": "int8" if profile.get("int8") else "fp32",
            "naive": "cv2.VideoCapture (every frame) + nudenet.NudeDetector().detect(frame) per sampled frame",
            "order": "interleaved: framescan and naive alternate per configuration, order flipped every repeat",
            "process": "one fresh subprocess per run (cold start and peak RSS are per run)",
        },
        "cold_start_uncached": cold_uncached,
        "configs": summary,
        # a smoke run's tiny clips say nothing about the targets: none is judged
        "targets": [] if opts.quick else evaluate_targets(summary),
        "runs": runs,
        "warnings": warnings,
    }
