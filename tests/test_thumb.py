"""The thumbnail kernel against its NumPy reference, on random planes of odd and even sizes."""

from __future__ import annotations

import numpy as np
import pytest

from framescan.thumb import difference, thumbnail, thumbnail_reference


@pytest.mark.parametrize("h,w", [(1, 1), (3, 5), (15, 16), (17, 33), (240, 320), (721, 405), (1281, 719)])
@pytest.mark.parametrize("step", [1, 2, 3])
def test_thumbnail_matches_reference(h: int, w: int, step: int) -> None:
    rng = np.random.default_rng(h * 1000 + w + step)
    y = rng.integers(0, 256, (h, w), dtype=np.uint8)
    np.testing.assert_allclose(thumbnail(y, 16, step), thumbnail_reference(y, 16, step), atol=1e-3)


def test_thumbnail_reads_strided_views_without_copying() -> None:
    rng = np.random.default_rng(7)
    padded = rng.integers(0, 256, (100, 160), dtype=np.uint8)
    view = padded[:90, :150]  # a decoder plane with line padding
    assert not view.flags.c_contiguous
    np.testing.assert_allclose(thumbnail(view), thumbnail_reference(view), atol=1e-3)


def test_difference_separates_near_duplicates_from_changes() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 256, (360, 640), dtype=np.uint8)
    noisy = np.clip(y.astype(np.int16) + rng.integers(-2, 3, y.shape), 0, 255).astype(np.uint8)
    shifted = np.roll(y, 40, axis=1)
    a, b, c = thumbnail(y), thumbnail(noisy), thumbnail(shifted)
    assert difference(a, b) < 0.5
    assert difference(a, c) > 5
    assert difference(a, a) == 0.0


def test_thumbnail_rejects_bad_planes() -> None:
    with pytest.raises(ValueError):
        thumbnail(np.zeros((0, 4), np.uint8))
    with pytest.raises(ValueError):
        thumbnail(np.zeros((4, 4), np.float32))
