"""The per-clip scan object (``framescan.clipscan.ClipScan``) lets go of the decoder when a scan
ends, without a garbage collection: a reference cycle through it would keep each clip's decoder
(its FFmpeg threads and frame pools) alive until the collector runs, so threads and memory grow
over thousands of clips."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from framescan import FramescanError, Scanner
from framescan.decode import FrameDecoder
from framescan.limits import Limits


def _decoders() -> int:
    return sum(isinstance(o, FrameDecoder) for o in gc.get_objects())


def test_a_scan_leaves_no_decoder_for_the_garbage_collector(scanner: Scanner, short_flagged: Path) -> None:
    adaptive = Scanner(threads=2, banks=False, adaptive=True)
    gc.collect()
    before = _decoders()
    gc.disable()
    try:
        assert scanner.scan(short_flagged).decision == "block"
        assert adaptive.scan(short_flagged).coverage.reused_frames is not None  # type: ignore[union-attr]
        with pytest.raises(FramescanError, match="limit"):  # stopped by a limit while decoding
            scanner.scan(short_flagged, limits=Limits(max_frames=5))
        assert _decoders() == before
    finally:
        gc.enable()
