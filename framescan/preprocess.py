"""Fused preprocessing: YUV 4:2:0 planes -> model input tensor, in one Numba pass per frame.

Each output pixel is a bilinear blend of (at most) four source pixels of the *upright*
frame; the display-matrix rotation and mirror are folded into the source indices, so the
kernel reads the decoder's planes as they are. The blend is separable and runs in source
coordinates: per output line, two source rows are blended over their whole width (contiguous,
vectorised), then each output pixel gathers its two columns from that row. Y, U and V are
interpolated (chroma nearest per tap), converted to RGB with the stream's matrix and range,
clamped, normalised as ``(pixel * scale - mean) / std`` and written in the model's channel
order and layout straight into a slot of a preallocated batch tensor. Tap indices and
weights are computed once per (model input, frame size, rotation, mirror, colour) and kept
in a small cache.
No full-size RGB frame is ever made.

Resize follows OpenCV's ``INTER_LINEAR`` (half-pixel centres, edge clamp, no
anti-aliasing), which is what NudeNet and most exported detectors were trained with.

The resize modes and ``trim_multiple`` are described in ``framescan.inputspec``.

``preprocess_reference`` is a plain NumPy implementation of the same maths, used by the
tests.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ._jit import kernel, numba_start
from .frames import ColorInfo, Geometry, YuvFrame
from .inputspec import CHANNEL_ORDER, InputSpec, Plan, plan

# Kr, Kb luma coefficients of the two matrices.
_MATRIX = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


def batch_view(batch: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A C-contiguous ``[N, *shape]`` view on the start of a full-size ``[N, ...]`` batch buffer
    (``shape`` no larger than the buffer's per-image shape): trimmed tensors reuse the buffers."""
    if tuple(batch.shape[1:]) == tuple(shape):
        return batch
    n = batch.shape[0]
    return batch.reshape(-1)[: n * math.prod(shape)].reshape(n, *shape)


def _geometry(p: Plan, frame_w: int, frame_h: int) -> Geometry:
    """Maps the model input of ``plan`` back to the upright ``frame_w x frame_h`` frame."""
    return Geometry(p.scale_x, p.scale_y, p.off_x, p.off_y, frame_w, frame_h)


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


def _colour(spec: InputSpec, color: ColorInfo) -> tuple:
    """Coefficients of YUV -> RGB for frames in ``color``, and the pad colour as YUV."""
    kr, kb = _MATRIX[color.matrix]
    kg = 1.0 - kr - kb
    if color.full_range:
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


@kernel(inline="always")  # into the line loop: measured a little faster than a call per line
def _blend_rows(y, u, v, s0, s1, a, pad_y, ty, tu, tv):
    """Source rows ``s0`` and ``s1`` blended ``(1 - a, a)`` into ``ty`` (luma) and ``tu``/``tv``
    (chroma, the rows holding them). ``s1`` past the frame is a row of the pad colour (the
    border of a ``pad_bottom_right`` canvas); ``s0`` never is: lines whose first tap is padding
    are written as the pad colour without blending."""
    b = np.float32(1.0) - a
    if s1 >= y.shape[0]:
        ya, ua, va = y[s0], u[s0 >> 1], v[s0 >> 1]
        py = pad_y * a
        pc = np.float32(128.0) * a
        for x in range(y.shape[1]):
            ty[x] = np.float32(ya[x]) * b + py
        for c in range(u.shape[1]):
            tu[c] = np.float32(ua[c]) * b + pc
            tv[c] = np.float32(va[c]) * b + pc
    else:
        ya, ua, va = y[s0], u[s0 >> 1], v[s0 >> 1]
        yb, ub, vb = y[s1], u[s1 >> 1], v[s1 >> 1]
        for x in range(y.shape[1]):
            ty[x] = np.float32(ya[x]) * b + np.float32(yb[x]) * a
        for c in range(u.shape[1]):
            tu[c] = np.float32(ua[c]) * b + np.float32(ub[c]) * a
            tv[c] = np.float32(va[c]) * b + np.float32(vb[c]) * a


