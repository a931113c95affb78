"""PDQ perceptual hashing in Numba, bit-compatible with Meta's reference implementation.

PDQ (Meta's ``pdq/cpp/hashing/pdqhashing.cpp``) turns an image into 256 bits:

1. luma as float32;
2. a Jarosz tent-filter downscale: two passes of a box filter along rows then columns, with
   window ``ceil(dim / 128)`` (``computeJaroszFilterWindowSize``), then decimation to 64x64
   by sampling the pixel at each output cell's centre (skipped when the input is already 64x64);
3. a quality score 0-100 from the 64x64 image's quantised gradients;
4. a 16x16 DCT (frequencies 1..16 of a 64-point DCT-II; DC is never used);
5. one bit per coefficient: set when the coefficient is above the 256 coefficients' median
   (Torben's median, as the reference computes it).

Every step does its float32 arithmetic in the same order as the reference, so for the same
float32 luma the same bits come out (checked against the ``pdqhash`` binding in the tests).
Two reorganisations keep the values while saving time: rows are filtered four at a time and
columns swept row by row (independent chains, each with the reference's operations), and the
last row and column passes compute only the 64 x 64 points decimation samples.
The eight dihedral variants (rotations and flips) are derived from the DCT by sign flips and
transposes, as the reference does.

Hash representation
-------------------
A hash is a ``(4,)`` uint64 array (``(N, 4)`` for many). Bit ``k = 16 * row + col`` of the
16x16 DCT is bit ``k`` of the 256-bit integer whose 64 hex digits are Meta's text form
(``Hash256::format`` prints word 15 first). Word 0 holds bits 255..192, word 3 bits 63..0, so
``hash_to_hex`` is the words' big-endian hex and ``hash_to_bytes`` their big-endian bytes
(32 bytes, the same order as the hex). Hashes read from Meta's vPDQ files compare directly.

Luma: the decoded Y plane versus the reference's RGB->luma
-----------------------------------------------------------
The reference hashes RGB images with ``Y = 0.299 R + 0.587 G + 0.114 B``; vPDQ first has
swscale convert each decoded YUV frame to RGB24 (BT.601 matrix, limited range, whatever the
stream says). framescan hashes the decoded Y plane directly, without building RGB. The two
relate as follows:

* swscale's limited-range BT.601 inverse gives ``R, G, B = 1.164 (Y - 16) + chroma terms``, and
  the 0.299/0.587/0.114 weights are exactly BT.601's, so the chroma terms cancel: the
  reference luma is ``(Y - 16) * 255 / 219`` up to (a) per-channel rounding of R, G, B to
  uint8 (+-0.5 each, noise that the 64x64 downscale averages away) and (b) per-channel
  clipping to 0..255 where a colour is saturated (strong reds and blues; there the chroma
  terms no longer cancel). BT.709 streams are converted with the same BT.601 matrix by vPDQ,
  so the same cancellation holds for them.
* The hash bits ignore any positive affine change of luma (DC is dropped and the median test
  is scale-invariant), so ``Y`` and ``(Y - 16) * 255 / 219`` give the same bits up to float
  rounding. The quality score is not invariant: it sums gradients, which the 255/219 expansion
  scales by 1.164. ``luma_range="limited"`` therefore expands limited-range Y to full range
  (clipped to 0..255, like the RGB channels) before hashing, so qualities agree with
  Meta's too; use it for video Y planes and ``"full"`` for luma computed from RGB or JPEG.
* What is left -- saturated-colour clipping and rounding -- is measured in
  ``tests/test_pdq.py::test_y_plane_versus_reference_rgb_luma`` (skimage colour photographs
  through a real yuv420p conversion) and ``tests/test_vpdq.py`` (Meta's vPDQ sample hashes).
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Literal

import numpy as np

from framescan._jit import kernel
from framescan.jarosz import _box_along_cols, _box_along_rows, _decimation_indices

log = logging.getLogger(__name__)

HASH_BITS = 256
HASH_WORDS = 4  # uint64 words per hash
HASH_BYTES = 32
HEX_LENGTH = 64
DOWNSAMPLE_DIM = 64  # the reference's 64x64 image-domain buffer
DCT_DIM = 16  # the 16x16 DCT block the bits come from
MIN_HASHABLE_DIM = 5  # smaller inputs hash to all-zero bits with quality 0, as in the reference
JAROSZ_PASSES = 2  # PDQ_NUM_JAROSZ_XY_PASSES
QUALITY_GRADIENT_DIVISOR = 90  # pdqImageDomainQualityMetric's heuristic scale
MAX_QUALITY = 100

# Limited ("TV", "MPEG") range luma: black at 16, white at 235 (BT.601 / BT.709 8-bit).
LIMITED_RANGE_BLACK = 16.0
LIMITED_RANGE_SPAN = 219.0
FULL_RANGE_MAX = 255.0

# The reference's RGB->luma weights (float32 in pdqhashing.cpp).
LUMA_FROM_RGB = (np.float32(0.299), np.float32(0.587), np.float32(0.114))

LumaRange = Literal["full", "limited"]

#: Names of the 8 dihedral variants, in the order ``pdq_hash_dihedral`` returns them
#: (the reference's ``pdqDihedralHash256esFromFloatLuma`` argument order).
DIHEDRAL_NAMES = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flipplus1",
    "flipminus1",
)


def _dct_matrix() -> np.ndarray:
    """The reference's 16x64 DCT matrix, rounded the way it rounds (float scale, double cosine)."""
    num_cols = DOWNSAMPLE_DIM
    scale = float(np.float32(math.sqrt(2.0 / num_cols)))
    out = np.empty((DCT_DIM, num_cols), dtype=np.float32)
    for i in range(DCT_DIM):
        for j in range(num_cols):
            out[i, j] = np.float32(scale * math.cos((math.pi / 2.0 / num_cols) * (i + 1) * (2 * j + 1)))
    return out


