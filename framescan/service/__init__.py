"""The upload-pipeline service (``framescan serve``): the names its callers import."""

from .core import (
    DEFAULT_MAX_UPLOAD,
    DEFAULT_PROFILE,
    ScanService,
    ServiceConfig,
    create_app,
    load_tokens,
    parse_tokens,
    sniff,
)

__all__ = [
    "DEFAULT_MAX_UPLOAD",
    "DEFAULT_PROFILE",
    "ScanService",
    "ServiceConfig",
    "create_app",
    "load_tokens",
    "parse_tokens",
    "sniff",
]
