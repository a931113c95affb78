"""framescan: scan short videos for content that harms children.

``scan(source)`` returns a ``Report`` for one clip; a ``Scanner`` loads models once and
scans many. See README.md.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import ErrorCode, FramescanError
from .pipeline import Scanner, scan
from .policy import Policy, load_policy
from .probe import ClipInfo, probe
from .report import Report

__all__ = [
    "ClipInfo",
    "ErrorCode",
    "FramescanError",
    "Policy",
    "Report",
    "Scanner",
    "__version__",
    "load_policy",
    "probe",
    "scan",
]
