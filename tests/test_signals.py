"""Every shipped image signal together: which model fed which category, people as context,
the object signal alone never blocks, and categories without a signal say so."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from framescan.frames import Detections
from framescan.models import ALL_SIGNAL_MODELS, DEFAULT_MODEL, load_manifest
from framescan.pipeline import Scanner
from framescan.policy import DEFAULT_POLICY
from framescan.score import FrameScore, LabelMap


@pytest.fixture(scope="module")
def all_signals(scanner_for: Callable[..., Scanner]) -> Scanner:
    return scanner_for(*ALL_SIGNAL_MODELS, banks=False)


def test_all_signals_report_which_model_fed_which_category(all_signals: Scanner, short_flagged: Path) -> None:
    d = all_signals.scan(short_flagged).to_dict()
    cats = d["categories"]
    assert cats["sexual"]["signals"] == [DEFAULT_MODEL, "nsfwjs-mobilenetv2"]
    assert cats["violence"]["signals"] == ["nanodet-coco"]
    for c in ("hate", "bullying", "extremism"):  # no image signal: said, not scored
        assert cats[c]["signals"] == [] and cats[c]["decision"] is None and "no signal" in cats[c]["note"]
    assert d["decision"] != "allow"  # the flagged image (NudeNet)
    assert {e["model"] for e in d["evidence"]} >= {DEFAULT_MODEL}
    assert [m["name"] for m in d["models"]] == list(ALL_SIGNAL_MODELS)


def test_people_are_counted_as_context_not_scored(all_signals: Scanner, make_clip: Callable[..., Path]) -> None:
    from framescan.synth import Shot

    clip = make_clip(width=360, height=640, seconds=2, fps=10, shots=[Shot(0, 2, "astronaut", 0.9)])
    d = all_signals.scan(clip).to_dict()
    people = d["context"]["nanodet-coco:person"]
    # 4 sampled frames (2 s at 2 fps); NanoDet's schedule runs it on every 3rd: frames 0 and 3
    assert people["max_count"] >= 1 and 1 <= people["frames"] <= 2
    assert {"name": "nanodet-coco", "schedule": {"every": 3}}.items() <= d["models"][2].items()
    assert all(e["label"] != "person" for e in d["evidence"])
    assert d["categories"]["violence"]["decision"] == "allow"


@pytest.mark.parametrize("label", ["knife", "scissors", "baseball bat"])
def test_an_object_alone_reaches_review_at_most(label: str) -> None:
    manifest = load_manifest("nanodet-coco")
    labels = LabelMap(manifest)
    cid = [lab.name for lab in manifest.labels].index(label)
    frame = FrameScore(0, 0.0)
    dets = Detections(np.array([[0, 0, 10, 10]], np.float32), np.array([1.0], np.float32), np.array([cid], np.int32))
    labels.evidence(dets, frame)
    score = frame.scores["violence"]
    rule = DEFAULT_POLICY.rule("violence")
    assert rule.review <= score < rule.block


def test_sexy_alone_stays_below_review() -> None:
    manifest = load_manifest("nsfwjs-mobilenetv2")
    labels = LabelMap(manifest)
    names = [lab.name for lab in manifest.labels]
    probs = np.zeros(len(names), np.float32)
    probs[names.index("Sexy")] = 1.0
    frame = FrameScore(0, 0.0)
    labels.evidence(Detections(np.zeros((0, 4), np.float32), probs, np.arange(len(names), dtype=np.int32)), frame)
    assert frame.scores["sexual"] < DEFAULT_POLICY.rule("sexual").review
    probs[:] = 0
    probs[names.index("Porn")] = 0.9
    frame = FrameScore(0, 0.0)
    labels.evidence(Detections(np.zeros((0, 4), np.float32), probs, np.arange(len(names), dtype=np.int32)), frame)
    assert frame.scores["sexual"] == pytest.approx(0.9)
    assert [e.label for e in frame.evidence] == ["Porn"]  # near-zero classes are not kept as evidence


@pytest.mark.integration
def test_cli_all_signals(short_flagged: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "framescan", "scan", "--all-signals", "--no-isolate", "--no-banks", "--json", "-",
         "-q", str(short_flagged)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode in (10, 20), r.stderr
    d = json.loads(r.stdout)
    assert [m["name"] for m in d["models"]] == list(ALL_SIGNAL_MODELS)
