"""The Jarosz tent-filter downscale of PDQ (``pdq/cpp/downscaling/downscaling.cpp``) in Numba: box
filters along rows and down columns (``box1DFloat``) and the decimation indices
(``decimateFloat``), with sampled variants that compute only the points decimation reads.

Each kernel does the reference's float32 operations in the reference's order, so the values are
bit-identical to it; each has a plain NumPy twin in tests/naive_pdq.py (``box_1d_along_rows``,
``box_1d_along_cols``, ``decimation_indices``). ``framescan.pdq`` runs them.
"""

from __future__ import annotations

import numpy as np

from framescan._jit import kernel


# Called per output column with array arguments: IR inlining avoids per-call refcounting. Only
# sampled output goes through it: a call in the dense loop (even inlined) made it ~6x slower.
@kernel(inline="always")
def _emit4(oa, ob, oc, oe, s0, s1, s2, s3, d, oi, k, targets):  # pragma: no cover - compiled
    """Write four rows' window means at columns ``k`` where ``targets[k] == oi`` (sampled
    output); returns the next target slot."""
    while k < targets.shape[0] and targets[k] == oi:
        oa[k], ob[k], oc[k], oe[k] = s0 / d, s1 / d, s2 / d, s3 / d
        k += 1
    return k


@kernel()
def _box_along_rows(inp, out, window, targets):  # pragma: no cover - compiled
    """The reference's ``box1DFloat`` (running sum, shrinking edges) along every row.

    Rows are filtered four at a time: four independent float32 chains doing, per row, exactly
    the reference's adds, subtracts and divides (so bit-identical), which hides the latency of
    the running sum. The last group repeats the last row, rewriting the same values.
    ``targets`` (sorted column indices, repeats allowed) limits the output to those columns,
    ``out[:, k]`` being column ``targets[k]``; empty means every column. The running sums
    still visit every pixel (that is what makes the values identical); only the divisions and
    writes are skipped.
    """
    rows, cols = inp.shape
    dense = targets.shape[0] == 0
    half = (window + 2) // 2
    phase1 = half - 1
    phase2 = window - half + 1
    phase3 = cols - window
    phase4 = half - 1
    for i in range(0, rows, 4):
        a, b, c, e = inp[i], inp[min(i + 1, rows - 1)], inp[min(i + 2, rows - 1)], inp[min(i + 3, rows - 1)]
        oa, ob, oc, oe = (
            out[i],
            out[min(i + 1, rows - 1)],
            out[min(i + 2, rows - 1)],
            out[min(i + 3, rows - 1)],
        )
        s0 = s1 = s2 = s3 = np.float32(0.0)
        n = li = ri = k = 0
        for step in range(phase1 + phase2):  # the window grows; output from the phase1-th sum on
            s0 += a[ri]
            s1 += b[ri]
            s2 += c[ri]
            s3 += e[ri]
            ri += 1
            n += 1
            oi = step - phase1
            if oi < 0:
                continue
            d = np.float32(n)
            if dense:
                oa[oi], ob[oi], oc[oi], oe[oi] = s0 / d, s1 / d, s2 / d, s3 / d
            else:
                k = _emit4(oa, ob, oc, oe, s0, s1, s2, s3, d, oi, k, targets)
        d = np.float32(n)
        for oi in range(phase2, phase2 + phase3):
            s0 += a[ri]
            s1 += b[ri]
            s2 += c[ri]
            s3 += e[ri]
            s0 -= a[li]
            s1 -= b[li]
            s2 -= c[li]
            s3 -= e[li]
            ri += 1
            li += 1
            if dense:
                oa[oi], ob[oi], oc[oi], oe[oi] = s0 / d, s1 / d, s2 / d, s3 / d
            else:
                k = _emit4(oa, ob, oc, oe, s0, s1, s2, s3, d, oi, k, targets)
        for oi in range(phase2 + phase3, phase2 + phase3 + phase4):
            s0 -= a[li]
            s1 -= b[li]
            s2 -= c[li]
            s3 -= e[li]
            li += 1
            n -= 1
            d = np.float32(n)
            if dense:
                oa[oi], ob[oi], oc[oi], oe[oi] = s0 / d, s1 / d, s2 / d, s3 / d
            else:
                k = _emit4(oa, ob, oc, oe, s0, s1, s2, s3, d, oi, k, targets)


# Called per row with array arguments: inlined for the same reason as _emit4.
@kernel(inline="always")
def _emit_row(out, sums, oi, k, targets, d):  # pragma: no cover - compiled
    """Write row ``oi`` of window means (dense) or, for sampled output, rows ``k`` where
    ``targets[k] == oi``; returns the next target slot."""
    cols = out.shape[1]
    if targets.shape[0] == 0:
        for j in range(cols):
            out[oi, j] = sums[j] / d
        return k
    while k < targets.shape[0] and targets[k] == oi:
        for j in range(cols):
            out[k, j] = sums[j] / d
        k += 1
    return k


@kernel()
def _box_along_cols(inp, out, window, sums, targets):  # pragma: no cover - compiled
    """``box1DFloat`` down every column, swept row by row (cache-friendly, vectorised).

    Each column sees exactly the reference's sequence of float32 adds, subtracts and divides,
    so the result is bit-identical to filtering column by column. ``targets`` (sorted row
    indices) limits the output to those rows, ``out[k]`` being row ``targets[k]``; empty
    means every row.
    """
    rows, cols = inp.shape
    half = (window + 2) // 2
    phase1 = half - 1
    phase2 = window - half + 1
    phase3 = rows - window
    phase4 = half - 1
    for j in range(cols):
        sums[j] = np.float32(0.0)
    n = 0
    li = 0
    ri = 0
    oi = 0
    k = 0
    for _ in range(phase1):
        for j in range(cols):
            sums[j] += inp[ri, j]
        n += 1
        ri += 1
    for _ in range(phase2):
        n += 1
        for j in range(cols):
            sums[j] += inp[ri, j]
        k = _emit_row(out, sums, oi, k, targets, np.float32(n))
        ri += 1
        oi += 1
    d = np.float32(n)
    for _ in range(phase3):
        for j in range(cols):
            sums[j] += inp[ri, j]
            sums[j] -= inp[li, j]
        k = _emit_row(out, sums, oi, k, targets, d)
        li += 1
        ri += 1
        oi += 1
    for _ in range(phase4):
        n -= 1
        for j in range(cols):
            sums[j] -= inp[li, j]
        k = _emit_row(out, sums, oi, k, targets, np.float32(n))
        li += 1
        oi += 1


@kernel()
def _decimation_indices(in_dim, out_dim, out):  # pragma: no cover - compiled
    """The input index each output cell samples: its centre, as ``decimateFloat`` computes it."""
    for o in range(out_dim):
        out[o] = int(((o + 0.5) * in_dim) / out_dim)
