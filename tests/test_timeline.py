"""The report's timeline: every scored frame's category scores and raw signal scores, kept when
asked for (``Scanner(timeline=True)``, ``framescan scan --timeline``; always in archive scans)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from framescan.aggregate import TIMELINE_MIN_SCORE
from framescan.models import load_manifest
from framescan.report import Report


@pytest.fixture(scope="module")
def timeline_report(scanner_for, short_flagged):
    return scanner_for(threads=2, timeline=True).scan(short_flagged)


def test_off_by_default(scanner, short_flagged):
    assert scanner.scan(short_flagged).to_dict()["timeline"] is None


def test_one_entry_per_scored_frame_in_time_order(timeline_report):
    d = timeline_report.to_dict()
    t = d["timeline"]
    n = d["coverage"]["scored_frames"]
    assert len(t["time"]) == len(t["frame_index"]) == n
    assert t["time"] == sorted(t["time"])
    assert all(len(v) == n for v in [*t["scores"].values(), *t["labels"].values()])
    # only categories with a signal have a series
    assert set(t["scores"]) == {c for c, r in d["categories"].items() if r["signals"]}


def test_scores_agree_with_the_rest_of_the_report(timeline_report):
    d = timeline_report.to_dict()
    t = d["timeline"]
    sexual = t["scores"]["sexual"]
    # the category's score is the peak of its series, at its peak time
    assert max(sexual) == pytest.approx(d["categories"]["sexual"]["score"], abs=1e-4)
    assert t["time"][sexual.index(max(sexual))] == pytest.approx(d["categories"]["sexual"]["peak_time"])
    # the frames at or above the review threshold are the segment's hits (1-3 s)
    review = d["policy"]["categories"]["sexual"]["review"]
    hits = [tm for tm, s in zip(t["time"], sexual) if s >= review]
    (seg,) = d["categories"]["sexual"]["segments"]
    assert hits and hits[0] == seg["start"] and hits[-1] == seg["last_hit"]
    assert 0.9 <= seg["start"] <= 1.2
    # each frame's category score is the strongest weighted signal feeding it
    weights = {
        f"{m.name}:{lab.name}": lab.weight
        for m in map(load_manifest, [x["name"] for x in d["models"]])
        for lab in m.labels
        if lab.category == "sexual"
    }
    for i, score in enumerate(sexual):
        fused = max([v[i] * weights[k] for k, v in t["labels"].items() if k in weights], default=0.0)
        assert fused == pytest.approx(score, abs=2e-4)
    # signals never above the floor are left out
    assert all(max(v) > TIMELINE_MIN_SCORE for v in t["labels"].values())


def test_read_back_from_json(timeline_report):
    d = timeline_report.to_dict()
    again = Report.from_dict(json.loads(json.dumps(d)))
    assert again.timeline == d["timeline"]
    assert again.to_dict() == d


def test_adaptive_timeline_holds_refined_frames_in_order(scanner_for, short_flagged):
    d = scanner_for(threads=2, adaptive=True, timeline=True).scan(short_flagged).to_dict()
    t = d["timeline"]
    assert d["coverage"]["refined_frames"] > 0
    assert len(t["time"]) == d["coverage"]["scored_frames"]
    assert t["time"] == sorted(t["time"])


def test_cli_timeline_flag(short_flagged, tmp_path):
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "framescan", "scan", str(short_flagged), "--timeline", "-q", "--json", str(out)]
    subprocess.run(cmd, check=False, capture_output=True, timeout=120)
    d = json.loads(out.read_text())
    assert len(d["timeline"]["time"]) == d["coverage"]["scored_frames"]


def _check_index_gives_the_scores(scanner, d) -> None:
    t = d["timeline"]
    for i in range(len(t["time"])):
        labels = {k: v[i] for k, v in t["labels"].items()}
        got = scanner.signal_index.category_scores(labels)
        for cat, series in t["scores"].items():
            assert got.get(cat, 0.0) == pytest.approx(series[i], abs=2e-4), (cat, t["time"][i])


def test_signal_index_gives_the_scans_category_scores(scanner_for, short_flagged):
    s = scanner_for("nudenet-320n-trim", "nsfwjs-mobilenetv2", "nanodet-coco", threads=2, timeline=True)
    _check_index_gives_the_scores(s, s.scan(short_flagged).to_dict())


def test_signal_index_covers_on_screen_text(scanner_for, make_clip):
    pytest.importorskip("rapidocr")
    clip = make_clip(captions=[(3.0, 5.0, "dasar goblok kamu")], size=(720, 1280), seconds=7.0, fps=30)
    s = scanner_for(ocr=True, banks=False, timeline=True)
    d = s.scan(clip).to_dict()
    assert any(k.startswith("ocr:") for k in d["timeline"]["labels"])
    assert max(d["timeline"]["scores"]["bullying"]) >= d["policy"]["categories"]["bullying"]["review"]
    _check_index_gives_the_scores(s, d)
