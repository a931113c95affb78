"""The fused Numba kernel against its NumPy reference, on random frames of odd and even sizes."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import assert_kernel_close

from framescan.errors import ConfigError
from framescan.frames import ColorInfo, YuvFrame
from framescan.inputspec import InputSpec, ResizeMode, plan
from framescan.preprocess import batch_view, preprocess_into, preprocess_reference

SIZES = [(1294, 964), (720, 1280), (1280, 720), (33, 17), (17, 33), (1, 1), (2, 2), (5, 3), (320, 320), (640, 2)]


def random_frame(
    w: int, h: int, rotation: int = 0, color: ColorInfo | None = None, seed: int = 0, mirror: bool = False
) -> YuvFrame:
    rng = np.random.default_rng(seed)
    ch, cw = (h + 1) // 2, (w + 1) // 2
    # decoder-like padded lines: views on wider buffers
    y = rng.integers(0, 256, (h, w + 13), dtype=np.uint8)[:, :w]
    u = rng.integers(0, 256, (ch, cw + 7), dtype=np.uint8)[:, :cw]
    v = rng.integers(0, 256, (ch, cw + 7), dtype=np.uint8)[:, :cw]
    return YuvFrame(y, u, v, 0, 0.0, rotation, color or ColorInfo(), mirror=mirror)


@pytest.mark.parametrize("w,h", SIZES)
@pytest.mark.parametrize("mode", list(ResizeMode))
@pytest.mark.parametrize("rotation", [0, 90, 180, -90])
@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize("target", [(64, 48, "NCHW"), (37, 23, "NHWC")])
def test_kernel_matches_reference(
    w: int, h: int, mode: ResizeMode, rotation: int, mirror: bool, target: tuple[int, int, str]
) -> None:
    # 37x23 NHWC: odd sizes, and rotated frames' output columns not a multiple of the kernel's
    # 16-column blocks
    frame = random_frame(w, h, rotation, seed=w * 31 + h, mirror=mirror)
    tw, th, layout = target
    spec = InputSpec("x", tw, th, layout, "BGR", resize=mode, pad_value=114)
    out = spec.empty_batch(2)
    geo = preprocess_into(frame, spec, out[1])
    ref, ref_geo = preprocess_reference(frame, spec)
    assert geo == ref_geo
    assert_kernel_close(out[1], ref)
    assert not out[0].any(), "the kernel wrote outside its batch slot"


@pytest.mark.parametrize(
    "color", [ColorInfo("bt601", False), ColorInfo("bt709", False), ColorInfo("bt601", True), ColorInfo("bt709", True)]
)
@pytest.mark.parametrize("layout,channels", [("NCHW", "RGB"), ("NHWC", "RGB"), ("NHWC", "BGR")])
def test_colour_layout_and_normalisation(color: ColorInfo, layout: str, channels: str) -> None:
    frame = random_frame(101, 77, 0, color, seed=7)
    spec = InputSpec(
        "x", 57, 43, layout, channels, scale=1 / 127.5, mean=(1.0, 0.9, 0.8), std=(0.5, 0.6, 0.7), resize="letterbox"
    )
    out = spec.empty_batch(1)
    preprocess_into(frame, spec, out[0])
    ref, _ = preprocess_reference(frame, spec)
    assert_kernel_close(out[0], ref)


def test_reference_colour_matches_opencv_on_flat_colours() -> None:
    """The YUV->RGB maths (BT.601 limited) agrees with OpenCV's conversion of the same pixels."""
    import cv2

    rng = np.random.default_rng(3)
    yuv = rng.integers(16, 236, (8, 8), dtype=np.uint8)
    u = rng.integers(16, 241, (4, 4), dtype=np.uint8)
    v = rng.integers(16, 241, (4, 4), dtype=np.uint8)
    frame = YuvFrame(yuv, u, v, 0, 0.0, 0, ColorInfo("bt601", False))
    spec = InputSpec("x", 8, 8, "NHWC", "RGB", scale=1.0, resize="stretch")
    out = spec.empty_batch(1)[0]
    preprocess_into(frame, spec, out)
    i420 = np.concatenate([yuv.ravel(), u.ravel(), v.ravel()]).reshape(12, 8)
    cv = cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420).astype(np.float32)
    assert np.abs(out - cv).max() <= 2.0  # OpenCV rounds to uint8 with fixed-point coefficients


def test_rotation_makes_the_frame_upright() -> None:
    """A frame stored rotated, with a display rotation, preprocesses like the upright frame."""
    upright = random_frame(40, 24, 0, seed=11)
    y = upright.y
    # store the frame rotated clockwise; display rotation 90 (counter-clockwise) undoes it
    stored_y = np.ascontiguousarray(np.rot90(y, -1))
    stored_u = np.ascontiguousarray(np.rot90(upright.u, -1))
    stored_v = np.ascontiguousarray(np.rot90(upright.v, -1))
    rotated = YuvFrame(stored_y, stored_u, stored_v, 0, 0.0, 90, upright.color)
    assert rotated.upright_size == (40, 24)
    spec = InputSpec("x", 40, 24, "NCHW", "RGB", resize="stretch")
    a, b = spec.empty_batch(1)[0], spec.empty_batch(1)[0]
    preprocess_into(upright, spec, a)
    preprocess_into(rotated, spec, b)
    # identity resize: luma identical; chroma sites differ by one pixel on odd rows after rotation
    assert np.array_equal(a.shape, b.shape)
    ref_a, _ = preprocess_reference(upright, spec)
    assert_kernel_close(a, ref_a)
    ya = 0.299 * a[0] + 0.587 * a[1] + 0.114 * a[2]
    yb = 0.299 * b[0] + 0.587 * b[1] + 0.114 * b[2]
    assert np.corrcoef(ya.ravel(), yb.ravel())[0, 1] > 0.9


