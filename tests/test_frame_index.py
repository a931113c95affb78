"""``frame_index`` and ``pts``: the scored frame's index in the stream (presentation order) and
its timestamp, the same whatever the sampling mode, on a clip with B-frames."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from framescan import Scanner
from framescan.decode import FrameDecoder
from framescan.probe import as_source, open_container, select_video_stream
from framescan.sample import make_sampler

MODES = {
    "all": dict(all_frames=True),
    "fps2": dict(fps=2),
    "adaptive": dict(adaptive=True),
    "keyframes": dict(keyframes=True),
}


@pytest.fixture(scope="module")
def bframe_clip(make_clip: Callable[..., Path]) -> Path:
    """4 s 360x640 at 15 fps, x264 ``medium`` (B-frames, scene-cut keyframes), flagged 1-3 s."""
    return make_clip(width=360, height=640, seconds=4, fps=15, flagged=(1.0, 3.0), preset="medium")


def _stream(path: Path) -> tuple[list[int], list[np.ndarray]]:
    """Every frame's pts and luma plane, in presentation order, decoded plainly by PyAV."""
    with av.open(str(path)) as c:
        frames = [(f.pts, f.to_ndarray()[: f.height]) for f in c.decode(video=0)]  # yuv420p: Y on top
    frames.sort(key=lambda f: f[0])
    return [p for p, _ in frames], [y for _, y in frames]


def test_the_clip_has_b_frames(bframe_clip: Path) -> None:
    with av.open(str(bframe_clip)) as c:
        pts = [p.pts for p in c.demux(video=0) if p.size]
    assert pts != sorted(pts), "decode order equals presentation order: no B-frames to test with"


@pytest.mark.parametrize("mode", list(MODES))
def test_decoded_frame_is_the_stream_frame_at_its_index(mode: str, bframe_clip: Path) -> None:
    """PyAV's frame at ``frame.index`` has the decoded frame's pts and the same pixels (adaptive:
    also the frames its refinement pass decodes after seeking)."""
    pts, lumas = _stream(bframe_clip)
    src = as_source(bframe_clip)
    c = open_container(src)
    try:
        dec = FrameDecoder(c, select_video_stream(c, src.name), make_sampler(**MODES[mode]))
        frames = list(dec)
        if mode == "adaptive":
            frames += list(dec.frames_at([0.5, 2.5]))
        assert len(frames) >= 3
        for f in frames:
            assert f.pts == pts[f.index], (mode, f)
            assert np.array_equal(np.asarray(f.y), lumas[f.index][: f.height, : f.width]), (mode, f)
    finally:
        c.close()


def test_evidence_frame_index_and_pts_agree_across_sampling_modes(
    bframe_clip: Path, scanner_for: Callable[..., Scanner]
) -> None:
    """Evidence of the same frame carries the same frame_index whatever the sampling; each item's
    frame_index, pts and time are those of the stream's frame at that index."""
    pts, _ = _stream(bframe_clip)
    with av.open(str(bframe_clip)) as c:
        tb = float(c.streams.video[0].time_base)
    index_of: dict[int, set[int]] = {}
    for mode, opts in MODES.items():
        d = scanner_for(threads=2, banks=False, **opts).scan(bframe_clip).to_dict()
        items = d["evidence"]
        if mode != "keyframes":  # keyframes may all fall outside the flagged shot
            assert items, mode
        for e in items:
            assert e["pts"] == pts[e["frame_index"]], (mode, e)
            assert e["time"] == pytest.approx((e["pts"] - pts[0]) * tb, abs=1e-3), (mode, e)
            index_of.setdefault(e["pts"], set()).add(e["frame_index"])
    assert all(len(v) == 1 for v in index_of.values()), index_of