DCT_MATRIX = _dct_matrix()
DCT_MATRIX.setflags(write=False)


# ---------------------------------------------------------------------------------------------
# Kernels (the Jarosz downscale's are in framescan.jarosz). Each has a plain NumPy twin in
# tests/naive_pdq.py.


@kernel()
def _fill_float_luma(src, out, limited):  # pragma: no cover - compiled
    """Copy a (possibly strided) uint8/float32 luma array into a contiguous float32 buffer.

    With ``limited`` the values are expanded from limited range (16..235) to 0..255 and
    clipped, like swscale's YUV->RGB step the reference's luma is computed from.
    """
    rows, cols = out.shape
    if limited:
        black = np.float32(LIMITED_RANGE_BLACK)
        scale = np.float32(FULL_RANGE_MAX / LIMITED_RANGE_SPAN)
        lo = np.float32(0.0)
        hi = np.float32(FULL_RANGE_MAX)
        for i in range(rows):
            for j in range(cols):
                v = (np.float32(src[i, j]) - black) * scale
                if v < lo:
                    v = lo
                elif v > hi:
                    v = hi
                out[i, j] = v
    else:
        for i in range(rows):
            for j in range(cols):
                out[i, j] = np.float32(src[i, j])


@kernel()
def _quality(buf):  # pragma: no cover - compiled
    """``pdqImageDomainQualityMetric``: truncated percent gradients summed, / 90, capped at 100."""
    n = buf.shape[0]
    hundred = np.float32(100.0)
    full = np.float32(FULL_RANGE_MAX)
    gradient_sum = 0
    for i in range(n - 1):
        for j in range(n):
            d = int(((buf[i, j] - buf[i + 1, j]) * hundred) / full)
            gradient_sum += abs(d)
    for i in range(n):
        for j in range(n - 1):
            d = int(((buf[i, j] - buf[i, j + 1]) * hundred) / full)
            gradient_sum += abs(d)
    quality = gradient_sum // QUALITY_GRADIENT_DIVISOR
    if quality > MAX_QUALITY:
        quality = MAX_QUALITY
    return quality


@kernel()
def _mul_transposed(x, y, out):  # pragma: no cover - compiled
    """``out = X Y^T`` in float32, each sum over ``k`` ascending (the reference's order)."""
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            s = np.float32(0.0)
            for k in range(x.shape[1]):
                s += x[i, k] * y[j, k]
            out[i, j] = s


@kernel()
def _dct64_to_16(a, d, out):  # pragma: no cover - compiled
    """``B = D A D^T`` with the reference's float32 summation order (k ascending)."""
    t = np.empty((DCT_DIM, DOWNSAMPLE_DIM), dtype=np.float32)
    _mul_transposed(d, a.T, t)  # D A
    _mul_transposed(t, d, out)  # (D A) D^T


