"""What a model wants as input (``InputSpec``, a model manifest's ``input`` section) and where a
frame lands in it (``plan``): value types and plain arithmetic, no NumPy, so that reading a
manifest does not load the preprocessing kernels (``framescan.preprocess`` fills the tensors).

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    import numpy as np


class ResizeMode(str, Enum):
    PAD_BOTTOM_RIGHT = "pad_bottom_right"
    LETTERBOX = "letterbox"
    STRETCH = "stretch"


LAYOUTS = ("NCHW", "NHWC")
#: Input channel order -> the RGB channel each of its channels takes.
CHANNEL_ORDER = {"RGB": (0, 1, 2), "BGR": (2, 1, 0)}


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
        if self.layout not in LAYOUTS:
            raise ConfigError(f"input layout {self.layout!r} not supported; use one of {LAYOUTS}")
        if self.channels not in CHANNEL_ORDER:
            raise ConfigError(f"input channels {self.channels!r} not supported; use one of {tuple(CHANNEL_ORDER)}")
        if self.width < 1 or self.height < 1:
            raise ConfigError(f"input size must be positive: {self.width}x{self.height}")
        if any(s == 0 for s in self.std):
            raise ConfigError(f"input std must not contain 0: {self.std}")
        object.__setattr__(self, "resize", ResizeMode(self.resize))
        # tuples: specs are hashable (per-stream kernel arguments are cached by spec)
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ConfigError(f"input mean and std need 3 values (one per channel): {self.mean}, {self.std}")
        if not 0.0 <= self.pad_value <= 255.0:
            raise ConfigError(f"input pad_value is a pixel value in 0-255: {self.pad_value}")
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
        import numpy as np  # only a scan needs it: reading a manifest does not

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


@dataclass(frozen=True)
class Plan:
    """Where the content of an upright frame lands in the model input, for one (spec, frame size) pair."""

    scale_x: float  # source pixels per destination pixel
    scale_y: float
    off_x: int  # destination pixel where content starts
    off_y: int
    content_w: int  # destination pixels covered by content (the rest is padding)
    content_h: int
    limit_x: int  # source coordinates are clamped to [0, limit - 1]
    limit_y: int


def plan(spec: InputSpec, frame_w: int, frame_h: int) -> Plan:
    """Where the upright ``frame_w x frame_h`` image lands in the model input."""
    tw, th = spec.width, spec.height
    if spec.resize is ResizeMode.PAD_BOTTOM_RIGHT:
        # Smallest canvas with the target's aspect ratio that holds the frame at its top-left.
        if frame_w * th >= frame_h * tw:
            cw, ch = frame_w, max(frame_h, math.ceil(frame_w * th / tw))
        else:
            cw, ch = max(frame_w, math.ceil(frame_h * tw / th)), frame_h
        return Plan(cw / tw, ch / th, 0, 0, tw, th, cw, ch)
    if spec.resize is ResizeMode.LETTERBOX:
        r = min(tw / frame_w, th / frame_h)
        nw, nh = max(1, round(frame_w * r)), max(1, round(frame_h * r))
        ox, oy = (tw - nw) // 2, (th - nh) // 2
        return Plan(frame_w / nw, frame_h / nh, ox, oy, nw, nh, frame_w, frame_h)
    return Plan(frame_w / tw, frame_h / th, 0, 0, tw, th, frame_w, frame_h)
