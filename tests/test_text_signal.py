"""On-screen text end to end: a caption carrying a lexicon term for 2 s gives a segment at
those times with the recognised text as evidence; the same clip with a harmless caption,
nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("rapidocr")

from framescan.pipeline import Scanner
from framescan.report import segment_evidence

SIZE = (720, 1280)


@pytest.fixture(scope="module")
def text_scanner(scanner_for: Callable[..., Scanner]) -> Scanner:
    return scanner_for(ocr=True, banks=False)


@pytest.mark.parametrize(
    "caption,category",
    [("dasar goblok kamu", "bullying"), ("join the caliphate soldiers", "extremism")],
)
def test_caption_with_a_lexicon_term_gives_a_segment_at_its_times(
    caption: str, category: str, make_clip: Callable[..., Path], text_scanner: Scanner
) -> None:
    clip = make_clip(captions=[(3.0, 5.0, caption)], size=SIZE, seconds=7.0, fps=30)
    d = text_scanner.scan(clip).to_dict()
    segs = [s for s in d["segments"] if s["category"] == category]
    assert segs, (d["segments"], d["categories"][category])
    assert 3.0 <= segs[0]["start"] <= 3.6 and 4.0 <= segs[-1]["last_hit"] < 5.0 <= segs[-1]["end"] <= 5.5
    ev = [e for s in segs for e in segment_evidence(d, s)]
    assert all(e["model"] == "ocr" and 3.0 <= e["time"] < 5.0 for e in ev)
    assert any(caption.split()[1] in e["text"].lower() for e in ev), ev
    assert any(f"{category}." in e["label"] for e in ev)
    assert d["decision"] != "allow"
    assert any(s.startswith("ocr+lexicon:") for s in d["categories"][category]["signals"])
    assert 1 <= d["coverage"]["ocr_frames"] < d["coverage"]["sampled_frames"]


def test_the_same_clip_with_a_harmless_caption_gives_nothing(
    make_clip: Callable[..., Path], text_scanner: Scanner
) -> None:
    clip = make_clip(captions=[(3.0, 5.0, "selamat pagi semua")], size=SIZE, seconds=7.0, fps=30)
    d = text_scanner.scan(clip).to_dict()
    assert d["decision"] == "allow", d["segments"]
    for c in ("hate", "bullying", "extremism"):
        assert d["categories"][c]["signals"] and d["categories"][c]["decision"] == "allow"
    assert d["coverage"]["ocr_frames"] >= 1
