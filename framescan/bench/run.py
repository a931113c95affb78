"""End-to-end benchmark: framescan against the naive alternative, stage by stage.

For each configuration (a clip and a sampling mode) both implementations do the same work:

- **framescan**: ``framescan.Scanner(...).scan(clip)`` in process (PyAV decode thread ->
  fused Numba preprocessing -> ONNX Runtime in batches -> aggregation);
- **naive**: ``cv2.VideoCapture`` reads every frame (decoded and converted to BGR) and
  ``nudenet.NudeDetector().detect(frame)`` runs on each sampled frame (same sampling rule:
  the first frame at or after each instant k/fps, from the frames' timestamps).

Every run (one implementation, one configuration, one repeat) is a fresh subprocess, so
its cold start (import + model load + first preprocessing/inference, i.e. JIT and ORT
first-run allocations) and its peak RSS are its own. After a warm-up on the clip's first
frame the child times one full scan. Runs are interleaved (framescan and naive alternate,
and the order flips every repeat) because the machine may be shared; every figure is
reported as a median with its min-max over the repeats.

Stages: framescan's come from the report's ``timings`` (the decode stage runs in its own
thread and overlaps the others, so stage times can add up to more than the wall time).
The naive run is timed by wrapping ``cap.read`` (decode), nudenet's ``_read_image``
(preprocess), its ``onnx_session.run`` (infer) and ``_postprocess`` (postprocess).

Per-frame latency: time between consecutive results divided by the frames in the result
(framescan: per inference batch, measured by wrapping the model's ``decode`` on the
``Scanner.models`` instances; naive: per frame), pooled over repeats, p50/p95.

Efficiency: ``wall / (CPU time / cores)``, with the process's user+system CPU time
(``getrusage``) over the timed scan and the cores available to it: 1.0 means every core
was busy the whole time; the stage-time variant (``sum of stage times / cores``) is
reported next to it. On a shared machine other processes take cores too: the child reads
the machine-wide busy time from /proc/stat, and "efficiency on cores left" divides by
``cores - (cores other processes used meanwhile)`` instead (an estimate).

This module imports only the standard library at the top: the naive child loads it
without importing framescan (whose imports, e.g. Numba, would inflate the naive run's
import time and RSS).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import math
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("framescan.bench")

SCHEMA = "framescan.bench/1"
STAGES = ("decode", "preprocess", "infer", "postprocess", "aggregate")
IMPLS = ("framescan", "naive")
#: NudeNet labels that feed ``sexual`` in the default manifest (checked against it by the tests).
SEXUAL_LABELS = frozenset(
    {"BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED", "ANUS_EXPOSED", "MALE_GENITALIA_EXPOSED"}
)
#: The standard matrix (used when neither --sizes nor --modes is given): every common shape
#: at exact 1 fps, every frame only on 720x1280 (the issue's target shape).
DEFAULT_MATRIX = (
    ("480x854", "fps1"),
    ("720x1280", "fps1"),
    ("720x1280", "all"),
    ("1080x1920", "fps1"),
    ("720x1280", "adaptive"),
    # adaptive sampling on a clip without flagged content (most uploads): no refinement pass
    ("720x1280", "adaptive+clean"),
    ("720x1280", "all+int8"),
    ("720x1280", "fps2+early"),
    # the same on NudeNet's square canvas (the default model's canvas is trimmed to the frame)
    ("720x1280", "fps1+square"),
    ("720x1280", "all+square"),
    ("720x1280", "all+int8+square"),
    ("720x1280", "adaptive+square"),
    ("720x1280", "fps2+square+early"),
)
#: framescan's model per combination of the ``+int8`` / ``+square`` suffixes (neither: the
#: default model, ``framescan.models.DEFAULT_MODEL``: NudeNet 320n on a trimmed canvas)
VARIANT_MODELS = {
    (True, False): "nudenet-320n-int8-trim",
    (False, True): "nudenet-320n",
    (True, True): "nudenet-320n-int8",
}
#: The early-exit clip: flagged from this second to the end.
EARLY_FLAG_START = 2.0
DEFAULT_MODES = ("fps1", "all")
DEFAULT_SIZES = ("480x854", "720x1280", "1080x1920")
DEFAULT_SECONDS = 15.0
DEFAULT_REPEATS = 3
CLIP_FPS = 30
FLAGGED = (6.0, 8.0)
QUICK = {"size": "240x426", "seconds": 2.0, "fps": 10, "modes": ("fps1", "all"), "repeats": 1}
CHILD_TIMEOUT = 1800.0
#: framescan keeps this many evidence items per clip (framescan.aggregate.EVIDENCE_PER_CLIP);
#: a report with that many may have dropped some, and agreement is then not checked.
EVIDENCE_CAP = 50
#: A run is "quiet" when other processes used less than this many cores during it.
QUIET_CORES = 0.3
#: Floor of "cores left by other processes" in the contention-corrected efficiency.
MIN_FREE_CORES = 0.25
_FRAME_TOLERANCE = 0.5  # frame intervals: two timestamps closer than this are the same frame

# Targets from the issue (fp32, 720x1280 15 s unless said otherwise).
TARGET_SPEEDUP_FPS1 = 3.5
TARGET_SPEEDUP_ALL = 2.0
TARGET_EFFICIENCY = 1.25
TARGET_RSS_1080_MB = 400.0
TARGET_SPEEDUP_ALL_INT8 = 3.0
TARGET_SPEEDUP_ADAPTIVE = 8.0
TARGET_EARLY_SHARE = 0.30
#: A target's note when the configuration it is judged on was not in the run.
NOT_RUN = "not run (needs the standard matrix's 720x1280 15 s configurations)"


class BenchError(RuntimeError):
    """A benchmark could not be set up (bad option, missing clip, unreadable report)."""


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Mode:
    """A sampling mode: ``fpsN`` (exact N fps from timestamps), ``everyN``, ``all`` or ``adaptive``
    (framescan only; the naive loop runs it at 1 fps, the rate the adaptive target compares to),
    with optional framescan-only suffixes: ``+int8`` (the validated int8 model; naive stays
    fp32), ``+square`` (NudeNet's square canvas, ``nudenet-320n``, instead of the default
    model's trimmed one; both: the int8 model on the square canvas), ``+early`` (early exit, on
    a clip flagged from 2 s to the end, next to the same mode without early exit on that clip)
    and ``+clean`` (on a generated clip without flagged content)."""

    name: str
    fps: float | None = None
    every: int | None = None
    all_frames: bool = False
    adaptive: bool = False
    model: str | None = None
    early_exit: bool = False
    clean: bool = False

    @classmethod
    def parse(cls, text: str) -> Mode:
        t = text.strip().lower()
        base, *suffixes = t.split("+")
        extra: dict[str, Any] = {}
        for suffix in suffixes:
            if suffix == "early":
                extra["early_exit"] = True
            elif suffix == "clean":
                extra["clean"] = True
            elif suffix not in ("int8", "square"):
                raise BenchError(f"unknown mode suffix {suffix!r} in {text!r}: use +int8, +square, +early or +clean")
        if extra.get("early_exit") and extra.get("clean"):
            raise BenchError(f"{text!r}: early exit needs a flagged clip, +clean has none")
        variant = ("int8" in suffixes, "square" in suffixes)
        if any(variant):
            extra["model"] = VARIANT_MODELS[variant]
        if base == "all":
            return cls(t, all_frames=True, **extra)
        if base == "adaptive":
            return cls(t, fps=1.0, adaptive=True, **extra)
        m = re.fullmatch(r"fps(\d+(?:\.\d+)?)", base)
        if m and float(m.group(1)) > 0:
            return cls(t, fps=float(m.group(1)), **extra)
        m = re.fullmatch(r"every(\d+)", base)
        if m and int(m.group(1)) >= 1:
            return cls(t, every=int(m.group(1)), **extra)
        raise BenchError(
            f"unknown mode {text!r}: use fpsN (e.g. fps1), everyN, all or adaptive (+int8, +square, +early, +clean)"
        )

    @property
    def base(self) -> str:
        return self.name.split("+")[0]

    @property
    def without_early(self) -> str:
        """The same mode without early exit: the full scan an early-exit run is compared with."""
        return "+".join(p for p in self.name.split("+") if p != "early")

    def scanner_kwargs(self) -> dict[str, Any]:
        if self.adaptive:
            kw: dict[str, Any] = {"adaptive": True}
        elif self.all_frames:
            kw = {"all_frames": True}
        elif self.every is not None:
            kw = {"every": self.every}
        else:
            kw = {"fps": self.fps}
        if self.model:
            kw["models"] = [self.model]
        if self.early_exit:
            kw["early_exit"] = True
        return kw


def parse_size(text: str) -> tuple[int, int]:
    """``"720x1280"`` -> ``(720, 1280)`` (width, height)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 16 or int(m.group(2)) < 16:
        raise BenchError(f"size must be WIDTHxHEIGHT (at least 16x16), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def parse_list(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


@dataclass
class BenchOptions:
    sizes: list[str] | None = None  # WxH; None: the standard matrix (or the --clips)
    modes: list[str] | None = None
    seconds: float | None = None  # None: DEFAULT_SECONDS (QUICK["seconds"] with quick)
    repeats: int | None = None
    clips: list[str] | None = None
    clip_dir: str | None = None
    quick: bool = False
    threads: int | None = None
    decode_threads: int | None = None
    batch_size: int | None = None
    naive: bool = True
    cold_uncached: bool = True
    timeout: float = CHILD_TIMEOUT
    wait_idle: float = 0.0  # seconds to wait, before each run, for other processes to go quiet
    framescan_from: str | None = None  # a tree holding the framescan package to benchmark (default: this one)
    command: str = ""

    @property
    def n_repeats(self) -> int:
        if self.repeats is not None:
            if self.repeats < 1:
                raise BenchError(f"--repeats must be >= 1, got {self.repeats}")
            return self.repeats
        return QUICK["repeats"] if self.quick else DEFAULT_REPEATS  # type: ignore[return-value]


@dataclass
class Config:
    """One clip with one sampling mode."""

    name: str
    clip: str
    mode: Mode
    width: int
    height: int
    seconds: float | None
    fps: float | None
    frames: int | None
    generated: bool
    flagged: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "clip": self.clip,
            "mode": self.mode.name,
            "sampling": self.mode.scanner_kwargs(),
            "width": self.width,
            "height": self.height,
            "seconds": self.seconds,
            "fps": self.fps,
            "frames": self.frames,
            "generated": self.generated,
            "flagged": list(self.flagged) if self.flagged else None,
        }


