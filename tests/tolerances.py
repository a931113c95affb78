"""Every numeric tolerance the tests use, with the reason, in one place."""

from __future__ import annotations

import numpy as np

#: Kernel vs NumPy reference: same maths, float32 in the kernel vs float64 in NumPy; values
#: are O(1) after scaling by 1/255, so a few float32 ulps.
KERNEL_ATOL = 1e-5

#: framescan vs NudeNet on the same frame (the issue's parity criterion). The differences
#: come from NudeNet rounding to uint8 after colour conversion and after resize, and from
#: framescan interpolating YUV before converting to RGB.
PARITY_MIN_IOU = 0.9
PARITY_MAX_SCORE_DIFF = 0.02


def assert_kernel_close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape, f"{actual.shape = } != {expected.shape = }"
    err = np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max() if actual.size else 0.0
    assert err <= KERNEL_ATOL, f"max abs difference {err} > {KERNEL_ATOL}"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two x1, y1, x2, y2 boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


#: An evidence frame (framescan.evidence: a JPEG at quality 85, shrunk with area averaging of the
#: luma and linear chroma) against the same frame decoded again by PyAV and shrunk with cv2's area
#: averaging, outside the boxes: mean absolute difference per channel, in 8-bit levels.
EVIDENCE_FRAME_MAX_MEAN_DIFF = 3.0  # measured 1.5; the frames 0.5 s away: 28-34
