"""How many CPU cores this process may use. Standard library only: the benchmark's child
processes import it without importing framescan (see ``framescan.bench.child``)."""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, which a cgroup cpuset narrows (a cgroup
    CPU quota, ``cpu.max``, is not counted); where there is no affinity (not Linux), every core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
