"""A generated corpus of hostile and unusual video inputs, each with the outcome a scan must give.

``build_corpus(dst)`` writes every file into ``dst`` (a few MB in all, a few seconds of CPU) and
returns one ``Case`` per input. Nothing is downloaded; every byte comes from PyAV's bundled
encoders, seeded NumPy randomness and byte patches, so two builds are byte-identical (the HLS and
concat scripts name absolute paths inside ``dst``, so they differ only by that path).

Outcomes (``Case.expect`` / ``Case.alt``) are error codes of ``framescan.errors.ErrorCode`` or:

- ``OK``: a complete result (everything the header claims was decoded);
- ``PARTIAL``: a result whose coverage (decoded seconds / frames) is less than the header claims.

Limits are the scanner's defaults (``DEFAULT_LIMITS``) unless a case sets ``limits`` (overrides,
same keys). The policy the expectations follow:

- size, dimensions and stream count are checked on what the header declares, before decoding
  (``LIMIT_EXCEEDED`` without decoding a frame), and dimensions again on every decoded frame
  (a stream may change size mid-way);
- frame count and duration limits count what is decoded (frames, and the span of decoded
  presentation timestamps). A header's frame count or duration is an unverified claim: it only
  sets the "claimed" side of coverage, so a header that claims hours and holds seconds is
  ``PARTIAL``, not ``LIMIT_EXCEEDED``;
- attachments are streams (FFmpeg exposes each one in ``container.streams`` and loads it into
  memory at open), so they count towards ``max_streams``;
- playlists and scripts that name other files or URLs (HLS, ffconcat, SDP) are refused whatever
  they point at: ``UNSUPPORTED_FORMAT``;
- an attached picture (cover art) is not the video: the real video stream is scanned.

The ``note`` of each case says what FFmpeg 8.1 (PyAV 18.1) was observed to do with the file:
open errors, stream info and how many frames decode when packets the decoder rejects are skipped.
``alt`` lists other acceptable outcomes only where the line between them is drawn by FFmpeg, not
by the file; each use says why.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from . import media

#: Outcomes a case may expect: the scanner's error codes plus the two kinds of result.
ERROR_CODES = (
    "EMPTY",
    "UNSUPPORTED_FORMAT",
    "NO_VIDEO",
    "NO_FRAMES",
    "TRUNCATED",
    "LIMIT_EXCEEDED",
    "TIMEOUT",
    "DECODER_CRASHED",
    "RESOURCE_EXHAUSTED",
)
OUTCOMES = frozenset((*ERROR_CODES, "OK", "PARTIAL"))

#: The scanner's default limits, keyed as ``Case.limits`` overrides are (the field names of
#: ``framescan.limits.Limits``, so ``Limits().updated(**case.limits)`` applies a case's overrides).
DEFAULT_LIMITS: dict[str, int | float] = {
    "max_file_bytes": 2 * 1024**3,  # bytes
    "max_pixels": 8192 * 8192,  # width * height; exactly 8192x8192 is allowed
    "max_side": 16384,  # width or height
    "max_duration": 3600.0,  # seconds: span of decoded timestamps
    "max_frames": 200_000,  # decoded frames
    "max_streams": 32,  # every stream FFmpeg lists, attachments included
}


@dataclass(frozen=True)
class Case:
    """One hostile input and the outcome a scan of it must give."""

    name: str  # short id, also the file's stem
    path: Path  # the written file
    expect: str  # an error code, "OK" or "PARTIAL"
    alt: tuple[str, ...] = ()  # other acceptable outcomes (rare; the note says why)
    note: str = ""  # what the file is, what FFmpeg does with it, why the expectation
    limits: dict[str, int | float] | None = field(default=None, hash=False)  # overrides of DEFAULT_LIMITS

    def __post_init__(self) -> None:
        bad = [o for o in (self.expect, *self.alt) if o not in OUTCOMES]
        if bad:
            raise ValueError(f"case {self.name}: unknown outcome(s) {bad}; allowed: {sorted(OUTCOMES)}")
        if self.limits:
            unknown = set(self.limits) - set(DEFAULT_LIMITS)
            if unknown:
                raise ValueError(
                    f"case {self.name}: unknown limit(s) {sorted(unknown)}; known: {sorted(DEFAULT_LIMITS)}"
                )

    @property
    def accepted(self) -> tuple[str, ...]:
        """Every acceptable outcome, ``expect`` first."""
        return (self.expect, *self.alt)

    def effective_limits(self) -> dict[str, int | float]:
        """``DEFAULT_LIMITS`` with this case's overrides applied."""
        return {**DEFAULT_LIMITS, **(self.limits or {})}


Generator = Callable[[Path], list[Case]]
#: Every generator, by name, in build order. Each writes its files into the directory it is given.
GENERATORS: dict[str, Generator] = {}


def _generator(fn: Generator) -> Generator:
    GENERATORS[fn.__name__.removeprefix("gen_")] = fn
    return fn


