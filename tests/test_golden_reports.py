"""Reports of a fixed set of clips (H.264, HEVC, VP9, adaptive sampling, known content, on-screen
text) equal the ones saved in tests/data/golden/ (timings and versions aside): restructuring
the code must not change what a scan reports. Regenerate deliberately with
``python tests/golden_reports.py --write`` when a change is meant to alter reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from golden_reports import CASES, GOLDEN_DIR, differences, make


@pytest.mark.parametrize("case", list(CASES))
def test_report_equals_the_saved_one(case: str, tmp_path: Path) -> None:
    if case == "ocr":
        pytest.importorskip("rapidocr")
    saved = json.loads((GOLDEN_DIR / f"{case}.json").read_text())
    diffs = differences(saved, make(case, tmp_path))
    assert not diffs, "\n".join(diffs[:30])


def test_the_comparison_sees_a_change() -> None:
    saved = json.loads((GOLDEN_DIR / "h264.json").read_text())
    changed = json.loads(json.dumps(saved))
    changed["segments"][0]["end"] += 0.5
    changed["evidence"][0]["score"] += 0.01  # within the score tolerance: not a difference
    assert differences(saved, changed) == [
        f"/segments[0]/end: {saved['segments'][0]['end']} saved, {changed['segments'][0]['end']} now"
    ]
