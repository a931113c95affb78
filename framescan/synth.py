"""Generate real, encoded sample clips (for ``framescan sample``, tests and benchmarks).

A clip is a moving textured background with photographs placed on it during given time
ranges. The photographs come from ``skimage.data`` (installed with the ``dev`` extra):
``colorwheel`` is detected by NudeNet 320n as ``BUTTOCKS_EXPOSED`` (a known false
positive, which makes it a safe stand-in for flagged content), while ``astronaut``,
``camera``, ``coffee``, ``chelsea`` and ``rocket`` are ordinary content. Frames are
converted to YUV with the matrix the stream is tagged with (BT.709 for HD, BT.601 for SD).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

#: skimage.data images shown as ordinary content, in turn.
ORDINARY_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "camera")
FLAGGED_IMAGE = "colorwheel"
#: The flagged image's size as a share of the frame's shorter side. At 1.0 NudeNet 320n scores
#: it at least 0.66 on portrait clips (0.61 landscape) in every frame, typically 0.69-0.71, clear
#: of the default block threshold (0.6); at 0.8 it scored 0.52-0.69 and sat on that threshold.
FLAGGED_SCALE = 1.0
_HD_MIN_SIDE = 720


@dataclass(frozen=True)
class Shot:
    """Show ``image`` (a skimage.data name or an RGB array) from ``start`` to ``end`` seconds,
    scaled to ``scale`` of the frame's shorter side, drifting slowly."""

    start: float
    end: float
    image: str | np.ndarray
    scale: float = 0.8


def load_image(name: str | np.ndarray) -> np.ndarray:
    """An RGB uint8 image from skimage.data by name (or the array itself)."""
    if isinstance(name, np.ndarray):
        img = name
    else:
        try:
            from skimage import data
        except ImportError as ex:  # pragma: no cover - dev extra missing
            raise RuntimeError("sample clips need scikit-image: pip install 'framescan[dev]'") from ex
        img = getattr(data, name)()
        if isinstance(img, tuple):  # stereo pairs: the left view
            img = img[0]
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).astype(np.uint8) if img.max() <= 1.0 else img.astype(np.uint8)
    return np.ascontiguousarray(img)


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_LINEAR)


def default_shots(seconds: float, flagged: tuple[float, float] | None) -> list[Shot]:
    """Ordinary photographs in turn over the clip, and the flagged image during ``flagged``."""
    shots: list[Shot] = []
    t, i = 0.0, 0
    while t < seconds:
        end = min(seconds, t + 3.0)
        shots.append(Shot(t, end, ORDINARY_IMAGES[i % len(ORDINARY_IMAGES)], 0.6))
        t, i = end, i + 1
    if flagged is not None:
        shots.append(Shot(flagged[0], flagged[1], FLAGGED_IMAGE, FLAGGED_SCALE))
    return shots


def frame_times(seconds: float, fps: int) -> list[float]:
    """The presentation times (s) of a constant-frame-rate clip of ``seconds`` at ``fps``."""
    return [i / fps for i in range(int(round(seconds * fps)))]


def check_flagged(flagged: tuple[float, float], seconds: float, times: Sequence[float]) -> None:
    """Raise ``ValueError`` (saying why) unless the flagged image would be shown in the clip:
    ``0 <= start < end <= seconds`` and at least one of the frame ``times`` in ``[start, end)``."""
    start, end = flagged
    if not 0 <= start < end:
        raise ValueError(f"START must be at least 0 and less than END, got {start:g} {end:g}")
    if end > seconds:
        raise ValueError(f"the range ends after the {seconds:g} s clip: END must be at most {seconds:g}")
    if not any(start <= t < end for t in times):
        raise ValueError(f"no frame of the clip falls in {start:g}-{end:g} s: make the range longer")


def render_frame(width: int, height: int, t: float, shots: Sequence[Shot], cache: dict) -> np.ndarray:
    """One RGB frame at time ``t``: moving background, then the last shot active at ``t``."""
    x = np.arange(width, dtype=np.float32)
    y = np.arange(height, dtype=np.float32)[:, None]
    phase = t * 2.0
    frame = np.empty((height, width, 3), np.uint8)
    # separable sinusoids: cheap to render, and a background that moves every frame
    frame[..., 0] = (96 + 60 * np.sin(x / 37.0 + phase)).astype(np.uint8)
    frame[..., 1] = (110 + 50 * np.sin(y / 53.0 - phase * 0.7)).astype(np.uint8)
    frame[..., 2] = (120 + 20 * np.sin(x / 71.0 + phase * 1.3) + 20 * np.sin(y / 71.0 - phase)).astype(np.uint8)
    active = [s for s in shots if s.start <= t < s.end]
    if active:
        shot = active[-1]
        key = ("img", id(shot), width, height)
        if key not in cache:
            img = load_image(shot.image)
            side = shot.scale * min(width, height)
            r = side / max(img.shape[:2])
            cache[key] = _resize(img, max(1, round(img.shape[1] * r)), max(1, round(img.shape[0] * r)))
        img = cache[key]
        ih, iw = img.shape[:2]
        # drift across 10% of the free space, so the picture moves with the background
        fx = 0.5 + 0.1 * math.sin(t * 1.5)
        fy = 0.5 + 0.1 * math.cos(t * 1.1)
        x0 = int((width - iw) * fx) if width > iw else 0
        y0 = int((height - ih) * fy) if height > ih else 0
        frame[y0 : y0 + ih, x0 : x0 + iw] = img[: height - y0, : width - x0]
    return frame