def build_corpus(dst: Path) -> list[Case]:
    """Write every hostile input into ``dst`` (created if needed) and return the cases."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    for gen in GENERATORS.values():
        cases.extend(gen(dst))
    names = [c.name for c in cases]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RuntimeError(f"duplicate case names: {dupes}")
    return cases


# ----------------------------------------------------------------------------------------------
# helpers

#: The base clip most patches start from: 320x240 H.264, 48 frames at 24 fps (2 s), GOP 24 (two
#: keyframes), textured so the first keyframe is ~4 KB. Moov at the end unless fast-started.
BASE = {"width": 320, "height": 240, "frames": 48, "fps": 24, "gop": 24}
BASE_FRAMES = 48


def _write(dst: Path, filename: str, data: bytes | bytearray) -> Path:
    path = dst / filename
    path.write_bytes(bytes(data))
    return path


def _base_mp4(dst: Path, stem: str, faststart: bool = False) -> bytes:
    """Encode the base clip (via a scratch file ``stem``.mp4 in ``dst``) and return its bytes."""
    path = dst / f"{stem}.mp4"
    media.encode_clip(path, container_options={"movflags": "+faststart"} if faststart else None, **BASE)
    data = path.read_bytes()
    path.unlink()
    return data


def _tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)


def _mux_tone(container: Any, stream: Any, seconds: float = 1.0) -> None:
    import av

    rate = stream.codec_context.sample_rate
    tone = _tone(seconds, rate)
    step = stream.codec_context.frame_size or 1024
    for start in range(0, len(tone), step):
        frame = av.AudioFrame.from_ndarray(tone[None, start : start + step], format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _jpeg(width: int, height: int, index: int = 7) -> bytes:
    """One baseline JPEG of the test pattern."""
    import av

    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuvj420p"
    ctx.time_base = Fraction(1, 25)
    ctx.flags |= av.codec.context.Flags.bitexact
    frame = av.VideoFrame.from_ndarray(media.pattern(width, height, index), format="rgb24")
    frame = media.to_format(frame, "yuvj420p")
    frame.pts = 0
    packets = ctx.encode(frame) + ctx.encode(None)
    return bytes(packets[0])


def _mux_picture(container: Any, stream: Any, jpeg: bytes) -> None:
    import av

    packet = av.Packet(jpeg)
    packet.stream = stream
    packet.pts = packet.dts = 0
    packet.time_base = stream.time_base
    container.mux(packet)


def _add_picture_stream(container: Any, width: int, height: int, attached: bool) -> Any:
    import av

    stream = container.add_stream("mjpeg", rate=1)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
    stream.time_base = Fraction(1, 90000)
    if attached:
        stream.disposition = av.stream.Disposition.attached_pic
    return stream


def _flat_yuv420(width: int, height: int, index: int) -> np.ndarray:
    """A flat grey frame as planar 4:2:0 (no RGB conversion: cheap at 8192x8192)."""
    return np.full((height * 3 // 2, width), 112 + 8 * (index % 4), np.uint8)


def _rgba(width: int, height: int, index: int) -> np.ndarray:
    """The test pattern with a horizontal alpha ramp."""
    img = np.empty((height, width, 4), np.uint8)
    img[..., :3] = media.pattern(width, height, index)
    x, _ = np.meshgrid(np.arange(width), np.arange(height))
    img[..., 3] = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    return img


# ----------------------------------------------------------------------------------------------
# not a video at all


@_generator
def gen_not_video(dst: Path) -> list[Case]:
    rng = np.random.default_rng(20240601)
    html = (
        b"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Watch now</title></head>\n"
        b"<body><h1>404 Not Found</h1><video src='/v/clip.mp4' autoplay></video></body></html>\n"
    )
    return [
        Case(
            "zero_bytes",
            _write(dst, "zero_bytes.mp4", b""),
            "EMPTY",
            note="0-byte file named .mp4 (e.g. an upload that never started).",
        ),
        Case(
            "random_bytes",
            _write(dst, "random_bytes.mp4", rng.integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes()),
            "UNSUPPORTED_FORMAT",
            note="64 KiB of seeded random bytes named .mp4. FFmpeg picks the mov demuxer from the "
            "extension and fails to open: 'moov atom not found' (InvalidDataError).",
        ),
        Case(
            "html_as_mp4",
            _write(dst, "html_as_mp4.mp4", html),
            "UNSUPPORTED_FORMAT",
            note="An HTML error page saved as .mp4 (a failed download). FFmpeg: mov by extension, "
            "'moov atom not found'.",
        ),
    ]


@_generator
def gen_playlists(dst: Path) -> list[Case]:
    segment = media.encode_clip(dst / "hls_segment.ts", fmt="mpegts", frames=24)
    local = (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:1.0,\n{segment.resolve()}\n#EXT-X-ENDLIST\n"
    )
    remote = (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXTINF:1.0,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n"
    )
    concat = f"ffconcat version 1.0\nfile '{segment.resolve()}'\nduration 1.0\n"
    sdp = (
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=framescan\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=video 9 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    )
    return [
        Case(
            "hls_segment_ts",
            segment,
            "OK",
            note="The real clip the local playlists point at: 160x120 H.264 in MPEG-TS, 24 frames "
            "at 24 fps. FFmpeg: mpegts, timestamps start at 0.083 s (muxer delay), 24 frames decode.",
        ),
        Case(
            "hls_local_as_mp4",
            _write(dst, "hls_local_as_mp4.mp4", local.encode()),
            "UNSUPPORTED_FORMAT",
            note="An HLS playlist (#EXTM3U) naming the absolute path of hls_segment.ts, saved as .mp4. "
            "FFmpeg 8 will not detect HLS under a non-playlist extension ('Not detecting m3u8/hls "
            "with non standard extension') and fails as mov ('moov atom not found'). Refused "
            "either way: playlists name other files.",
        ),
        Case(
            "hls_local_as_m3u8",
            _write(dst, "hls_local_as_m3u8.m3u8", local.encode()),
            "UNSUPPORTED_FORMAT",
            note="The same playlist under its own extension. Without a format whitelist FFmpeg opens "
            "it as 'hls', follows the path and decodes the segment's 24 frames; with hls not "
            "whitelisted it fails ('Format not on whitelist'). The scanner must refuse it.",
        ),
        Case(
            "hls_remote_as_mp4",
            _write(dst, "hls_remote_as_mp4.mp4", remote.encode()),
            "UNSUPPORTED_FORMAT",
            note="An HLS playlist pointing at http://127.0.0.1:9/x.ts (discard port: nothing "
            "listens), saved as .mp4. FFmpeg fails as mov; a scanner must never fetch the URL.",
        ),
        Case(
            "ffconcat_as_mp4",
            _write(dst, "ffconcat_as_mp4.mp4", concat.encode()),
            "UNSUPPORTED_FORMAT",
            note="An ffconcat script ('ffconcat version 1.0') naming hls_segment.ts, saved as .mp4. "
            "FFmpeg detects 'concat' from the content despite the extension; its default safe=1 "
            "refuses the absolute path ('Unsafe file name', PermissionError); with a format "
            "whitelist: 'Format not on whitelist'.",
        ),
        Case(
            "sdp_as_mp4",
            _write(dst, "sdp_as_mp4.mp4", sdp.encode()),
            "UNSUPPORTED_FORMAT",
            note="An SDP session description saved as .mp4. FFmpeg detects 'sdp' from the content and "
            "would open RTP sockets on 127.0.0.1:9 and wait for packets; with protocol_whitelist=file "
            "it fails ('Protocol rtp not on whitelist'). Do not probe it without a whitelist.",
        ),
    ]


@_generator
def gen_baseline(dst: Path) -> list[Case]:
    end = _write(dst, "baseline_moov_at_end.mp4", _base_mp4(dst, "_base_baseline"))
    fast = _write(dst, "baseline_faststart.mp4", _base_mp4(dst, "_base_baseline", faststart=True))
    return [
        Case(
            "baseline_moov_at_end",
            end,
            "OK",
            note="The intact base clip the MP4 patches start from: 320x240 H.264 MP4, 48 frames at "
            "24 fps (2 s), GOP 24, B-frames, moov after mdat. All 48 decode.",
        ),
        Case(
            "baseline_faststart",
            fast,
            "OK",
            note="The same clip with movflags=faststart (moov before mdat). All 48 decode.",
        ),
    ]


# ----------------------------------------------------------------------------------------------
# truncation


@_generator
def gen_truncated_moov_at_end(dst: Path) -> list[Case]:
    data = _base_mp4(dst, "_base_moov_at_end")
    first = media.samples(data)[0]
    no_index = (
        "The moov index is at the end, so no index survives: FFmpeg fails to open "
        "('moov atom not found', InvalidDataError). The top-level mdat box declares more bytes than "
        "the file has, so a scanner that walks the boxes can say TRUNCATED; one that only sees the "
        "open failure says UNSUPPORTED_FORMAT (alt)."
    )
    cuts = [
        ("cut_moov_end_in_ftyp", 16, "the middle of the ftyp box"),
        ("cut_moov_end_at_frame0", first.offset, "the start of the first frame's data (mdat header only)"),
        ("cut_moov_end_mid_frame0", first.offset + first.size // 2, "the middle of the first frame"),
        ("cut_moov_end_frame0_minus1", first.offset + first.size - 1, "one byte short of the first frame"),
        ("moov_end_cut_50pct", len(data) // 2, "50% of the file"),
    ]
    cases = []
    for name, offset, where in cuts:
        path = _write(dst, f"{name}.mp4", data[:offset])
        if name == "cut_moov_end_in_ftyp":
            cases.append(
                Case(
                    name,
                    path,
                    "UNSUPPORTED_FORMAT",
                    alt=("TRUNCATED",),
                    note=f"Base H.264 MP4 (moov at end) cut at byte {offset}, {where}: not even one "
                    "whole box. FFmpeg: mov by extension, 'moov atom not found'. TRUNCATED (alt) if "
                    "the scanner reads the partial 'ftyp' as an MP4 signature.",
                )
            )
        else:
            cases.append(
                Case(
                    name,
                    path,
                    "TRUNCATED",
                    alt=("UNSUPPORTED_FORMAT",),
                    note=f"Base H.264 MP4 (moov at end, first frame {first.size} B at {first.offset}) "
                    f"cut at byte {offset}, {where}. {no_index}",
                )
            )
    return cases


@_generator
def gen_truncated_faststart(dst: Path) -> list[Case]:
    data = _base_mp4(dst, "_base_faststart", faststart=True)
    ss = media.samples(data)
    first = ss[0]
    moov = media.find_box(data, "moov")
    head = (
        f"Base H.264 MP4 with movflags=faststart (moov before mdat, claims {BASE_FRAMES} frames / 2 s; "
        f"first frame {first.size} B at {first.offset})"
    )
    zero = (
        "The index is intact, so FFmpeg opens it and reports 48 frames / 2.0 s, but no frame "
        "decodes: NO_FRAMES. TRUNCATED (alt) for a scanner that tells a cut file from an "
        "undecodable one (the index points past the end of the file)."
    )
    return [
        Case(
            "cut_faststart_in_moov",
            _write(dst, "cut_faststart_in_moov.mp4", data[: moov.start + moov.size // 2]),
            "TRUNCATED",
            alt=("UNSUPPORTED_FORMAT",),
            note=f"{head} cut in the middle of the moov box. FFmpeg fails to open with EOFError "
            "('error reading header'): the header itself is cut. UNSUPPORTED_FORMAT (alt) for a "
            "scanner that maps every open failure to it.",
        ),
        Case(
            "cut_faststart_at_frame0",
            _write(dst, "cut_faststart_at_frame0.mp4", data[: first.offset]),
            "NO_FRAMES",
            alt=("TRUNCATED",),
            note=f"{head} cut where the first frame's data starts (header only). Demuxing ends at once "
            f"with no packet and no error. {zero}",
        ),
        Case(
            "cut_faststart_mid_frame0",
            _write(dst, "cut_faststart_mid_frame0.mp4", data[: first.offset + first.size // 2]),
            "NO_FRAMES",
            alt=("TRUNCATED",),
            note=f"{head} cut in the middle of the first frame. The demuxer returns one short packet; "
            "the H.264 decoder rejects it ('Error splitting the input into NAL units', "
            f"InvalidDataError from send_packet). {zero}",
        ),
        Case(
            "cut_faststart_frame0_minus1",
            _write(dst, "cut_faststart_frame0_minus1.mp4", data[: first.offset + first.size - 1]),
            "NO_FRAMES",
            alt=("TRUNCATED",),
            note=f"{head} cut one byte short of the end of the first frame: same as the mid-frame cut, "
            f"the short packet is rejected whole. {zero}",
        ),
        Case(
            "cut_faststart_after_frame0",
            _write(dst, "cut_faststart_after_frame0.mp4", data[: first.offset + first.size]),
            "PARTIAL",
            note=f"{head} cut right after the first frame: exactly 1 of 48 frames decodes (t=0).",
        ),
        Case(
            "faststart_cut_50pct",
            _write(dst, "faststart_cut_50pct.mp4", data[: len(data) // 2]),
            "PARTIAL",
            note=f"{head} cut at 50%. The header still claims 48 frames / 2 s; 22 frames decode "
            "(0-0.958 s) when the rejected last (short) packet is skipped; a decode loop that stops "
            "at the first error (container.decode) sees 20.",
        ),
    ]


# ----------------------------------------------------------------------------------------------
# corruption inside an intact container


def _corrupt_samples(data: bytes, rate: float, seed: int, burst: int = 16) -> bytearray:
    """Overwrite ``rate`` of the sample bytes with bursts of random bytes (header boxes untouched)."""
    rng = np.random.default_rng(seed)
    out = bytearray(data)
    ss = [s for s in media.samples(data) if s.size > burst]
    total = sum(s.size for s in ss)
    for _ in range(max(1, round(rate * total / burst))):
        s = ss[int(rng.integers(len(ss)))]
        off = s.offset + int(rng.integers(0, s.size - burst))
        out[off : off + burst] = rng.integers(0, 256, burst, dtype=np.uint8).tobytes()
    return out


#: (rate, decoded frames observed when rejected packets are skipped, observed outcome)
_BURSTS = (
    (1e-4, 48, "OK"),
    (1e-3, 48, "OK"),
    (1e-2, 47, "PARTIAL"),
    (5e-2, 46, "PARTIAL"),
    (2e-1, 39, "PARTIAL"),
)


@_generator
def gen_bursts(dst: Path) -> list[Case]:
    data = _base_mp4(dst, "_base_bursts", faststart=True)
    cases = []
    for k, (rate, decoded, outcome) in enumerate(_BURSTS):
        name = f"burst_rate_{rate:.0e}".replace("-", "m")
        out = _corrupt_samples(data, rate, seed=1000 + k)
        other = "PARTIAL" if outcome == "OK" else "OK"
        cases.append(
            Case(
                name,
                _write(dst, f"{name}.mp4", out),
                outcome,
                alt=(other,),
                note=f"Base faststart H.264 MP4 with {rate:g} of its frame bytes overwritten by 16-byte "
                f"random bursts (seeded); boxes intact. Observed: {decoded}/48 frames decode when "
                "packets the decoder rejects are skipped (H.264 conceals damaged slices, so a frame "
                "with garbage still decodes). Must be a result, never a crash; OK vs PARTIAL (alt) "
                "depends on FFmpeg's error concealment, not on the file.",
            )
        )
    return cases


@_generator
def gen_missing_keyframe(dst: Path) -> list[Case]:
    data = _base_mp4(dst, "_base_missing_key")
    ss = media.samples(data)
    # zero the IDR slice payloads of the first keyframe, keeping NAL length prefixes and the SEI
    idr = bytearray(data)
    pos, end = ss[0].offset, ss[0].offset + ss[0].size
    while pos < end:
        (n,) = struct.unpack_from(">I", idr, pos)
        if idr[pos + 4] & 0x1F == 5:
            idr[pos + 5 : pos + 4 + n] = bytes(n - 1)
        pos += 4 + n
    gop = bytearray(data)
    for s in ss[: BASE["gop"]]:
        gop[s.offset : s.offset + s.size] = bytes(s.size)
    return [
        Case(
            "missing_first_keyframe",
            _write(dst, "missing_first_keyframe.mp4", idr),
            "PARTIAL",
            note="Base H.264 MP4 (2 GOPs of 24) whose first keyframe's slice data is zeroed (NAL "
            "lengths and SEI kept). The decoder rejects it ('no frame!') and drops the P/B frames "
            "that depend on it; the second GOP decodes: 24/48 frames, from t=1.0 s. A decode loop "
            "that stops at the first error sees 0 frames.",
        ),
        Case(
            "first_gop_zeroed",
            _write(dst, "first_gop_zeroed.mp4", gop),
            "PARTIAL",
            note="Base H.264 MP4 with all 24 samples of the first GOP zeroed (so every NAL length is "
            "0): 24 packets rejected ('Error splitting the input into NAL units'), then the second "
            "GOP decodes: 24/48 frames from t=1.0 s.",
        ),
    ]


@_generator
def gen_codec_config(dst: Path) -> list[Case]:
    data = _base_mp4(dst, "_base_codec_config")
    unknown = bytearray(data)
    entry = media.find_box(unknown, "moov/trak/mdia/minf/stbl/stsd/avc1")
    unknown[entry.start + 4 : entry.start + 8] = b"zzzz"
    zeroed = bytearray(data)
    avcc = media.find_box(zeroed, "moov/trak/mdia/minf/stbl/stsd/avc1/avcC")
    prefix, sps, pps, rest = media.split_avcc(bytes(zeroed[avcc.payload : avcc.end]))
    blank = media.join_avcc(
        prefix, [s[:1] + bytes(len(s) - 1) for s in sps], [p[:1] + bytes(len(p) - 1) for p in pps], rest
    )
    zeroed[avcc.payload : avcc.end] = blank
    huge_sample = bytearray(data)
    stsz = media.find_box(huge_sample, "moov/trak/mdia/minf/stbl/stsz")
    media.patch_u32(huge_sample, stsz.payload + 12 + 4 * 5, 1 << 30)
    return [
        Case(
            "unknown_video_codec",
            _write(dst, "unknown_video_codec.mp4", unknown),
            "UNSUPPORTED_FORMAT",
            note="Base MP4 with its sample entry fourcc 'avc1' patched to 'zzzz'. FFmpeg opens it: one "
            "video stream, 48 frames / 2 s claimed, but codec_context is None (no codec id) and "
            "decoding raises DecoderNotFoundError. Code that reads stream.codec_context.width crashes.",
        ),
        Case(
            "parameter_sets_zeroed",
            _write(dst, "parameter_sets_zeroed.mp4", zeroed),
            "NO_FRAMES",
            note="Base MP4 whose SPS and PPS in avcC are zeroed (NAL header bytes and lengths kept). "
            "FFmpeg opens it (320x240 from the sample entry, pixel format unknown); all 48 packets "
            "are rejected ('no frame!'): 0 frames, although the file is complete.",
        ),
        Case(
            "stsz_sample_1gib",
            _write(dst, "stsz_sample_1gib.mp4", huge_sample),
            "PARTIAL",
            note="Base MP4 whose 6th sample size in stsz says 1 GiB. FFmpeg opens it normally; the "
            "demuxer reads that sample up to the end of the file in chunks (no 1 GiB allocation) "
            "and then stops: 5/48 frames decode (t=0.083-0.25 s, B-frame reordering). Memory "
            "must stay small.",
        ),
    ]


# ----------------------------------------------------------------------------------------------
# dimensions


def _y4m(width: int, height: int, payload: bytes) -> bytes:
    return f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode() + payload


@_generator
def gen_huge_dimensions(dst: Path) -> list[Case]:
    data = bytearray(_base_mp4(dst, "_base_huge_dims"))
    sps_cases = []
    for width, height in ((8192, 8208), (20000, 20000)):
        avcc = media.find_box(data, "moov/trak/mdia/minf/stbl/stsd/avc1/avcC")
        prefix, sps, pps, rest = media.split_avcc(bytes(data[avcc.payload : avcc.end]))
        new_sps = [media.rewrite_sps_size(sps[0], width, height)]
        out = media.replace_box(
            data,
            "moov/trak/mdia/minf/stbl/stsd/avc1/avcC",
            media.make_box(b"avcC", media.join_avcc(prefix, new_sps, pps, rest)),
        )
        entry = media.find_box(out, "moov/trak/mdia/minf/stbl/stsd/avc1")
        media.patch_u16(out, entry.payload + 24, width)
        media.patch_u16(out, entry.payload + 26, height)
        tkhd = media.find_box(out, "moov/trak/tkhd")
        media.patch_u32(out, tkhd.payload + 76, width << 16)
        media.patch_u32(out, tkhd.payload + 80, height << 16)
        sps_cases.append((width, height, out))
    (w1, h1, over), (w2, h2, absurd) = sps_cases
    return [
        Case(
            "huge_dims_y4m_100000",
            _write(dst, "huge_dims_y4m_100000.y4m", _y4m(100_000, 100_000, bytes(4096))),
            "LIMIT_EXCEEDED",
            alt=("UNSUPPORTED_FORMAT",),
            note="A YUV4MPEG2 header declaring 100000x100000 followed by 4 KiB of frame data. FFmpeg "
            "refuses to open it itself ('Picture size 100000x100000 is invalid', OSError), so the "
            "size is only known to a scanner that reads the header; UNSUPPORTED_FORMAT (alt) "
            "otherwise. Nothing may be allocated for the frame.",
        ),
        Case(
            "huge_dims_y4m_8193x8192",
            _write(dst, "huge_dims_y4m_8193x8192.y4m", _y4m(8193, 8192, bytes(4096))),
            "LIMIT_EXCEEDED",
            note="A YUV4MPEG2 header declaring 8193x8192 (one column over max_pixels) and 4 KiB of a "
            "~100 MB frame. FFmpeg opens it: rawvideo 8193x8192 yuv420p, 0 frames claimed. The limit "
            "must trip on the header, before decoding (decoding would find the frame truncated).",
        ),
        Case(
            "huge_dims_sps_8192x8208",
            _write(dst, "huge_dims_sps_8192x8208.mp4", over),
            "LIMIT_EXCEEDED",
            note=f"Base 320x240 MP4 whose SPS (in avcC), sample entry and tkhd are rewritten to "
            f"{w1}x{h1} (67,239,936 pixels > max_pixels; each side allowed). FFmpeg believes it: "
            "stream 8192x8208, and frames do decode (concealed garbage at 8192x8208, ~100 MB each). "
            "Must be refused from the header before decoding.",
        ),
        Case(
            "huge_dims_sps_20000x20000",
            _write(dst, "huge_dims_sps_20000x20000.mp4", absurd),
            "NO_FRAMES",
            alt=("LIMIT_EXCEEDED",),
            note=f"Base MP4 whose SPS, sample entry and tkhd say {w2}x{h2}. FFmpeg rejects the SPS "
            "(picture too large), so the opened stream reports width=height=0 and every packet "
            "fails ('no frame!'). A scanner that reads the sample entry / tkhd itself can say "
            "LIMIT_EXCEEDED (alt). Width 0 must not reach any resize arithmetic.",
        ),
    ]


@_generator
def gen_dimensions(dst: Path) -> list[Case]:
    big = media.encode_clip(
        dst / "dims_8192x8192_mjpeg.avi",
        "mjpeg",
        8192,
        8192,
        frames=1,
        fps=1,
        pix_fmt="yuvj420p",
        fmt="avi",
        frame_fn=_flat_yuv420,
        frame_format="yuvj420p",
    )
    side_ok = media.encode_clip(
        dst / "dims_16384x16_mjpeg.avi", "mjpeg", 16384, 16, frames=4, fps=4, pix_fmt="yuvj420p"
    )
    side_over = media.encode_clip(
        dst / "dims_16385x16_mjpeg.avi", "mjpeg", 16385, 16, frames=4, fps=4, pix_fmt="yuvj420p"
    )
    one_mjpeg = media.encode_clip(dst / "dims_1x1_mjpeg.avi", "mjpeg", 1, 1, frames=10, pix_fmt="yuvj420p")
    one_h264 = media.encode_clip(
        dst / "dims_1x1_h264_yuv444p.mp4", "libx264", 1, 1, frames=10, fps=10, pix_fmt="yuv444p"
    )
    two = media.encode_clip(dst / "dims_2x2_h264.mp4", "libx264", 2, 2, frames=10, fps=10)
    odd_even = media.encode_clip(dst / "dims_1294x964_h264.mp4", "libx264", 1294, 964, frames=4, fps=10)
    odd = media.encode_clip(
        dst / "dims_321x241_h264_yuv444p.mp4", "libx264", 321, 241, frames=10, fps=10, pix_fmt="yuv444p"
    )
    return [
        Case(
            "dims_8192x8192_mjpeg",
            big,
            "OK",
            note="One real flat-grey 8192x8192 MJPEG frame in AVI (exactly max_pixels: allowed). "
            "FFmpeg: mjpeg yuvj420p 8192x8192, 1 frame decodes (~100 MB of planes).",
        ),
        Case(
            "dims_16384x16_mjpeg",
            side_ok,
            "OK",
            note="4 MJPEG frames of 16384x16 (width exactly max_side: allowed). All 4 decode.",
        ),
        Case(
            "dims_16385x16_mjpeg",
            side_over,
            "LIMIT_EXCEEDED",
            note="4 real MJPEG frames of 16385x16: few pixels, but wider than max_side. FFmpeg opens "
            "and decodes them fine, so only the scanner's header check can refuse it.",
        ),
        Case(
            "dims_1x1_mjpeg",
            one_mjpeg,
            "OK",
            note="10 MJPEG frames of 1x1 in AVI; all decode (yuvj420p 1x1).",
        ),
        Case(
            "dims_1x1_h264_yuv444p",
            one_h264,
            "OK",
            note="10 H.264 frames of 1x1 (yuv444p: 4:2:0 needs even sizes, 4:4:4 does not); all decode.",
        ),
        Case("dims_2x2_h264", two, "OK", note="10 H.264 yuv420p frames of 2x2; all decode at 2x2."),
        Case(
            "dims_1294x964_h264",
            odd_even,
            "OK",
            note="4 H.264 frames of 1294x964 (not multiples of 16: SPS cropping); decode at 1294x964.",
        ),
        Case(
            "dims_321x241_h264_yuv444p",
            odd,
            "OK",
            note="10 H.264 yuv444p frames of odd size 321x241; all decode at 321x241.",
        ),
    ]


@_generator
def gen_size_changes(dst: Path) -> list[Case]:
    import av

    part1 = dst / "_resize_part1.h264"
    part2 = dst / "_resize_part2.h264"
    media.encode_clip(part1, width=160, height=120, frames=12, fmt="h264")
    media.encode_clip(part2, width=320, height=240, frames=12, fmt="h264")
    resize = _write(dst, "resolution_change_midstream.h264", part1.read_bytes() + part2.read_bytes())
    part1.unlink()
    part2.unlink()

    grow = dst / "grows_past_limit_midstream.avi"
    with media.open_output(grow, "avi") as container:
        stream = media.add_video_stream(container, "mjpeg", 64, 48, fps=10, pix_fmt="yuvj420p")
        container.start_encoding()
        index = 0
        for width, height, count in ((64, 48, 5), (16400, 16, 3)):
            ctx = av.CodecContext.create("mjpeg", "w")
            ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuvj420p"
            ctx.time_base = Fraction(1, 10)
            for i in range(count):
                frame = av.VideoFrame.from_ndarray(media.pattern(width, height, i), format="rgb24")
                frame = media.to_format(frame, "yuvj420p")
                frame.pts = index
                for packet in ctx.encode(frame):
                    packet.stream = stream
                    packet.pts = packet.dts = index
                    packet.time_base = Fraction(1, 10)
                    container.mux(packet)
                index += 1
    return [
        Case(
            "resolution_change_midstream",
            resize,
            "OK",
            note="Raw Annex-B H.264: 12 frames of 160x120 then 12 of 320x240 (a new SPS mid-stream). "
            "FFmpeg reports 160x120 from the first SPS; 24 frames decode in both sizes, no "
            "timestamps. Buffers sized from the header must be re-sized per frame.",
        ),
        Case(
            "grows_past_limit_midstream",
            grow,
            "LIMIT_EXCEEDED",
            note="MJPEG in AVI whose header (and first 5 frames) say 64x48; frames 6-8 are 16400x16 "
            "(wider than max_side). FFmpeg decodes all 8 at their own sizes. The header check passes, "
            "so dimensions must be checked on every decoded frame.",
        ),
    ]


# ----------------------------------------------------------------------------------------------
# time: rotation, VFR, missing timestamps, lying durations, long clips


@_generator
def gen_time(dst: Path) -> list[Case]:
    rot = media.encode_clip(dst / "rotation_90.mp4", frames=12, rotation=90)
    vfr_pts = (0, 1, 2, 10, 11, 40, 41, 42, 43, 200, 201, 202, 500, 503, 507, 1000)
    vfr = media.encode_clip(
        dst / "vfr_irregular.mp4",
        frames=len(vfr_pts),
        pts=vfr_pts,
        fps=1000,
        time_base=Fraction(1, 1000),
        options={"bf": "0"},
    )
    span_pts = (0, 1000, 2000, 3_600_000, 7_200_000)
    span = media.encode_clip(
        dst / "timestamps_span_2h.mp4",
        frames=len(span_pts),
        pts=span_pts,
        fps=1000,
        time_base=Fraction(1, 1000),
        options={"bf": "0"},
    )
    raw = media.encode_clip(dst / "annexb_raw.h264", frames=24, fmt="h264")
    return [
        Case(
            "rotation_90",
            rot,
            "OK",
            note="160x120 H.264 MP4 with a display matrix of 90 degrees (set_display_rotation(90)). "
            "FFmpeg: stream 160x120, decoded frames carry rotation=90; 12 frames.",
        ),
        Case(
            "vfr_irregular",
            vfr,
            "OK",
            note="16 H.264 frames with irregular PTS (ms: 0,1,2,10,11,40,...,507,1000), no B-frames. "
            "FFmpeg: time base 1/16000, average_rate 16000/1001 (meaningless), duration 1.001 s; all 16 "
            "decode with their real gaps. Timestamps must come from PTS, not index/fps.",
        ),
        Case(
            "timestamps_span_2h",
            span,
            "LIMIT_EXCEEDED",
            note="5 H.264 frames at PTS 0 s, 1 s, 2 s, 3600 s, 7200 s (tiny file). FFmpeg: duration "
            "7200 s, all 5 decode with those times. The decoded timestamps span 2 h > max_duration (1 h).",
        ),
        Case(
            "annexb_raw_h264",
            raw,
            "OK",
            note="Raw Annex-B H.264 (.h264), 24 frames of 160x120, no container. FFmpeg: format h264, "
            "no duration, frames=0; every packet and frame has pts=None and dts=None; average_rate "
            "25 (the demuxer's default), guessed_rate 24 (from the SPS VUI). Times must be "
            "synthesised from frame index and rate.",
        ),
    ]


def _stts_one_long_last_sample(data: bytes, seconds: float) -> bytearray:
    """Rewrite stts so the last sample lasts until ``seconds`` (the others keep their deltas)."""
    stts = media.find_box(data, "moov/trak/mdia/minf/stbl/stts")
    (count,) = struct.unpack_from(">I", data, stts.payload + 4)
    runs = [struct.unpack_from(">II", data, stts.payload + 8 + 8 * k) for k in range(count)]
    deltas = [d for n, d in runs for _ in range(n)]
    mdhd = media.find_box(data, "moov/trak/mdia/mdhd")
    (scale,) = struct.unpack_from(">I", data, mdhd.payload + 12)
    last = round(seconds * scale) - sum(deltas[:-1])
    head = len(deltas) - 1
    payload = struct.pack(">II", 0, 2) + struct.pack(">II", head, deltas[0]) + struct.pack(">II", 1, last)
    if len(set(deltas[:-1])) != 1:
        raise ValueError("expected a constant frame rate before the last sample")
    return media.replace_box(data, "moov/trak/mdia/minf/stbl/stts", media.make_box(b"stts", payload))


@_generator
def gen_lying_durations(dst: Path) -> list[Case]:
    data = _base_mp4(dst, "_base_durations")
    hours = 3 * 3600.0
    header_only = media.set_durations(data, hours)
    with_stts = media.set_durations(_stts_one_long_last_sample(data, hours), hours)
    mkv = media.encode_clip(dst / "_mkv_duration_src.mkv", frames=24)
    mkv_data = bytearray(mkv.read_bytes())
    mkv.unlink()
    at = mkv_data.find(b"\x44\x89\x88")  # Segment/Info/Duration, 8-byte float, in ms
    if at < 0:
        raise RuntimeError("no 8-byte Duration element in the Matroska header")
    struct.pack_into(">d", mkv_data, at + 3, hours * 1000.0)
    avi = media.encode_clip(dst / "_avi_frames_src.avi", "mpeg4", 160, 120, frames=24, fmt="avi")
    avi_data = bytearray(avi.read_bytes())
    avi.unlink()
    struct.pack_into("<I", avi_data, avi_data.find(b"avih") + 8 + 16, 1_000_000)  # dwTotalFrames
    struct.pack_into("<I", avi_data, avi_data.find(b"strh") + 8 + 32, 1_000_000)  # dwLength
    return [
        Case(
            "duration_mvhd_3h",
            _write(dst, "duration_mvhd_3h.mp4", header_only),
            "OK",
            alt=("PARTIAL",),
            note="Base MP4 (2 s) with mvhd, tkhd, mdhd and elst durations patched to 3 h. FFmpeg 8 "
            "ignores them (stream duration is min(mdhd, sum of stts)): it reports 2.0 s and 48 "
            "frames, and all decode, so the claim FFmpeg exposes is met: OK. PARTIAL (alt) for a "
            "scanner that reads mvhd itself.",
        ),
        Case(
            "duration_stts_3h",
            _write(dst, "duration_stts_3h.mp4", with_stts),
            "PARTIAL",
            note="Base MP4 with mvhd/tkhd/mdhd/elst at 3 h and the last stts delta stretched so the "
            "sample table also sums to 3 h. FFmpeg reports 10800 s (container and stream), 48 "
            "frames, average_rate 1/225. All 48 decode at PTS 0-1.958 s, but the frame at 1.917 s "
            "(last in decode order) carries a duration of ~3 h. Coverage is 2 s of 10800 s claimed; "
            "decoded seconds are measured from PTS, so the 1 h duration limit does not trip.",
        ),
        Case(
            "mkv_duration_3h",
            _write(dst, "mkv_duration_3h.mkv", mkv_data),
            "PARTIAL",
            note="1 s 160x120 H.264 Matroska whose Segment Info Duration is patched to 3 h. FFmpeg: "
            "container duration 10800 s (no stream duration); 24 frames decode, 0-0.958 s.",
        ),
        Case(
            "avi_header_claims_1m_frames",
            _write(dst, "avi_header_claims_1m_frames.avi", avi_data),
            "PARTIAL",
            note="24-frame MPEG-4 AVI with avih dwTotalFrames and strh dwLength patched to 1,000,000. "
            "FFmpeg: stream frames=1000000, duration 41667 s; 24 frames decode. A header frame count "
            "is a claim (coverage), not a decoded count, so max_frames does not trip.",
        ),
    ]


@_generator
def gen_long_clips(dst: Path) -> list[Case]:
    tiny = media.encode_clip(
        dst / "long_tiny_frames.mp4",
        width=16,
        height=16,
        frames=3000,
        fps=1000,
        options={"preset": "ultrafast"},
    )
    tiny_raw = media.encode_clip(
        dst / "long_tiny_frames_raw.h264",
        width=16,
        height=16,
        frames=3000,
        fps=1000,
        fmt="h264",
        options={"preset": "ultrafast"},
    )
    gif = dst / "gif_thousands_frames.gif"
    with media.open_output(gif, "gif") as container:
        stream = media.add_video_stream(container, "gif", 8, 8, fps=50, pix_fmt="rgb8")
        media.write_frames(container, stream, 3000)
    limited = {"max_frames": 500}
    return [
        Case(
            "long_tiny_frames",
            tiny,
            "OK",
            note="3000 H.264 frames of 16x16 at 1000 fps (3 s) in MP4. All decode. Under default limits "
            "a complete result (see long_tiny_frames_limited).",
        ),
        Case(
            "long_tiny_frames_limited",
            tiny,
            "LIMIT_EXCEEDED",
            limits=limited,
            note="The same file as long_tiny_frames under max_frames=500 (200,000 frames would take "
            "too long to build and to scan in a test). The header says 3000 frames; the decoded "
            "count passes 500 either way.",
        ),
        Case(
            "long_tiny_frames_raw_limited",
            tiny_raw,
            "LIMIT_EXCEEDED",
            limits=limited,
            note="3000 16x16 frames as raw Annex-B H.264 (no header count, no timestamps) under "
            "max_frames=500: only the decoded-frame counter can catch it.",
        ),
        Case(
            "gif_thousands_frames",
            gif,
            "OK",
            note="An 8x8 GIF with 3000 frames at 20 ms each. FFmpeg: gif, frames=3000, 60 s; all "
            "3000 frames decode (as bgra).",
        ),
        Case(
            "gif_thousands_frames_limited",
            gif,
            "LIMIT_EXCEEDED",
            limits={"max_frames": 1000},
            note="The same GIF under max_frames=1000.",
        ),
        Case(
            "over_file_size_limit",
            tiny,
            "LIMIT_EXCEEDED",
            limits={"max_file_bytes": 64 * 1024},
            note="long_tiny_frames.mp4 (~150 KB) under max_file_bytes=64 KiB: refused from the file "
            "size, before opening it.",
        ),
    ]


# ----------------------------------------------------------------------------------------------
# streams


@_generator
def gen_no_video(dst: Path) -> list[Case]:
    mp3 = media.encode_audio(dst / "audio_only.mp3", "libmp3lame", fmt="mp3")
    m4a = media.encode_audio(dst / "audio_only.m4a", "aac", fmt="ipod")
    wav = media.encode_audio(dst / "audio_only.wav", "pcm_s16le", fmt="wav")
    cover = dst / "mp3_with_cover_art.mp3"
    jpeg = _jpeg(64, 64)
    with media.open_output(cover, "mp3") as container:
        audio = container.add_stream("libmp3lame", rate=44100, layout="mono")
        pic = _add_picture_stream(container, 64, 64, attached=True)
        container.start_encoding()
        _mux_picture(container, pic, jpeg)
        _mux_tone(container, audio)
    return [
        Case(
            "audio_only_mp3",
            mp3,
            "NO_VIDEO",
            note="1 s sine tone, libmp3lame. FFmpeg: mp3, one audio stream.",
        ),
        Case(
            "audio_only_m4a",
            m4a,
            "NO_VIDEO",
            note="1 s sine tone, AAC in M4A (ipod muxer). One audio stream.",
        ),
        Case("audio_only_wav", wav, "NO_VIDEO", note="1 s sine tone, PCM s16le WAV. One audio stream."),
        Case(
            "mp3_with_cover_art",
            cover,
            "NO_VIDEO",
            note="1 s MP3 with a 64x64 JPEG as ID3 APIC. FFmpeg lists stream 1 as video (mjpeg, "
            "disposition attached_pic) that decodes to 1 frame with no timestamp. A cover picture "
            "is not a video.",
        ),
    ]


@_generator
def gen_cover_art(dst: Path) -> list[Case]:
    jpeg = _jpeg(64, 64)
    src = dst / "_cover_src.mp4"
    with media.open_output(src, "mp4") as container:
        pic = _add_picture_stream(container, 64, 64, attached=True)
        video = media.add_video_stream(container, width=160, height=120)
        container.start_encoding()
        _mux_picture(container, pic, jpeg)
        media.write_frames(container, video, 24)
    data = src.read_bytes()
    src.unlink()
    # FFmpeg writes the cover as udta/meta/ilst/covr after the trak, and the demuxer creates the
    # cover stream when it reads it: move udta before the trak so the cover becomes stream 0.
    moov = media.find_box(data, "moov")
    kids = list(media.children(data, moov))
    order = [k for k in kids if k.fourcc == b"mvhd"] + [k for k in kids if k.fourcc == b"udta"]
    order += [k for k in kids if k.fourcc not in (b"mvhd", b"udta")]
    body = b"".join(data[k.start : k.end] for k in order)
    reordered = data[: moov.payload] + body + data[moov.end :]

    still = dst / "still_track_first.mkv"
    with media.open_output(still, "matroska") as container:
        pic = _add_picture_stream(container, 64, 64, attached=False)
        video = media.add_video_stream(container, width=160, height=120)
        container.start_encoding()
        _mux_picture(container, pic, jpeg)
        media.write_frames(container, video, 24)
    return [
        Case(
            "cover_art_stream0_mp4",
            _write(dst, "cover_art_stream0_mp4.mp4", reordered),
            "OK",
            note="MP4 with a 64x64 JPEG cover (covr, attached_pic) and 24 frames of 160x120 H.264; "
            "udta moved before the trak so FFmpeg lists the cover as stream 0 (mjpeg, disposition "
            "attached_pic) and the video as stream 1. The video stream (1) must be the one scanned: "
            "24 frames.",
        ),
        Case(
            "still_track_first_mkv",
            still,
            "OK",
            note="Matroska whose track 0 is an ordinary 64x64 MJPEG video track holding one frame (no "
            "attached_pic flag: the Matroska muxer writes it as a track) and track 1 is 24 frames of "
            "160x120 H.264. Picking 'the first video stream' scans one still and misses the clip; "
            "the real video is stream 1.",
        ),
    ]


@_generator
def gen_empty_stream(dst: Path) -> list[Case]:
    path = dst / "video_stream_no_packets.mkv"
    with media.open_output(path, "matroska") as container:
        media.add_video_stream(container, "mjpeg", 64, 64, pix_fmt="yuvj420p")
        audio = container.add_stream("aac", rate=44100, layout="mono")
        container.start_encoding()
        _mux_tone(container, audio)
    return [
        Case(
            "video_stream_no_packets",
            path,
            "NO_FRAMES",
            note="Matroska with a 64x64 MJPEG video track that has no packets, plus 1 s of AAC. "
            "FFmpeg lists the video stream (64x64, duration 1.023 s from the segment, pixel format "
            "unknown); 0 frames decode. (The MP4 muxer drops an empty track, so MKV is used.)",
        ),
    ]


@_generator
def gen_extra_streams(dst: Path) -> list[Case]:
    import av

    tc = dst / "timecode_and_subtitles.mp4"
    with media.open_output(tc, "mp4") as container:
        video = media.add_video_stream(container, width=160, height=120)
        video.metadata["timecode"] = "01:00:00:00"
        subs = container.add_mux_stream("mov_text")
        subs.time_base = Fraction(1, 1000)
        container.start_encoding()
        for k in range(3):
            text = f"caption {k}".encode()
            packet = av.Packet(struct.pack(">H", len(text)) + text)
            packet.stream = subs
            packet.pts = packet.dts = 300 * k
            packet.duration = 250
            packet.time_base = Fraction(1, 1000)
            container.mux(packet)
        media.write_frames(container, video, 24)

    ts = dst / "mpegts_subtitles_and_klv.ts"
    with media.open_output(ts, "mpegts") as container:
        video = media.add_video_stream(container, width=160, height=120)
        subs = container.add_mux_stream("dvb_subtitle")
        subs.time_base = Fraction(1, 1000)
        data = container.add_data_stream("klv")
        data.time_base = Fraction(1, 1000)
        container.start_encoding()
        klv_key = bytes.fromhex("060e2b34020b01010e01030101000000")
        for k in range(3):
            for stream, payload in (
                (subs, bytes([0x20, 0x00, 0xFF])),
                (data, klv_key + bytes([8]) + bytes([k]) * 8),
            ):
                packet = av.Packet(payload)
                packet.stream = stream
                packet.pts = packet.dts = 300 * k
                packet.time_base = Fraction(1, 1000)
                container.mux(packet)
        media.write_frames(container, video, 24)
    return [
        Case(
            "timecode_and_subtitles",
            tc,
            "OK",
            note="MP4 with 24 frames of 160x120 H.264, a mov_text subtitle track and a tmcd timecode "
            "track (01:00:00:00). FFmpeg lists video, subtitle and data (tmcd, no codec) streams; "
            "the video decodes fully.",
        ),
        Case(
            "mpegts_subtitles_and_klv",
            ts,
            "OK",
            note="MPEG-TS with 24 frames of H.264, a DVB subtitle stream (3 stub packets) and a KLV "
            "data stream. FFmpeg: video, subtitle (dvbsub) and data (codec None) streams; video "
            "timestamps start at 0.083 s; 24 frames decode.",
        ),
    ]


@_generator
def gen_many_streams(dst: Path) -> list[Case]:
    import av

    forty = dst / "video_streams_40.mkv"
    with media.open_output(forty, "matroska") as container:
        streams = [media.add_video_stream(container, "libx264", 16, 16, fps=10) for _ in range(40)]
        for i in range(3):
            for k, stream in enumerate(streams):
                frame = av.VideoFrame.from_ndarray(media.pattern(16, 16, i + k), format="rgb24")
                frame = media.to_format(frame, "yuv420p")
                frame.pts = i
                container.mux(stream.encode(frame))
        for stream in streams:
            container.mux(stream.encode(None))
    attachments = dst / "mkv_300_attachments.mkv"
    with media.open_output(attachments, "matroska") as container:
        video = media.add_video_stream(container, width=64, height=48)
        for k in range(300):
            font = bytes([k % 256]) * 512
            container.add_attachment(f"font{k:03d}.ttf", "application/x-truetype-font", font)
        media.write_frames(container, video, 12)
    return [
        Case(
            "video_streams_40",
            forty,
            "LIMIT_EXCEEDED",
            note="Matroska with 40 H.264 video streams of 16x16 (3 frames each). FFmpeg lists all 40; "
            "more than max_streams=32: refused from the header.",
        ),
        Case(
            "mkv_300_attachments",
            attachments,
            "LIMIT_EXCEEDED",
            note="Matroska with one 64x48 H.264 video (12 frames) and 300 font attachments of 512 B. "
            "FFmpeg lists 301 streams (300 of type 'attachment', loaded into memory at open). "
            "Attachments count as streams: over max_streams=32.",
        ),
    ]


# ----------------------------------------------------------------------------------------------
# codecs and pixel formats


@_generator
def gen_codecs(dst: Path) -> list[Case]:
    hevc = media.encode_clip(dst / "hevc_10bit.mp4", "libx265", pix_fmt="yuv420p10le")
    h444 = media.encode_clip(dst / "h264_yuv444p.mp4", pix_fmt="yuv444p")
    vp9 = media.encode_clip(
        dst / "vp9_alpha.webm", "libvpx-vp9", pix_fmt="yuva420p", frame_fn=_rgba, frame_format="rgba"
    )
    mpeg4 = media.encode_clip(dst / "mpeg4_avi.avi", "mpeg4", fmt="avi")
    return [
        Case(
            "hevc_10bit",
            hevc,
            "OK",
            note="24 frames of 160x120 HEVC Main10 (libx265, yuv420p10le) in MP4; all decode as "
            "yuv420p10le (16-bit samples).",
        ),
        Case("h264_yuv444p", h444, "OK", note="24 frames of 160x120 H.264 High 4:4:4 (yuv444p); all decode."),
        Case(
            "vp9_alpha",
            vp9,
            "OK",
            note="24 frames of 160x120 VP9 with alpha (yuva420p, alpha ramp) in WebM; stream tag "
            "alpha_mode=1, alpha in BlockAdditional side data. FFmpeg's native vp9 decoder ignores "
            "it and yields yuv420p; all 24 decode.",
        ),
        Case("mpeg4_avi", mpeg4, "OK", note="24 frames of 160x120 MPEG-4 Part 2 in AVI; all decode."),
    ]