# --------------------------------------------------------------------------- clips


#: Bumped whenever generated clips change (v2: the flagged image at ``FLAGGED_SCALE`` 1.0), so a
#: cached clip of an older kind is not reused.
CLIP_VERSION = "2"


def default_clip_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "framescan" / "bench-clips"


def flagged_window(seconds: float) -> tuple[float, float]:
    """Flagged content from 6 to 8 s; on clips shorter than 8 s, the middle half."""
    return FLAGGED if seconds >= FLAGGED[1] else (round(seconds * 0.25, 3), round(seconds * 0.75, 3))


def ensure_clip(
    clip_dir: Path,
    width: int,
    height: int,
    seconds: float,
    fps: int,
    flagged: tuple[float, float] | None = None,
    clean: bool = False,
) -> tuple[Path, tuple[float, float] | None]:
    """A generated H.264 clip (``framescan.samples.write_clip``), reused when already written:
    flagged during ``flagged`` (default ``flagged_window``), or nowhere when ``clean``."""
    if clean:
        flagged, tag = None, "clean"
    else:
        flagged = flagged or flagged_window(seconds)
        tag = f"flag{flagged[0]:g}-{flagged[1]:g}"
    path = clip_dir / f"bench{CLIP_VERSION}-{width}x{height}-{seconds:g}s-{fps}fps-{tag}.mp4"
    if path.exists() and path.stat().st_size > 0:
        log.info("reusing %s", path)
        return path, flagged
    from .samples import write_clip

    clip_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.mp4")
    log.info("writing %s", path)
    try:
        write_clip(tmp, width=width, height=height, seconds=seconds, fps=fps, flagged=flagged)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path, flagged


