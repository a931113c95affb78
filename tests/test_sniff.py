"""``framescan.probe.sniff``: the container a file's first bytes look like, for the service (which
refuses what it cannot name) and for archive walks (which skip what is not in ``VIDEO_KINDS``).

Real heads come from files written here with PyAV (two 64x64 frames each) and Pillow; the
synthetic ones pin the edge cases of each rule.
"""

from __future__ import annotations

import io
import wave
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from framescan.probe import SNIFF_BYTES, VIDEO_KINDS, sniff

TINY = {"width": 64, "height": 64, "seconds": 0.2, "fps": 10}


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(out, format=fmt)
    return out.getvalue()


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(1600))
    return out.getvalue()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("clip.mp4", b"\x00\x00\x00\x20ftypisom")
    return out.getvalue()


@pytest.mark.parametrize(
    "file_name,options,kind",
    [
        ("a.mp4", {}, "iso-bmff"),
        ("a.mov", {}, "iso-bmff"),
        ("a.mkv", {}, "matroska"),
        ("a.webm", {"codec": "libvpx-vp9"}, "matroska"),
        ("a.avi", {"codec": "mpeg4"}, "avi"),
        ("a.ts", {}, "mpegts"),
        ("a.m2ts", {}, "m2ts"),  # 192-byte packets: a 4-byte timestamp before each sync byte
        ("a.flv", {}, "flv"),
        ("a.ogv", {"codec": "libvpx", "container_format": "ogg"}, "ogg"),
        ("a.ivf", {"codec": "libvpx-vp9"}, "ivf"),
        ("a.nut", {"codec": "mpeg4"}, "nut"),
        ("a.y4m", {"codec": "rawvideo"}, "y4m"),
        ("a.gif", {"codec": "gif", "pix_fmt": "rgb8"}, "gif"),
        ("a.wmv", {"codec": "wmv2", "container_format": "asf"}, "asf"),
        ("a.mpg", {"codec": "mpeg2video", "container_format": "mpeg"}, "annexb"),  # MPEG-PS pack header
        ("a.h264", {"container_format": "h264"}, "annexb"),
        ("a.hevc", {"codec": "libx265", "container_format": "hevc"}, "annexb"),
        ("a.m4v", {"codec": "mpeg4", "container_format": "m4v"}, "annexb"),  # MPEG-4 part 2 ES
        ("a.mjpeg", {"codec": "mjpeg", "pix_fmt": "yuvj420p", "container_format": "mjpeg"}, "jpeg"),
        ("a.obu", {"codec": "libsvtav1", "container_format": "obu"}, "obu"),
    ],
)
def test_real_video_heads(make_clip: Callable[..., Path], file_name: str, options: dict[str, Any], kind: str) -> None:
    head = make_clip(Path(file_name).suffix, **TINY, **options).read_bytes()[:SNIFF_BYTES]
    assert sniff(head) == kind
    assert kind in VIDEO_KINDS


@pytest.mark.parametrize(
    "head,kind",
    [
        (_image("PNG"), "png"),
        (_image("WEBP"), "webp"),
        (_image("JPEG"), "jpeg"),  # a still JPEG starts as a motion-JPEG stream does: a video kind
        (_wav(), "wav"),
        (_zip(), None),
        (b"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:4.0,\nhttp://example.com/a.ts\n", None),  # a playlist
        (Path(__file__).read_bytes(), None),  # text
        (b"", None),
    ],
    ids=["png", "webp", "jpeg", "wav", "zip", "playlist", "text", "empty"],
)
def test_real_heads_that_are_not_video(head: bytes, kind: str | None) -> None:
    assert sniff(head[:SNIFF_BYTES]) == kind
    assert (kind in VIDEO_KINDS) == (kind == "jpeg")


@pytest.mark.parametrize(
    "head,kind",
    [
        (b"\x00\x00\x00\x20ftypisom" + bytes(20), "iso-bmff"),
        (b"\x00\x00\x00\x18uuid" + bytes(20), "iso-bmff"),  # a leading uuid box, as FFmpeg's mov probe accepts
        (b"\x00\x00\x00\x04ftyp" + bytes(20), None),  # a box cannot be 4 bytes long
        (b"\x1a\x45\xdf\xa3" + bytes(20), "matroska"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "avi"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"GIF89a\x08\x00", "gif"),
        ((b"\x47" + bytes(187)) * 3, "mpegts"),
        (b"\x47" + bytes(187) + b"\x47" + bytes(211), None),  # a third packet without its sync byte
        (b"\x47" + bytes(100), None),  # one sync byte is not a transport stream
        (b"\x00\x00\x00\x01\x67\x64\x00", "annexb"),
        (b"\x00\x00\x01\xba\x44", "annexb"),
        (b"\x00\x00\x01\xe0\x07\xec", "annexb"),  # MPEG-PS starting with a video PES packet
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (b"ID3\x04\x00", "id3"),
        (b"\xff\xfb\x90\x64", "mpeg-audio"),
        (b"fLaC\x00\x00\x00\x22", "flac"),
        (b"YUV4MPEG2 W16 H16", "y4m"),
        (b"#EXTM3U\n#EXT-X-VERSION:3\n", None),
        (b"ffconcat version 1.0\n", None),
        (b"<!DOCTYPE html>", None),
        (b"", None),
    ],
)
def test_synthetic_heads(head: bytes, kind: str | None) -> None:
    assert sniff(head) == kind
