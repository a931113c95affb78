"""Peak RSS (VmHWM) of one in-process scan, step by step: after the heavy imports, after
``Scanner()``, after the scan (benchmarks/RESULTS.md, "Memory, 1080x1920").

    python benchmarks/bench_memory.py CLIP [FPS]

Linux only (reads /proc/self/status). Run each configuration in a fresh process, interleaved.
"""

from __future__ import annotations

import sys


def hwm() -> dict[str, int]:
    """VmHWM (peak) and VmRSS (now) of this process, in MB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                out[line.split(":")[0]] = int(line.split()[1]) // 1024
    return out


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    import av  # noqa: F401
    import numba  # noqa: F401
    import numpy  # noqa: F401
    import onnxruntime  # noqa: F401

    print("imports", hwm())
    import framescan

    scanner = framescan.Scanner(fps=float(sys.argv[2]) if len(sys.argv) > 2 else 1.0)
    print("scanner", hwm())
    report = scanner.scan(sys.argv[1])
    print("scan", hwm(), report.decision)


if __name__ == "__main__":
    main()