def build_configs(opts: BenchOptions, notify: Callable[[str], None] | None = None) -> list[Config]:
    """The configurations to run: given clips x modes, or generated sizes x modes."""
    modes = [Mode.parse(m) for m in (opts.modes or [])]
    if opts.clips:
        from .probe import probe

        out = []
        for p in opts.clips:
            if not Path(p).is_file():
                raise BenchError(f"clip not found: {p}")
            info = probe(p)
            w, h = info.display_size
            frames = info.frame_count
            for m in modes or [Mode.parse(x) for x in DEFAULT_MODES]:
                if m.clean:
                    raise BenchError(f"{m.name}: +clean picks a generated clip; with --clips, give a clean one")
                out.append(Config(f"{Path(p).name} {m.name}", str(Path(p).resolve()), m, w, h, info.duration,
                                  info.fps, frames, generated=False))  # fmt: skip
        return out
    if opts.quick:
        pairs = [(s, m) for s in (opts.sizes or [QUICK["size"]]) for m in (opts.modes or QUICK["modes"])]
        seconds, fps = float(opts.seconds or QUICK["seconds"]), int(QUICK["fps"])  # type: ignore[call-overload]
    else:
        if opts.sizes is None and opts.modes is None:
            pairs = list(DEFAULT_MATRIX)
        else:
            pairs = [(s, m) for s in (opts.sizes or DEFAULT_SIZES) for m in (opts.modes or DEFAULT_MODES)]
        seconds, fps = float(opts.seconds or DEFAULT_SECONDS), CLIP_FPS
    if seconds <= 0:
        raise BenchError(f"--seconds must be > 0, got {seconds}")
    clip_dir = Path(opts.clip_dir) if opts.clip_dir else default_clip_dir()
    out = []
    clips: dict[str, tuple[Path, tuple[float, float]]] = {}
    expanded: list[tuple[str, str]] = []
    for size, mode_name in pairs:
        m = Mode.parse(mode_name)
        if m.early_exit and (size, m.without_early + "@early") not in expanded:
            expanded.append((size, m.without_early + "@early"))  # the full scan of the same clip, to compare with
        expanded.append((size, mode_name))
    for size, mode_name in expanded:
        w, h = parse_size(size)
        early_clip = mode_name.endswith("@early") or Mode.parse(mode_name.split("@")[0]).early_exit
        mode_name = mode_name.split("@")[0]
        m = Mode.parse(mode_name)
        key = f"{w}x{h}" + ("-early" if early_clip else "-clean" if m.clean else "")
        if key not in clips:
            if notify:
                notify(f"clip {key}, {seconds:g} s at {fps} fps")
            window = (min(EARLY_FLAG_START, seconds / 2), seconds) if early_clip else None
            clips[key] = ensure_clip(clip_dir, w, h, seconds, fps, window, clean=m.clean)
        path, flagged = clips[key]
        out.append(Config(f"{key} {m.name}", str(path), m, w, h, seconds, float(fps), int(round(seconds * fps)),
                          generated=True, flagged=flagged))  # fmt: skip
    return out


