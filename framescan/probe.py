"""Open a source (path, bytes or binary file object) and describe its video stream; ``sniff``
names the container a file's first bytes look like.

Only local input is accepted: FFmpeg is told which demuxers and protocols it may use, so
a playlist (HLS), a concat script or anything that names other files or URLs is refused
before it is followed.
"""

from __future__ import annotations

import io
import logging
import math
import os
import struct
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any, Union

from .errors import EmptyInput, FileNotFound, NoVideoStream, UnsupportedFormat

log = logging.getLogger(__name__)

SourceLike = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes]]

#: Demuxers framescan lets FFmpeg use (short names; FFmpeg matches any name of a demuxer).
#: Deliberately absent: hls, dash, concat, image2 (file patterns), tee, sdp, rtsp, and
#: anything else that opens further files or network addresses named inside the input.
ALLOWED_DEMUXERS = (
    "mov",
    "mp4",
    "matroska",
    "webm",
    "avi",
    "flv",
    "mpegts",
    "mpeg",
    "h264",
    "hevc",
    "mjpeg",
    "gif",
    "ivf",
    "asf",
    "ogg",
    "nut",
    "m4v",
    "obu",
    "yuv4mpegpipe",
    "jpeg_pipe",
    "png_pipe",
    "webp_pipe",
    # audio containers are opened so they can be reported as having no video
    "mp3",
    "aac",
    "wav",
    "flac",
)
#: Protocols FFmpeg may use: the input file only (never network or pipes to other files).
ALLOWED_PROTOCOLS = ("file",)

_OPEN_OPTIONS = {
    "format_whitelist": ",".join(ALLOWED_DEMUXERS),
    "protocol_whitelist": ",".join(ALLOWED_PROTOCOLS),
}

#: Bytes of a file's head that ``sniff`` needs (MPEG-TS: three 188-byte packets).
SNIFF_BYTES = 512
#: Box types an ISO BMFF / QuickTime file may start with (as FFmpeg's ``mov`` probe knows them).
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid")
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_MAGIC = {
    b"FLV\x01": "flv",
    b"DKIF": "ivf",
    b"OggS": "ogg",
    b"nut/multimedia container\x00": "nut",
    b"YUV4MPEG2 ": "y4m",
    b"ID3": "id3",
    b"fLaC": "flac",
    _ASF_GUID: "asf",
}
#: The kinds ``sniff`` names that hold moving pictures ("jpeg": a motion-JPEG stream starts as a
#: JPEG image does). The others are audio containers and still images: the scanner opens them
#: (to report no video, or one frame), an archive walk skips them.
VIDEO_KINDS = frozenset((
    "iso-bmff", "matroska", "avi", "asf", "flv", "ivf", "ogg", "nut", "y4m", "gif", "jpeg",
    "mpegts", "m2ts", "annexb", "obu",
))  # fmt: skip


