"""Value objects that flow between the decode, preprocess and infer stages."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Pixel formats the preprocessing kernel reads directly (planar 4:2:0, 8 bit).
KERNEL_PIXEL_FORMATS = ("yuv420p", "yuvj420p")


@dataclass(frozen=True)
class ColorInfo:
    """How to turn the frame's YUV into RGB.

    ``matrix`` is ``"bt601"`` or ``"bt709"``; ``full_range`` is True for JPEG-range (0-255) luma.
    """

    matrix: str = "bt601"
    full_range: bool = False

    def __post_init__(self) -> None:
        if self.matrix not in ("bt601", "bt709"):
            raise ValueError(f"{self.matrix = } must be 'bt601' or 'bt709'")

    @property
    def av_colorspace(self) -> str:
        """The matrix as PyAV names it (``src_colorspace=`` of ``VideoFrame.to_ndarray``), for
        converting a frame to RGB/BGR the way the stream says, e.g. to feed a reference pipeline."""
        return "itu709" if self.matrix == "bt709" else "itu601"


@dataclass
class YuvFrame:
    """One decoded frame kept in its YUV 4:2:0 planes (views on the decoder's buffers, no copy).

    Attributes:
        y: luma plane, shape ``(height, width)`` (a strided view when the decoder pads lines).
        u, v: chroma planes, shape ``((height + 1) // 2, (width + 1) // 2)``.
        index: the frame's index in the stream, 0-based, in presentation order (the same
            whichever frames were sampled or decoded).
        time: presentation time in seconds from the stream start (from PTS).
        rotation: degrees counter-clockwise the frame must be rotated for display (0, 90, 180, -90).
        color: matrix and range for YUV -> RGB.
        keyframe: whether the decoder flagged it as a keyframe.
        mirror: whether the display flips it left-right after the rotation (display matrix).
        pts: presentation timestamp in the stream's time base (None if the container gives none).
    """

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    index: int
    time: float
    rotation: int = 0
    color: ColorInfo = field(default_factory=ColorInfo)
    keyframe: bool = False
    mirror: bool = False
    pts: int | None = None

    def __post_init__(self) -> None:
        h, w = self.y.shape
        ch, cw = (h + 1) // 2, (w + 1) // 2
        if self.u.shape != (ch, cw) or self.v.shape != (ch, cw):
            raise ValueError(
                f"chroma planes must be {(ch, cw)} for a {w}x{h} frame: {self.u.shape = }, {self.v.shape = }"
            )
        if self.rotation not in (0, 90, 180, -90):
            raise ValueError(f"{self.rotation = } must be one of 0, 90, 180, -90")

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        return int(self.y.shape[0])

    @property
    def upright_size(self) -> tuple[int, int]:
        """(width, height) as displayed, after rotation."""
        if self.rotation in (90, -90):
            return self.height, self.width
        return self.width, self.height

    def __repr__(self) -> str:
        return (
            f"YuvFrame(index={self.index}, pts={self.pts}, time={self.time:.3f}, size={self.width}x{self.height}, "
            f"rotation={self.rotation}, mirror={self.mirror}, color={self.color})"
        )


@dataclass(frozen=True)
class Geometry:
    """Maps model-input pixel coordinates back to upright frame coordinates.

    ``frame_x = (model_x - offset_x) * scale_x`` (likewise for y); boxes are then clipped to
    ``(0, 0, frame_width, frame_height)``.
    """

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    frame_width: int
    frame_height: int

    def to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """Map ``[N, 4]`` boxes (x1, y1, x2, y2) in model pixels to clipped frame pixels."""
        out = np.empty_like(xyxy, dtype=np.float32)
        out[:, 0] = (xyxy[:, 0] - self.offset_x) * self.scale_x
        out[:, 2] = (xyxy[:, 2] - self.offset_x) * self.scale_x
        out[:, 1] = (xyxy[:, 1] - self.offset_y) * self.scale_y
        out[:, 3] = (xyxy[:, 3] - self.offset_y) * self.scale_y
        np.clip(out[:, 0::2], 0, self.frame_width, out=out[:, 0::2])
        np.clip(out[:, 1::2], 0, self.frame_height, out=out[:, 1::2])
        return out


@dataclass
class Detections:
    """Detections of one frame as parallel arrays (supervision-style).

    ``xyxy`` is ``[N, 4]`` float32 in upright frame pixels (empty ``[0, 4]`` for classifiers),
    ``score`` ``[N]`` float32, ``class_id`` ``[N]`` int32.
    """

    xyxy: np.ndarray
    score: np.ndarray
    class_id: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.score)
        if self.xyxy.shape not in ((n, 4), (0, 4)) or self.class_id.shape != (n,):
            raise ValueError(f"{self.xyxy.shape = }, {self.score.shape = }, {self.class_id.shape = } disagree")

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))

    @property
    def has_boxes(self) -> bool:
        return self.xyxy.shape[0] == len(self.score)

    def __len__(self) -> int:
        return len(self.score)

    def __repr__(self) -> str:
        return f"Detections(n={len(self)}, boxes={self.has_boxes})"
