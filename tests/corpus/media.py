"""Shared helpers for generated test media: deterministic clip encoding and MP4 box surgery.

Everything here is deterministic: frames are a pure function of (width, height, index), encoders
run single-threaded with fixed options, and Matroska/WebM are written with ``fflags=+bitexact``
(otherwise the muxer writes random segment and track UIDs).

This is its own encoder, not ``framescan.synth.write_clip``: the hostile corpus patches bytes at
known offsets and its expected outcomes are pinned to exact files, so it needs bit-exact output
(single-threaded, fixed options, bitexact muxing) and odd inputs (1x1 frames, raw elementary
streams, given pts) that ``write_clip`` does not promise.

The MP4 helpers work on ``bytes``/``bytearray`` and know only the handful of ISO-BMFF boxes the
corpus patches; they are for building broken files, not for parsing untrusted ones.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

#: Codec options that make each encoder deterministic and quiet. x264's macroblock-tree rate
#: control was observed to give different bitstreams for identical input from run to run (with
#: its SIMD code on, even single-threaded), so it is switched off.
_DETERMINISTIC_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"threads": "1", "x264-params": "mbtree=0"},
    "libx265": {"x265-params": "log-level=error:pools=none:frame-threads=1"},
    "libvpx-vp9": {"threads": "1", "deadline": "realtime", "cpu-used": "8"},
}
#: Muxers that write random UIDs unless told to be bit-exact.
_BITEXACT_MUXERS = ("matroska", "webm")

FrameFn = Callable[[int, int, int], np.ndarray]


# ----------------------------------------------------------------------------------------------
# frames and encoding


@lru_cache(maxsize=8)
def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:height, 0:width].astype(np.int32)
    return x, y


def pattern(width: int, height: int, index: int) -> np.ndarray:
    """An RGB24 test frame: gradients, a checkerboard and a moving yellow square.

    Textured enough that a 320x240 H.264 keyframe is several KB (the truncation sweeps need
    a first frame that spans a few KB of the file).
    """
    x, y = _grid(width, height)
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = (x * 255 // max(width - 1, 1) + 3 * index) % 256
    img[..., 1] = (y * 255 // max(height - 1, 1)) % 256
    img[..., 2] = (((x // 8) + (y // 8) + index) % 2) * 200
    side = max(1, min(width, height) // 4)
    ox = (index * 5) % max(1, width - side)
    oy = (index * 3) % max(1, height - side)
    img[oy : oy + side, ox : ox + side] = (255, 255, 0)
    return img


def flat(width: int, height: int, index: int) -> np.ndarray:
    """A flat grey RGB24 frame (compresses to almost nothing at any size)."""
    return np.full((height, width, 3), 96 + (index % 4) * 16, np.uint8)


def to_format(frame: Any, pix_fmt: str) -> Any:
    """Convert a frame to ``pix_fmt`` on one thread.

    Left to the encoder, PyAV 18 converts with threaded swscale (``threads=0``), and that output
    was observed to vary from run to run under CPU load; single-threaded conversion is stable.
    """
    if frame.format.name == pix_fmt:
        return frame
    return frame.reformat(format=pix_fmt, threads=1)


def open_output(path: Path | str, fmt: str | None = None, options: dict[str, str] | None = None) -> Any:
    """``av.open(path, "w")`` with bit-exact output for the muxers that need it."""
    import av

    opts = dict(options or {})
    if fmt in _BITEXACT_MUXERS or str(path).endswith((".mkv", ".webm", ".mka")):
        opts.setdefault("fflags", "+bitexact")
    return av.open(str(path), mode="w", format=fmt, options=opts)


def add_video_stream(
    container: Any,
    codec: str = "libx264",
    width: int = 160,
    height: int = 120,
    fps: int | Fraction = 24,
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    gop: int | None = None,
    time_base: Fraction | None = None,
) -> Any:
    """Add a video stream with deterministic, single-threaded encoder settings."""
    opts = dict(_DETERMINISTIC_OPTIONS.get(codec, {}))
    opts.update(options or {})
    stream = container.add_stream(codec, rate=fps, options=opts)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    stream.codec_context.thread_count = 1
    if gop is not None:
        stream.codec_context.gop_size = gop
    if time_base is not None:
        stream.codec_context.time_base = time_base
        stream.time_base = time_base
    return stream


def write_frames(
    container: Any,
    stream: Any,
    count: int,
    pts: Sequence[int] | None = None,
    frame_fn: FrameFn = pattern,
    first_index: int = 0,
    flush: bool = True,
    frame_format: str = "rgb24",
) -> None:
    """Encode ``count`` frames (``pts`` in the codec time base, default 0, 1, 2, ...) and mux them.

    ``frame_fn`` returns an array in ``frame_format`` (RGB24 by default).
    """
    import av

    width, height = stream.codec_context.width, stream.codec_context.height
    pix_fmt = stream.codec_context.pix_fmt
    for i in range(count):
        frame = av.VideoFrame.from_ndarray(frame_fn(width, height, first_index + i), format=frame_format)
        frame = to_format(frame, pix_fmt)
        frame.pts = pts[i] if pts is not None else i
        container.mux(stream.encode(frame))
    if flush:
        container.mux(stream.encode(None))


def encode_clip(
    path: Path | str,
    codec: str = "libx264",
    width: int = 160,
    height: int = 120,
    frames: int = 24,
    fps: int | Fraction = 24,
    pix_fmt: str = "yuv420p",
    fmt: str | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    gop: int | None = None,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    frame_fn: FrameFn = pattern,
    frame_format: str = "rgb24",
    rotation: float | None = None,
) -> Path:
    """Encode a one-stream video clip and return its path."""
    with open_output(path, fmt, container_options) as container:
        stream = add_video_stream(container, codec, width, height, fps, pix_fmt, options, gop, time_base)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        write_frames(container, stream, frames, pts=pts, frame_fn=frame_fn, frame_format=frame_format)
    return Path(path)


def encode_audio(
    path: Path | str,
    codec: str,
    seconds: float = 1.0,
    rate: int = 44100,
    fmt: str | None = None,
    layout: str = "mono",
) -> Path:
    """Encode a sine tone (one audio stream, nothing else)."""
    import av

    with open_output(path, fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        sample_fmt = stream.codec_context.format.name
        n = int(seconds * rate)
        frame_size = stream.codec_context.frame_size or 1024
        t = np.arange(n) / rate
        tone = 0.3 * np.sin(2 * np.pi * 440.0 * t)
        for start in range(0, n, frame_size):
            chunk = tone[start : start + frame_size]
            if sample_fmt.startswith("s16"):
                data = (chunk * 32767).astype(np.int16)[None, :]
            elif sample_fmt.startswith("s32"):
                data = (chunk * 2**31 * 0.99).astype(np.int32)[None, :]
            else:
                data = chunk.astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(data, format=sample_fmt, layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return Path(path)


# ----------------------------------------------------------------------------------------------
# ISO-BMFF (MP4/MOV) boxes

#: Where the child boxes start inside each container box's payload (after its own fields).
CHILD_OFFSET: dict[bytes, int] = {
    b"moov": 0,
    b"trak": 0,
    b"mdia": 0,
    b"minf": 0,
    b"stbl": 0,
    b"dinf": 0,
    b"edts": 0,
    b"udta": 0,
    b"ilst": 0,
    b"meta": 4,  # full box (version + flags)
    b"stsd": 8,  # full box + entry count
    b"avc1": 78,  # VisualSampleEntry fields
    b"hvc1": 78,
    b"hev1": 78,
    b"mp4v": 78,
    b"mp4a": 28,  # AudioSampleEntry fields
}


@dataclass(frozen=True)
class Box:
    """One box: ``start`` is where its size field is, ``payload`` where its content starts."""

    fourcc: bytes
    start: int
    size: int
    header: int

    @property
    def payload(self) -> int:
        return self.start + self.header

    @property
    def end(self) -> int:
        return self.start + self.size


def iter_boxes(data: bytes | bytearray, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes laid end to end in ``data[start:end]``; stops at a box that runs past ``end``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, fourcc = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield Box(fourcc, pos, size, header)
        pos += size


def children(data: bytes | bytearray, box: Box) -> Iterator[Box]:
    """The child boxes of a container box (see ``CHILD_OFFSET``)."""
    return iter_boxes(data, box.payload + CHILD_OFFSET.get(box.fourcc, 0), box.end)


def find_chains(data: bytes | bytearray, path: str) -> list[list[Box]]:
    """Every chain of boxes matching ``path`` ("moov/trak/mdia/mdhd"), outermost first."""
    parts = [p.encode("ascii") for p in path.split("/")]
    chains: list[list[Box]] = [[]]
    for depth, fourcc in enumerate(parts):
        nxt: list[list[Box]] = []
        for chain in chains:
            candidates = iter_boxes(data) if depth == 0 else children(data, chain[-1])
            nxt.extend([*chain, b] for b in candidates if b.fourcc == fourcc)
        chains = nxt
    return chains


def find_boxes(data: bytes | bytearray, path: str) -> list[Box]:
    """Every box matching ``path``."""
    return [chain[-1] for chain in find_chains(data, path)]


def find_box(data: bytes | bytearray, path: str, index: int = 0) -> Box:
    """The ``index``-th box matching ``path``; ``KeyError`` if there is none."""
    found = find_boxes(data, path)
    if len(found) <= index:
        raise KeyError(f"no box {path!r} (#{index}) in {len(data)} bytes")
    return found[index]


def replace_box(data: bytes | bytearray, path: str, new_box: bytes, index: int = 0) -> bytearray:
    """Replace the ``index``-th box at ``path`` by ``new_box`` (a whole box), fixing ancestor sizes.

    Chunk offsets (``stco``) are shifted when the replaced box lies before the media data.
    """
    chain = find_chains(data, path)[index]
    old = chain[-1]
    delta = len(new_box) - old.size
    out = bytearray(data[: old.start]) + new_box + bytearray(data[old.end :])
    for anc in chain[:-1]:
        if anc.header != 8:
            raise ValueError(f"cannot resize 64-bit box {anc.fourcc!r}")
        struct.pack_into(">I", out, anc.start, anc.size + delta)
    if delta:
        for stco in find_boxes(out, "moov/trak/mdia/minf/stbl/stco"):
            (count,) = struct.unpack_from(">I", out, stco.payload + 4)
            for k in range(count):
                pos = stco.payload + 8 + 4 * k
                (off,) = struct.unpack_from(">I", out, pos)
                if off >= old.end:
                    struct.pack_into(">I", out, pos, off + delta)
    return out


def make_box(fourcc: bytes, payload: bytes) -> bytes:
    """Serialise a box with a 32-bit size."""
    return struct.pack(">I4s", 8 + len(payload), fourcc) + payload


@dataclass(frozen=True)
class Sample:
    """One sample (a coded frame) of a track: where it is in the file and whether it is a sync sample."""

    offset: int
    size: int
    keyframe: bool


def _u32s(data: bytes | bytearray, pos: int, count: int) -> tuple[int, ...]:
    return struct.unpack_from(f">{count}I", data, pos)


def samples(data: bytes | bytearray, track: int = 0) -> list[Sample]:
    """The samples of the ``track``-th trak, from stsz/stsc/stco/stss (32-bit offsets only)."""
    stbl = find_box(data, "moov/trak/mdia/minf/stbl", track)
    boxes = {b.fourcc: b for b in children(data, stbl)}
    stsz = boxes[b"stsz"]
    const, count = _u32s(data, stsz.payload + 4, 2)
    sizes = [const] * count if const else list(_u32s(data, stsz.payload + 12, count))
    stco = boxes[b"stco"]
    (nchunks,) = _u32s(data, stco.payload + 4, 1)
    chunk_offsets = _u32s(data, stco.payload + 8, nchunks)
    stsc = boxes[b"stsc"]
    (nentries,) = _u32s(data, stsc.payload + 4, 1)
    runs = [_u32s(data, stsc.payload + 8 + 12 * k, 3) for k in range(nentries)]
    keyframes: set[int] | None = None
    if b"stss" in boxes:
        stss = boxes[b"stss"]
        (nkeys,) = _u32s(data, stss.payload + 4, 1)
        keyframes = {k - 1 for k in _u32s(data, stss.payload + 8, nkeys)}
    out: list[Sample] = []
    index = 0
    for chunk in range(nchunks):
        per_chunk = next(r[1] for r in reversed(runs) if r[0] <= chunk + 1)
        pos = chunk_offsets[chunk]
        for _ in range(per_chunk):
            if index >= count:
                break
            key = keyframes is None or index in keyframes
            out.append(Sample(pos, sizes[index], key))
            pos += sizes[index]
            index += 1
    return out


def patch_u32(data: bytearray, pos: int, value: int) -> None:
    struct.pack_into(">I", data, pos, value)


def patch_u16(data: bytearray, pos: int, value: int) -> None:
    struct.pack_into(">H", data, pos, value)


def set_durations(data: bytes | bytearray, seconds: float) -> bytearray:
    """Rewrite mvhd, every tkhd/mdhd and elst duration so the header claims ``seconds``.

    Version-0 boxes only (32-bit durations), which is what FFmpeg writes for short clips.
    """
    out = bytearray(data)
    mvhd = find_box(out, "moov/mvhd")
    if out[mvhd.payload] != 0:
        raise ValueError("64-bit mvhd not supported")
    (movie_scale,) = _u32s(out, mvhd.payload + 12, 1)
    patch_u32(out, mvhd.payload + 16, round(seconds * movie_scale))
    for tkhd in find_boxes(out, "moov/trak/tkhd"):
        patch_u32(out, tkhd.payload + 20, round(seconds * movie_scale))
    for elst in find_boxes(out, "moov/trak/edts/elst"):
        (nedits,) = _u32s(out, elst.payload + 4, 1)
        for k in range(nedits):
            patch_u32(out, elst.payload + 8 + 12 * k, round(seconds * movie_scale))
    for mdhd in find_boxes(out, "moov/trak/mdia/mdhd"):
        (scale,) = _u32s(out, mdhd.payload + 12, 1)
        patch_u32(out, mdhd.payload + 16, round(seconds * scale))
    return out


# ----------------------------------------------------------------------------------------------
# H.264 bitstream (SPS rewriting)


class BitReader:
    """MSB-first bit reader with Exp-Golomb codes (H.264 7.2 / 9.1)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u(self, n: int) -> int:
        v = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]
            v = (v << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return v

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)