@kernel()
def _preprocess_kernel(
    y, u, v, transpose, ls0, ls1, la, lines, px0, px1, pc0, pc1, pa, span, coef, pad_y, padv, bgr, mul, add, nchw,
    out,
):  # fmt: skip
    """Separable resampling in source coordinates, one output line at a time.

    A *line* is an output row (rotation 0/180) or column (``transpose``: rotation +-90): it
    maps to two source rows (``ls0``/``ls1``, weight ``la``), blended over the whole row
    (contiguous, vectorised); its positions ``span[0]:span[1]`` then gather their two source
    columns (``px0``/``px1``, chroma ``pc0``/``pc1``, weight ``pa``) from that row, convert to
    RGB and normalise; lines outside ``lines[0]:lines[1]`` and positions outside ``span`` are
    padding. Index ``W`` (``CW`` for chroma, ``H`` for rows) stands for the pad colour."""
    w = y.shape[1]
    cw = u.shape[1]
    ys, yo, cs, rv, gu, gv, bu = coef[0], coef[1], coef[2], coef[3], coef[4], coef[5], coef[6]
    ci0 = 2 if bgr else 0
    ci2 = 0 if bgr else 2
    m0, m1, m2, a0, a1, a2 = mul[ci0], mul[1], mul[ci2], add[ci0], add[1], add[ci2]
    th = out.shape[1] if nchw else out.shape[0]
    tw = out.shape[2] if nchw else out.shape[1]
    n_lines = tw if transpose else th
    n_pos = th if transpose else tw
    ty = np.empty(w + 1, np.float32)
    tu = np.empty(cw + 1, np.float32)
    tv = np.empty(cw + 1, np.float32)
    ty[w] = pad_y
    tu[cw] = 128.0
    tv[cw] = 128.0
    hy = np.empty(n_pos, np.float32)
    hu = np.empty(n_pos, np.float32)
    hv = np.empty(n_pos, np.float32)
    c0 = np.empty(n_pos, np.float32)  # the line's output channels ci0, 1, ci2
    c1 = np.empty(n_pos, np.float32)
    c2 = np.empty(n_pos, np.float32)
    blk = np.empty((16, 3, n_pos), np.float32)
    for line in range(n_lines):
        lo, hi = 0, 0
        if lines[0] <= line < lines[1]:
            lo, hi = min(span[0], n_pos), min(span[1], n_pos)
            _blend_rows(y, u, v, ls0[line], ls1[line], la[line], pad_y, ty, tu, tv)
        # separate loops: gathers, then branch-free arithmetic on contiguous arrays
        for p in range(lo, hi):
            ax = pa[p]
            hy[p] = ty[px0[p]] * (np.float32(1.0) - ax) + ty[px1[p]] * ax
        for p in range(lo, hi):
            ax = pa[p]
            hu[p] = tu[pc0[p]] * (np.float32(1.0) - ax) + tu[pc1[p]] * ax
            hv[p] = tv[pc0[p]] * (np.float32(1.0) - ax) + tv[pc1[p]] * ax
        for p in range(lo, hi):
            lum = (hy[p] - yo) * ys
            cb = (hu[p] - np.float32(128.0)) * cs
            cr = (hv[p] - np.float32(128.0)) * cs
            c0[p] = min(max(lum + rv * cr, np.float32(0.0)), np.float32(255.0)) * m0 + a0
            c1[p] = min(max(lum - gu * cb - gv * cr, np.float32(0.0)), np.float32(255.0)) * m1 + a1
            c2[p] = min(max(lum + bu * cb, np.float32(0.0)), np.float32(255.0)) * m2 + a2
        for p in range(lo):
            c0[p], c1[p], c2[p] = padv[ci0], padv[1], padv[ci2]
        for p in range(max(lo, hi), n_pos):
            c0[p], c1[p], c2[p] = padv[ci0], padv[1], padv[ci2]
        if not transpose:
            if nchw:
                o0, o1, o2 = out[ci0, line], out[1, line], out[ci2, line]
                for p in range(n_pos):
                    o0[p], o1[p], o2[p] = c0[p], c1[p], c2[p]
            else:
                for p in range(n_pos):
                    out[line, p, ci0], out[line, p, 1], out[line, p, ci2] = c0[p], c1[p], c2[p]
            continue
        # a line is an output column: gather 16 of them, so that stores run along output rows
        j = line % 16
        b0, b1, b2 = blk[j, 0], blk[j, 1], blk[j, 2]
        for p in range(n_pos):
            b0[p], b1[p], b2[p] = c0[p], c1[p], c2[p]
        if j == 15 or line == n_lines - 1:
            first = line - j
            for p in range(n_pos):
                for k in range(j + 1):
                    if nchw:
                        out[ci0, p, first + k] = blk[k, 0, p]
                        out[1, p, first + k] = blk[k, 1, p]
                        out[ci2, p, first + k] = blk[k, 2, p]
                    else:
                        out[p, first + k, ci0] = blk[k, 0, p]
                        out[p, first + k, 1] = blk[k, 1, p]
                        out[p, first + k, ci2] = blk[k, 2, p]


