"""``Report.from_dict`` builds the whole report back (clip, coverage, categories with their
segments and evidence, known content): ``to_dict`` of what it reads is the dict it read, for
complete, partial, error and known-content reports, also after a hop through JSON (how a worker
process or the service sends a report)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from golden_reports import CASES

from framescan import FramescanError, Scanner
from framescan.categories import Decision
from framescan.report import Report
from framescan.synth import write_clip


def _round_trip(report: Report) -> Report:
    d = report.to_dict()
    back = Report.from_dict(d)
    assert back.to_dict() == d
    sent = json.loads(report.to_json())
    assert Report.from_dict(sent).to_dict() == sent
    return back


def _same_parts(back: Report, report: Report) -> None:
    """The parts read back are objects equal to the original's as written (to_dict rounds)."""
    index = back._evidence_list()[1]
    assert back.clip is not None and report.clip is not None and back.clip.to_dict() == report.clip.to_dict()
    assert back.coverage is not None and report.coverage is not None
    assert back.coverage.to_dict() == report.coverage.to_dict()
    assert set(back.categories) == set(report.categories)
    for cat, res in report.categories.items():
        assert back.categories[cat].to_dict(index) == res.to_dict(report._evidence_list()[1])
    assert [e.to_dict() for e in back._evidence_list()[0]] == [e.to_dict() for e in report._evidence_list()[0]]


def test_complete_report(scanner: Scanner, short_flagged: Path) -> None:
    report = scanner.scan(short_flagged)
    assert report.status == "complete" and report.categories["sexual"].segments
    back = _round_trip(report)
    _same_parts(back, report)
    assert back.decision is Decision.BLOCK and back.categories["sexual"].decision is Decision.BLOCK
    seg = back.categories["sexual"].segments[0]
    assert seg.evidence and all(e.category == "sexual" for e in seg.evidence)
    assert back.segments == report.segments


def test_partial_report(tmp_path: Path, scanner: Scanner) -> None:
    clip = write_clip(tmp_path / "full.mkv", width=320, height=240, seconds=4, fps=10)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    report = scanner.scan(cut)
    assert report.status == "partial"
    back = _round_trip(report)
    _same_parts(back, report)
    assert back.warnings == report.warnings and back.decision is Decision.REVIEW


def test_error_report(tmp_path: Path, scanner: Scanner) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(FramescanError) as err:
        scanner.scan(empty)
    report = Report.from_error(str(empty), err.value)
    back = _round_trip(report)
    assert back.status == "error" and back.decision is None and back.error == report.error


def test_known_content_report(tmp_path: Path) -> None:
    d = CASES["known_content"](tmp_path)  # a clip hashed into a "block" bank, then scanned
    assert d["known_content"]["matches"] and d["categories"]["extremism"]["decision"] == "block"
    back = Report.from_dict(d)
    assert back.to_dict() == d
    assert back.categories["extremism"].known_content == d["categories"]["extremism"]["known_content"]
    assert back.categories["extremism"].decision is Decision.BLOCK
