"""What the measurements ran on: CPU, cores, memory, versions, the machine's busy time and the
source tree. Standard library only: the child processes import it (see ``child``)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from ..cores import available_cores


def read_text(path: str) -> str | None:
    """A small text file (e.g. under /proc), stripped; None when it cannot be read."""
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
    info = read_text("/proc/cpuinfo") or ""
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
    info = read_text("/proc/cpuinfo") or ""
    for line in info.splitlines():
        k, sep, v = line.partition(":")
        if sep and k.strip() in ("flags", "Features"):
            have = set(v.split())
            wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile",
                      "neon", "asimd", "asimddp", "i8mm", "sve", "bf16")  # fmt: skip
            return [f for f in wanted if f in have]
    return []


def device_info() -> dict[str, Any]:
    """What the measurements ran on (the ORT providers come from the children)."""
    mem = read_text("/proc/meminfo") or ""
    mem_mb = None
    for line in mem.splitlines():
        if line.startswith("MemTotal:"):
            mem_mb = round(int(line.split()[1]) / 1024)
    quota = read_text("/sys/fs/cgroup/cpu.max")
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
    board = read_text("/proc/device-tree/model")
    return {
        "cpu": cpu_model(),
        "board": board.rstrip("\x00") if board else None,
        "machine": platform.machine(),
        "os": platform.platform(),
        "cores": os.cpu_count(),
        "cores_available": available_cores(),
        "cgroup_cpu_max": quota,
        "cpu_flags": _cpu_flags(),
        "governor": read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "memory_mb": mem_mb,
        "versions": versions,
        "env": {
            k: os.environ[k]
            for k in sorted(os.environ)
            if k.startswith(("OMP_", "NUMBA_", "ORT_", "MKL_", "OPENBLAS_"))
        },
    }


def source_state(repo: Path) -> dict[str, Any]:
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


def machine_busy_seconds() -> float | None:
    """CPU-seconds every process on the machine has used since boot (from /proc/stat; steal
    counts as busy: a vCPU the hypervisor gave to someone else is not ours either)."""
    first = (read_text("/proc/stat") or "").split("\n", 1)[0].split()
    if len(first) < 8 or first[0] != "cpu":
        return None
    v = [int(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