def test_pad_bottom_right_geometry_matches_nudenet() -> None:
    """NudeNet pads to a square at the bottom/right and scales boxes by (side / 320)."""
    p = plan(InputSpec("x", 320, 320, resize="pad_bottom_right"), 720, 1280)
    assert (p.scale_x, p.scale_y, p.off_x, p.off_y) == (4.0, 4.0, 0, 0)
    p = plan(InputSpec("x", 320, 320, resize="letterbox"), 720, 1280)
    assert p.content_h == 320 and p.content_w == 180 and p.off_x == 70


def test_wrong_slot_shape_is_refused() -> None:
    spec = InputSpec("x", 32, 32)
    with pytest.raises(ValueError, match="output slot"):
        preprocess_into(random_frame(8, 8), spec, np.zeros((3, 16, 16), np.float32))


@pytest.mark.parametrize("w,h", SIZES)
@pytest.mark.parametrize("rotation", [0, 90])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_trimmed_canvas_is_the_full_canvas_cropped(w: int, h: int, rotation: int, layout: str) -> None:
    """A trimmed canvas holds exactly the full canvas's values where it covers it (same scale,
    same geometry), kernel and reference alike, and the content never reaches past it."""
    frame = random_frame(w, h, rotation, seed=w * 7 + h)
    full = InputSpec("x", 64, 64, layout, "BGR", resize="pad_bottom_right")
    trim = InputSpec("x", 64, 64, layout, "BGR", resize="pad_bottom_right", trim_multiple=8)
    up_w, up_h = frame.upright_size
    tw, th = trim.size_for(up_w, up_h)
    assert tw % 8 == 0 and th % 8 == 0 and max(tw, th) == 64
    p = plan(full, up_w, up_h)
    assert tw >= min(64, up_w / p.scale_x) and th >= min(64, up_h / p.scale_y)
    out_full = full.empty_batch(1)
    geo_full = preprocess_into(frame, full, out_full[0])
    buf = trim.empty_batch(3)
    view = batch_view(buf, trim.shape_for(up_w, up_h))
    assert view.flags.c_contiguous and np.shares_memory(view, buf)
    geo = preprocess_into(frame, trim, view[1])
    ref, ref_geo = preprocess_reference(frame, trim)
    assert geo == ref_geo == geo_full
    assert_kernel_close(view[1], ref)
    crop = out_full[0][:, :th, :tw] if layout == "NCHW" else out_full[0][:th, :tw]
    np.testing.assert_array_equal(view[1], crop)
    # everything the full canvas has past the trimmed one is padding
    rest = out_full[0].copy()
    if layout == "NCHW":
        rest[:, :th, :tw] = 0
    else:
        rest[:th, :tw] = 0
    assert not rest.any()


def test_trimmed_sizes_of_common_shapes() -> None:
    spec = InputSpec("x", 320, 320, resize="pad_bottom_right", trim_multiple=32)
    assert spec.size_for(720, 1280) == (192, 320)  # 9:16: 180 columns of content
    assert spec.size_for(1280, 720) == (320, 192)
    assert spec.size_for(1080, 1920) == (192, 320)
    assert spec.size_for(640, 480) == (320, 256)
    assert spec.size_for(600, 600) == (320, 320)
    assert spec.size_for(16, 4000) == (32, 320)  # at least one multiple
    assert InputSpec("x", 320, 320, resize="pad_bottom_right").size_for(720, 1280) == (320, 320)


@pytest.mark.parametrize("mode", ["letterbox", "stretch"])
def test_trim_needs_pad_bottom_right(mode: str) -> None:
    with pytest.raises(ConfigError, match="trim_multiple"):
        InputSpec("x", 320, 320, resize=mode, trim_multiple=32)
    with pytest.raises(ConfigError, match="trim_multiple"):
        InputSpec("x", 320, 320, resize="pad_bottom_right", trim_multiple=-1)


def test_spec_from_lists_is_hashable_and_checks_channel_counts() -> None:
    # preprocess_into caches per-stream kernel arguments by spec: a spec built with lists works
    spec = InputSpec("x", 16, 12, mean=[0.5, 0.25, 0.0], std=[1, 2, 4])
    assert spec.mean == (0.5, 0.25, 0.0) and spec.std == (1.0, 2.0, 4.0)
    frame = random_frame(9, 7)
    out = spec.empty_batch(1)
    preprocess_into(frame, spec, out[0])
    assert_kernel_close(out[0], preprocess_reference(frame, spec)[0])
    with pytest.raises(ConfigError, match="3 values"):
        InputSpec("x", 16, 12, mean=(0.5,))
    with pytest.raises(ConfigError, match="pad_value"):
        InputSpec("x", 16, 12, resize="pad_bottom_right", pad_value=300)
