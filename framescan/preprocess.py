"""Fused preprocessing: YUV 4:2:0 planes -> model input tensor, in one Numba pass per frame.

For every output pixel the kernel walks back to (at most) four source pixels of the
*upright* frame (the display-matrix rotation is applied by index arithmetic), converts
each from YUV to RGB with the stream's matrix and range, interpolates bilinearly, applies
the model's pad mode and ``(pixel * scale - mean) / std``, and writes the value in the
model's channel order and layout straight into a slot of a preallocated batch tensor.
No full-size RGB frame is ever made.

Resize follows OpenCV's ``INTER_LINEAR`` (half-pixel centres, edge clamp, no
anti-aliasing), which is what NudeNet and most exported detectors were trained with.

Pad modes:

- ``pad_bottom_right``: the frame is placed at the top-left of a canvas with the target's
  aspect ratio, the rest filled with ``pad_value``, and the canvas is resized (NudeNet's
  own preprocessing; padding takes part in the interpolation at the border, as there).
- ``letterbox``: the frame is resized to fit, keeping its aspect ratio, and centred.
- ``stretch``: the frame is resized to the target size, aspect ratio not kept.

``trim_multiple`` (with ``pad_bottom_right``, for models that accept any input height and
width that is a multiple of it): the canvas is cut down to the smallest multiple that holds
the frame's content, so a portrait 9:16 frame feeds a 320x192 tensor instead of 320x320 with
140 columns of padding. Values are those of the full canvas, cropped (same scale, same
geometry); the model sees less padding, which moves its scores a little (validated per model:
``models/build_trim.py``). Ultralytics' own predictor does the same (``LetterBox(auto=True)``).

``preprocess_reference`` is a plain NumPy implementation of the same maths, used by the
tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ._jit import kernel
from .errors import ConfigError
from .frames import Geometry, YuvFrame


class ResizeMode(str, Enum):
    PAD_BOTTOM_RIGHT = "pad_bottom_right"
    LETTERBOX = "letterbox"
    STRETCH = "stretch"


_LAYOUTS = ("NCHW", "NHWC")
_CHANNELS = {"RGB": (0, 1, 2), "BGR": (2, 1, 0)}
# Kr, Kb luma coefficients of the two matrices.
_MATRIX = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}
_ROTATIONS = (0, 90, 180, -90)


@dataclass(frozen=True)
class InputSpec:
    """How a model wants its input (from the model manifest's ``input`` section)."""

    name: str
    width: int
    height: int
    layout: str = "NCHW"
    channels: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resize: ResizeMode = ResizeMode.STRETCH
    pad_value: float = 0.0
    trim_multiple: int = 0  # 0: the full canvas; N: cut it to a multiple of N (see the module doc)

    def __post_init__(self) -> None:
        if self.layout not in _LAYOUTS:
            raise ConfigError(f"input layout {self.layout!r} not supported; use one of {_LAYOUTS}")
        if self.channels not in _CHANNELS:
            raise ConfigError(f"input channels {self.channels!r} not supported; use one of {tuple(_CHANNELS)}")
        if self.width < 1 or self.height < 1:
            raise ConfigError(f"input size must be positive: {self.width}x{self.height}")
        if any(s == 0 for s in self.std):
            raise ConfigError(f"input std must not contain 0: {self.std}")
        object.__setattr__(self, "resize", ResizeMode(self.resize))
        if self.trim_multiple < 0:
            raise ConfigError(f"input trim_multiple must be >= 0: {self.trim_multiple}")
        if self.trim_multiple and self.resize is not ResizeMode.PAD_BOTTOM_RIGHT:
            raise ConfigError(f"input trim_multiple needs resize 'pad_bottom_right', not {self.resize.value!r}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Per-image tensor shape (without the batch axis)."""
        if self.layout == "NCHW":
            return (3, self.height, self.width)
        return (self.height, self.width, 3)

    def empty_batch(self, n: int) -> np.ndarray:
        return np.zeros((n, *self.shape), np.float32)

    def size_for(self, frame_w: int, frame_h: int) -> tuple[int, int]:
        """(width, height) of the tensor for an upright ``frame_w x frame_h`` frame: the model's
        size, or with ``trim_multiple`` the part of the canvas that holds the frame, rounded up."""
        if not self.trim_multiple:
            return self.width, self.height
        p = plan(self, frame_w, frame_h)
        m = self.trim_multiple

        def need(n: int, scale: float, full: int) -> int:
            # destination pixels d whose first tap (d + 0.5) * scale - 0.5 falls before source
            # pixel n: content, or content blended with padding at the border
            touched = math.ceil((n + 0.5) / scale - 0.5 - 1e-9)
            return min(full, max(m, math.ceil(touched / m) * m))

        return need(frame_w, p.scale_x, self.width), need(frame_h, p.scale_y, self.height)

    def shape_for(self, frame_w: int, frame_h: int) -> tuple[int, int, int]:
        """Per-image tensor shape for an upright ``frame_w x frame_h`` frame (see ``size_for``)."""
        w, h = self.size_for(frame_w, frame_h)
        return (3, h, w) if self.layout == "NCHW" else (h, w, 3)


def batch_view(batch: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A C-contiguous ``[N, *shape]`` view on the start of a full-size ``[N, ...]`` batch buffer
    (``shape`` no larger than the buffer's per-image shape): trimmed tensors reuse the buffers."""
    if tuple(batch.shape[1:]) == tuple(shape):
        return batch
    n = batch.shape[0]
    return batch.reshape(-1)[: n * math.prod(shape)].reshape(n, *shape)


@dataclass(frozen=True)
class _Plan:
    """Kernel parameters for one (spec, upright frame size) pair."""

    scale_x: float  # source pixels per destination pixel
    scale_y: float
    off_x: int  # destination pixel where content starts
    off_y: int
    content_w: int  # destination pixels covered by content (the rest is padding)
    content_h: int
    limit_x: int  # source coordinates are clamped to [0, limit - 1]
    limit_y: int

    def geometry(self, frame_w: int, frame_h: int) -> Geometry:
        return Geometry(self.scale_x, self.scale_y, self.off_x, self.off_y, frame_w, frame_h)


def plan(spec: InputSpec, frame_w: int, frame_h: int) -> _Plan:
    """Where the upright ``frame_w x frame_h`` image lands in the model input."""
    tw, th = spec.width, spec.height
    if spec.resize is ResizeMode.PAD_BOTTOM_RIGHT:
        # Smallest canvas with the target's aspect ratio that holds the frame at its top-left.
        if frame_w * th >= frame_h * tw:
            cw, ch = frame_w, max(frame_h, math.ceil(frame_w * th / tw))
        else:
            cw, ch = max(frame_w, math.ceil(frame_h * tw / th)), frame_h
        return _Plan(cw / tw, ch / th, 0, 0, tw, th, cw, ch)
    if spec.resize is ResizeMode.LETTERBOX:
        r = min(tw / frame_w, th / frame_h)
        nw, nh = max(1, round(frame_w * r)), max(1, round(frame_h * r))
        ox, oy = (tw - nw) // 2, (th - nh) // 2
        return _Plan(frame_w / nw, frame_h / nh, ox, oy, nw, nh, frame_w, frame_h)
    return _Plan(frame_w / tw, frame_h / th, 0, 0, tw, th, frame_w, frame_h)


def _taps(n_dst: int, off: int, count: int, scale: float, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV ``INTER_LINEAR`` taps along one axis: first/second source index and weight."""
    d = np.arange(n_dst, dtype=np.float64)
    f = (d - off + 0.5) * scale - 0.5
    i0 = np.floor(f).astype(np.int64)
    a = f - i0
    low = i0 < 0
    i0[low], a[low] = 0, 0.0
    high = i0 >= limit - 1
    i0[high], a[high] = limit - 1, 0.0
    i1 = np.minimum(i0 + 1, limit - 1)
    return i0, i1, a.astype(np.float32)


def _colour(spec: InputSpec, frame: YuvFrame) -> tuple:
    """Coefficients of YUV -> RGB for the frame, and the pad colour as YUV."""
    kr, kb = _MATRIX[frame.color.matrix]
    kg = 1.0 - kr - kb
    if frame.color.full_range:
        ys, yo, cs = 1.0, 0.0, 1.0
    else:
        ys, yo, cs = 255.0 / 219.0, 16.0, 255.0 / 224.0
    coef = np.array(
        [ys, yo, cs, 2.0 * (1.0 - kr), 2.0 * kb * (1.0 - kb) / kg, 2.0 * kr * (1.0 - kr) / kg, 2.0 * (1.0 - kb)],
        np.float32,
    )
    # Grey pad maps to U = V = 128 in any matrix, so YUV interpolation reproduces it exactly.
    pad_y = spec.pad_value / ys + yo
    return coef, pad_y


def _affine(spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel: multiplier and offset of ``(x * scale - mean) / std``."""
    mul = np.asarray([spec.scale / s for s in spec.std], np.float32)
    add = np.asarray([-m / s for m, s in zip(spec.mean, spec.std)], np.float32)
    return mul, add


@kernel(inline="always")  # Numba-IR inlining: LLVM left the call out of line (8x slower)
def _fetch(y, u, v, ux, uy, up_w, up_h, rotation, mirror, pad_y):
    """(Y, U, V) of upright pixel (ux, uy), chroma nearest; the pad colour outside the frame."""
    if ux >= up_w or uy >= up_h:
        return pad_y, 128.0, 128.0
    if mirror:
        ux = up_w - 1 - ux
    h = y.shape[0]
    w = y.shape[1]
    if rotation == 90:
        sx = w - 1 - uy
        sy = ux
    elif rotation == 180:
        sx = w - 1 - ux
        sy = h - 1 - uy
    elif rotation == -90:
        sx = uy
        sy = h - 1 - ux
    else:
        sx = ux
        sy = uy
    return np.float32(y[sy, sx]), np.float32(u[sy >> 1, sx >> 1]), np.float32(v[sy >> 1, sx >> 1])


@kernel()
def _upright_kernel(y, u, v, coef, x0s, x1s, axs, y0s, y1s, ays, rows, cols, bgr, mul, add, nchw, out):
    """The bulk of an upright, unmirrored frame: output rows ``rows[0]:rows[1]`` x columns
    ``cols[0]:cols[1]``, where all four taps are inside the frame. No branch in the inner loop:
    row views and chroma columns hoisted, the bilinear blend done separably (x, then y)."""
    ys, yo, cs, rv, gu, gv, bu = coef[0], coef[1], coef[2], coef[3], coef[4], coef[5], coef[6]
    ci0 = 2 if bgr else 0
    ci2 = 0 if bgr else 2
    for dy in range(rows[0], rows[1]):
        ay = ays[dy]
        by = np.float32(1.0) - ay
        ya = y[y0s[dy]]
        yb = y[y1s[dy]]
        ua = u[y0s[dy] >> 1]
        ub = u[y1s[dy] >> 1]
        va = v[y0s[dy] >> 1]
        vb = v[y1s[dy] >> 1]
        for dx in range(cols[0], cols[1]):
            x0 = x0s[dx]
            x1 = x1s[dx]
            c0 = x0 >> 1
            c1 = x1 >> 1
            ax = axs[dx]
            bx = np.float32(1.0) - ax
            lum = (np.float32(ya[x0]) * bx + np.float32(ya[x1]) * ax) * by + (
                np.float32(yb[x0]) * bx + np.float32(yb[x1]) * ax
            ) * ay
            cb = (np.float32(ua[c0]) * bx + np.float32(ua[c1]) * ax) * by + (
                np.float32(ub[c0]) * bx + np.float32(ub[c1]) * ax
            ) * ay
            cr = (np.float32(va[c0]) * bx + np.float32(va[c1]) * ax) * by + (
                np.float32(vb[c0]) * bx + np.float32(vb[c1]) * ax
            ) * ay
            lum = (lum - yo) * ys
            cb = (cb - 128.0) * cs
            cr = (cr - 128.0) * cs
            r = min(max(lum + rv * cr, 0.0), 255.0)
            g = min(max(lum - gu * cb - gv * cr, 0.0), 255.0)
            b = min(max(lum + bu * cb, 0.0), 255.0)
            if nchw:
                out[ci0, dy, dx] = r * mul[ci0] + add[ci0]
                out[1, dy, dx] = g * mul[1] + add[1]
                out[ci2, dy, dx] = b * mul[ci2] + add[ci2]
            else:
                out[dy, dx, ci0] = r * mul[ci0] + add[ci0]
                out[dy, dx, 1] = g * mul[1] + add[1]
                out[dy, dx, ci2] = b * mul[ci2] + add[ci2]


@kernel()
def _preprocess_kernel(
    y, u, v, rotation, mirror, up_w, up_h, coef, pad_y, pad,
    x0s, x1s, axs, y0s, y1s, ays, off_x, off_y, content_w, content_h,
    bgr, mul, add, nchw, rows, cols, out,
):  # fmt: skip
    """Every output pixel outside ``rows`` x ``cols`` (the region ``_upright_kernel`` wrote)."""
    tw = out.shape[2] if nchw else out.shape[1]
    th = out.shape[1] if nchw else out.shape[0]
    ys, yo, cs, rv, gu, gv, bu = coef[0], coef[1], coef[2], coef[3], coef[4], coef[5], coef[6]
    for dy in range(th):
        inside_y = off_y <= dy < off_y + content_h
        in_rows = rows[0] <= dy < rows[1]
        y0 = y0s[dy]
        y1 = y1s[dy]
        ay = ays[dy]
        for dx in range(tw):
            if in_rows and cols[0] <= dx < cols[1]:
                continue
            if inside_y and off_x <= dx < off_x + content_w:
                x0 = x0s[dx]
                x1 = x1s[dx]
                ax = axs[dx]
                # (an upright frame's pixels with all four taps inside are _upright_kernel's)
                a0, b0, c0 = _fetch(y, u, v, x0, y0, up_w, up_h, rotation, mirror, pad_y)
                a1, b1, c1 = _fetch(y, u, v, x1, y0, up_w, up_h, rotation, mirror, pad_y)
                a2, b2, c2 = _fetch(y, u, v, x0, y1, up_w, up_h, rotation, mirror, pad_y)
                a3, b3, c3 = _fetch(y, u, v, x1, y1, up_w, up_h, rotation, mirror, pad_y)
                w0 = (1.0 - ax) * (1.0 - ay)
                w1 = ax * (1.0 - ay)
                w2 = (1.0 - ax) * ay
                w3 = ax * ay
                yy = ((a0 * w0 + a1 * w1 + a2 * w2 + a3 * w3) - yo) * ys
                cb = ((b0 * w0 + b1 * w1 + b2 * w2 + b3 * w3) - 128.0) * cs
                cr = ((c0 * w0 + c1 * w1 + c2 * w2 + c3 * w3) - 128.0) * cs
                r = min(max(yy + rv * cr, 0.0), 255.0)
                g = min(max(yy - gu * cb - gv * cr, 0.0), 255.0)
                b = min(max(yy + bu * cb, 0.0), 255.0)
            else:
                r = pad
                g = pad
                b = pad
            c0v = b if bgr else r
            c2v = r if bgr else b
            if nchw:
                out[0, dy, dx] = c0v * mul[0] + add[0]
                out[1, dy, dx] = g * mul[1] + add[1]
                out[2, dy, dx] = c2v * mul[2] + add[2]
            else:
                out[dy, dx, 0] = c0v * mul[0] + add[0]
                out[dy, dx, 1] = g * mul[1] + add[1]
                out[dy, dx, 2] = c2v * mul[2] + add[2]


def preprocess_into(frame: YuvFrame, spec: InputSpec, out: np.ndarray) -> Geometry:
    """Write the model input for ``frame`` into ``out`` (one slot of a batch) and return the
    geometry that maps model coordinates back to the upright frame."""
    up_w, up_h = frame.upright_size
    want = spec.shape_for(up_w, up_h)
    if out.shape != want or out.dtype != np.float32:
        raise ValueError(f"output slot must be float32 {want}: {out.shape = }, {out.dtype = }")
    p = plan(spec, up_w, up_h)
    x0s, x1s, axs = _taps(spec.width, p.off_x, p.content_w, p.scale_x, p.limit_x)
    y0s, y1s, ays = _taps(spec.height, p.off_y, p.content_h, p.scale_y, p.limit_y)
    coef, pad_y = _colour(spec, frame)
    mul, add = _affine(spec)
    bgr, nchw = spec.channels == "BGR", spec.layout == "NCHW"
    if frame.rotation == 0 and not frame.mirror:
        rows = _span(y0s, y1s, p.off_y, p.content_h, up_h)
        cols = _span(x0s, x1s, p.off_x, p.content_w, up_w)
        if rows[1] > rows[0] and cols[1] > cols[0]:
            _upright_kernel(frame.y, frame.u, frame.v, coef, x0s, x1s, axs, y0s, y1s, ays, rows, cols, bgr, mul, add,
                            nchw, out)  # fmt: skip
    else:
        rows = cols = np.zeros(2, np.int64)
    _preprocess_kernel(
        frame.y, frame.u, frame.v, frame.rotation, frame.mirror, up_w, up_h, coef, np.float32(pad_y),
        np.float32(spec.pad_value), x0s, x1s, axs, y0s, y1s, ays, p.off_x, p.off_y, p.content_w,
        p.content_h, bgr, mul, add, nchw, rows, cols, out,
    )  # fmt: skip
    return p.geometry(up_w, up_h)


def _span(i0s: np.ndarray, i1s: np.ndarray, off: int, count: int, limit: int) -> np.ndarray:
    """[first, end) of the destination pixels along one axis whose two taps are both inside the
    frame (``limit`` pixels) and that lie in the content: one run, as the taps increase."""
    d = np.arange(i0s.size)
    ok = np.flatnonzero((d >= off) & (d < off + count) & (i1s < limit) & (i0s >= 0))
    if ok.size == 0:
        return np.zeros(2, np.int64)
    return np.array([ok[0], ok[-1] + 1], np.int64)


# --------------------------------------------------------------------------- reference


def _yuv_to_rgb_np(yy: np.ndarray, u: np.ndarray, v: np.ndarray, frame: YuvFrame) -> np.ndarray:
    kr, kb = _MATRIX[frame.color.matrix]
    if frame.color.full_range:
        yy, cb, cr = yy, u - 128.0, v - 128.0
    else:
        yy, cb, cr = (yy - 16.0) * (255.0 / 219.0), (u - 128.0) * (255.0 / 224.0), (v - 128.0) * (255.0 / 224.0)
    kg = 1.0 - kr - kb
    r = yy + 2.0 * (1.0 - kr) * cr
    g = yy - (2.0 * kb * (1.0 - kb) / kg) * cb - (2.0 * kr * (1.0 - kr) / kg) * cr
    b = yy + 2.0 * (1.0 - kb) * cb
    return np.clip(np.stack([r, g, b], -1), 0.0, 255.0)


def upright_yuv_reference(frame: YuvFrame) -> np.ndarray:
    """Upright ``(H, W, 3)`` float64 Y, U, V planes with chroma upsampled by repetition."""
    u = np.repeat(np.repeat(frame.u, 2, 0), 2, 1)[: frame.height, : frame.width]
    v = np.repeat(np.repeat(frame.v, 2, 0), 2, 1)[: frame.height, : frame.width]
    yuv = np.stack([frame.y, u, v], -1).astype(np.float64)
    k = {0: 0, 90: 1, 180: 2, -90: -1}[frame.rotation]
    yuv = np.rot90(yuv, k)
    return yuv[:, ::-1] if frame.mirror else yuv


def yuv_to_rgb_reference(frame: YuvFrame) -> np.ndarray:
    """Upright float32 RGB image ``(H, W, 3)`` of ``frame`` (nearest chroma), in NumPy."""
    yuv = upright_yuv_reference(frame)
    return _yuv_to_rgb_np(yuv[..., 0], yuv[..., 1], yuv[..., 2], frame).astype(np.float32)


def preprocess_reference(frame: YuvFrame, spec: InputSpec) -> tuple[np.ndarray, Geometry]:
    """NumPy twin of ``preprocess_into``: interpolate Y, U, V bilinearly on the padded canvas,
    convert to RGB, normalise. Returns the input tensor slot and the geometry."""
    up_w, up_h = frame.upright_size
    p = plan(spec, up_w, up_h)
    _, pad_y = _colour(spec, frame)
    canvas = np.empty((p.limit_y, p.limit_x, 3), np.float64)
    canvas[...] = (pad_y, 128.0, 128.0)
    canvas[:up_h, :up_w] = upright_yuv_reference(frame)
    y0, y1, ay = _taps(spec.height, p.off_y, p.content_h, p.scale_y, p.limit_y)
    x0, x1, ax = _taps(spec.width, p.off_x, p.content_w, p.scale_x, p.limit_x)
    ay, ax = ay[:, None, None].astype(np.float64), ax[None, :, None].astype(np.float64)
    yuv = (
        canvas[y0][:, x0] * (1 - ax) * (1 - ay)
        + canvas[y0][:, x1] * ax * (1 - ay)
        + canvas[y1][:, x0] * (1 - ax) * ay
        + canvas[y1][:, x1] * ax * ay
    )
    img = _yuv_to_rgb_np(yuv[..., 0], yuv[..., 1], yuv[..., 2], frame)
    d = np.arange(spec.height)[:, None], np.arange(spec.width)[None, :]
    inside = (d[0] >= p.off_y) & (d[0] < p.off_y + p.content_h) & (d[1] >= p.off_x) & (d[1] < p.off_x + p.content_w)
    img[~inside] = spec.pad_value
    img = img[..., list(_CHANNELS[spec.channels])]
    img = (img * spec.scale - np.asarray(spec.mean)) / np.asarray(spec.std)
    tw, th = spec.size_for(up_w, up_h)
    img = img[:th, :tw]
    if spec.layout == "NCHW":
        img = img.transpose(2, 0, 1)
    return img.astype(np.float32), p.geometry(up_w, up_h)
