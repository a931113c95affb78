"""Evidence frames (framescan.evidence): taken from the scored frames, bounded, boxes drawn,
sexual content pixelated unless told not to, written next to the report with relative paths."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from tolerances import EVIDENCE_FRAME_MAX_MEAN_DIFF

from framescan.evidence import MAX_SIDE, EvidenceCapture, clip_folder, pixelate, render, write_images
from framescan.frames import ColorInfo
from framescan.report import IMAGES_KEY, Evidence, Report
from framescan.score import FrameScore


def _decode(jpeg: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None, "not a JPEG"
    return bgr[..., ::-1]


def _stream_rgb(path: Path, matrix: str) -> list[np.ndarray]:
    """Every frame of the clip as RGB, in presentation order, decoded plainly by PyAV."""
    colorspace = ColorInfo(matrix).av_colorspace
    with av.open(str(path)) as c:
        frames = sorted(c.decode(c.streams.video[0]), key=lambda f: f.pts)
        return [f.to_ndarray(format="rgb24", src_colorspace=colorspace) for f in frames]


def _outside_boxes(shape: tuple[int, ...], items: list[Evidence], size: tuple[int, int], margin: int = 4) -> np.ndarray:
    """A mask of the pixels of an evidence frame no box, label or pixelation can touch."""
    h, w = shape[:2]
    mask = np.ones((h, w), bool)
    sx, sy = w / size[0], h / size[1]
    for e in items:
        if e.box is None:
            continue
        x1, y1, x2, y2 = e.box
        mask[
            max(0, int(y1 * sy) - margin) : int(y2 * sy) + margin + 1,
            max(0, int(x1 * sx) - margin) : int(x2 * sx) + margin + 1,
        ] = False
    return mask


@pytest.fixture(scope="module")
def unblurred(scanner_for: Callable, short_flagged: Path) -> Report:
    return scanner_for(evidence=True, blur=False).scan(short_flagged)


def test_evidence_frames_are_the_scored_frames(unblurred: Report, short_flagged: Path) -> None:
    """Each evidence frame, away from its boxes, is the frame at its evidence's index (decoded
    again, plainly, by PyAV) within JPEG error; the neighbouring frames 0.5 s away are not."""
    report = unblurred
    assert report.decision == "block"
    items = report.evidence_items()
    assert report.images, "a flagged clip's report has evidence frames"
    assert set(report.images) <= {e.frame_index for e in items}
    assert report.clip is not None
    frames = _stream_rgb(short_flagged, report.clip.color_matrix)
    h0, w0 = frames[0].shape[:2]
    for index, jpeg in report.images.items():
        img = _decode(jpeg)
        assert max(img.shape[:2]) <= MAX_SIDE
        mine = [e for e in items if e.frame_index == index]
        mask = _outside_boxes(img.shape, mine, (w0, h0))
        assert mask.mean() > 0.2, "too little of the frame outside the boxes to compare"

        def diff(i: int, img: np.ndarray = img, mask: np.ndarray = mask) -> float:
            ref = cv2.resize(frames[i], (img.shape[1], img.shape[0]), interpolation=cv2.INTER_AREA)
            return float(np.abs(ref.astype(np.int16) - img.astype(np.int16))[mask].mean())

        assert diff(index) <= EVIDENCE_FRAME_MAX_MEAN_DIFF, (index, diff(index))
        for other in (index - 8, index + 8):
            if 0 <= other < len(frames):
                assert diff(other) > 2 * diff(index), (index, other, diff(other), diff(index))


def test_unblurred_frames_keep_the_box_contents(unblurred: Report) -> None:
    """With blur off, a sexual box's inside keeps its detail (the blurred rendering pixelates it)."""
    items = unblurred.evidence_items()
    e = next(e for e in items if e.category == "sexual" and e.box is not None and e.frame_index in unblurred.images)
    img = _decode(unblurred.images[e.frame_index])
    assert img.std() > 10


