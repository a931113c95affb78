"""The trimmed-canvas variant of NudeNet 320n (models/nudenet-320n-trim.json, validated and
written by models/build_trim.py): same file and weights on a canvas cut to a multiple of 32
around the frame. It loads, scans like the full canvas, still agrees with it on frames that
played no part in the written figures, and copes with a clip whose aspect ratio changes
mid-stream (a new tensor shape, so a new batch). Speed is not asserted (benchmarks/RESULTS.md)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from corpus import media

from framescan import Scanner
from framescan.models import DEFAULT_MODEL, load_manifest
from framescan.report import segment_evidence

ROOT = Path(__file__).resolve().parents[1]
TRIM = ROOT / "models" / "nudenet-320n-trim.json"
FULL = ROOT / "models" / "nudenet-320n.json"
MIN_AGREEMENT = 0.95


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "models" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build_trim() -> ModuleType:
    return _load("build_trim")


@pytest.fixture(scope="module")
def full_scanner(scanner_for: Callable[..., Scanner]) -> Scanner:
    return scanner_for(str(FULL), threads=2, banks=False)


@pytest.fixture(scope="module")
def trim_scanner(scanner_for: Callable[..., Scanner]) -> Scanner:
    return scanner_for(str(TRIM), threads=2, banks=False)


def test_trim_manifest_is_the_same_model_on_a_trimmed_canvas() -> None:
    t, f = load_manifest(TRIM), load_manifest(FULL)
    assert t.verified_file() == f.verified_file() and t.sha256 == f.sha256 and t.file == f.file
    assert t.input.trim_multiple == 32 and f.input.trim_multiple == 0
    assert t.input.shape_for(720, 1280) == (3, 320, 192) and f.input.shape_for(720, 1280) == (3, 320, 320)
    assert t.labels == f.labels and t.output == f.output
    v = t.extra["validation"]
    assert v["agreement"] >= MIN_AGREEMENT and v["frames"] >= 300 and v["reference_detections"] >= 100
    assert {"recall", "precision", "score_drift_mean", "score_drift_max"} <= set(v)


@pytest.mark.parametrize("adaptive", [False, True], ids=["fps2", "adaptive"])
def test_trim_scan_finds_the_sexual_segment_like_the_full_canvas(
    flagged_clip: Path,
    full_scanner: Scanner,
    trim_scanner: Scanner,
    adaptive: bool,
    scanner_for: Callable[..., Scanner],
) -> None:
    """At the default 2 fps, and with adaptive sampling (whose refinement pass scores frames
    outside the streaming batches)."""
    ref = full_scanner.scan(flagged_clip).to_dict()
    if adaptive:
        trim_scanner = scanner_for(str(TRIM), adaptive=True, threads=2, banks=False)
    got = trim_scanner.scan(flagged_clip).to_dict()
    if adaptive:
        assert got["coverage"]["refined_frames"] > 0
    assert got["models"][0]["name"] == "nudenet-320n-trim"
    assert got["status"] == "complete" and got["decision"] == ref["decision"] == "block"
    segs, ref_segs = got["categories"]["sexual"]["segments"], ref["categories"]["sexual"]["segments"]
    assert [(s["start"], s["end"]) for s in segs] == [(s["start"], s["end"]) for s in ref_segs]
    for s, r in zip(segs, ref_segs):
        assert segment_evidence(got, s)[0]["label"] == segment_evidence(ref, r)[0]["label"] == "BUTTOCKS_EXPOSED"
        assert abs(s["peak"] - r["peak"]) <= 0.05, (s["peak"], r["peak"])


def test_trim_agrees_with_the_full_canvas_on_other_frames(
    build_trim: ModuleType, full_scanner: Scanner, trim_scanner: Scanner, tmp_path: Path
) -> None:
    """The int8 build's mini reference clips (4:3 and 3:4: 320x256 and 256x320 tensors) are not
    among the clips the manifest's figures come from."""
    clips = sys.modules["build_int8"].mini_reference_clips()
    v, shapes, _ = build_trim.validate(full_scanner.models[0], trim_scanner.models[0], clips, tmp_path)
    assert [s for _, s in shapes] == ["3x256x320", "3x320x256"]
    assert {"BUTTOCKS_EXPOSED", "FACE_FEMALE"} <= set(v.per_class), v.per_class
    assert v.reference_detections >= 15, v.summary()
    assert v.agreement >= MIN_AGREEMENT, (v.summary(), v.disagreements)
    assert v.score_drift_mean <= 0.02, v.summary()


def test_default_canvas_is_as_close_to_nudenet_as_the_square_one(
    build_trim: ModuleType, full_scanner: Scanner, trim_scanner: Scanner, tmp_path: Path
) -> None:
    """The default model is the trimmed canvas. Against NudeNet's own pipeline
    (``NudeDetector.detect`` on the frames as BGR), on the mini reference clips, it agrees at
    least as well as framescan's square canvas does (minus one detection), and >= 0.95."""
    nudenet = pytest.importorskip("nudenet")
    assert load_manifest(DEFAULT_MODEL).name == TRIM.stem
    clips = sys.modules["build_int8"].mini_reference_clips()
    _, _, vs = build_trim.validate(
        full_scanner.models[0], trim_scanner.models[0], clips, tmp_path, nudenet.NudeDetector()
    )
    square, trimmed = vs["full"], vs["trimmed"]
    assert square.reference_detections >= 15 and square.frames == trimmed.frames, square.summary()
    assert trimmed.agreement >= MIN_AGREEMENT, (trimmed.summary(), trimmed.disagreements)
    slack = 1 / (trimmed.reference_detections + 1)
    assert trimmed.agreement >= square.agreement - slack, (trimmed.summary(), square.summary())
    assert trimmed.score_drift_mean <= 0.02, trimmed.summary()


def test_aspect_ratio_change_mid_stream_starts_a_new_batch(tmp_path: Path, scanner_for: Callable[..., Scanner]) -> None:
    """12 landscape frames then 12 portrait ones (a new SPS mid-stream): tensors 320x256 then
    256x320. Every frame is scored, none is lost between the two shapes."""
    a, b = tmp_path / "a.h264", tmp_path / "b.h264"
    media.encode_clip(a, width=320, height=240, frames=12, fmt="h264")
    media.encode_clip(b, width=240, height=320, frames=12, fmt="h264")
    clip = tmp_path / "turns.h264"
    clip.write_bytes(a.read_bytes() + b.read_bytes())
    scanner = scanner_for(str(TRIM), all_frames=True, batch_size=5, threads=2, banks=False)
    report = scanner.scan(clip).to_dict()
    assert report["status"] == "complete", report
    cov = report["coverage"]
    assert cov["scored_frames"] == cov["decoded_frames"] == 24, cov
