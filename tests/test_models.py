"""Model manifests and output decoders."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from framescan.errors import ConfigError, ModelError
from framescan.frames import Geometry
from framescan.infer import OnnxModel
from framescan.models import DECODERS as MANIFEST_DECODERS
from framescan.models import list_manifests, load_manifest
from framescan.postprocess import DECODERS, nms


def _manifest_copy(tmp_path: Path, **changes) -> Path:
    data = json.loads(Path(load_manifest("nudenet-320n").source).read_text())
    data.update(changes)
    p = tmp_path / "m.json"
    p.write_text(json.dumps(data))
    return p


def test_default_manifest() -> None:
    m = load_manifest("nudenet-320n")
    assert m.output.decoder == "yolov8" and m.input.channels == "BGR" and m.input.resize == "pad_bottom_right"
    sexual = {lab.name for lab in m.labels if lab.category == "sexual"}
    assert sexual == {
        "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "ANUS_EXPOSED"
    }  # fmt: skip
    assert m.resolve_file().name == "320n.onnx" and m.verified_file()
    assert "nudenet-320n" in [x.name for x in list_manifests()]


def test_wrong_sha256_is_a_clear_load_error(tmp_path: Path) -> None:
    m = load_manifest(_manifest_copy(tmp_path, sha256="0" * 64))
    with pytest.raises(ModelError, match="sha256"):
        OnnxModel(m)


def test_missing_file_is_a_clear_load_error(tmp_path: Path) -> None:
    m = load_manifest(_manifest_copy(tmp_path, file={"path": "nowhere/model.onnx"}))
    with pytest.raises(ModelError, match="does not exist"):
        m.verified_file()
    m = load_manifest(_manifest_copy(tmp_path, file={"package": "no_such_pkg_xyz", "resource": "m.onnx"}))
    with pytest.raises(ModelError, match="not installed"):
        m.resolve_file()


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"output": {"decoder": "magic"}}, "decoder"),
        ({"labels": [{"name": "X", "category": "cats"}]}, "category"),
        ({"input": {"name": "images", "width": 320, "height": 320, "layout": "CHWN"}}, "layout"),
        ({"manifest_version": 7}, "manifest_version"),
    ],
)
def test_invalid_manifests(tmp_path: Path, changes: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_manifest(_manifest_copy(tmp_path, **changes))


def test_every_decoder_a_manifest_may_name_is_implemented(tmp_path: Path) -> None:
    for name in MANIFEST_DECODERS:  # the one list: loading a manifest checks it, the model runs it
        m = load_manifest(_manifest_copy(tmp_path, output={"decoder": name}))
        assert m.output.decoder == name and callable(DECODERS[name])
    assert list(DECODERS) == list(MANIFEST_DECODERS)
    with pytest.raises(ConfigError) as info:
        load_manifest(_manifest_copy(tmp_path, output={"decoder": "magic"}))
    assert info.value.message.endswith(
        "output decoder 'magic' not supported; use one of ('yolov8', 'softmax', 'sigmoid', 'nanodet')"
    )


def test_unknown_model_name() -> None:
    with pytest.raises(ModelError, match="no model named"):
        load_manifest("does-not-exist")


def _cv2_nms(xyxy: np.ndarray, score: np.ndarray, st: float, it: float) -> list[int]:
    boxes = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in xyxy]
    return sorted(int(i) for i in np.array(cv2.dnn.NMSBoxes(boxes, score.tolist(), st, it)).ravel())


@pytest.mark.parametrize("seed", range(8))
def test_nms_agrees_with_opencv(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(5, 80, (n, 2))
    xyxy = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    score = rng.uniform(0.1, 1.0, n).astype(np.float32)
    assert sorted(nms(xyxy, score, 0.25, 0.45).tolist()) == _cv2_nms(xyxy, score, 0.25, 0.45)


def test_yolov8_decoder_maps_boxes_to_the_frame() -> None:
    out = np.zeros((1, 4 + 3, 5), np.float32)
    out[0, :4, 0] = [100, 50, 40, 20]  # cx, cy, w, h
    out[0, 4 + 2, 0] = 0.9
    out[0, :4, 1] = [101, 51, 40, 20]  # overlaps box 0, lower score: suppressed
    out[0, 4 + 1, 1] = 0.5
    out[0, :4, 2] = [10, 10, 30, 30]  # below the candidate threshold
    out[0, 4, 2] = 0.1
    geo = Geometry(2.0, 2.0, 0, 0, 640, 360)
    dets = DECODERS["yolov8"](out, [geo], {})[0]
    assert len(dets) == 1 and dets.class_id[0] == 2 and dets.score[0] == pytest.approx(0.9)
    assert np.allclose(dets.xyxy[0], [160, 80, 240, 120])


def test_classifier_decoders() -> None:
    logits = np.array([[1.0, 2.0, 3.0]], np.float32)
    sm = DECODERS["softmax"](logits, [None], {})[0]
    assert sm.score.sum() == pytest.approx(1.0) and sm.score.argmax() == 2 and len(sm.xyxy) == 0
    sg = DECODERS["sigmoid"](logits, [None], {})[0]
    assert sg.score[0] == pytest.approx(1 / (1 + np.exp(-1)))
    raw = DECODERS["softmax"](logits, [None], {"apply_activation": False})[0]
    assert np.allclose(raw.score, logits[0])