def sniff(head: bytes) -> str | None:
    """The kind of container the first bytes of a file (``SNIFF_BYTES`` of them) look like, or None.

    Covers the demuxers of ``ALLOWED_DEMUXERS``: ISO BMFF / QuickTime, EBML (Matroska/WebM), RIFF
    AVI/WAVE/WebP, GIF, MPEG-TS (sync bytes every 188 or 192 bytes), Annex-B / MPEG start codes
    (raw H.264/HEVC, MPEG-PS, MPEG-4 ES), JPEG, PNG, FLV, IVF, ASF, Ogg, NUT, Y4M, AV1 OBU, and the
    audio containers (ID3/MP3, ADTS, FLAC) that are scanned only to be reported as having no
    video. Text (playlists, scripts, HTML) is None. ``kind in VIDEO_KINDS``: a video.
    """
    h = bytes(head)
    if len(h) >= 8 and h[4:8] in _ISO_BOXES:
        size = int.from_bytes(h[:4], "big")
        if size in (0, 1) or size >= 8:
            return "iso-bmff"
    if h.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if h.startswith(b"RIFF") and len(h) >= 12:
        return {b"AVI ": "avi", b"AVIX": "avi", b"WAVE": "wav", b"WEBP": "webp"}.get(h[8:12])
    if h[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if len(h) > 188 and h[0] == 0x47 and h[188] == 0x47 and (len(h) <= 376 or h[376] == 0x47):
        return "mpegts"
    if len(h) > 196 and h[4] == 0x47 and h[196] == 0x47:
        return "m2ts"
    if h.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if h.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    for magic, kind in _MAGIC.items():
        if h.startswith(magic):
            return kind
    zeros = len(h) - len(h.lstrip(b"\x00"))
    if 2 <= zeros <= 32 and len(h) > zeros and h[zeros] == 0x01:
        return "annexb"
    if len(h) >= 2 and h[0] == 0x12 and h[1] == 0x00:
        return "obu"  # AV1 low-overhead bitstream: starts with a temporal delimiter OBU
    if len(h) >= 2 and h[0] == 0xFF and (h[1] & 0xE0) == 0xE0:
        return "mpeg-audio"  # MP3 frame or ADTS AAC sync word
    return None


@dataclass(frozen=True)
class Source:
    """A clip to scan: what to hand to FFmpeg and how to name it in reports."""

    name: str
    target: Any  # a filesystem path (str) or a seekable binary file object
    size_bytes: int | None

    def reopen(self) -> Any:
        """A fresh handle for FFmpeg (file objects are rewound)."""
        if isinstance(self.target, str):
            return self.target
        self.target.seek(0)
        return self.target


def as_source(source: SourceLike, name: str | None = None) -> Source:
    """Normalise a path, ``bytes`` or a binary file object into a ``Source``.

    Raises ``FileNotFound`` for a missing path and ``EmptyInput`` for 0 bytes.
    """
    if isinstance(source, Source):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise EmptyInput("the input is empty: 0 bytes were given")
        return Source(name or "<bytes>", io.BytesIO(data), len(data))
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        p = Path(path)
        if not p.exists():
            raise FileNotFound(f"{path}: no such file", path=path)
        if p.is_dir():
            raise UnsupportedFormat(
                f"{path}: is a directory, not a regular file; to scan the clips in a folder use "
                f"'framescan archive {path} --db results.sqlite'",
                path=path,
            )
        if not p.is_file():
            raise UnsupportedFormat(f"{path}: not a regular file", path=path)
        size = p.stat().st_size
        if size == 0:
            raise EmptyInput(f"{path}: the file is empty (0 bytes)", path=path)
        return Source(name or path, path, size)
    if hasattr(source, "read"):
        fobj: Any = source
        if not (hasattr(fobj, "seekable") and fobj.seekable()):
            fobj = io.BytesIO(fobj.read())  # FFmpeg needs to seek (moov at the end)
        start = fobj.tell()
        end = fobj.seek(0, io.SEEK_END)
        fobj.seek(start)
        size = end - start
        if start:
            fobj = io.BytesIO(fobj.read())
        if size == 0:
            raise EmptyInput("the input is empty: the file object has 0 bytes")
        return Source(name or getattr(source, "name", None) or "<stream>", fobj, size)
    raise TypeError(f"source must be a path, bytes or a binary file object, not {type(source).__name__}")


def open_container(source: Source) -> Any:
    """Open the source with FFmpeg under framescan's demuxer/protocol allow-lists."""
    import av

    try:
        return av.open(source.reopen(), mode="r", options=dict(_OPEN_OPTIONS))
    except av.error.FFmpegError as ex:
        raise UnsupportedFormat(
            f"{source.name}: not a video file framescan can read ({ex.strerror or ex})", source=source.name
        ) from ex
    except (OSError, ValueError) as ex:
        raise UnsupportedFormat(f"{source.name}: cannot be opened as a video ({ex})", source=source.name) from ex


@dataclass(frozen=True)
class ClipInfo:
    """What the container header claims about the clip (``*_claimed``) and the stream's format.

    ``duration`` and ``frame_count`` are as claimed by the header and may be wrong or absent
    (``None``); the report's ``coverage`` says what was actually decoded. ``rotation`` is the
    display-matrix rotation in degrees counter-clockwise (from the first decoded frame).
    """

    container: str
    codec: str
    pixel_format: str
    width: int
    height: int
    rotation: int
    fps: float | None
    duration: float | None
    frame_count: int | None
    has_audio: bool
    stream_count: int
    stream_index: int
    bit_rate: int | None
    size_bytes: int | None
    color_matrix: str
    color_range: str
    mirror: bool = False  # displayed flipped left-right after the rotation (display matrix)

    @property
    def display_size(self) -> tuple[int, int]:
        if self.rotation in (90, -90, 270):
            return self.height, self.width
        return self.width, self.height

    def with_rotation(self, rotation: int, mirror: bool = False) -> ClipInfo:
        return replace(self, rotation=rotation, mirror=mirror)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["display_width"], d["display_height"] = self.display_size
        return d


def select_video_stream(container: Any, name: str) -> Any:
    """The clip's main video stream: cover art / attached pictures are skipped, and among the
    rest the one with the most content (frames, else duration) wins, so a one-frame still track
    placed first is not mistaken for the video."""
    import av

    candidates = list(container.streams.video)
    if not candidates:
        kinds = sorted({s.type for s in container.streams})
        raise NoVideoStream(f"{name}: no video stream (streams: {', '.join(kinds) or 'none'})", streams=kinds)
    real = [s for s in candidates if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not real:
        raise NoVideoStream(f"{name}: the only video stream is a cover picture, not a video")
    decodable = [s for s in real if s.codec_context is not None]
    if not decodable:
        raise UnsupportedFormat(f"{name}: the video codec is unknown or has no decoder in this build of FFmpeg")

    def content(s: Any) -> tuple[float, float]:
        frames = float(s.frames or 0)
        seconds = float(s.duration * s.time_base) if (s.duration and s.time_base) else 0.0
        return (frames, seconds)

    return max(decodable, key=lambda s: (content(s), -s.index))


def _float_or_none(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return v if v > 0 else None


def clip_info(container: Any, stream: Any, source: Source) -> ClipInfo:
    """Build ``ClipInfo`` from an open container and its selected video stream (no decoding)."""
    cc = stream.codec_context
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = _float_or_none(stream.duration * stream.time_base)
    if duration is None and container.duration is not None:
        duration = _float_or_none(container.duration / 1_000_000)
    fps = _float_or_none(stream.average_rate) or _float_or_none(stream.guessed_rate)
    frames = int(stream.frames) if stream.frames else None
    matrix, full = color_of_stream(cc)
    return ClipInfo(
        container=container.format.name,
        codec=cc.name,
        pixel_format=cc.format.name if cc.format is not None else "unknown",
        width=int(cc.width),
        height=int(cc.height),
        rotation=0,
        fps=fps,
        duration=duration,
        frame_count=frames,
        has_audio=any(s.type == "audio" for s in container.streams),
        stream_count=len(container.streams),
        stream_index=int(stream.index),
        bit_rate=int(container.bit_rate) if container.bit_rate else None,
        size_bytes=source.size_bytes,
        color_matrix=matrix,
        color_range="full" if full else "limited",
    )


# FFmpeg AVColorSpace values that mean BT.709 (1) vs BT.601 (5 bt470bg, 6 smpte170m).
_BT709_SPACES = {1}
_BT601_SPACES = {5, 6}
# FFmpeg AVColorRange: 2 = JPEG (full).
_FULL_RANGE = 2
# Unspecified matrix: HD and larger is BT.709, SD is BT.601 (what players assume).
_HD_MIN_HEIGHT = 720


def color_of_stream(cc: Any, pix_fmt: str | None = None) -> tuple[str, bool]:
    """(matrix, full_range) from a codec context or frame's colour tags, with the usual fallbacks."""
    space = int(getattr(cc, "colorspace", 2) or 2)
    rng = int(getattr(cc, "color_range", 0) or 0)
    fmt = pix_fmt or (cc.format.name if getattr(cc, "format", None) is not None else "")
    if space in _BT709_SPACES:
        matrix = "bt709"
    elif space in _BT601_SPACES:
        matrix = "bt601"
    else:
        matrix = "bt709" if min(int(cc.width or 0), int(cc.height or 0)) >= _HD_MIN_HEIGHT else "bt601"
    full = rng == _FULL_RANGE or fmt.startswith("yuvj")
    return matrix, full


def probe(source: SourceLike) -> ClipInfo:
    """Describe a clip from its header (and its first frame, for the rotation)."""
    src = as_source(source)
    container = open_container(src)
    try:
        stream = select_video_stream(container, src.name)
        info = clip_info(container, stream, src)
        try:
            for frame in container.decode(stream):
                rotation, mirror = display_transform(frame)
                return replace(info, rotation=rotation, mirror=mirror)
        except Exception as ex:
            log.debug("probe could not decode a first frame of %s: %s", src.name, ex)
        return info
    finally:
        container.close()


def display_transform(frame: Any) -> tuple[int, bool]:
    """(rotation, mirror) of a decoded frame's display matrix: the frame is displayed rotated
    ``rotation`` degrees counter-clockwise and then, if ``mirror``, flipped left-right.

    A matrix with a negative determinant is a mirror, which a rotation alone cannot express
    (a vertical flip is a horizontal one plus 180 degrees). FFmpeg's matrices are applied to row
    vectors, so negating the first column removes a mirror applied after the rotation.
    """
    for sd in frame.side_data:
        if "DISPLAYMATRIX" not in str(getattr(sd, "type", "")):
            continue
        m = struct.unpack("<9i", bytes(sd)[:36])
        a, b, c, d = m[0], m[1], m[3], m[4]
        mirror = a * d - b * c < 0
        if mirror:
            a, c = -a, -c
        if a == 0 and b == 0:
            return 0, mirror
        return normalise_rotation(-math.degrees(math.atan2(b, a))), mirror
    return 0, False


def normalise_rotation(degrees: float | int | None) -> int:
    """Round a display-matrix angle to one of 0, 90, 180, -90."""
    if not degrees:
        return 0
    d = float(degrees)
    # FFmpeg gives NaN for a degenerate (all-zero) matrix, which PyAV turns into INT_MIN
    if not math.isfinite(d) or abs(d) > 360:
        return 0
    r = round(d / 90.0) * 90 % 360
    return {0: 0, 90: 90, 180: 180, 270: -90}[r]