def write_clip(
    path: str | Path,
    *,
    width: int = 720,
    height: int = 1280,
    seconds: float = 15.0,
    fps: int = 30,
    codec: str = "libx264",
    shots: Sequence[Shot] | None = None,
    flagged: tuple[float, float] | None = None,
    rotation: int = 0,
    hflip: bool = False,
    pix_fmt: str = "yuv420p",
    gop: int = 60,
    bit_rate: int | None = None,
    container_format: str | None = None,
    timestamps: Sequence[float] | None = None,
    preset: str = "ultrafast",
    encoder_options: dict[str, str] | None = None,
) -> Path:
    """Encode a clip and return its path.

    ``flagged=(6, 8)`` shows the flagged image from 6 s to 8 s; ``rotation`` (degrees
    counter-clockwise) and ``hflip`` (a mirror after the rotation) write a display matrix and store
    the frames transformed the other way, so the clip *displays* upright. ``timestamps`` (seconds) makes a variable-frame-rate clip.
    ``preset`` is x264's / x265's: ``ultrafast`` (the default: quick to write; CAVLC, no
    deblocking, no B-frames, no scene-cut keyframes, so also quick to decode) or e.g. ``medium``
    (the encoders' own default: CABAC, deblocking, B-frames, keyframes at cuts) for clips
    encoded the way uploads usually are. ``encoder_options`` are passed to the encoder on top of
    these defaults (e.g. x264's ``{"bf": "2"}`` for B-frames with ``ultrafast``). A ``flagged`` range that shows the image in no frame of the
    clip raises ``ValueError`` (``check_flagged``).
    """
    import av

    path = Path(path)
    # Stored size: a 90-degree display rotation stores the frame transposed.
    sw, sh = (height, width) if rotation in (90, -90, 270) else (width, height)
    hd = min(width, height) >= _HD_MIN_SIDE
    space = "itu709" if hd else "itu601"
    times = list(timestamps) if timestamps is not None else frame_times(seconds, fps)
    if shots is None and flagged is not None:
        check_flagged(flagged, seconds, times)
    shots = list(shots) if shots is not None else default_shots(seconds, flagged)
    cache: dict = {}
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = sw, sh
        stream.pix_fmt = pix_fmt
        cc = stream.codec_context
        cc.colorspace = 1 if hd else 6  # AVCOL_SPC_BT709 / SMPTE170M
        cc.color_range = 2 if pix_fmt.startswith("yuvj") else 1
        if gop:
            cc.gop_size = gop
        if bit_rate:
            cc.bit_rate = bit_rate
        if codec == "libx264":
            stream.options = {"preset": preset, "crf": "23"}
        elif codec == "libx265":
            stream.options = {"preset": preset, "x265-params": "log-level=error"}
        elif codec == "libvpx-vp9":
            stream.options = {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0"}
        if encoder_options:
            stream.options = {**stream.options, **encoder_options}
        if rotation or hflip:
            stream.set_display_rotation(rotation, hflip=hflip)
        tb = Fraction(1, 90000) if timestamps is not None else Fraction(1, fps)
        stream.time_base = tb
        stream.codec_context.time_base = tb
        k = {0: 0, 90: -1, 180: 2, -90: 1, 270: 1}[rotation]

        def frames() -> Iterator[tuple[int, np.ndarray]]:
            for i, t in enumerate(times):
                rgb = render_frame(width, height, t, shots, cache)
                if hflip:  # displayed = mirror(rotate(stored)): store rotate^-1(mirror(displayed))
                    rgb = rgb[:, ::-1]
                yield (int(round(t / tb)) if timestamps is not None else i), np.rot90(rgb, k) if k else rgb

        _encode_rgb(out, stream, frames(), pix_fmt, space, tb)
    return path


def _encode_rgb(
    out: Any, stream: Any, frames: Iterable[tuple[int, np.ndarray]], pix_fmt: str, space: str, time_base: Any = None
) -> None:
    """Encode RGB frames ``(pts, rgb)`` into ``stream`` (converted to ``pix_fmt`` with the
    ``space`` matrix), mux the packets and flush the encoder."""
    import av

    for pts, rgb in frames:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format=pix_fmt, dst_colorspace=space)
        frame.pts = pts
        if time_base is not None:
            frame.time_base = time_base
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


# --------------------------------------------------------------------------- caption clips