def _source_taps(i: np.ndarray, n_up: int, flip: bool, marker: int) -> np.ndarray:
    """Upright tap indices (``n_up`` pixels, more = padding) as indices into the source axis
    they map to (reversed when ``flip``); padding becomes ``marker``."""
    s = (n_up - 1 - i) if flip else i.copy()
    s[i >= n_up] = marker
    return s


def _first(mask: np.ndarray, default: int) -> int:
    """Index of the first True in ``mask``, or ``default``."""
    hit = np.flatnonzero(mask)
    return int(hit[0]) if hit.size else default


@functools.lru_cache(maxsize=64)
def _kernel_args(
    spec: InputSpec, w: int, h: int, cw: int, rotation: int, mirror: bool, color: ColorInfo
) -> tuple[tuple, Geometry]:
    """Everything ``_preprocess_kernel`` needs but the planes and the output, for a ``w x h``
    source (``cw`` chroma columns) shown with ``rotation``/``mirror``; cached, so computed once
    per stream."""
    up_w, up_h = (h, w) if rotation in (90, -90) else (w, h)
    p = plan(spec, up_w, up_h)
    x0s, x1s, axs = _taps(spec.width, p.off_x, p.content_w, p.scale_x, p.limit_x)
    y0s, y1s, ays = _taps(spec.height, p.off_y, p.content_h, p.scale_y, p.limit_y)
    # (taps along the upright x and y axes, where the content is, upright size)
    xr = (x0s, x1s, axs, p.off_x, p.content_w, up_w)
    yr = (y0s, y1s, ays, p.off_y, p.content_h, up_h)
    # Which upright axis runs along source rows (the lines), and whether each axis runs
    # backwards in the source. Upright (x, y) -> source (sx, sy): 0: (x, y); 180: (w-1-x,
    # h-1-y); 90: (w-1-y, x); -90: (y, h-1-x); mirror first turns x into up_w-1-x.
    line, line_flip, pos, pos_flip = {
        0: (yr, False, xr, mirror),
        180: (yr, True, xr, not mirror),
        90: (xr, mirror, yr, True),
        -90: (xr, not mirror, yr, False),
    }[rotation]
    ls0, ls1 = (_source_taps(t, line[5], line_flip, h) for t in line[:2])
    px0, px1 = (_source_taps(t, pos[5], pos_flip, w) for t in pos[:2])
    pc0, pc1 = (np.where(t >= w, cw, t >> 1) for t in (px0, px1))
    # lines / positions whose taps are both padding are the pad colour: written as such
    lines = np.array([line[3], min(line[3] + line[4], _first(line[0] >= line[5], line[0].size))], np.int64)
    span = np.array([pos[3], min(pos[3] + pos[4], _first(pos[0] >= pos[5], pos[0].size))], np.int64)
    coef, pad_y = _colour(spec, color)
    mul, add = _affine(spec)
    padv = (np.float32(spec.pad_value) * mul + add).astype(np.float32)
    args = (
        rotation in (90, -90), ls0, ls1, line[2], lines, px0, px1, pc0, pc1, pos[2], span, coef, np.float32(pad_y),
        padv, spec.channels == "BGR", mul, add, spec.layout == "NCHW",
    )  # fmt: skip
    for a in args:
        if isinstance(a, np.ndarray):
            a.flags.writeable = False
    return args, _geometry(p, up_w, up_h)


def preprocess_into(frame: YuvFrame, spec: InputSpec, out: np.ndarray) -> Geometry:
    """Write the model input for ``frame`` into ``out`` (one slot of a batch) and return the
    geometry that maps model coordinates back to the upright frame."""
    want = spec.shape_for(*frame.upright_size)
    if out.shape != want or out.dtype != np.float32:
        raise ValueError(f"output slot must be float32 {want}: {out.shape = }, {out.dtype = }")
    h, w = frame.y.shape
    args, geometry = _kernel_args(spec, w, h, frame.u.shape[1], frame.rotation, frame.mirror, frame.color)
    with numba_start():  # the first call in a process loads the kernel (see numba_start)
        _preprocess_kernel(frame.y, frame.u, frame.v, *args, out)
    return geometry


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
    _, pad_y = _colour(spec, frame.color)
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
    img = img[..., list(CHANNEL_ORDER[spec.channels])]
    img = (img * spec.scale - np.asarray(spec.mean)) / np.asarray(spec.std)
    tw, th = spec.size_for(up_w, up_h)
    img = img[:th, :tw]
    if spec.layout == "NCHW":
        img = img.transpose(2, 0, 1)
    return img.astype(np.float32), _geometry(p, up_w, up_h)
