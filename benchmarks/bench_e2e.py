"""End-to-end benchmark: framescan vs the naive alternative (cv2 + NudeDetector), per stage.

    python benchmarks/bench_e2e.py                 # standard matrix, 3 repeats:
                                                   #   writes benchmarks/e2e.json and benchmarks/e2e.png
    python benchmarks/bench_e2e.py --quick --json /tmp/quick.json
    python benchmarks/bench_e2e.py --compare a.json b.json

The same as ``framescan bench`` (see ``framescan/cli/bench.py`` and ``framescan/bench/``);
every ``framescan bench`` option is accepted. Without ``--json``/``--chart`` the results go
next to this script. Runs from a checkout without installing (the repository root is put on
``sys.path``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framescan.cli.bench import main  # noqa: E402

DEFAULT_JSON = ROOT / "benchmarks" / "e2e.json"
DEFAULT_CHART = ROOT / "benchmarks" / "e2e.png"


def _argv(argv: list[str]) -> list[str]:
    args = list(argv)
    if "--compare" in args:
        return args
    if "--json" not in args:
        args += ["--json", str(DEFAULT_JSON)]
    if "--chart" not in args:
        args += ["--chart", str(DEFAULT_CHART)]
    return args


if __name__ == "__main__":
    sys.exit(main(_argv(sys.argv[1:])))
