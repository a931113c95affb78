"""Generated stand-ins for symbol banks and clips that show them (tests and
``benchmarks/bench_symbols.py``). framescan ships no extremist imagery: the symbols are drawn
emblems (shapes, stripes, letters, seeded) and ``skimage.data.logo()``.

``write_symbol_clip`` places a symbol into a moving skimage scene (a photograph panned and
zoomed over time) as a flag on a wall or a print on a shirt would be: scaled to a share of the
frame width, rotated, perspective-warped, partly covered, colour-shifted, then encoded with
H.264 at an upload-like bitrate (``framescan.synth._encode_rgb``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .synth import _encode_rgb, _resize, load_image

#: skimage.data photographs the symbols are placed into.
SCENES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "cat")


def logo() -> np.ndarray:
    """``skimage.data.logo()`` as RGB on white."""
    from skimage import data

    rgba = data.logo().astype(np.float32)
    a = rgba[..., 3:4] / 255.0
    return (rgba[..., :3] * a + 255.0 * (1 - a)).astype(np.uint8)


def emblem(seed: int, size: int = 320) -> np.ndarray:
    """A generated emblem (RGB): a field with stripes, a ring or polygon, a star and letters,
    all drawn from ``seed``."""
    import cv2

    rng = np.random.default_rng(seed)
    h = int(size * rng.uniform(0.6, 1.0))
    w = size
    colours = rng.integers(0, 256, size=(6, 3))
    img = np.empty((h, w, 3), np.uint8)
    img[:] = colours[0]
    n = int(rng.integers(2, 5))
    horizontal = rng.random() < 0.5
    for i in range(n):  # stripes
        if i % 2:
            if horizontal:
                img[i * h // n : (i + 1) * h // n] = colours[1]
            else:
                img[:, i * w // n : (i + 1) * w // n] = colours[1]
    cx, cy = int(w * rng.uniform(0.35, 0.65)), int(h * rng.uniform(0.35, 0.65))
    r = int(min(w, h) * rng.uniform(0.2, 0.35))
    if rng.random() < 0.5:
        cv2.circle(img, (cx, cy), r, tuple(int(c) for c in colours[2]), -1)
        cv2.circle(img, (cx, cy), r, tuple(int(c) for c in colours[3]), max(2, r // 8))
    else:
        k = int(rng.integers(3, 8))
        a0 = rng.uniform(0, 2 * math.pi)
        pts = [
            (cx + r * math.cos(a0 + 2 * math.pi * j / k), cy + r * math.sin(a0 + 2 * math.pi * j / k)) for j in range(k)
        ]
        cv2.fillPoly(img, [np.array(pts, np.int32)], tuple(int(c) for c in colours[2]))
    # a star
    k = 5
    pts = []
    for j in range(2 * k):
        rr = r * (0.7 if j % 2 == 0 else 0.3)
        a = -math.pi / 2 + math.pi * j / k + rng.uniform(-0.1, 0.1)
        pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    cv2.fillPoly(img, [np.array(pts, np.int32)], tuple(int(c) for c in colours[4]))
    # letters along the top and bottom
    font = cv2.FONT_HERSHEY_DUPLEX
    for yy in (0.18, 0.92):
        text = "".join(chr(65 + int(c)) for c in rng.integers(0, 26, size=int(rng.integers(3, 6))))
        scale = w / 260.0
        (tw, _th), _ = cv2.getTextSize(text, font, scale, 2)
        org = (int((w - tw) / 2), int(h * yy))
        cv2.putText(img, text, org, font, scale, tuple(int(c) for c in colours[5]), max(1, int(2 * scale)), cv2.LINE_AA)
    cv2.rectangle(img, (0, 0), (w - 1, h - 1), tuple(int(c) for c in colours[3]), max(2, w // 80))
    return img


def stand_in_symbols(n: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """``n`` reference images: ``skimage.data.logo()`` first, then emblems."""
    out = [("logo", logo())]
    for i in range(1, n):
        out.append((f"emblem-{seed}-{i}", emblem(seed * 1000 + i)))
    return out[:n]


@dataclass(frozen=True)
class Placement:
    """How a symbol appears: ``width`` (share of the frame width), ``angle`` (degrees),
    ``tilt`` (0-0.5: how much the far side shrinks, perspective), ``occlusion`` (share of the
    symbol covered, 0-0.3, from one side), ``gain`` / ``offset`` (per RGB channel colour shift)."""

    width: float
    angle: float = 0.0
    tilt: float = 0.0
    occlusion: float = 0.0
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    side: int = 0  # which side the occluder comes from (0-3)

    @classmethod
    def random(cls, rng: np.random.Generator, width: tuple[float, float] = (0.1, 0.6)) -> Placement:
        return cls(
            width=float(rng.uniform(*width)),
            angle=float(rng.uniform(-30, 30)),
            tilt=float(rng.uniform(0.0, 0.35)),
            occlusion=float(rng.uniform(0.0, 0.3)),
            gain=tuple(float(g) for g in rng.uniform(0.75, 1.2, size=3)),  # type: ignore[arg-type]
            offset=tuple(float(o) for o in rng.uniform(-25, 25, size=3)),  # type: ignore[arg-type]
            side=int(rng.integers(0, 4)),
        )


def symbol_quad(placement: Placement, sym_w: int, sym_h: int, width: int, height: int, t: float) -> np.ndarray:
    """The symbol's corners in the frame at time ``t`` (clockwise from its top left), drifting."""
    w = placement.width * width
    h = w * sym_h / sym_w
    tilt = placement.tilt
    # perspective: the right side shorter by ``tilt``
    local = np.array(
        [[-w / 2, -h / 2], [w / 2, -h / 2 * (1 - tilt)], [w / 2, h / 2 * (1 - tilt)], [-w / 2, h / 2]], np.float64
    )
    a = math.radians(placement.angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    local = local @ rot.T
    half = np.abs(local).max(axis=0)
    cx = half[0] + (width - 2 * half[0]) * (0.5 + 0.3 * math.sin(0.7 * t))
    cy = half[1] + (height - 2 * half[1]) * (0.5 + 0.3 * math.cos(0.5 * t))
    return (local + np.array([cx, cy])).astype(np.float32)


def _scene(name: str, width: int, height: int, t: float, cache: dict) -> np.ndarray:
    """A skimage photograph covering the frame, slowly panned and zoomed."""
    import cv2

    key = ("scene", name, width, height)
    if key not in cache:
        img = load_image(name)
        r = 1.3 * max(width / img.shape[1], height / img.shape[0])
        cache[key] = _resize(img, round(img.shape[1] * r), round(img.shape[0] * r))
    big = cache[key]
    zoom = 1.0 + 0.1 * math.sin(0.4 * t)
    bw, bh = big.shape[1], big.shape[0]
    cw, ch = min(bw, width * 1.15 / zoom), min(bh, height * 1.15 / zoom)
    x0 = (bw - cw) * (0.5 + 0.5 * math.sin(0.3 * t))
    y0 = (bh - ch) * (0.5 + 0.5 * math.cos(0.23 * t))
    m = np.array([[width / cw, 0, -x0 * width / cw], [0, height / ch, -y0 * height / ch]], np.float32)
    return cv2.warpAffine(big, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def render_symbol_frame(
    scene: str, symbol: np.ndarray | None, placement: Placement | None, width: int, height: int, t: float, cache: dict
) -> np.ndarray:
    """One RGB frame: the scene, with ``symbol`` placed when given."""
    import cv2

    frame = _scene(scene, width, height, t, cache)
    if symbol is None or placement is None:
        return frame
    sh, sw = symbol.shape[:2]
    quad = symbol_quad(placement, sw, sh, width, height, t)
    src = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], np.float32)
    H = cv2.getPerspectiveTransform(src, quad)
    sym = np.clip(symbol.astype(np.float32) * placement.gain + placement.offset, 0, 255).astype(np.uint8)
    warped = cv2.warpPerspective(sym, H, (width, height), flags=cv2.INTER_LINEAR)
    mask = np.zeros((sh, sw), np.uint8)
    occ = placement.occlusion
    keep = mask.copy()
    keep[:] = 255
    if occ > 0:  # the covered part of the symbol shows a hand / head: a flat patch of scene colour
        if placement.side == 0:
            keep[:, : int(sw * occ)] = 0
        elif placement.side == 1:
            keep[:, sw - int(sw * occ) :] = 0
        elif placement.side == 2:
            keep[: int(sh * occ)] = 0
        else:
            keep[sh - int(sh * occ) :] = 0
    wmask = cv2.warpPerspective(keep, H, (width, height), flags=cv2.INTER_LINEAR)[..., None].astype(np.float32) / 255
    return (frame * (1 - wmask) + warped * wmask).astype(np.uint8)


def write_symbol_clip(
    path: str | Path,
    symbol: np.ndarray | None,
    placement: Placement | None,
    *,
    shown: tuple[float, float] = (1.0, 2.5),
    scene: str = "coffee",
    width: int = 854,
    height: int = 480,
    seconds: float = 4.0,
    fps: int = 30,
    bit_rate: int = 1_000_000,
    preset: str = "veryfast",
) -> Path:
    """Encode a clip of ``scene`` with ``symbol`` shown during ``shown`` (seconds) and return its path."""
    import av

    path = Path(path)
    cache: dict = {}
    times = [i / fps for i in range(int(round(seconds * fps)))]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        hd = min(width, height) >= 720
        stream.codec_context.colorspace = 1 if hd else 6
        stream.codec_context.color_range = 1
        stream.codec_context.bit_rate = bit_rate
        stream.codec_context.gop_size = 2 * fps
        stream.options = {"preset": preset}

        def frames():  # type: ignore[no-untyped-def]
            for i, t in enumerate(times):
                on = shown[0] <= t < shown[1]
                yield i, render_symbol_frame(scene, symbol if on else None, placement, width, height, t, cache)

        _encode_rgb(out, stream, frames(), "yuv420p", "itu709" if hd else "itu601")
    return path
