"""Plain NumPy references for every Numba kernel in framescan.pdq and framescan.banks.

They are written the obvious way (window means, matrix products, sorting, Python ints), not
as transliterations of the kernels, so agreement means something. Where float64 NumPy and
the kernels' float32 running sums differ, the tolerance constants below say by how much and why.
"""

from __future__ import annotations

import numpy as np

from framescan import pdq

#: Box filter: the kernel keeps a float32 running sum (adds and subtracts along a row of up to a
#: few thousand pixels of 0..255), the reference takes exact float64 window means. The running
#: sum's rounding error grows with the row length: well under 0.01 grey level for frame sizes.
BOX_ATOL = 1e-2
#: DCT: 64-term float32 dot products of values up to ~255 vs float64 matrix products.
DCT_ATOL = 1e-2
#: Full pipeline (filter + decimate + DCT) on random frames, float32 vs float64.
PIPELINE_DCT_ATOL = 5e-2
#: Limited-range expansion: float32 (y - 16) * (255 / 219) vs float64.
FILL_ATOL = 1e-4


def fill_float_luma(src: np.ndarray, limited: bool) -> np.ndarray:
    x = np.asarray(src, dtype=np.float64)
    if limited:
        x = np.clip((x - pdq.LIMITED_RANGE_BLACK) * pdq.FULL_RANGE_MAX / pdq.LIMITED_RANGE_SPAN, 0, 255)
    return x


def box_1d_along_rows(x: np.ndarray, window: int) -> np.ndarray:
    """Mean over the window ``[j - (half - 1), j + (window - half)]`` clipped to the row."""
    x = np.asarray(x, dtype=np.float64)
    cols = x.shape[1]
    half = (window + 2) // 2
    out = np.empty_like(x)
    for j in range(cols):
        lo = max(0, j - (window - half))
        hi = min(cols, j + half)
        out[:, j] = x[:, lo:hi].mean(axis=1)
    return out


def box_1d_along_cols(x: np.ndarray, window: int) -> np.ndarray:
    return box_1d_along_rows(np.asarray(x).T, window).T


def jarosz_window(old_dim: int, new_dim: int = pdq.DOWNSAMPLE_DIM) -> int:
    return int(np.ceil(old_dim / (2 * new_dim)))


def decimation_indices(in_dim: int, out_dim: int = pdq.DOWNSAMPLE_DIM) -> np.ndarray:
    """The input index at the centre of each output cell."""
    return np.floor((np.arange(out_dim) + 0.5) * in_dim / out_dim).astype(np.int64)


def decimate(x: np.ndarray) -> np.ndarray:
    rows, cols = x.shape
    return x[np.ix_(decimation_indices(rows), decimation_indices(cols))]


def quality(buf: np.ndarray) -> int:
    """Same float32 element-wise maths as the reference (NumPy float32 ops are IEEE), so exact."""
    b = np.asarray(buf, dtype=np.float32)
    hundred, full = np.float32(100.0), np.float32(255.0)
    dv = np.trunc(((b[:-1, :] - b[1:, :]) * hundred) / full).astype(np.int64)
    dh = np.trunc(((b[:, :-1] - b[:, 1:]) * hundred) / full).astype(np.int64)
    total = int(np.abs(dv).sum() + np.abs(dh).sum())
    return min(total // pdq.QUALITY_GRADIENT_DIVISOR, pdq.MAX_QUALITY)


def dct64_to_16(a: np.ndarray) -> np.ndarray:
    d = pdq.DCT_MATRIX.astype(np.float64)
    return d @ np.asarray(a, dtype=np.float64) @ d.T


def lower_median(m: np.ndarray) -> float:
    """Torben's result for an even count is the lower median: the ((n - 1) // 2)-th smallest."""
    flat = np.sort(np.asarray(m).ravel())
    return float(flat[(flat.size - 1) // 2])


def bits_from_dct(dct: np.ndarray) -> np.ndarray:
    """Bits via a Python int: bit 16 i + j set when above the median; returns (4,) uint64."""
    med = lower_median(dct)
    value = 0
    for k, v in enumerate(np.asarray(dct).ravel()):
        if v > med:
            value |= 1 << k
    return pdq.bytes_to_hash(value.to_bytes(pdq.HASH_BYTES, "big"))


#: The image transform each dihedral DCT variant corresponds to.
DIHEDRAL_IMAGE_OPS = {
    "original": lambda a: a,
    "rotate90": lambda a: np.rot90(a, 1),
    "rotate180": lambda a: np.rot90(a, 2),
    "rotate270": lambda a: np.rot90(a, -1),
    "flipx": lambda a: a[::-1, :],
    "flipy": lambda a: a[:, ::-1],
    "flipplus1": lambda a: a.T,
    "flipminus1": lambda a: np.rot90(a, 2).T,
}


def pdq_dct(luma: np.ndarray, limited: bool = False, always_filter: bool = False) -> tuple[np.ndarray, int]:
    """The whole PDQ float pipeline in float64 (quality from the float32 64x64 image)."""
    x = fill_float_luma(luma, limited)
    rows, cols = x.shape
    if rows == pdq.DOWNSAMPLE_DIM and cols == pdq.DOWNSAMPLE_DIM and not always_filter:
        small = x
    else:
        wr, wc = jarosz_window(cols), jarosz_window(rows)
        for _ in range(pdq.JAROSZ_PASSES):
            x = box_1d_along_cols(box_1d_along_rows(x, wr), wc)
        small = decimate(x)
    return dct64_to_16(small), quality(small.astype(np.float32))


def popcount(x: int) -> int:
    return bin(int(x)).count("1")


def hamming(a: np.ndarray, b: np.ndarray) -> int:
    return sum(popcount(int(x) ^ int(y)) for x, y in zip(np.ravel(a), np.ravel(b), strict=True))


def radius_search(queries: np.ndarray, bank: np.ndarray, radius: int) -> set[tuple[int, int, int]]:
    """Every (query, bank, distance) within ``radius``, via unpacked bits."""
    qb = np.unpackbits(np.asarray(queries, dtype=">u8").view(np.uint8).reshape(len(queries), -1), axis=1)
    bb = np.unpackbits(np.asarray(bank, dtype=">u8").view(np.uint8).reshape(len(bank), -1), axis=1)
    d = (qb[:, None, :] != bb[None, :, :]).sum(axis=2)
    qi, bi = np.nonzero(d <= radius)
    return {(int(i), int(j), int(d[i, j])) for i, j in zip(qi, bi, strict=True)}


def chunk_values(hashes: np.ndarray) -> np.ndarray:
    """``(16, M)`` 16-bit chunks, most significant first, from the hex digits."""
    out = np.empty((pdq.HASH_BITS // 16, len(hashes)), dtype=np.int64)
    for j, h in enumerate(hashes):
        text = pdq.hash_to_hex(h)
        for c in range(out.shape[0]):
            out[c, j] = int(text[4 * c : 4 * c + 4], 16)
    return out