@kernel()
def _torben_median(m):  # pragma: no cover - compiled
    """Torben Mogensen's median (N. Devillard's code, as the reference uses it)."""
    n = m.size
    lo = m[0]
    hi = m[0]
    for i in range(1, n):
        if m[i] < lo:
            lo = m[i]
        if m[i] > hi:
            hi = m[i]
    half = (n + 1) // 2
    two = np.float32(2.0)
    guess = lo
    less = 0
    greater = 0
    equal = 0
    max_lt = lo
    min_gt = hi
    while True:
        guess = (lo + hi) / two
        less = 0
        greater = 0
        equal = 0
        max_lt = lo
        min_gt = hi
        for i in range(n):
            v = m[i]
            if v < guess:
                less += 1
                if v > max_lt:
                    max_lt = v
            elif v > guess:
                greater += 1
                if v < min_gt:
                    min_gt = v
            else:
                equal += 1
        if less <= half and greater <= half:
            break
        elif less > greater:
            hi = max_lt
        else:
            lo = min_gt
    if less >= half:
        return max_lt
    elif less + equal >= half:
        return guess
    return min_gt


@kernel()
def _dct_to_bits(dct, out):  # pragma: no cover - compiled
    """Bit ``16 i + j`` set when ``dct[i, j]`` > median; packed into 4 big-endian uint64 words."""
    median = _torben_median(dct.ravel())
    for w in range(HASH_WORDS):
        out[w] = np.uint64(0)
    for i in range(DCT_DIM):
        for j in range(DCT_DIM):
            if dct[i, j] > median:
                k = i * DCT_DIM + j
                w = HASH_WORDS - 1 - k // 64
                out[w] |= np.uint64(1) << np.uint64(k % 64)


@kernel()
def _dihedral_dct(a, which, out):  # pragma: no cover - compiled
    """DCT of a rotated/flipped image from the original's (``dct16OriginalTo*``).

    ``which`` indexes ``DIHEDRAL_NAMES``.
    """
    for i in range(DCT_DIM):
        for j in range(DCT_DIM):
            v = a[i, j]
            if which == 0:  # original
                out[i, j] = v
            elif which == 1:  # rotate90
                out[j, i] = v if (j & 1) else -v
            elif which == 2:  # rotate180
                out[i, j] = -v if ((i + j) & 1) else v
            elif which == 3:  # rotate270
                out[j, i] = v if (i & 1) else -v
            elif which == 4:  # flipx
                out[i, j] = v if (i & 1) else -v
            elif which == 5:  # flipy
                out[i, j] = v if (j & 1) else -v
            elif which == 6:  # flipplus1
                out[j, i] = v
            else:  # flipminus1
                out[j, i] = -v if ((i + j) & 1) else v


@kernel()
def _pdq_dct(buf1, buf2, sums, compact, dct_matrix, always_filter, dct_out):  # pragma: no cover - compiled
    """Float luma (in ``buf1``, clobbered) -> 16x16 DCT in ``dct_out``; returns the quality.

    ``compact`` is a (rows, 64) scratch buffer. The Jarosz passes are the reference's, except
    that the last row and column passes compute only the 64 columns and 64 rows decimation
    samples (same operations on those, so the same values). ``always_filter`` reproduces the
    dihedral entry point, which blurs even 64x64 inputs (the single-hash entry point copies a
    64x64 input as it is).
    """
    rows, cols = buf1.shape
    small = np.empty((DOWNSAMPLE_DIM, DOWNSAMPLE_DIM), dtype=np.float32)
    if rows == DOWNSAMPLE_DIM and cols == DOWNSAMPLE_DIM and not always_filter:
        for i in range(rows):
            for j in range(cols):
                small[i, j] = buf1[i, j]
    else:
        window_along_rows = (cols + 2 * DOWNSAMPLE_DIM - 1) // (2 * DOWNSAMPLE_DIM)
        window_along_cols = (rows + 2 * DOWNSAMPLE_DIM - 1) // (2 * DOWNSAMPLE_DIM)
        every = np.empty(0, dtype=np.int64)
        row_idx = np.empty(DOWNSAMPLE_DIM, dtype=np.int64)
        col_idx = np.empty(DOWNSAMPLE_DIM, dtype=np.int64)
        _decimation_indices(rows, DOWNSAMPLE_DIM, row_idx)
        _decimation_indices(cols, DOWNSAMPLE_DIM, col_idx)
        for _ in range(JAROSZ_PASSES - 1):
            _box_along_rows(buf1, buf2, window_along_rows, every)
            _box_along_cols(buf2, buf1, window_along_cols, sums, every)
        _box_along_rows(buf1, compact, window_along_rows, col_idx)
        _box_along_cols(compact, small, window_along_cols, sums[:DOWNSAMPLE_DIM], row_idx)
    quality = _quality(small)
    _dct64_to_16(small, dct_matrix, dct_out)
    return quality


@kernel()
def _popcount64(x):  # pragma: no cover - compiled
    """Bit count of a uint64. LLVM recognises this loop (Kernighan's) and emits one ``popcnt``;
    unlike the SWAR multiply it also runs warning-free as plain Python (NUMBA_DISABLE_JIT=1)."""
    count = 0
    while x:
        x &= x - np.uint64(1)
        count += 1
    return count


