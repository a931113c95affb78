"""Tiny luma thumbnails for near-duplicate detection (adaptive sampling).

``thumbnail`` averages the luma plane over an ``n x n`` grid of cells (reading every
``step``-th pixel of each cell: enough for a mean, 4x less memory traffic at step 2) in one
Numba pass over the decoder's plane (no copy). Two frames whose thumbnails differ by less
than a threshold in mean absolute luma (0-255) count as near-duplicates: the scan reuses
the last scored frame's result instead of running the models again.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel

GRID = 16
STEP = 2


# Twin of thumbnail_reference (its NumPy reference, the same cells), kept in step with it.
@kernel()
def _thumbnail_kernel(y: np.ndarray, n: int, step: int, out: np.ndarray) -> None:  # pragma: no cover - jitted
    h, w = y.shape
    for i in range(n):
        r0 = i * h // n
        r1 = max((i + 1) * h // n, r0 + 1)
        for j in range(n):
            c0 = j * w // n
            c1 = max((j + 1) * w // n, c0 + 1)
            total = 0
            count = 0
            for r in range(r0, min(r1, h), step):
                for c in range(c0, min(c1, w), step):
                    total += y[r, c]
                    count += 1
            out[i, j] = total / count if count else 0.0


def thumbnail(y: np.ndarray, n: int = GRID, step: int = STEP) -> np.ndarray:
    """``n x n`` float32 cell means of a uint8 luma plane (any strides)."""
    if y.ndim != 2 or y.dtype != np.uint8 or y.size == 0:
        raise ValueError(f"thumbnail needs a non-empty 2-D uint8 plane, got {y.dtype} {y.shape}")
    out = np.empty((n, n), np.float32)
    _thumbnail_kernel(y, n, step, out)
    return out


def thumbnail_reference(y: np.ndarray, n: int = GRID, step: int = STEP) -> np.ndarray:
    """NumPy reference for ``thumbnail`` (twin of ``_thumbnail_kernel``: the same cells)."""
    h, w = y.shape
    out = np.empty((n, n), np.float32)
    for i in range(n):
        r0 = i * h // n
        r1 = max((i + 1) * h // n, r0 + 1)
        for j in range(n):
            c0 = j * w // n
            c1 = max((j + 1) * w // n, c0 + 1)
            cell = y[r0 : min(r1, h) : step, c0 : min(c1, w) : step]
            out[i, j] = cell.astype(np.float64).mean() if cell.size else 0.0
    return out


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails (luma levels, 0-255)."""
    return float(np.abs(a - b).mean())
