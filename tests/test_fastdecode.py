"""Fast decoding (``fast_decode``: H.264/HEVC deblocking skipped): the same frames at the same
times, pictures that really differ (the option reaches the decoder) but only a little, other
codecs untouched, and a scan that decides the same. The agreement of detections on upload-like
clips is measured by benchmarks/bench_fastdecode.py (benchmarks/RESULTS.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from framescan import Scanner
from framescan.config import ScanConfig
from framescan.decode import FAST_DECODE, FrameDecoder
from framescan.sample import make_sampler

#: Mean absolute luma difference a skipped deblocking filter may make (8-bit levels): it
#: smooths block edges only.
MAX_MEAN_LUMA_DIFF = 3.0


def _frames(clip: Path, level: str | None, **sampling: object) -> list[tuple[int, float, np.ndarray]]:
    with av.open(str(clip)) as c:
        dec = FrameDecoder(c, c.streams.video[0], make_sampler(**sampling), threads=2, skip_loop_filter=level)
        return [(f.index, f.time, f.y.astype(np.int16)) for f in dec]


@pytest.fixture(scope="module", params=["libx264", "libx265"])
def deblocked_clip(request: pytest.FixtureRequest, make_clip: Callable[..., Path]) -> Path:
    """Small, odd-sized, encoded with deblocking and B-frames (``veryfast``), one GOP."""
    return make_clip(width=202, height=358, seconds=2, fps=10, codec=request.param, preset="veryfast", gop=250)


@pytest.mark.parametrize("sampling", [{"all_frames": True}, {"fps": 2.0}], ids=["all", "fps2"])
def test_same_frames_slightly_different_pictures(deblocked_clip: Path, sampling: dict) -> None:
    normal = _frames(deblocked_clip, None, **sampling)
    fast = _frames(deblocked_clip, FAST_DECODE, **sampling)
    assert [(i, t) for i, t, _ in fast] == [(i, t) for i, t, _ in normal]
    diffs = [float(np.abs(a - b).mean()) for (_, _, a), (_, _, b) in zip(normal, fast)]
    assert max(diffs) > 0, "skip_loop_filter did not reach the decoder"
    assert max(diffs) <= MAX_MEAN_LUMA_DIFF


def test_other_codecs_are_decoded_as_usual(make_clip: Callable[..., Path]) -> None:
    clip = make_clip(".webm", width=96, height=160, seconds=1, fps=10, codec="libvpx-vp9")
    normal, fast = _frames(clip, None, all_frames=True), _frames(clip, "all", all_frames=True)
    assert len(normal) == len(fast) == 10
    assert all(np.array_equal(a, b) for (_, _, a), (_, _, b) in zip(normal, fast))


def test_an_unknown_level_is_refused(deblocked_clip: Path) -> None:
    with pytest.raises(ValueError, match="skip_loop_filter must be one of"):
        _frames(deblocked_clip, "nonref", all_frames=True)


def test_fast_decode_is_a_setting_that_counts(
    make_clip: Callable[..., Path], scanner_for: Callable[..., Scanner]
) -> None:
    clip = make_clip(width=360, height=640, seconds=3, fps=10, flagged=(1.0, 2.0), preset="veryfast", gop=250)
    plain, fast = ScanConfig(fps=2), ScanConfig(fps=2, fast_decode=True)
    assert ScanConfig.from_dict(fast.to_dict()) == fast
    assert plain.fingerprint().config != fast.fingerprint().config  # archive results are not mixed
    a = scanner_for(**plain.scanner_kwargs(), banks=False).scan(clip).to_dict()
    b = scanner_for(**fast.scanner_kwargs(), banks=False).scan(clip).to_dict()
    assert a["decision"] == b["decision"] == "block"
    for cat, r in a["categories"].items():
        other = b["categories"][cat]["score"]
        assert (r["score"] is None) == (other is None), cat
        if other is not None:
            assert abs(r["score"] - other) <= 0.02, cat
