"""The clip report: a versioned JSON document (schema ``framescan.report/1``).

See ``docs/report.md`` for every field. ``status`` is ``complete`` (the whole clip was
read), ``partial`` (scored, but decoding stopped early or skipped corrupt data: see
``coverage``) or ``error`` (nothing trustworthy was scored: see ``error``); an ``error``
report has ``decision: null``, never ``allow``. The report's value types (evidence, segments,
category results, coverage) live here too, so that reading a report needs no NumPy.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ._version import __version__
from .categories import CATEGORIES, Decision
from .errors import FramescanError
from .probe import ClipInfo

SCHEMA = "framescan.report/1"
#: The key of a report dict that carries the report's evidence frames (``Report.images``)
#: between processes (``Report.to_wire``); never part of a report written out.
IMAGES_KEY = "__evidence_images__"
#: The JSON Schema of ``framescan.report/1``, shipped in the package.
SCHEMA_PATH = Path(__file__).parent / "schema" / "report-1.json"
#: When this environment variable is set (the test suite sets it), every report is checked
#: against the schema as it is built, and a mismatch raises ``ReportSchemaError``.
VALIDATE_ENV = "FRAMESCAN_VALIDATE_REPORTS"


@dataclass(frozen=True)
class Evidence:
    """One model output that fed a category on one frame (or, for speech, words heard from
    ``time`` to ``end``; ``frame_index`` is then None)."""

    time: float
    frame_index: int | None
    model: str
    label: str
    category: str
    score: float  # the model's own score
    weighted: float  # score * the label's weight: what the category sees
    box: tuple[float, float, float, float] | None = None  # x1, y1, x2, y2 in upright frame pixels
    reused: bool = False  # a near-duplicate frame given the last scored frame's result
    text: str | None = None  # on-screen text: the text as read that the term matched
    pts: int | None = None  # the frame's presentation timestamp (stream time base); None if the container gives none
    image: str | None = None  # the evidence frame's path, relative to the report (framescan.evidence)
    #: a symbol-bank match (``framescan.symbols``): the reference's corners in upright frame
    #: pixels (clockwise from its top left) and the RANSAC inliers
    quad: tuple[tuple[float, float], ...] | None = None
    inliers: int | None = None
    end: float | None = None  # speech: when the last word of the term ended

    def carried_to(self, frame_index: int, time: float, pts: int | None) -> Evidence:
        """This evidence on another frame that shows the same thing (a near-duplicate frame, or a
        frame whose on-screen text did not change): same result, that frame's index, time and pts."""
        return dataclasses.replace(self, time=time, frame_index=frame_index, pts=pts, reused=True)

    def key(self) -> str:
        """Identity in a report: two items with the same fields (e.g. the clip's top evidence
        and a segment's) are written once."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {
            "time": round(self.time, 3),
            "frame_index": self.frame_index,
            "pts": self.pts,
            "model": self.model,
            "label": self.label,
            "category": self.category,
            "score": round(self.score, 4),
            "weighted": round(self.weighted, 4),
        }
        if self.box is not None:
            d["box"] = [round(v, 1) for v in self.box]
        if self.text is not None:
            d["text"] = self.text
        if self.quad is not None:
            d["quad"] = [[round(x, 1), round(y, 1)] for x, y in self.quad]
        if self.inliers is not None:
            d["inliers"] = self.inliers
        if self.end is not None:
            d["end"] = round(self.end, 3)
        if self.reused:
            d["reused"] = True
        if self.image is not None:
            d["image"] = self.image
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Evidence:
        box = d.get("box")
        quad = d.get("quad")
        return cls(
            time=d["time"],
            frame_index=d["frame_index"],
            model=d["model"],
            label=d["label"],
            category=d["category"],
            score=d["score"],
            weighted=d["weighted"],
            box=None if box is None else tuple(box),
            reused=d.get("reused", False),
            text=d.get("text"),
            pts=d.get("pts"),
            image=d.get("image"),
            quad=None if quad is None else tuple((x, y) for x, y in quad),
            inliers=d.get("inliers"),
            end=d.get("end"),
        )


@dataclass
class Segment:
    category: str
    start: float
    end: float  # the first scored frame after last_hit that does not hit (ClipAggregator.finish)
    last_hit: float
    peak: float
    peak_time: float
    frames: int = 1
    evidence: list[Evidence] = field(default_factory=list)

    def to_dict(self, evidence_index: dict[str, int]) -> dict[str, object]:
        """``evidence_index``: the report's evidence list, item key (``Evidence.key``) -> index;
        the segment refers to its evidence by index instead of copying it."""
        return {
            "category": self.category,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "last_hit": round(self.last_hit, 3),
            "peak": round(self.peak, 4),
            "peak_time": round(self.peak_time, 3),
            "frames": self.frames,
            "evidence": [evidence_index[e.key()] for e in self.evidence],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], evidence: list[Evidence]) -> Segment:
        """``evidence``: the report's evidence list, which ``d["evidence"]`` indexes."""
        fields = {k: v for k, v in d.items() if k != "evidence"}
        return cls(**fields, evidence=[evidence[i] for i in d["evidence"]])


