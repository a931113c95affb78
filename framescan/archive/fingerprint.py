"""What keys an archive result: the sha256 of a file's content, the fingerprints of the scanner
(models; policy, sampling, limits, banks...: ``ScanConfig.fingerprint``), and the check that a
report matches them."""

from __future__ import annotations

import hashlib
from typing import Any

from ..config import Fingerprints
from ..errors import ConfigError
from ..probe import SNIFF_BYTES
from .discover import sniff_video

HASH_CHUNK = 1 << 20


def hash_file(path: str, sniff: bool) -> str | None:
    """sha256 of the file's content, or None when ``sniff`` and the first bytes are not video."""
    with open(path, "rb") as f:
        head = f.read(HASH_CHUNK)
        if sniff and not sniff_video(head[:SNIFF_BYTES]):
            return None
        h = hashlib.sha256(head)
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def check_report(report: dict[str, Any], fp: Fingerprints) -> None:
    """A scanned report must come from the models, policy and sampling the fingerprints name."""
    if report.get("status") == "error":
        return
    got = sorted([m["name"], m["sha256"].lower()] for m in report.get("models", []))
    if got != fp.models_body:
        raise ConfigError(f"a worker scanned with models {got}, expected {fp.models_body}: the models changed mid-run")
    if report.get("policy") != fp.config_body["policy"] or report.get("sampling") != fp.config_body["sampling"]:
        raise ConfigError("a worker scanned with another policy or sampling than the run's: configuration changed")
