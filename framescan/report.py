"""The clip report: a versioned JSON document (schema ``framescan.report/1``).

See ``docs/report.md`` for every field. ``status`` is ``complete`` (the whole clip was
read), ``partial`` (scored, but decoding stopped early or skipped corrupt data: see
``coverage``) or ``error`` (nothing trustworthy was scored: see ``error``); an ``error``
report has ``decision: null``, never ``allow``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import FramescanError
from .models import CATEGORIES
from .probe import ClipInfo

if TYPE_CHECKING:  # annotations only: reading a report (the client, the CLI) needs no NumPy
    from .aggregate import CategoryResult
    from .score import Evidence

SCHEMA = "framescan.report/1"
#: The JSON Schema of ``framescan.report/1``, shipped in the package.
SCHEMA_PATH = Path(__file__).parent / "schema" / "report-1.json"
#: When this environment variable is set (the test suite sets it), every report is checked
#: against the schema as it is built, and a mismatch raises ``ReportSchemaError``.
VALIDATE_ENV = "FRAMESCAN_VALIDATE_REPORTS"


@dataclass
class Coverage:
    """How much of the clip was actually read and decoded, against what the header claims."""

    read_packets: int
    decoded_frames: int
    decoded_seconds: float
    sampled_frames: int
    scored_frames: int
    claimed_frames: int | None
    claimed_seconds: float | None
    corrupt_packets: int = 0
    corrupt_frames: int = 0
    skipped_packets: int = 0
    reused_frames: int | None = None  # adaptive sampling: near-duplicates given the last score
    refined_frames: int | None = None  # adaptive sampling: frames added around hits
    ocr_frames: int | None = None  # on-screen text: frames read by OCR
    stopped_early: bool = False
    stopped_reason: str | None = None
    stopped_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {
            k: v
            for k, v in self.__dict__.items()
            if v is not None or k not in ("reused_frames", "refined_frames", "ocr_frames")
        }
        d["decoded_seconds"] = round(self.decoded_seconds, 3)
        if self.claimed_seconds is not None:
            d["claimed_seconds"] = round(self.claimed_seconds, 3)
        if self.stopped_at is not None:
            d["stopped_at"] = round(self.stopped_at, 3)
        return d


@dataclass
class Report:
    source: str
    status: str  # complete | partial | error
    decision: str | None
    clip: ClipInfo | None = None
    coverage: Coverage | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)
    categories: dict[str, CategoryResult] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _raw: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        """A report received as JSON (e.g. from a worker process): ``to_dict`` returns it as is."""
        return cls(source=d["source"], status=d["status"], decision=d["decision"], error=d.get("error"), _raw=d)

    @classmethod
    def from_error(cls, source: str, err: FramescanError, **kw: Any) -> Report:
        """A report for a clip that could not be scanned: ``decision`` is null, and every
        category says it was not scanned (its signals are unknown here: ``null``)."""
        return cls(source=source, status="error", decision=None, error=err.to_dict(), **kw)

    @property
    def segments(self) -> list[dict[str, Any]]:
        return list(self.to_dict()["segments"])

    def _evidence_list(self) -> tuple[list[Evidence], dict[str, int]]:
        """Every evidence item of the report once: the clip's strongest and every segment's,
        highest weighted score first, with each item's index by key."""
        items: dict[str, Evidence] = {}
        for e in [*self.evidence, *(e for r in self.categories.values() for s in r.segments for e in s.evidence)]:
            items.setdefault(e.key(), e)
        ordered = sorted(items.items(), key=lambda kv: -kv[1].weighted)
        return [e for _, e in ordered], {k: i for i, (k, _) in enumerate(ordered)}

    def to_dict(self) -> dict[str, Any]:
        if self._raw is not None:
            return dict(self._raw)
        evidence, index = self._evidence_list()
        if self.status == "error":
            code = (self.error or {}).get("code", "error")
            categories: dict[str, Any] = {
                c: {
                    "signals": None,
                    "score": None,
                    "decision": None,
                    "note": f"not scanned: the clip could not be read ({code})",
                }
                for c in CATEGORIES
            }
        else:
            categories = {c: r.to_dict(index) for c, r in self.categories.items()}
        d: dict[str, Any] = {
            "schema": SCHEMA,
            "framescan_version": __version__,
            "source": self.source,
            "status": self.status,
            "decision": self.decision,
            "reasons": self.reasons,
            "error": self.error,
            "clip": self.clip.to_dict() if self.clip else None,
            "coverage": self.coverage.to_dict() if self.coverage else None,
            "sampling": self.sampling or None,
            "models": self.models,
            "policy": self.policy or None,
            "categories": categories,
            "segments": [s for c in categories.values() for s in c.get("segments", [])],
            "evidence": [e.to_dict() for e in evidence],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "warnings": self.warnings,
            "known_content": None,
            "context": {},
        }
        d.update(self.extra)
        if os.environ.get(VALIDATE_ENV):
            validate(d)
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


class ReportSchemaError(ValueError):
    """A report does not match the shipped ``framescan.report/1`` schema (a framescan bug)."""


@lru_cache(maxsize=1)
def _validator() -> Any:
    try:
        import jsonschema
    except ImportError as ex:  # pragma: no cover - jsonschema is in the dev extra
        raise ImportError("validating reports needs jsonschema: pip install 'framescan[dev]'") from ex
    schema = json.loads(SCHEMA_PATH.read_text())
    return jsonschema.Draft202012Validator(schema)


def validate(report: dict[str, Any]) -> None:
    """Check a report dict against ``framescan/schema/report-1.json``; raise
    ``ReportSchemaError`` naming every mismatch (path and message)."""
    errors = sorted(_validator().iter_errors(report), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors[:20]]
        raise ReportSchemaError(f"report for {report.get('source')!r} does not match {SCHEMA}:\n" + "\n".join(lines))


def segment_evidence(report: dict[str, Any], segment: dict[str, Any]) -> list[dict[str, Any]]:
    """A segment's evidence items (a segment lists indices into ``report["evidence"]``)."""
    return [report["evidence"][i] for i in segment["evidence"]]