@dataclass
class CategoryResult:
    category: str
    signals: list[str]  # models (or other signals) that can feed this category
    score: float = 0.0
    peak_time: float | None = None
    hit_frames: int = 0
    block_frames: int = 0
    segments: list[Segment] = field(default_factory=list)
    decision: Decision = Decision.ALLOW
    known_content: list[dict[str, object]] = field(default_factory=list)  # bank matches (framescan.known)

    def to_dict(self, evidence_index: dict[str, int]) -> dict[str, object]:
        d: dict[str, object] = {"signals": self.signals}
        if not self.signals:
            d.update(score=None, decision=None, note="no signal configured for this category: not scanned")
            return d
        d.update(
            score=round(self.score, 4),
            peak_time=None if self.peak_time is None else round(self.peak_time, 3),
            hit_frames=self.hit_frames,
            block_frames=self.block_frames,
            decision=self.decision,
            segments=[s.to_dict(evidence_index) for s in self.segments],
            known_content=self.known_content,
        )
        return d

    @classmethod
    def from_dict(cls, category: str, d: dict[str, Any], evidence: list[Evidence]) -> CategoryResult:
        if not d["signals"]:
            return cls(category, [])
        return cls(
            category,
            list(d["signals"]),
            score=d["score"],
            peak_time=d["peak_time"],
            hit_frames=d["hit_frames"],
            block_frames=d["block_frames"],
            segments=[Segment.from_dict(s, evidence) for s in d["segments"]],
            decision=Decision(d["decision"]),
            known_content=d["known_content"],
        )


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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Coverage:
        return cls(**d)


#: Report fields that ``Report.to_dict`` writes from its own attributes; any other key of a
#: report read back (``Report.from_dict``) is kept in ``extra``.
_OWN_KEYS = frozenset(
    {
        "schema",
        "framescan_version",
        "source",
        "status",
        "decision",
        "reasons",
        "error",
        "clip",
        "coverage",
        "sampling",
        "models",
        "policy",
        "categories",
        "segments",
        "evidence",
        "timings",
        "warnings",
        "timeline",
    }
)


@dataclass
class Report:
    source: str
    status: str  # complete | partial | error
    decision: Decision | None
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
    framescan_version: str = __version__  # the version that wrote the report
    #: evidence frames (``framescan.evidence``): frame index -> JPEG; not in the JSON (see ``to_wire``)
    images: dict[int, bytes] = field(default_factory=dict, repr=False)
    #: every scored frame's scores (``ClipAggregator.timeline``), or None when not asked for
    timeline: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        """A report read back from its JSON form (e.g. from a worker process or the service):
        ``to_dict`` gives ``d`` back. ``evidence`` holds every item of the report's evidence list
        (the clip's strongest and every segment's)."""
        evidence = [Evidence.from_dict(e) for e in d["evidence"]]
        scanned = d["status"] != "error"  # an error report's categories are written from its error
        clip = (
            {k: v for k, v in d["clip"].items() if k not in ("display_width", "display_height")} if d["clip"] else None
        )
        return cls(
            source=d["source"],
            status=d["status"],
            decision=None if d["decision"] is None else Decision(d["decision"]),
            clip=ClipInfo(**clip) if clip is not None else None,
            coverage=Coverage.from_dict(d["coverage"]) if d["coverage"] else None,
            sampling=d["sampling"] or {},
            models=d["models"],
            policy=d["policy"] or {},
            categories={c: CategoryResult.from_dict(c, r, evidence) for c, r in d["categories"].items()}
            if scanned
            else {},
            evidence=evidence,
            reasons=d["reasons"],
            timings=d["timings"],
            warnings=d["warnings"],
            error=d["error"],
            extra={k: v for k, v in d.items() if k not in _OWN_KEYS and k != IMAGES_KEY},
            framescan_version=d["framescan_version"],
            images={int(k): v for k, v in (d.get(IMAGES_KEY) or {}).items()},
            timeline=d.get("timeline"),  # absent from reports written before the timeline
        )

    @classmethod
    def from_error(cls, source: str, err: FramescanError | dict[str, Any], **kw: Any) -> Report:
        """A report for a clip that could not be scanned: ``decision`` is null, and every
        category says it was not scanned (its signals are unknown here: ``null``). ``err``: the
        error, or its ``to_dict()`` (as a worker process sends it)."""
        error = err.to_dict() if isinstance(err, FramescanError) else err
        return cls(source=source, status="error", decision=None, error=error, **kw)

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
            "framescan_version": self.framescan_version,
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
            "timeline": self.timeline,
            "known_content": None,
            "context": {},
        }
        d.update(self.extra)
        if os.environ.get(VALIDATE_ENV):
            validate(d)
        return d

    def to_wire(self) -> dict[str, Any]:
        """``to_dict`` plus the evidence frames under ``IMAGES_KEY`` (for a worker process or an
        archive engine to hand the report over; ``from_dict`` takes them back)."""
        d = self.to_dict()
        if self.images:
            d[IMAGES_KEY] = dict(self.images)
        return d

    def evidence_items(self) -> list[Evidence]:
        """Every evidence item of the report once (the clip's and every segment's), strongest first."""
        return self._evidence_list()[0]

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
