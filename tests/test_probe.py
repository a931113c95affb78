"""probe: ClipInfo from the header, and named errors for what is not a video."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from framescan import probe
from framescan.errors import EmptyInput, FileNotFound, NoVideoStream, UnsupportedFormat


def test_clipinfo_fields(make_clip: Callable[..., Path]) -> None:
    clip = make_clip(width=320, height=240, seconds=2, fps=25, rotation=90)
    info = probe(clip)
    assert (info.container.split(",")[0], info.codec, info.pixel_format) == ("mov", "h264", "yuv420p")
    assert (info.width, info.height, info.rotation, info.display_size) == (240, 320, 90, (320, 240))
    assert info.fps == pytest.approx(25) and info.duration == pytest.approx(2.0, abs=0.05)
    assert info.frame_count == 50 and info.has_audio is False and info.size_bytes == clip.stat().st_size
    assert info.color_matrix == "bt601" and info.color_range == "limited"


def test_audio_presence(tmp_path: Path) -> None:
    path = tmp_path / "av.mkv"  # encoded here: write_clip writes no audio stream
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        a = out.add_stream("aac", rate=16000)
        for i in range(10):
            f = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode(None))
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        af.sample_rate, af.pts = 16000, 0
        out.mux(a.encode(af))
        out.mux(a.encode(None))
    assert probe(path).has_audio is True


def _audio_only(path: Path) -> Path:
    """A file with an audio stream and no video (write_clip always writes video)."""
    with av.open(str(path), "w") as out:
        a = out.add_stream("aac", rate=16000)
        for i in range(5):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 16000, i * 1024
            out.mux(a.encode(af))
        out.mux(a.encode(None))
    return path


def _missing(d: Path) -> Path:
    return d / "missing.mp4"


def _empty(d: Path) -> Path:
    (d / "empty.mp4").write_bytes(b"")
    return d / "empty.mp4"


def _html(d: Path) -> Path:
    (d / "page.mp4").write_text("<html>not a video</html>")
    return d / "page.mp4"


@pytest.mark.parametrize(
    "make,error,message",
    [
        (_missing, FileNotFound, "no such file"),
        (_empty, EmptyInput, "empty"),
        (_html, UnsupportedFormat, "not a video"),  # a web page named .mp4
        (lambda d: _audio_only(d / "audio.m4a"), NoVideoStream, "no video stream"),
    ],
    ids=["missing", "empty", "html", "audio-only"],
)
def test_named_errors(tmp_path: Path, make, error, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(error, match=message):
        probe(path)


def test_directory_is_not_a_clip(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat, match="not a regular file"):
        probe(tmp_path)


def test_playlist_is_refused(tmp_path: Path, make_clip: Callable[..., Path]) -> None:
    """An HLS playlist named .mp4 is never followed (demuxer allow-list)."""
    real = make_clip(width=64, height=64, seconds=0.5, fps=10)
    playlist = tmp_path / "evil.mp4"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nfile://{real}\n#EXT-X-ENDLIST\n")
    with pytest.raises(UnsupportedFormat):
        probe(playlist)