def _lap(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_render_pixelates_sexual_boxes_only_and_draws_boxes() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (240, 135, 3), np.uint8)  # noise: every pixel differs from its neighbours
    size = (270, 480)  # the frame the boxes are in: twice the copy's size
    sexual = Evidence(1.0, 30, "m", "L", "sexual", 0.9, 0.9, box=(20.0, 40.0, 200.0, 300.0))
    violence = Evidence(1.0, 30, "m", "K", "violence", 0.9, 0.9, box=(20.0, 340.0, 200.0, 460.0))
    blurred = _decode(render(rgb, size, [sexual, violence], blur=True))
    plain = _decode(render(rgb, size, [sexual, violence], blur=False))
    inner = (slice(30, 140), slice(20, 90))  # inside the sexual box (copy pixels), clear of its outline
    other = (slice(180, 220), slice(20, 90))  # inside the violence box
    assert _lap(blurred[inner]) < 0.1 * _lap(plain[inner])
    assert abs(_lap(blurred[other]) - _lap(plain[other])) < 0.05 * _lap(plain[other])
    # the outline is drawn in the category's colour
    edge = plain[20, 30:90].astype(int)  # the top edge of the sexual box: y = 40 / 2
    assert (edge[:, 0] > 150).mean() > 0.8 and (edge[:, 1] < 120).mean() > 0.8
    # a classifier's sexual evidence (no box) pixelates the whole frame
    whole = _decode(render(rgb, size, [Evidence(1.0, 30, "n", "porn", "sexual", 0.9, 0.9)], blur=True))
    assert _lap(whole) < 0.1 * _lap(rgb)


def test_pixelate_odd_sizes() -> None:
    img = np.arange(7 * 5 * 3, dtype=np.uint8).reshape(7, 5, 3).copy()
    pixelate(img, 1, 1, 4, 6, cell=2)
    assert img[1:6, 1:4].reshape(-1, 3).shape == (15, 3)
    pixelate(img, 3, 3, 3, 5)  # empty region: nothing happens
    assert img[0, 0].tolist() == [0, 1, 2]


def _frame(index: int) -> object:
    from framescan.frames import YuvFrame

    y = np.full((64, 48), 100, np.uint8)
    c = np.full((32, 24), 128, np.uint8)
    return YuvFrame(y, c, c, index, index / 10)


def test_capture_keeps_only_frames_with_evidence_bounded() -> None:
    cap = EvidenceCapture(max_kept=3, max_images=2)
    for i in range(10):
        cap.add(_frame(i))  # type: ignore[arg-type]
        fs = FrameScore(i, i / 10)
        if i % 2:
            fs.add(Evidence(i / 10, i, "m", "L", "violence", 0.1 * i, 0.1 * i))
        cap.scored(fs)
    assert sorted(cap._copies) == [5, 7, 9]  # frames without evidence dropped; the weakest beyond 3 too
    ev = [Evidence(i / 10, i, "m", "L", "violence", 0.1 * i, 0.1 * i) for i in (3, 5, 7, 9)]
    images = cap.images(ev)
    assert sorted(images) == [7, 9]  # the strongest two with a copy
    assert cap._copies == {}


def test_write_images_sets_relative_paths_and_round_trips(unblurred: Report, tmp_path: Path) -> None:
    report = Report.from_dict(unblurred.to_wire())
    assert report.images == unblurred.images
    out = tmp_path / "reports" / "r.json"
    out.parent.mkdir()
    n = write_images(report, tmp_path / "ev", out.parent)
    assert n == len(report.images)
    d = report.to_dict()
    assert IMAGES_KEY not in d
    linked = [e for e in d["evidence"] if "image" in e]
    assert {e["frame_index"] for e in linked} == set(report.images)
    for e in linked:
        path = out.parent / e["image"]
        assert path.is_file() and path.read_bytes() == report.images[e["frame_index"]]
        assert e["image"].startswith("../ev/") and not os.path.isabs(e["image"])
    assert Report.from_dict(json.loads(json.dumps(d))).to_dict() == d
    # without evidence frames written, no item has an image (golden reports stay as they are)
    assert all("image" not in e for e in unblurred.to_dict()["evidence"])


def test_clip_folder_names() -> None:
    assert clip_folder("/a/clip.mp4") != clip_folder("/b/clip.mp4")
    assert clip_folder("/a/clip.mp4").startswith("clip.mp4-")
    assert "/" not in clip_folder("../x/y z?.mp4")