@kernel()
def _hamming_rows(a, b, out):  # pragma: no cover - compiled
    """``out[i]`` = Hamming distance between hash rows ``a[i]`` and ``b[i]`` (b may broadcast)."""
    n = a.shape[0]
    nb = b.shape[0]
    for i in range(n):
        bi = i if nb > 1 else 0
        d = 0
        for w in range(HASH_WORDS):
            d += _popcount64(a[i, w] ^ b[bi, w])
        out[i] = d


# ---------------------------------------------------------------------------------------------
# Public API.

_scratch = threading.local()


def _buffers(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-thread float32 work buffers, reused while the frame size stays the same."""
    key = (rows, cols)
    if getattr(_scratch, "key", None) != key:
        _scratch.key = key
        _scratch.buf1 = np.empty((rows, cols), dtype=np.float32)
        _scratch.buf2 = np.empty((rows, cols), dtype=np.float32)
        _scratch.sums = np.empty(max(cols, DOWNSAMPLE_DIM), dtype=np.float32)
        _scratch.compact = np.empty((rows, DOWNSAMPLE_DIM), dtype=np.float32)
    return _scratch.buf1, _scratch.buf2, _scratch.sums, _scratch.compact


def _check_luma(luma: np.ndarray, luma_range: str) -> np.ndarray:
    if not isinstance(luma, np.ndarray):
        raise TypeError(f"luma must be a numpy array, got {type(luma).__name__}")
    if luma.ndim != 2:
        raise ValueError(
            f"luma must be 2-D (rows, cols), got {luma.shape = }; "
            "for RGB use luma_from_rgb(image), for a PyAV frame use the Y plane"
        )
    if luma.dtype not in (np.uint8, np.float32):
        raise TypeError(f"luma must be uint8 or float32, got {luma.dtype = }; convert with luma.astype(np.float32)")
    if luma_range not in ("full", "limited"):
        raise ValueError(f"luma_range must be 'full' or 'limited', got {luma_range!r}")
    return luma


def _dct16(luma: np.ndarray, luma_range: str, always_filter: bool) -> tuple[np.ndarray | None, int]:
    luma = _check_luma(luma, luma_range)
    rows, cols = luma.shape
    if rows < MIN_HASHABLE_DIM or cols < MIN_HASHABLE_DIM:
        return None, 0
    buf1, buf2, sums, compact = _buffers(rows, cols)
    _fill_float_luma(luma, buf1, luma_range == "limited")
    dct = np.empty((DCT_DIM, DCT_DIM), dtype=np.float32)
    quality = _pdq_dct(buf1, buf2, sums, compact, DCT_MATRIX, always_filter, dct)
    return dct, int(quality)


def pdq_float(luma: np.ndarray, *, luma_range: LumaRange = "full") -> tuple[np.ndarray, int]:
    """The 16x16 float32 DCT block the hash bits come from, and the quality (0-100).

    Inputs smaller than 5x5 give an all-zero block and quality 0.
    """
    dct, quality = _dct16(luma, luma_range, always_filter=False)
    if dct is None:
        return np.zeros((DCT_DIM, DCT_DIM), dtype=np.float32), 0
    return dct, quality


def pdq_hash(luma: np.ndarray, *, luma_range: LumaRange = "full") -> tuple[np.ndarray, int]:
    """PDQ hash of a 2-D luma array: ``((4,) uint64 hash, quality 0-100)``.

    ``luma`` is uint8 or float32, any strides (a PyAV Y plane sliced to ``[:, :width]`` works
    without a copy). ``luma_range="limited"`` expands 16..235 video luma to 0..255 first (see
    the module docstring); ``"full"`` hashes the values as they are, as the reference does
    with luma it computed from RGB.
    """
    dct, quality = _dct16(luma, luma_range, always_filter=False)
    out = np.zeros(HASH_WORDS, dtype=np.uint64)
    if dct is not None:
        _dct_to_bits(dct, out)
    return out, quality


def pdq_hash_dihedral(luma: np.ndarray, *, luma_range: LumaRange = "full") -> tuple[np.ndarray, int]:
    """The 8 dihedral PDQ hashes, ``((8, 4) uint64, quality)``, ordered as ``DIHEDRAL_NAMES``.

    Like the reference's dihedral entry point this always blurs, even a 64x64 input, so its
    ``original`` row can differ from ``pdq_hash`` for exactly-64x64 inputs.
    """
    dct, quality = _dct16(luma, luma_range, always_filter=True)
    out = np.zeros((len(DIHEDRAL_NAMES), HASH_WORDS), dtype=np.uint64)
    if dct is None:
        return out, quality
    aux = np.empty_like(dct)
    for which in range(len(DIHEDRAL_NAMES)):
        _dihedral_dct(dct, which, aux)
        _dct_to_bits(aux, out[which])
    return out, quality


def luma_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """The reference's float32 luma ``0.299 R + 0.587 G + 0.114 B`` of an (H, W, 3) uint8 image."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got {rgb.shape = }")
    r, g, b = (rgb[:, :, c].astype(np.float32) for c in range(3))
    cr, cg, cb = LUMA_FROM_RGB
    return cr * r + cg * g + cb * b


# ---------------------------------------------------------------------------------------------
# Representations and distances.


def hash_to_hex(words: np.ndarray) -> str:
    """64 lowercase hex digits, Meta's text form."""
    w = np.asarray(words, dtype=np.uint64).reshape(HASH_WORDS)
    return "".join(f"{int(x):016x}" for x in w)


def hex_to_hash(text: str) -> np.ndarray:
    """Parse Meta's 64-hex-digit form into a ``(4,)`` uint64 hash."""
    text = text.strip()
    if len(text) != HEX_LENGTH:
        raise ValueError(f"a PDQ hash is {HEX_LENGTH} hex digits, got {len(text)}: {text!r}")
    try:
        raw = bytes.fromhex(text)
    except ValueError as ex:
        raise ValueError(f"not a hex PDQ hash: {text!r}") from ex
    return bytes_to_hash(raw)


def hash_to_bytes(words: np.ndarray) -> bytes:
    """32 bytes, most significant first (the same order as the hex form)."""
    return np.asarray(words, dtype=np.uint64).reshape(HASH_WORDS).astype(">u8").tobytes()


def bytes_to_hash(raw: bytes) -> np.ndarray:
    """Inverse of ``hash_to_bytes``."""
    if len(raw) != HASH_BYTES:
        raise ValueError(f"a packed PDQ hash is {HASH_BYTES} bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64)


def hash_to_bits(words: np.ndarray) -> np.ndarray:
    """``(256,)`` uint8 bits, bit 255 first (the order of the hex digits and of ``pdqhash``)."""
    return np.unpackbits(np.frombuffer(hash_to_bytes(words), dtype=np.uint8))


def bits_to_hash(bits: np.ndarray) -> np.ndarray:
    """Inverse of ``hash_to_bits`` (also takes ``pdqhash.compute``'s 256-element vector)."""
    bits = np.asarray(bits).astype(np.uint8).reshape(HASH_BITS)
    return bytes_to_hash(np.packbits(bits).tobytes())


def hamming_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray | int:
    """Hamming distance between two hashes (int) or rows of ``(N, 4)`` arrays (``(N,)`` int32).

    ``b`` may be a single hash, compared with every row of ``a``.
    """
    a2 = np.ascontiguousarray(a, dtype=np.uint64).reshape(-1, HASH_WORDS)
    b2 = np.ascontiguousarray(b, dtype=np.uint64).reshape(-1, HASH_WORDS)
    if b2.shape[0] not in (1, a2.shape[0]):
        raise ValueError(f"cannot compare {a2.shape = } with {b2.shape = }")
    out = np.empty(a2.shape[0], dtype=np.int32)
    _hamming_rows(a2, b2, out)
    if np.ndim(a) == 1 and np.ndim(b) == 1:
        return int(out[0])
    return out


@kernel()
def _any_within(a, b, radius, out):  # pragma: no cover - compiled
    """``out[i]`` = some row of ``b`` is within ``radius`` bits of ``a[i]`` (brute force)."""
    for i in range(a.shape[0]):
        found = False
        for j in range(b.shape[0]):
            d = 0
            for w in range(HASH_WORDS):
                d += _popcount64(a[i, w] ^ b[j, w])
            if d <= radius:
                found = True
                break
        out[i] = found


def any_within(a: np.ndarray, b: np.ndarray, radius: int) -> np.ndarray:
    """``(N,)`` bool: whether each hash of ``a`` (N, 4) has a hash of ``b`` (M, 4) within ``radius``."""
    a2 = np.ascontiguousarray(a, dtype=np.uint64).reshape(-1, HASH_WORDS)
    b2 = np.ascontiguousarray(b, dtype=np.uint64).reshape(-1, HASH_WORDS)
    out = np.zeros(a2.shape[0], dtype=np.bool_)
    if a2.shape[0] and b2.shape[0]:
        _any_within(a2, b2, int(radius), out)
    return out
