"""Evidence frames: small JPEGs of the frames a report's evidence points at, taken from the frames
the scan already decoded (no second decode), with the detection boxes drawn and sexual content
pixelated unless told otherwise.

During the scan (``EvidenceCapture``): every sampled frame gets a small upright RGB copy while
the decoded frame is still alive (``add``, in the preprocessing thread: shrunk by a whole factor
to at most ``2 * MAX_SIDE``, OpenCV's fast path, ~0.6 ms for 720x1280; the final shrink to
``MAX_SIDE`` is done for the kept frames only);
once the models scored it (``scored``), a copy whose frame has no evidence is dropped, and at most
``MAX_KEPT`` copies with evidence are kept (the lowest weighted score goes first). At the end
(``images``) the frames the report's evidence refers to, strongest first, up to ``MAX_IMAGES``,
are drawn and encoded; they travel with the report (``Report.images``: frame index -> JPEG) and
are written next to it by ``write_images``, which sets each evidence item's ``image`` path.

Importing this module loads no NumPy or OpenCV (the writer runs in light front ends).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .report import Evidence, Report

if TYPE_CHECKING:
    import numpy as np

    from .frames import YuvFrame
    from .score import FrameScore

#: Longer side of an evidence frame, in pixels.
MAX_SIDE = 480
#: Evidence frames per clip (the frames of the strongest evidence).
MAX_IMAGES = 12
#: Frame copies kept during a scan (frames with evidence; the weakest goes first beyond this):
#: at most 24 x 960x540x3 bytes, 37 MB.
MAX_KEPT = 24
#: Categories whose evidence is pixelated in every image framescan writes (unless ``blur=False``).
BLUR_CATEGORIES = frozenset({"sexual"})
#: Pixelation cell, in pixels of the evidence frame.
PIXEL_CELL = 12
JPEG_QUALITY = 85
#: Box colours per category (RGB).
COLOURS = {
    "sexual": (230, 40, 110),
    "violence": (240, 120, 0),
    "hate": (150, 60, 220),
    "bullying": (0, 150, 220),
    "extremism": (200, 20, 20),
}


@dataclasses.dataclass
class _Copy:
    rgb: np.ndarray  # upright, longer side <= 2 * MAX_SIDE
    size: tuple[int, int]  # the upright frame's (width, height): evidence boxes are in its pixels


class EvidenceCapture:
    """Small copies of one clip's sampled frames, bounded, for its evidence frames. ``add`` and
    ``scored`` may run in different threads."""

    def __init__(self, blur: bool = True, max_kept: int = MAX_KEPT, max_images: int = MAX_IMAGES) -> None:
        self.blur = blur
        self.max_kept = max_kept
        self.max_images = max_images
        self._lock = threading.Lock()
        self._copies: dict[int, _Copy] = {}  # frame index -> copy
        self._weight: dict[int, float] = {}  # scored frames with evidence -> their strongest weighted score

    def add(self, frame: YuvFrame) -> None:
        """Keep a small copy of a sampled frame (call while the decoded frame is alive)."""
        from .ocr import frame_to_rgb

        longer = max(frame.width, frame.height)
        k = -(-longer // (2 * MAX_SIDE))  # a whole factor: OpenCV's fast area shrink
        copy = _Copy(frame_to_rgb(frame, longer // k), frame.upright_size)
        with self._lock:
            self._copies[frame.index] = copy

    def scored(self, fs: FrameScore) -> None:
        """The models scored this frame: drop its copy when it has no evidence, and the weakest
        copies beyond ``max_kept``."""
        with self._lock:
            if not fs.evidence or fs.index not in self._copies:
                self._copies.pop(fs.index, None)
                return
            self._weight[fs.index] = max(e.weighted for e in fs.evidence)
            while len(self._weight) > self.max_kept:
                weakest = min(self._weight, key=lambda i: (self._weight[i], -i))
                del self._weight[weakest]
                self._copies.pop(weakest, None)

    def images(self, evidence: Iterable[Evidence]) -> dict[int, bytes]:
        """The evidence frames of a report's evidence items: frame index -> JPEG, for the
        ``max_images`` frames with the strongest evidence that have a copy. Frees the copies."""
        by_frame: dict[int, list[Evidence]] = {}
        for e in evidence:
            by_frame.setdefault(e.frame_index, []).append(e)
        with self._lock:
            copies, self._copies, self._weight = self._copies, {}, {}
        order = sorted((i for i in by_frame if i in copies), key=lambda i: (-max(e.weighted for e in by_frame[i]), i))
        return {i: render(copies[i].rgb, copies[i].size, by_frame[i], self.blur) for i in order[: self.max_images]}


def pixelate(rgb: np.ndarray, x1: int, y1: int, x2: int, y2: int, cell: int = PIXEL_CELL) -> None:
    """Replace ``rgb[y1:y2, x1:x2]`` in place by blocks of ``cell`` pixels (each its mean colour)."""
    import cv2

    region = rgb[y1:y2, x1:x2]
    h, w = region.shape[:2]
    if h == 0 or w == 0:
        return
    small = cv2.resize(region, (max(1, -(-w // cell)), max(1, -(-h // cell))), interpolation=cv2.INTER_AREA)
    region[...] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def render(rgb: np.ndarray, size: tuple[int, int], items: list[Evidence], blur: bool = True) -> bytes:
    """One evidence frame as JPEG: ``rgb`` (not modified; shrunk to ``MAX_SIDE``) with each item's box drawn and, when
    ``blur``, every ``BLUR_CATEGORIES`` item's box pixelated (the whole frame for an item with no
    box: a classifier's). ``size``: the upright frame's (width, height), the boxes' pixels."""
    import cv2
    import numpy as np

    h, w = rgb.shape[:2]
    if max(h, w) > MAX_SIDE:  # from at most 2 * MAX_SIDE (EvidenceCapture): linear is enough
        r = MAX_SIDE / max(h, w)
        w, h = max(1, round(w * r)), max(1, round(h * r))
        img = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        img = np.ascontiguousarray(rgb).copy()
    sx, sy = w / max(1, size[0]), h / max(1, size[1])

    def scaled(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
        x1, y1, x2, y2 = box
        return (
            max(0, int(x1 * sx)),
            max(0, int(y1 * sy)),
            min(w, int(np.ceil(x2 * sx))),
            min(h, int(np.ceil(y2 * sy))),
        )

    if blur:
        for e in items:
            if e.category in BLUR_CATEGORIES:
                pixelate(img, *(scaled(e.box) if e.box is not None else (0, 0, w, h)))
    for e in items:
        if e.box is None:
            continue
        x1, y1, x2, y2 = scaled(e.box)
        colour = COLOURS.get(e.category, (255, 255, 0))
        cv2.rectangle(img, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), colour, 2)
        label = f"{e.label} {e.score:.2f}"
        cv2.putText(img, label, (x1 + 3, y1 + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise RuntimeError("OpenCV could not encode an evidence frame")
    return bytes(buf)


def image_name(frame_index: int) -> str:
    return f"frame-{frame_index:06d}.jpg"


def clip_folder(source: str) -> str:
    """The folder of one clip's evidence frames under the evidence directory: the file name and
    a short hash of the whole source (two clips with the same name in different folders differ)."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(source).name)[:60] or "clip"
    return f"{stem}-{hashlib.sha256(source.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def with_images(report: Report, paths: dict[int, str]) -> None:
    """Set ``image`` on every evidence item of ``report`` whose frame has a path in ``paths``
    (frame index -> path), in the clip's evidence and in every segment's."""

    def update(items: list[Evidence]) -> list[Evidence]:
        return [dataclasses.replace(e, image=paths.get(e.frame_index)) for e in items]

    report.evidence = update(report.evidence)
    for r in report.categories.values():
        for s in r.segments:
            s.evidence = update(s.evidence)


def write_images(report: Report, directory: str | os.PathLike[str], relative_to: str | os.PathLike[str]) -> int:
    """Write ``report.images`` to ``directory/<clip folder>/frame-NNNNNN.jpg`` and set each
    evidence item's ``image`` to its path relative to the folder ``relative_to`` (the report
    file's). Returns the number of files written."""
    if not report.images:
        return 0
    folder = Path(directory) / clip_folder(report.source)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[int, str] = {}
    for index, jpeg in report.images.items():
        target = folder / image_name(index)
        target.write_bytes(jpeg)
        paths[index] = Path(os.path.relpath(target, relative_to)).as_posix()
    with_images(report, paths)
    return len(paths)


def data_uri(jpeg: bytes) -> str:
    import base64

    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
