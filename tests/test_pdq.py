"""framescan.pdq: kernels vs NumPy references, bit-compatibility with Meta's PDQ (pdqhash)."""

from __future__ import annotations

import naive_pdq as naive
import numpy as np
import pytest

from framescan import pdq

#: Odd, even, tiny, exactly-64 and larger-than-128 sizes (window sizes 1, 2, 3 ...).
SHAPES = [(5, 7), (13, 64), (64, 64), (63, 65), (127, 129), (130, 257), (301, 199)]

#: skimage photographs hashed against the pdqhash binding of Meta's C++ PDQ.
PHOTOS = ["astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "horse", "moon", "page", "text"]

#: framescan vs pdqhash on the same float32 luma: the arithmetic is the reference's, op for op,
#: so we expect identical bits; allow a couple of bits per image in case a compiler somewhere
#: reorders float operations, but require most images to be bit-for-bit equal.
PDQHASH_MAX_BITS = 2
PDQHASH_MIN_EXACT_SHARE = 0.8

#: Y plane (limited range, expanded) vs vPDQ's YUV->RGB24->luma route on the same yuv420p frame.
#: The only differences are RGB rounding and clipping of saturated colours: photographs come out
#: identical or nearly so; the synthetic colour wheel (fully saturated) is the worst case. Only
#: hashes of usable quality (>= 50, the matching threshold) are held to these bounds: in flat,
#: low-quality frames the +-0.5 rounding is as large as the signal and many bits flip.
Y_VS_RGB_ROUTE_MAX_BITS_PHOTO = 6
Y_VS_RGB_ROUTE_MAX_BITS_SATURATED = 16
USABLE_QUALITY = 50
#: Qualities are computed from gradients; with the 255/219 expansion they agree within rounding.
Y_VS_RGB_ROUTE_MAX_QUALITY_DIFF = 2


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _smooth_image(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """A random but structured uint8 image (sum of low-frequency waves plus noise)."""
    rng = _rng(seed)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    img = np.zeros((rows, cols))
    for _ in range(6):
        fx, fy, ph = rng.uniform(0.5, 6) / cols, rng.uniform(0.5, 6) / rows, rng.uniform(0, 6.3)
        img += rng.uniform(10, 40) * np.sin(2 * np.pi * (fx * x + fy * y) + ph)
    img += rng.normal(0, 6, size=img.shape) + 128
    return np.clip(img, 0, 255).astype(np.uint8)


# -- kernels vs references ---------------------------------------------------------------------


@pytest.mark.parametrize("limited", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_fill_float_luma_matches_reference_on_strided_views(dtype, limited):
    base = (_rng(1).random((37, 80)) * 255).astype(dtype)
    view = base[3:, 5:64:2]  # non-contiguous rows and columns
    out = np.empty(view.shape, dtype=np.float32)
    pdq._fill_float_luma(view, out, limited)
    np.testing.assert_allclose(out, naive.fill_float_luma(view, limited), atol=naive.FILL_ATOL, rtol=0)


NO_TARGETS = np.empty(0, dtype=np.int64)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("window", [1, 2, 3, 4])
def test_box_filters_match_window_means(shape, window):
    x = (_rng(2).random(shape) * 255).astype(np.float32)
    rows_out = np.empty_like(x)
    cols_out = np.empty_like(x)
    pdq._box_along_rows(x, rows_out, window, NO_TARGETS)
    pdq._box_along_cols(x, cols_out, window, np.empty(shape[1], dtype=np.float32), NO_TARGETS)
    np.testing.assert_allclose(rows_out, naive.box_1d_along_rows(x, window), atol=naive.BOX_ATOL, rtol=0)
    np.testing.assert_allclose(cols_out, naive.box_1d_along_cols(x, window), atol=naive.BOX_ATOL, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_sampled_box_filters_equal_the_dense_ones_at_the_decimation_points(shape):
    """The last Jarosz pass computes only what decimation reads: the same bits as dense + pick."""
    x = (_rng(7).random(shape) * 255).astype(np.float32)
    rows, cols = shape
    row_idx, col_idx = np.empty(64, np.int64), np.empty(64, np.int64)
    pdq._decimation_indices(rows, 64, row_idx)
    pdq._decimation_indices(cols, 64, col_idx)
    np.testing.assert_array_equal(row_idx, naive.decimation_indices(rows))
    np.testing.assert_array_equal(col_idx, naive.decimation_indices(cols))
    window = naive.jarosz_window(cols)
    dense = np.empty_like(x)
    pdq._box_along_rows(x, dense, window, NO_TARGETS)
    sampled = np.empty((rows, 64), np.float32)
    pdq._box_along_rows(x, sampled, window, col_idx)
    np.testing.assert_array_equal(sampled, dense[:, col_idx])
    window = naive.jarosz_window(rows)
    dense_cols = np.empty_like(sampled)
    sums = np.empty(64, np.float32)
    pdq._box_along_cols(sampled, dense_cols, window, sums, NO_TARGETS)
    picked = np.empty((64, 64), np.float32)
    pdq._box_along_cols(sampled, picked, window, sums, row_idx)
    np.testing.assert_array_equal(picked, dense_cols[row_idx])


@pytest.mark.parametrize("shape", SHAPES)
def test_quality_matches_reference(shape):
    small = naive.decimate((_rng(3).random(shape) * 255).astype(np.float32)).astype(np.float32)
    smooth = _smooth_image(64, 64, seed=shape[0]).astype(np.float32)
    for buf in (small, smooth, np.full((64, 64), 7.0, np.float32)):
        assert pdq._quality(buf) == naive.quality(buf)


def test_dct_matches_matrix_product():
    a = (_rng(4).random((64, 64)) * 255).astype(np.float32)
    out = np.empty((16, 16), dtype=np.float32)
    pdq._dct64_to_16(a, pdq.DCT_MATRIX, out)
    np.testing.assert_allclose(out, naive.dct64_to_16(a), atol=naive.DCT_ATOL, rtol=0)


@pytest.mark.parametrize("seed", range(5))
def test_torben_median_is_the_lower_median(seed):
    rng = _rng(seed)
    cases = [
        rng.normal(size=256).astype(np.float32),
        rng.integers(-3, 4, size=256).astype(np.float32),  # many ties
        np.zeros(256, np.float32),
        rng.normal(size=255).astype(np.float32),  # odd count
    ]
    for m in cases:
        assert pdq._torben_median(m) == naive.lower_median(m)


@pytest.mark.parametrize("seed", range(3))
def test_bits_match_reference(seed):
    dct = _rng(seed).normal(size=(16, 16)).astype(np.float32)
    dct[0, :4] = dct[1, 1]  # ties at the median must not set bits
    out = np.empty(4, dtype=np.uint64)
    pdq._dct_to_bits(dct, out)
    np.testing.assert_array_equal(out, naive.bits_from_dct(dct))


@pytest.mark.parametrize("which", range(len(pdq.DIHEDRAL_NAMES)))
def test_dihedral_dct_equals_dct_of_transformed_image(which):
    a = (_rng(5).random((64, 64)) * 255).astype(np.float32)
    base = np.empty((16, 16), np.float32)
    pdq._dct64_to_16(a, pdq.DCT_MATRIX, base)
    out = np.empty_like(base)
    pdq._dihedral_dct(base, which, out)
    transformed = naive.DIHEDRAL_IMAGE_OPS[pdq.DIHEDRAL_NAMES[which]](a)
    np.testing.assert_allclose(out, naive.dct64_to_16(transformed), atol=naive.DCT_ATOL, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("limited", [False, True])
def test_pipeline_matches_float64_reference(shape, limited):
    img = _smooth_image(*shape, seed=shape[1])
    dct, quality = pdq.pdq_float(img, luma_range="limited" if limited else "full")
    ref_dct, ref_quality = naive.pdq_dct(img, limited=limited)
    np.testing.assert_allclose(dct, ref_dct, atol=naive.PIPELINE_DCT_ATOL, rtol=0)
    assert quality == ref_quality


@pytest.mark.parametrize("shape", [(64, 64), (63, 65)])
def test_dihedral_entry_point_always_filters(shape):
    """The reference's dihedral entry point blurs even a 64x64 input; the single-hash one does not."""
    img = _smooth_image(*shape, seed=3)
    dct, quality = pdq._dct16(img, "full", always_filter=True)
    ref_dct, ref_quality = naive.pdq_dct(img, always_filter=True)
    np.testing.assert_allclose(dct, ref_dct, atol=naive.PIPELINE_DCT_ATOL, rtol=0)
    assert quality == ref_quality


def test_strided_y_plane_view_hashes_like_a_copy():
    padded = _smooth_image(120, 192, seed=9)  # like a PyAV plane: (height, line_size)
    view = padded[:, :170]
    assert not view.flags.c_contiguous
    h_view, q_view = pdq.pdq_hash(view, luma_range="limited")
    h_copy, q_copy = pdq.pdq_hash(np.ascontiguousarray(view), luma_range="limited")
    np.testing.assert_array_equal(h_view, h_copy)
    assert q_view == q_copy


def test_float32_and_uint8_inputs_agree():
    img = _smooth_image(90, 160, seed=11)
    np.testing.assert_array_equal(pdq.pdq_hash(img)[0], pdq.pdq_hash(img.astype(np.float32))[0])


def test_too_small_input_hashes_to_zero_with_quality_zero():
    h, q = pdq.pdq_hash(np.full((4, 100), 200, np.uint8))
    assert q == 0 and not h.any()
    hashes, q = pdq.pdq_hash_dihedral(np.full((100, 4), 200, np.uint8))
    assert q == 0 and not hashes.any()


@pytest.mark.parametrize(
    ("luma", "luma_range", "error"),
    [
        (np.zeros((10, 10, 3), np.uint8), "full", ValueError),  # RGB, not luma
        (np.zeros((10, 10), np.float64), "full", TypeError),  # unsupported dtype
        (np.zeros((10, 10), np.uint8), "tv", ValueError),  # unknown range name
        ([[0] * 10] * 10, "full", TypeError),  # not an array
    ],
)
def test_bad_inputs_are_rejected_with_a_fix(luma, luma_range, error):
    with pytest.raises(error):
        pdq.pdq_hash(luma, luma_range=luma_range)


def test_popcount_and_hamming_match_reference():
    rng = _rng(6)
    a = rng.integers(0, 2**64, size=(50, 4), dtype=np.uint64)
    b = rng.integers(0, 2**64, size=(50, 4), dtype=np.uint64)
    for x in [*a[:, 0], np.uint64(0), np.uint64(2**64 - 1)]:
        assert pdq._popcount64(x) == naive.popcount(x)
    d = pdq.hamming_distance(a, b)
    assert list(d) == [naive.hamming(x, y) for x, y in zip(a, b, strict=True)]
    assert pdq.hamming_distance(a[0], b[0]) == naive.hamming(a[0], b[0])
    hits = pdq.any_within(a, np.concatenate([b, a[:3]]), 31)
    assert hits[:3].all() and hits.sum() == sum(any(naive.hamming(x, y) <= 31 for y in b) for x in a) + 3


# -- representation ----------------------------------------------------------------------------


def test_hex_bytes_and_bits_round_trip_in_metas_convention():
    text = "e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c"  # chair frame 0 (Meta)
    h = pdq.hex_to_hash(text)
    assert h.dtype == np.uint64 and h.shape == (4,)
    assert pdq.hash_to_hex(h) == text
    assert pdq.hash_to_bytes(h) == bytes.fromhex(text)
    assert pdq.bytes_to_hash(bytes.fromhex(text)).tolist() == h.tolist()
    bits = pdq.hash_to_bits(h)
    assert "".join(map(str, bits)) == bin(int(text, 16))[2:].zfill(256)
    np.testing.assert_array_equal(pdq.bits_to_hash(bits), h)
    # Meta's Hash256: word w[i] = row i of the 16x16 block, printed last-row first.
    assert int(text[-4:], 16) == int(h[3] & np.uint64(0xFFFF))


@pytest.mark.parametrize("bad", ["", "00", "zz" * 32, "0" * 63])
def test_bad_hex_is_rejected(bad):
    with pytest.raises(ValueError):
        pdq.hex_to_hash(bad)


# -- Meta's reference --------------------------------------------------------------------------


def _photo_rgb(name: str) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def test_matches_pdqhash_on_photographs(capsys):
    pdqhash = pytest.importorskip("pdqhash")
    rows = []
    for name in PHOTOS:
        rgb = _photo_rgb(name)
        ref_bits, ref_quality = pdqhash.compute(rgb)
        ref_dihedral, _ = pdqhash.compute_dihedral(rgb)
        # pdqhash's own luma step (float64 maths, then float32), so both hash the same values.
        gray = (rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114).astype(np.float32)
        h, quality = pdq.pdq_hash(gray)
        dihedral, _ = pdq.pdq_hash_dihedral(gray)
        d = pdq.hamming_distance(h, pdq.bits_to_hash(ref_bits))
        dd = max(pdq.hamming_distance(dihedral[i], pdq.bits_to_hash(ref_dihedral[i])) for i in range(len(dihedral)))
        rows.append((name, d, dd, quality, ref_quality))
    worst = max(max(r[1], r[2]) for r in rows)
    with capsys.disabled():
        print(f"\nframescan PDQ vs pdqhash on {len(rows)} skimage photographs: worst distance {worst} bits")
        for name, d, dd, q, rq in rows:
            print(f"  {name:10s} hash {d:2d}  dihedral max {dd:2d}  quality {q}/{rq}")
    assert worst <= PDQHASH_MAX_BITS
    assert np.mean([r[1] == 0 and r[2] == 0 for r in rows]) >= PDQHASH_MIN_EXACT_SHARE
    assert all(r[3] == r[4] for r in rows)


def test_uint8_grey_input_matches_pdqhash():
    pdqhash = pytest.importorskip("pdqhash")
    grey = _photo_rgb("camera")[:, :, 0]
    ref_bits, ref_quality = pdqhash.compute(np.stack([grey] * 3, axis=-1))
    h, quality = pdq.pdq_hash(grey)
    assert pdq.hamming_distance(h, pdq.bits_to_hash(ref_bits)) <= PDQHASH_MAX_BITS
    assert quality == ref_quality


def _yuv420p(rgb: np.ndarray):
    import av

    rgb = np.ascontiguousarray(rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2])
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    plane = frame.planes[0]
    y = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width]
    return frame, y


def test_y_plane_versus_reference_rgb_luma(capsys):
    """What hashing the Y plane changes compared with vPDQ's YUV -> RGB24 -> luma route.

    Each image is converted to yuv420p (limited-range BT.601, as an encoder would), then hashed
    (a) from its Y plane as framescan does and (b) as vPDQ does: swscale back to RGB24, then
    0.299 R + 0.587 G + 0.114 B. A low-contrast copy of each image shows the quality effect.
    """
    from skimage import data

    images = {name: _photo_rgb(name) for name in ("astronaut", "coffee", "chelsea", "rocket")}
    images["colorwheel (saturated)"] = np.ascontiguousarray(data.colorwheel()[..., :3])
    rows = []
    for name, rgb in images.items():
        for contrast in (1.0, 0.3):
            img = np.clip((rgb.astype(np.float32) - 128) * contrast + 128, 0, 255).astype(np.uint8)
            frame, y = _yuv420p(img)
            h_lim, q_lim = pdq.pdq_hash(y, luma_range="limited")
            h_full, q_full = pdq.pdq_hash(y, luma_range="full")
            h_rgb, q_rgb = pdq.pdq_hash(pdq.luma_from_rgb(frame.to_ndarray(format="rgb24")))
            rows.append((name, contrast, pdq.hamming_distance(h_lim, h_rgb), q_lim, q_rgb, q_full, h_lim, h_full))
    with capsys.disabled():
        print("\nY plane vs vPDQ's RGB luma (bits; quality Y-limited / RGB route / Y unexpanded):")
        for name, contrast, d, q_lim, q_rgb, q_full, _, _ in rows:
            print(f"  {name:24s} contrast {contrast:4.2f}: {d:2d} bits, quality {q_lim}/{q_rgb}/{q_full}")
    for name, _, d, q_lim, q_rgb, q_full, h_lim, h_full in rows:
        limit = Y_VS_RGB_ROUTE_MAX_BITS_SATURATED if "saturated" in name else Y_VS_RGB_ROUTE_MAX_BITS_PHOTO
        assert d <= limit or q_rgb < USABLE_QUALITY, name
        assert abs(q_lim - q_rgb) <= Y_VS_RGB_ROUTE_MAX_QUALITY_DIFF, name
        # The expansion is affine: the bits do not depend on it (up to float rounding) ...
        assert pdq.hamming_distance(h_lim, h_full) <= PDQHASH_MAX_BITS, name
        # ... but the quality does: unexpanded limited-range luma under-reports it.
        assert q_full <= q_lim, name
    low_contrast = [r for r in rows if r[1] < 1]
    assert any(r[5] < r[3] for r in low_contrast)