class BitWriter:
    """MSB-first bit writer with Exp-Golomb codes."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, v: int) -> None:
        self.bits.extend((v >> (n - 1 - k)) & 1 for k in range(n))

    def ue(self, v: int) -> None:
        code = v + 1
        n = code.bit_length()
        self.u(n - 1, 0)
        self.u(n, code)

    def se(self, v: int) -> None:
        self.ue(2 * v - 1 if v > 0 else -2 * v)

    def to_bytes(self) -> bytes:
        bits = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, bits[k : k + 8])), 2) for k in range(0, len(bits), 8))


def unescape_rbsp(nal: bytes) -> bytes:
    """Remove emulation-prevention bytes (00 00 03 -> 00 00)."""
    out = bytearray()
    zeros = 0
    for b in nal:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def escape_rbsp(rbsp: bytes) -> bytes:
    """Insert emulation-prevention bytes."""
    out = bytearray()
    zeros = 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


_HIGH_PROFILES = (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135)


def rewrite_sps_size(sps_nal: bytes, width: int, height: int) -> bytes:
    """Return the SPS NAL unit (header byte included) with its coded size set to ``width`` x ``height``.

    Both must be multiples of 16 (frame_mbs_only streams); frame cropping is switched off.
    Scaling matrices are not supported (x264 does not write them by default).
    """
    if width % 16 or height % 16:
        raise ValueError(f"{width}x{height}: must be multiples of 16")
    r = BitReader(unescape_rbsp(sps_nal[1:]))
    w = BitWriter()

    def copy_u(n: int) -> int:
        v = r.u(n)
        w.u(n, v)
        return v

    def copy_ue() -> int:
        v = r.ue()
        w.ue(v)
        return v

    def copy_se() -> int:
        v = r.se()
        w.se(v)
        return v

    profile = copy_u(8)
    copy_u(8)  # constraint flags
    copy_u(8)  # level
    copy_ue()  # sps id
    if profile in _HIGH_PROFILES:
        if copy_ue() == 3:  # chroma_format_idc
            copy_u(1)
        copy_ue()  # bit depth luma
        copy_ue()  # bit depth chroma
        copy_u(1)  # qpprime_y_zero_transform_bypass
        if copy_u(1):
            raise ValueError("SPS with scaling matrices is not supported")
    copy_ue()  # log2_max_frame_num
    poc_type = copy_ue()
    if poc_type == 0:
        copy_ue()
    elif poc_type == 1:
        copy_u(1)
        copy_se()
        copy_se()
        for _ in range(copy_ue()):
            copy_se()
    copy_ue()  # max_num_ref_frames
    copy_u(1)  # gaps_in_frame_num_allowed
    r.ue()
    r.ue()
    w.ue(width // 16 - 1)
    w.ue(height // 16 - 1)
    if not copy_u(1):  # frame_mbs_only
        raise ValueError("interlaced SPS is not supported")
    copy_u(1)  # direct_8x8_inference
    if r.u(1):  # frame cropping: drop it
        for _ in range(4):
            r.ue()
    w.u(1, 0)
    # the rest (VUI and trailing bits) is copied verbatim
    total = len(r.data) * 8
    while r.pos < total:
        w.u(1, r.u(1))
    rbsp = w.to_bytes().rstrip(b"\x00")
    return sps_nal[:1] + escape_rbsp(rbsp)


def split_avcc(avcc_payload: bytes) -> tuple[bytes, list[bytes], list[bytes], bytes]:
    """Split an avcC payload into (6-byte prefix, SPS list, PPS list, trailing bytes)."""
    sps_list, pos = _length_prefixed(avcc_payload, 6, avcc_payload[5] & 0x1F)
    pps_list, pos = _length_prefixed(avcc_payload, pos + 1, avcc_payload[pos])
    return avcc_payload[:5], sps_list, pps_list, avcc_payload[pos:]


def _length_prefixed(payload: bytes, pos: int, count: int) -> tuple[list[bytes], int]:
    """``count`` units of a 16-bit length then the bytes, from ``pos``: (the units, the position after)."""
    units = []
    for _ in range(count):
        (n,) = struct.unpack_from(">H", payload, pos)
        units.append(payload[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return units, pos


def join_avcc(prefix: bytes, sps_list: Iterable[bytes], pps_list: Iterable[bytes], rest: bytes) -> bytes:
    """Inverse of ``split_avcc``."""
    sps_l, pps_l = list(sps_list), list(pps_list)
    out = bytearray(prefix)
    out.append(0xE0 | len(sps_l))
    for s in sps_l:
        out += struct.pack(">H", len(s)) + s
    out.append(len(pps_l))
    for p in pps_l:
        out += struct.pack(">H", len(p)) + p
    return bytes(out + rest)
