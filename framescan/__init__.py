"""framescan: scan short videos for content that harms children.

``scan(source)`` returns a ``Report`` for one clip; a ``Scanner`` loads models once and
scans many. See README.md.

The package imports lazily (PEP 562): ``import framescan`` loads only the version, the errors
and ``probe``; ``Scanner``, ``scan`` and the other names load their module (NumPy, Numba...)
on first use, so ``framescan --version``, the HTTP client and configuration loading stay light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import ErrorCode, FramescanError

# ``probe`` is both a function and a module: bound here, after its module is imported, so that a
# later ``import framescan.probe`` finds the module loaded and leaves the function in place.
from .probe import ClipInfo, probe

if TYPE_CHECKING:
    from .categories import CATEGORIES, Decision
    from .config import ScanConfig
    from .pipeline import Scanner, scan
    from .policy import Policy, load_policy
    from .report import Report

#: Public name -> the module that defines it, imported on first access.
_LAZY = {
    "CATEGORIES": "categories",
    "Decision": "categories",
    "Policy": "policy",
    "Report": "report",
    "ScanConfig": "config",
    "Scanner": "pipeline",
    "load_policy": "policy",
    "scan": "pipeline",
}

__all__ = [
    "CATEGORIES",
    "ClipInfo",
    "Decision",
    "ErrorCode",
    "FramescanError",
    "Policy",
    "Report",
    "ScanConfig",
    "Scanner",
    "__version__",
    "load_policy",
    "probe",
    "scan",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