#: A caption: ``(start_s, end_s, text)``, shown for ``start_s <= t < end_s``.
Caption = tuple[float, float, str]


def _caption_background(width: int, height: int, seed: int = 7) -> np.ndarray:
    """A colourful, smoothly noisy RGB texture twice the frame size (panned over during the clip)."""
    import cv2

    rng = np.random.default_rng(seed)
    tw, th = 2 * width, 2 * height
    small = rng.integers(0, 256, (th // 24 + 1, tw // 24 + 1, 3), dtype=np.uint8)
    tex = cv2.resize(small, (tw, th), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    tex = 128 + (tex - 128) * 6 // 10
    tex += rng.integers(-12, 13, tex.shape, dtype=np.int16)  # fine grain, like camera noise
    return np.clip(tex, 0, 255).astype(np.uint8)


def _caption_layout(text: str, width: int, font: int, max_scale: float) -> tuple[list[str], float, int]:
    """Wrap ``text`` into lines that fit 90% of ``width`` at the largest scale <= ``max_scale`` (>= 1.0)."""
    import cv2

    def fits(lines: list[str], scale: float) -> bool:
        thick = max(2, round(scale * 2))
        return all(cv2.getTextSize(s, font, scale, thick)[0][0] <= 0.9 * width for s in lines)

    words = text.split()
    for n_lines in range(1, max(1, len(words)) + 1):
        per = -(-len(words) // n_lines)
        lines = [" ".join(words[i : i + per]) for i in range(0, len(words), per)] or [""]
        scale = max_scale
        while scale > 1.0 and not fits(lines, scale):
            scale -= 0.1
        if fits(lines, scale) or n_lines == len(words):
            return lines, scale, max(2, round(scale * 2))
    raise AssertionError("unreachable")  # pragma: no cover


def draw_caption(rgb: np.ndarray, text: str) -> np.ndarray:
    """Draw ``text`` in place: large white letters with a thick black outline, centred in the bottom third.

    The outline is the dilated text mask (OpenCV 5's ``putText`` caps stroke weight, so a thicker black
    pass underneath does not make an outline there).
    """
    import cv2

    h, w = rgb.shape[:2]
    font = cv2.FONT_HERSHEY_DUPLEX
    lines, scale, thick = _caption_layout(text, w, font, max_scale=w / 330.0)
    (_, line_h), base = cv2.getTextSize("Ag", font, scale, thick)
    step = int((line_h + base) * 1.35)
    y = int(h * 0.70) - step * (len(lines) - 1) // 2
    mask = np.zeros((h, w), np.uint8)
    for line in lines:
        tw = cv2.getTextSize(line, font, scale, thick)[0][0]
        cv2.putText(mask, line, ((w - tw) // 2, y), font, scale, 255, thick, cv2.LINE_AA)
        y += step
    r = max(3, round(scale * 2.5))
    stroke = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    rows = np.flatnonzero(stroke.any(1))
    if len(rows) == 0:
        return rgb
    band = slice(rows[0], rows[-1] + 1)  # blend only the rows the caption covers
    for layer, colour in ((stroke, 0.0), (mask, 255.0)):
        a = layer[band, :, None].astype(np.float32) / 255.0
        rgb[band] = (rgb[band] * (1.0 - a) + colour * a + 0.5).astype(np.uint8)
    return rgb


def write_caption_clip(
    path: str | Path,
    captions: Sequence[Caption],
    size: tuple[int, int] = (720, 1280),
    seconds: float = 6.0,
    fps: int = 30,
    codec: str = "libx264",
) -> Path:
    """Encode a clip of a panning, noisy colourful background with burnt-in captions and return its path.

    ``size`` is (width, height). Each caption ``(start_s, end_s, text)`` is drawn with ``draw_caption``
    (white, black outline, bottom third) while ``start_s <= t < end_s``; text is wrapped to fit.
    """
    import av

    path = Path(path)
    width, height = size
    tex = _caption_background(width, height)
    hd = min(width, height) >= _HD_MIN_SIDE
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.colorspace = 1 if hd else 6  # AVCOL_SPC_BT709 / SMPTE170M
        stream.codec_context.color_range = 1
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "23"}

        def frames() -> Iterator[tuple[int, np.ndarray]]:
            for i in range(int(round(seconds * fps))):
                t = i / fps
                # pan slowly (at most ~45 px/s across, ~65 px/s down) over the double-size texture
                x0 = int((width / 2) * (1 + math.sin(t * 0.125)))
                y0 = int((height / 2) * (1 + math.sin(t * 0.1 + 1.0)))
                rgb = np.ascontiguousarray(tex[y0 : y0 + height, x0 : x0 + width])
                active = [c for c in captions if c[0] <= t < c[1]]
                if active:
                    draw_caption(rgb, active[-1][2])
                yield i, rgb

        _encode_rgb(out, stream, frames(), "yuv420p", "itu709" if hd else "itu601")
    return path
