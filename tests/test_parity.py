"""Parity with NudeNet: framescan's detections with the default model (NudeNet 320n on a
trimmed canvas) and on NudeNet's square canvas equal ``nudenet.NudeDetector().detect`` on the
same frame in BGR. (Agreement over many more frames: tests/test_trim.py.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from tolerances import PARITY_MAX_SCORE_DIFF, PARITY_MIN_IOU, iou

from framescan.decode import to_yuv_frame
from framescan.models import DEFAULT_MODEL
from framescan.pipeline import Scanner
from framescan.preprocess import preprocess_into
from framescan.synth import Shot

# (image, frame size): each photograph fills most of the frame for the whole clip.
CASES = [("astronaut", 640, 480), ("camera", 512, 512), ("colorwheel", 720, 1280), ("colorwheel", 1294, 964)]


@pytest.fixture(scope="module")
def detector():
    nudenet = pytest.importorskip("nudenet")
    return nudenet.NudeDetector()


@pytest.fixture(scope="module", params=[DEFAULT_MODEL, "nudenet-320n"])
def model(request, scanner_for: Callable[..., Scanner]):
    return scanner_for(request.param, threads=2).models[0]


def _frames(path: Path, n: int = 3):
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= n:
                break
            yield f


@pytest.mark.parametrize("image,w,h", CASES)
def test_detections_match_nudenet(image: str, w: int, h: int, make_clip: Callable[..., Path], detector, model) -> None:
    clip = make_clip(width=w, height=h, seconds=0.5, fps=10, shots=[Shot(0, 1, image, 1.0)])
    spec = model.manifest.input
    checked = 0
    for i, frame in enumerate(_frames(clip)):
        yuv = to_yuv_frame(frame, i, float(frame.time))
        bgr = frame.to_ndarray(format="bgr24", src_colorspace=yuv.color.av_colorspace)
        theirs = detector.detect(bgr)
        batch = np.zeros((1, *spec.shape_for(*yuv.upright_size)), np.float32)
        geo = preprocess_into(yuv, spec, batch[0])
        ours = model.run(batch, [geo])[0]
        assert len(ours) == len(theirs), f"{image} frame {i}: {len(ours)} detections vs NudeNet's {len(theirs)}"
        assert theirs, f"{image}: NudeNet found nothing, the case tests nothing"
        labels = [lab.name for lab in model.manifest.labels]
        for t in theirs:
            x, y, bw, bh = t["box"]
            tb = np.array([x, y, x + bw, y + bh], float)
            same = [k for k in range(len(ours)) if labels[ours.class_id[k]] == t["class"]]
            assert same, f"{image}: NudeNet's {t['class']} not found by framescan"
            best = max(same, key=lambda k: iou(ours.xyxy[k], tb))
            # NudeNet truncates boxes to integers: compare against the truncated box
            assert iou(np.floor(ours.xyxy[best]), tb) >= PARITY_MIN_IOU, (t, ours.xyxy[best])
            assert abs(float(ours.score[best]) - t["score"]) <= PARITY_MAX_SCORE_DIFF, (t, ours.score[best])
            checked += 1
    assert checked >= 3