# --------------------------------------------------------------------------- device


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip()
    except OSError:
        return None


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """CPU model from /proc/cpuinfo (x86 ``model name``; ARM ``Hardware``/``CPU part``)."""
    info = _read("/proc/cpuinfo") or ""
    fields: dict[str, str] = {}
    for line in info.splitlines():
        k, sep, v = line.partition(":")
        if sep and k.strip() not in fields:
            fields[k.strip()] = v.strip()
    for key in ("model name", "Hardware", "Model", "cpu model", "Processor"):
        if fields.get(key):
            return fields[key]
    if fields.get("CPU implementer"):
        return f"ARM implementer {fields['CPU implementer']} part {fields.get('CPU part', '?')}"
    return platform.processor() or platform.machine() or "unknown"


def _cpu_flags() -> list[str]:
    info = _read("/proc/cpuinfo") or ""
    for line in info.splitlines():
        k, sep, v = line.partition(":")
        if sep and k.strip() in ("flags", "Features"):
            have = set(v.split())
            wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile",
                      "neon", "asimd", "asimddp", "i8mm", "sve", "bf16")  # fmt: skip
            return [f for f in wanted if f in have]
    return []


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def device_info() -> dict[str, Any]:
    """What the measurements ran on (the ORT providers come from the children)."""
    mem = _read("/proc/meminfo") or ""
    mem_mb = None
    for line in mem.splitlines():
        if line.startswith("MemTotal:"):
            mem_mb = round(int(line.split()[1]) / 1024)
    quota = _read("/sys/fs/cgroup/cpu.max")
    versions = {
        name: _dist_version(dist)
        for name, dist in (("framescan", "framescan"), ("av", "av"), ("numba", "numba"), ("llvmlite", "llvmlite"),
                           ("onnxruntime", "onnxruntime"), ("numpy", "numpy"), ("nudenet", "nudenet"))
    }  # fmt: skip
    versions["opencv"] = next(
        (
            v
            for v in (_dist_version(d) for d in ("opencv-python-headless", "opencv-python", "opencv-contrib-python"))
            if v
        ),
        None,
    )
    versions["python"] = platform.python_version()
    board = _read("/proc/device-tree/model")
    return {
        "cpu": cpu_model(),
        "board": board.rstrip("\x00") if board else None,
        "machine": platform.machine(),
        "os": platform.platform(),
        "cores": os.cpu_count(),
        "cores_available": available_cores(),
        "cgroup_cpu_max": quota,
        "cpu_flags": _cpu_flags(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "memory_mb": mem_mb,
        "versions": versions,
        "env": {
            k: os.environ[k]
            for k in sorted(os.environ)
            if k.startswith(("OMP_", "NUMBA_", "ORT_", "MKL_", "OPENBLAS_"))
        },
    }


def _source_state(repo: Path) -> dict[str, Any]:
    """Git commit, whether framescan/ has uncommitted changes, and a digest of its sources."""
    out: dict[str, Any] = {"commit": None, "dirty": None}
    try:
        out["commit"] = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                       timeout=10, check=True).stdout.strip() or None  # fmt: skip
        st = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--", "framescan"], capture_output=True,
                            text=True, timeout=10, check=True).stdout  # fmt: skip
        out["dirty"] = bool(st.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    h = hashlib.sha256()
    pkg = repo / "framescan"
    out["tree"] = str(repo)
    for p in sorted(pkg.rglob("*.py")):
        h.update(str(p.relative_to(pkg)).encode())
        with contextlib.suppress(OSError):
            h.update(p.read_bytes())
    out["source_digest"] = h.hexdigest()[:16]
    return out


# --------------------------------------------------------------------------- children


class NaiveSampler:
    """The naive run's copy of framescan's sampling rule (``framescan.sample``), kept here so
    the naive child never imports framescan: fps keeps the first frame at or after each
    instant k/fps (from timestamps), every keeps every Nth frame, all keeps all."""

    _EPS = 1e-6

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self._next = 0.0

    def keep(self, index: int, t: float) -> bool:
        if self.mode.all_frames:
            return True
        if self.mode.every is not None:
            return index % self.mode.every == 0
        if t + self._EPS < self._next:
            return False
        step = 1.0 / float(self.mode.fps)  # type: ignore[arg-type]
        k = int((t + self._EPS) // step) + 1
        self._next = max(self._next + step, k * step)
        return True


def _peak_rss_mb() -> float:
    """This process's peak RSS. On Linux from /proc/self/status ``VmHWM``: ``ru_maxrss``
    cannot be used in a spawned child, because execve records the parent's peak (the
    address space it replaced) as the child's starting maximum."""
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB elsewhere


def _rss_mb() -> float | None:
    """Current RSS (Linux), e.g. when the process is ready to scan."""
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _machine_busy_seconds() -> float | None:
    """CPU-seconds every process on the machine has used since boot (from /proc/stat; steal
    counts as busy: a vCPU the hypervisor gave to someone else is not ours either)."""
    first = (_read("/proc/stat") or "").split("\n", 1)[0].split()
    if len(first) < 8 or first[0] != "cpu":
        return None
    v = [int(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def _others(machine0: float | None, cpu: float, wall: float) -> float | None:
    """Cores used by other processes during our timed run (machine busy minus our own CPU)."""
    machine1 = _machine_busy_seconds()
    if machine0 is None or machine1 is None or wall <= 0:
        return None
    return max(0.0, (machine1 - machine0 - cpu) / wall)


def _ort_threads(session: Any) -> dict[str, Any]:
    try:
        so = session.get_session_options()
    except Exception:  # older ORT
        return {}
    spinning = None
    with contextlib.suppress(Exception):
        spinning = so.get_session_config_entry("session.intra_op.allow_spinning")
    return {
        "intra_op": so.intra_op_num_threads,
        "inter_op": so.inter_op_num_threads,
        "spinning": spinning if spinning else "default (on)",
        "providers": session.get_providers(),
        "input_type": session.get_inputs()[0].type,
    }


def _use_tree(repo: str) -> None:
    """Import framescan from ``repo`` (a checkout or exported tree), with the manifests of
    its ``models/`` folder as ``framescan._models`` (what setup.py's package_dir does)."""
    import importlib.util

    sys.path.insert(0, repo)
    models = Path(repo) / "models" / "__init__.py"
    if (Path(repo) / "framescan" / "_models").exists() or not models.is_file():
        return
    spec = importlib.util.spec_from_file_location(
        "framescan._models", models, submodule_search_locations=[str(models.parent)]
    )
    if spec is None or spec.loader is None:  # pragma: no cover - cannot happen for a .py file
        return
    mod = importlib.util.module_from_spec(spec)
    sys.modules["framescan._models"] = mod
    spec.loader.exec_module(mod)


def _child_framescan(job: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    if job.get("repo"):
        _use_tree(job["repo"])
    import framescan

    import_s = time.perf_counter() - t0
    mode = Mode.parse(job["mode"])
    kwargs: dict[str, Any] = dict(mode.scanner_kwargs())
    if job.get("threads"):
        kwargs["threads"] = int(job["threads"])
    if job.get("decode_threads"):
        kwargs["decode_threads"] = int(job["decode_threads"])
    if job.get("batch_size"):
        kwargs["batch_size"] = int(job["batch_size"])
    t1 = time.perf_counter()
    scanner = framescan.Scanner(**kwargs)
    load_s = time.perf_counter() - t1

    # Warm-up: the clip's real first frame (same array types as in the scan, so the Numba
    # kernel specialisation is the one the scan uses: compiled, or loaded from Numba's cache)
    # through preprocessing into a full batch and one inference of that batch (the shape the
    # scan uses, so the warm-up allocates nothing the scan would not): that ends the cold start.
    import av
    import onnxruntime as ort

    from framescan.decode import to_yuv_frame
    from framescan.preprocess import batch_view, preprocess_into

    with av.open(job["clip"]) as c:
        first = to_yuv_frame(next(iter(c.decode(video=0))), 0, 0.0)
        jit_s = 0.0
        t2 = time.perf_counter()
        for model in scanner.models:
            spec = model.manifest.input
            batch = batch_view(spec.empty_batch(scanner.batch_size), spec.shape_for(*first.upright_size))
            t = time.perf_counter()
            preprocess_into(first, spec, batch[0])
            jit_s += time.perf_counter() - t
            for slot in range(1, scanner.batch_size):
                preprocess_into(first, spec, batch[slot])
            model.raw(batch)
        warmup_s = time.perf_counter() - t2
        ready_wall = time.time()
        del first, batch
    result: dict[str, Any] = {
        "import_s": import_s,
        "load_s": load_s,
        "warmup_s": warmup_s,
        "jit_s": jit_s,
        "cold_start_s": import_s + load_s + warmup_s,
        "ready_wall": ready_wall,
        "ready_rss_mb": _rss_mb(),
        "threads": {
            "infer": scanner.threads,
            "decode": scanner.decode_threads,
            "batch_size": scanner.batch_size,
            "ort": _ort_threads(scanner.models[0].session),
        },
        "ort_available_providers": ort.get_available_providers(),
        "ffmpeg": getattr(av, "ffmpeg_version_info", None),
        "models": [m.name for m in scanner.models],
    }
    if not job.get("scan", True):
        return result

    # Per-batch timestamps: the pipeline calls ``model.decode`` once per batch per model.
    marks: list[tuple[float, int]] = []
    last = scanner.models[-1]
    orig_decode = last.decode

    def timed_decode(raw: Any, geometries: Sequence[Any]) -> Any:
        out = orig_decode(raw, geometries)
        marks.append((time.perf_counter(), len(geometries)))
        return out

    last.decode = timed_decode  # type: ignore[method-assign]
    machine0 = _machine_busy_seconds()
    cpu0 = _cpu_seconds()
    w0 = time.perf_counter()
    report = scanner.scan(job["clip"])
    wall = time.perf_counter() - w0
    cpu = _cpu_seconds() - cpu0
    others = _others(machine0, cpu, wall)
    last.decode = orig_decode  # type: ignore[method-assign]

    latency: list[float] = []
    prev = w0
    for t, n in marks:
        latency.extend([(t - prev) / max(1, n) * 1e3] * n)
        prev = t
    hits: dict[float, set[str]] = {}
    for ev in report.evidence:
        if ev.category == "sexual":
            hits.setdefault(round(ev.time, 4), set()).add(ev.label)
    try:
        from framescan.aggregate import EVIDENCE_PER_CLIP
    except ImportError:  # pragma: no cover - renamed
        EVIDENCE_PER_CLIP = EVIDENCE_CAP
    cov = report.coverage
    result.update(
        wall_s=wall,
        cpu_s=cpu,
        others_cores=others,
        cores=available_cores(),
        stages_s={k: float(report.timings.get(k, 0.0)) for k in STAGES},
        # timings the pipeline adds beyond the five stages (e.g. known-content hashing)
        extra_stages_s={k: float(v) for k, v in report.timings.items() if k not in (*STAGES, "probe", "total")},
        probe_s=float(report.timings.get("probe", 0.0)),
        report_total_s=float(report.timings.get("total", wall)),
        scored_frames=cov.scored_frames if cov else None,
        decoded_frames=cov.decoded_frames if cov else None,
        status=report.status,
        decision=report.decision,
        batches=len(marks),
        latency_ms=[round(v, 3) for v in latency],
        detections=[{"time": t, "labels": sorted(ls)} for t, ls in sorted(hits.items())],
        evidence_truncated=len(report.evidence) >= EVIDENCE_PER_CLIP,
    )
    return result


def _child_naive(job: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    import cv2
    import nudenet
    from nudenet import nudenet as nn

    import_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    detector = nudenet.NudeDetector()
    load_s = time.perf_counter() - t1
    cap = cv2.VideoCapture(job["clip"])
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise BenchError(f"OpenCV cannot read {job['clip']}")
    t2 = time.perf_counter()
    detector.detect(frame)
    warmup_s = time.perf_counter() - t2
    ready_wall = time.time()
    result: dict[str, Any] = {
        "import_s": import_s,
        "load_s": load_s,
        "warmup_s": warmup_s,
        "cold_start_s": import_s + load_s + warmup_s,
        "ready_wall": ready_wall,
        "ready_rss_mb": _rss_mb(),
        "threads": {"ort": _ort_threads(detector.onnx_session), "opencv": cv2.getNumThreads()},
    }
    if not job.get("scan", True):
        return result

    stage = dict.fromkeys(STAGES, 0.0)

    def timed(fn: Callable[..., Any], key: str) -> Callable[..., Any]:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                stage[key] += time.perf_counter() - t

        return wrapper

    orig = nn._read_image, nn._postprocess
    nn._read_image = timed(orig[0], "preprocess")
    nn._postprocess = timed(orig[1], "postprocess")
    detector.onnx_session.run = timed(detector.onnx_session.run, "infer")  # type: ignore[method-assign]
    sampler = NaiveSampler(Mode.parse(job["mode"]))
    hits: list[dict[str, Any]] = []
    latency: list[float] = []
    index = scored = 0
    machine0 = _machine_busy_seconds()
    cpu0 = _cpu_seconds()
    w0 = time.perf_counter()
    cap = cv2.VideoCapture(job["clip"])  # opening counts, as framescan's probe does
    clip_fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    prev = w0
    try:
        while True:
            t = time.perf_counter()
            ok, frame = cap.read()
            if not ok:
                stage["decode"] += time.perf_counter() - t
                break
            ts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1e3
            if ts <= 0 and index > 0 and clip_fps > 0:
                ts = index / clip_fps
            stage["decode"] += time.perf_counter() - t
            if sampler.keep(index, ts):
                dets = detector.detect(frame)
                t = time.perf_counter()
                labels = sorted({d["class"] for d in dets if d["class"] in SEXUAL_LABELS})
                if labels:
                    hits.append({"time": round(ts, 4), "labels": labels})
                scored += 1
                now = time.perf_counter()
                stage["aggregate"] += now - t
                latency.append((now - prev) * 1e3)
                prev = now
            index += 1
    finally:
        cap.release()
        nn._read_image, nn._postprocess = orig
    wall = time.perf_counter() - w0
    cpu = _cpu_seconds() - cpu0
    others = _others(machine0, cpu, wall)
    result.update(
        wall_s=wall,
        cpu_s=cpu,
        others_cores=others,
        cores=available_cores(),
        stages_s=stage,
        scored_frames=scored,
        decoded_frames=index,
        latency_ms=[round(v, 3) for v in latency],
        detections=hits,
        evidence_truncated=False,
    )
    return result


def child_main(job_json: str) -> int:
    """Entry point of a benchmark child process (see ``CHILD_BOOTSTRAP``)."""
    job = json.loads(job_json)
    try:
        res = _child_framescan(job) if job["impl"] == "framescan" else _child_naive(job)
        res["ok"] = True
    except Exception as ex:
        log.exception("benchmark child failed")
        res = {"ok": False, "error": f"{type(ex).__name__}: {ex}"}
    res["peak_rss_mb"] = _peak_rss_mb()
    Path(job["result"]).write_text(json.dumps(res))
    return 0 if res["ok"] else 1


#: Loads this file as a standalone module (not as ``framescan.bench``, which would import
#: the framescan package into the naive child) and runs one job.
CHILD_BOOTSTRAP = (
    "import importlib.util, sys\n"
    "spec = importlib.util.spec_from_file_location('_framescan_bench_child', sys.argv[1])\n"
    "mod = importlib.util.module_from_spec(spec)\n"
    "sys.modules[spec.name] = mod\n"
    "spec.loader.exec_module(mod)\n"
    "sys.exit(mod.child_main(sys.argv[2]))\n"
)


def run_child(job: dict[str, Any], timeout: float = CHILD_TIMEOUT, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one job in a fresh Python process and return its measurements."""
    with tempfile.TemporaryDirectory(prefix="framescan-bench-") as tmp:
        job = {**job, "result": str(Path(tmp) / "result.json")}
        cmd = [sys.executable, "-c", CHILD_BOOTSTRAP, str(Path(__file__).resolve()), json.dumps(job)]
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


# --------------------------------------------------------------------------- statistics


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


def _median(s: dict[str, Any] | None) -> float | None:
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


def _ratio(a: float | None, b: float | None) -> float | None:
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
                "speedup": _ratio(_median(nv["total_s"]), _median(fs["total_s"])),
                "speedup_paired": stat(paired),
                "speedup_quiet": stat(quiet),
                "per_frame": _ratio(_median(nv["per_frame_ms"]), _median(fs["per_frame_ms"])),
                "latency_p50": _ratio(nv["latency_ms"]["p50"], fs["latency_ms"]["p50"]),
                "latency_p95": _ratio(nv["latency_ms"]["p95"], fs["latency_ms"]["p95"]),
                "peak_rss": _ratio(_median(nv["peak_rss_mb"]), _median(fs["peak_rss_mb"])),
                "cold_start": _ratio(_median(nv["cold_start_s"]), _median(fs["cold_start_s"])),
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

    def speedup(mode: str, tid: str, desc: str, target: float) -> None:
        """The target on the mode as given and, where it was run, on NudeNet's square canvas."""
        variants = (("", ""), ("+square", ", NudeNet's square canvas"), ("+clean", ", a clip without flagged content"))
        for variant, label in variants:
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
        eff = _median(quiet) if quiet else _median(fs.get("efficiency"))
        note = f"median of {quiet['n']} quiet run(s)" if quiet else "median over repeats (no quiet run: contended)"
        add(f"efficiency {cfg['name']}", f"{cfg['name']}: wall / (CPU time / cores)", f"<= {TARGET_EFFICIENCY}",
            eff, None if eff is None else eff <= TARGET_EFFICIENCY, note)  # fmt: skip
    speedup("all+int8", "speedup_720_all_int8", "720x1280 15 s, every frame, validated int8{}: framescan vs naive "
            "(fp32)", TARGET_SPEEDUP_ALL_INT8)  # fmt: skip
    speedup("adaptive", "speedup_720_adaptive", "720x1280 15 s, adaptive sampling{} vs the naive loop at 1 fps",
            TARGET_SPEEDUP_ADAPTIVE)  # fmt: skip
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


# --------------------------------------------------------------------------- run


def wait_for_idle(max_wait: float, threshold: float = QUIET_CORES, window: float = 1.0) -> tuple[float | None, float]:
    """Wait (up to ``max_wait`` s) until the machine is idle: every process together using
    less than ``threshold`` cores over ``window`` s (from /proc/stat; this process sleeps
    meanwhile). Returns the busy cores last measured (None without /proc/stat) and the wait."""
    t0 = time.monotonic()
    while True:
        b0 = _machine_busy_seconds()
        time.sleep(window)
        b1 = _machine_busy_seconds()
        busy = None if b0 is None or b1 is None else (b1 - b0) / window
        if busy is None or busy < threshold or time.monotonic() - t0 >= max_wait:
            return busy, time.monotonic() - t0


def run_bench(opts: BenchOptions, notify: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the benchmark and return the JSON-ready report (schema ``framescan.bench/1``)."""
    say = notify or (lambda msg: log.info("%s", msg))
    repeats = opts.n_repeats
    repo = Path(opts.framescan_from).resolve() if opts.framescan_from else Path(__file__).resolve().parents[2]
    if not (repo / "framescan" / "__init__.py").is_file():
        raise BenchError(f"no framescan package in {repo}")
    source_before = _source_state(repo)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    started = _dt.datetime.now(_dt.timezone.utc)
    configs = build_configs(opts, say)
    if not configs:
        raise BenchError("nothing to run")
    base = {
        "repo": str(repo),
        "threads": opts.threads,
        "decode_threads": opts.decode_threads,
        "batch_size": opts.batch_size,
    }
    impls = list(IMPLS) if opts.naive else ["framescan"]

    cold_uncached: dict[str, Any] | None = None
    if opts.cold_uncached and not opts.quick:
        say("cold start with an empty Numba cache (compiles the kernels)")
        with tempfile.TemporaryDirectory(prefix="framescan-numba-") as cache:
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            r = run_child({**base, "impl": "framescan", "clip": configs[0].clip, "mode": configs[0].mode.name,
                           "scan": False}, opts.timeout, env)  # fmt: skip
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
                r = run_child(job, opts.timeout)
                r.update(impl=impl, config=cfg.name, repeat=rep, **idle)
                runs.append(r)
                if r.get("ok"):
                    say(f"[{k}/{total}] {cfg.name} {impl} repeat {rep + 1}: {r['wall_s']:.2f} s, "
                        f"{r.get('scored_frames')} frames scored, peak RSS {r['peak_rss_mb']:.0f} MB")  # fmt: skip
                else:
                    say(f"[{k}/{total}] {cfg.name} {impl} repeat {rep + 1}: FAILED: {r.get('error')}")
    summary = summarize(configs, runs)
    source_after = _source_state(repo)
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
            "threads": opts.threads,
            "decode_threads": opts.decode_threads,
            "batch_size": opts.batch_size,
            "precision": "fp32",
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


# --------------------------------------------------------------------------- rendering


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
    return " / ".join(f"{_median(x.get(k)) or 0.0:.2f}" for k in ("import_s", "load_s", "warmup_s"))


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
            f"framescan cold start with an empty Numba cache: {cu['cold_start_s']:.2f} s (import {cu['import_s']:.2f}, "
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
    ("framescan total s", lambda f: _median(f.get("total_s")), 2),
    ("per scored frame ms", lambda f: _median(f.get("per_frame_ms")), 1),
    ("scored frames/s", lambda f: _median(f.get("scored_fps")), 1),
    ("latency p50 ms", lambda f: (f.get("latency_ms") or {}).get("p50"), 1),
    ("latency p95 ms", lambda f: (f.get("latency_ms") or {}).get("p95"), 1),
    *((f"{s} s", (lambda f, s=s: _median((f.get("stages_s") or {}).get(s))), 3) for s in STAGES),
    ("efficiency", lambda f: _median(f.get("efficiency")), 2),
    ("cold start s", lambda f: _median(f.get("cold_start_s")), 2),
    ("peak RSS MB", lambda f: _median(f.get("peak_rss_mb")), 0),
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
        rows.append((f"  {label}", *("-" if v is None else f"{v:.{digits}f}" for v in (va, vb)), _fx(_ratio(vb, va))))
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
            bars.append({s: _median(x["stages_s"].get(s)) or 0.0 for s in STAGES})
            walls.append(_median(x.get("total_s")))
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


def command_line(argv: Sequence[str] | None = None) -> str:
    return shlex.join(["framescan", *(argv if argv is not None else sys.argv[1:])])
