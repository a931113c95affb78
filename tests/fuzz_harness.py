"""Load ``fuzz/fuzz_scan.py`` (not a package) once, for the tests that reuse its mutators."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
_NAME = "framescan_fuzz_harness"


def load_harness() -> ModuleType:
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    spec = importlib.util.spec_from_file_location(_NAME, ROOT / "fuzz" / "fuzz_scan.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module
