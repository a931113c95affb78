"""The models converted from TF.js by ``models/build`` (nsfwjs-mobilenetv2, nanodet-coco).

ONNX Runtime side (always run): the manifests load and their files verify, both models give sane
outputs on real photographs through framescan's own preprocessing, and the ``nanodet`` decoder on
synthetic heads. Parity with the original TF.js models in Node (marked ``node``): skipped, saying
why, unless node, the TF.js packages and the original models are in the build cache
(``bash models/build/build_all.sh`` puts them there).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tolerances import iou

from framescan.decode import to_yuv_frame
from framescan.errors import ModelError
from framescan.frames import Geometry
from framescan.infer import OnnxModel
from framescan.models import load_manifest
from framescan.policy import DEFAULT_BLOCK, DEFAULT_REVIEW
from framescan.postprocess import DECODERS, decode_nanodet
from framescan.preprocess import preprocess_into
from framescan.synth import load_image

BUILD_DIR = Path(__file__).resolve().parents[1] / "models" / "build"
NSFWJS = "nsfwjs-mobilenetv2"
NANODET = "nanodet-coco"
PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "rocket", "stereo_motorcycle")

#: Softmax output: probabilities sum to 1 up to float32 rounding over 5 classes.
PROB_SUM_ATOL = 1e-5
#: ORT vs TF.js on the same input (the build's gate, models/build/build.py PARITY_MAX_ABS).
PARITY_MAX_ABS = 1e-4
#: A detection matches a hand-drawn box at this IoU (the hand boxes are drawn loosely).
HAND_BOX_MIN_IOU = 0.5

#: Hand-labelled boxes (x1, y1, x2, y2 in photo pixels) of the one obvious COCO object of a photo.
KNOWN_OBJECTS = {
    "astronaut": ("person", (0, 15, 370, 512)),
    "camera": ("person", (15, 50, 340, 512)),
    "coffee": ("cup", (165, 10, 440, 300)),
    "stereo_motorcycle": ("motorcycle", (60, 60, 720, 460)),
}


def _batch(model: OnnxModel, names: tuple[str, ...]) -> tuple[np.ndarray, list[Geometry]]:
    """Photographs through framescan's own path: RGB -> yuv420p (as a decoder hands it) -> the kernel."""
    import av

    batch = model.manifest.input.empty_batch(len(names))
    geos = []
    for i, name in enumerate(names):
        frame = to_yuv_frame(av.VideoFrame.from_ndarray(load_image(name), format="rgb24"), i, 0.0)
        geos.append(preprocess_into(frame, model.manifest.input, batch[i]))
    return batch, geos


@pytest.fixture(scope="module")
def nsfwjs() -> OnnxModel:
    return OnnxModel(load_manifest(NSFWJS), threads=2)


@pytest.fixture(scope="module")
def nanodet() -> OnnxModel:
    return OnnxModel(load_manifest(NANODET), threads=2)


# --------------------------------------------------------------------------- manifests


@pytest.mark.parametrize("name,n_labels,layout", [(NSFWJS, 5, "NHWC"), (NANODET, 80, "NCHW")])
def test_manifest_loads_and_file_verifies(name: str, n_labels: int, layout: str) -> None:
    m = load_manifest(name)
    path = m.verified_file()  # sha256 against the manifest
    assert path.parent.name == "models" and path.name == f"{name}.onnx"
    assert len(m.labels) == n_labels
    assert m.input.layout == layout
    assert m.license.get("package") and m.license.get("file")
    model = OnnxModel(m, threads=1)
    (inp,) = model.session.get_inputs()
    assert inp.name == m.input.name
    assert isinstance(inp.shape[0], str), "the batch axis must be dynamic"
    assert tuple(inp.shape[1:]) == m.input.shape


def test_label_weights_keep_single_labels_below_their_limits() -> None:
    nsfw = {lab.name: lab for lab in load_manifest(NSFWJS).labels}
    assert [lab for lab in nsfw] == ["Drawing", "Hentai", "Neutral", "Porn", "Sexy"]
    assert nsfw["Porn"].category == nsfw["Hentai"].category == "sexual"
    assert nsfw["Porn"].weight == nsfw["Hentai"].weight == 1.0
    assert nsfw["Sexy"].category == "sexual" and nsfw["Sexy"].weight < DEFAULT_REVIEW  # Sexy alone never reviews
    assert nsfw["Drawing"].category is None and nsfw["Neutral"].category is None

    m = load_manifest(NANODET)
    coco = {lab.name: lab for lab in m.labels}
    assert list(coco)[:3] == ["person", "bicycle", "car"] and list(coco)[-1] == "toothbrush"
    weapons = {n for n, lab in coco.items() if lab.category}
    assert weapons == {"knife", "scissors", "baseball bat"}
    for n in weapons:
        assert coco[n].category == "violence"
        assert DEFAULT_REVIEW <= coco[n].weight < DEFAULT_BLOCK  # can reach review, never block alone
        assert 0.9 * coco[n].weight >= DEFAULT_REVIEW
    assert coco["person"].category is None
    assert "COCO has no gun class" in m.description
    assert "nanodet" in DECODERS


# --------------------------------------------------------------------------- photographs


def test_nsfwjs_on_photographs(nsfwjs: OnnxModel) -> None:
    batch, geos = _batch(nsfwjs, PHOTOS)
    dets = nsfwjs.run(batch, geos)
    names = [lab.name for lab in nsfwjs.manifest.labels]
    weights = np.array([lab.weight if lab.category else 0.0 for lab in nsfwjs.manifest.labels])
    for photo, d in zip(PHOTOS, dets):
        assert d.score.shape == (5,) and not d.has_boxes
        assert np.all((d.score >= 0) & (d.score <= 1))
        assert abs(float(d.score.sum()) - 1.0) <= PROB_SUM_ATOL, (photo, d.score)
        assert float((d.score * weights).max()) < DEFAULT_REVIEW, f"{photo} would go to review: {d.score}"
    assert names[int(dets[PHOTOS.index("astronaut")].score.argmax())] == "Neutral"


def test_nanodet_finds_the_obvious_object(nanodet: OnnxModel) -> None:
    names = tuple(KNOWN_OBJECTS)
    batch, geos = _batch(nanodet, names)
    dets = nanodet.run(batch, geos)
    labels = [lab.name for lab in nanodet.manifest.labels]
    for photo, d, geo in zip(names, dets, geos):
        want, hand_box = KNOWN_OBJECTS[photo]
        assert len(d) > 0, photo
        assert np.all(d.xyxy[:, 0] >= 0) and np.all(d.xyxy[:, 2] <= geo.frame_width)
        assert np.all(d.xyxy[:, 1] >= 0) and np.all(d.xyxy[:, 3] <= geo.frame_height)
        top = int(np.argmax(d.score))
        assert labels[d.class_id[top]] == want, (photo, [labels[c] for c in d.class_id])
        assert iou(d.xyxy[top], np.asarray(hand_box, np.float32)) >= HAND_BOX_MIN_IOU, (photo, d.xyxy[top])
        hits = {labels[c] for c in d.class_id}
        assert not hits & {"knife", "scissors", "baseball bat"}, (photo, hits)


# --------------------------------------------------------------------------- the nanodet decoder

PARAMS = {"input_size": 416, "strides": [32, 16, 8], "num_classes": 80}
ANCHORS = 13 * 13 + 26 * 26 + 52 * 52
BINS = 11


def _head(n: int = 1) -> np.ndarray:
    """An all-background NanoDet output: every score 0.01, every distance logit 0."""
    out = np.zeros((n, ANCHORS, 80 + 4 * BINS), np.float32)
    out[:, :, :80] = 0.01
    return out


def _put(out: np.ndarray, frame: int, anchor: int, cls: int, score: float, bins: tuple[int, int, int, int]) -> None:
    out[frame, anchor, cls] = score
    logits = np.zeros((4, BINS), np.float32)
    logits[np.arange(4), bins] = 30.0  # one bin far above the others: arg-max and expectation agree
    out[frame, anchor, 80:] = logits.reshape(-1)


IDENTITY = Geometry(1.0, 1.0, 0, 0, 416, 416)
# 13x13 grid (stride 32), row 6, column 6: centre (208, 208)
CENTRE_ANCHOR = 6 * 13 + 6


def test_nanodet_decodes_a_box_as_human_does() -> None:
    out = _head()
    _put(out, 0, CENTRE_ANCHOR, 43, 0.9, (2, 3, 4, 5))
    (d,) = decode_nanodet(out, [IDENTITY], PARAMS)
    step = 32 * 2.5 * 13 / 32  # human: bin * 2.5 / (32 * s) of 416 px, s = 1 on the 13x13 grid
    np.testing.assert_allclose(d.xyxy, [[208 - 2 * step, 208 - 3 * step, 208 + 4 * step, 208 + 5 * step]], rtol=1e-6)
    assert d.class_id.tolist() == [43] and d.class_id.dtype == np.int32
    np.testing.assert_allclose(d.score, [0.9])

    # upstream NanoDet: softmax expectation of the bins times the stride
    (e,) = decode_nanodet(out, [IDENTITY], dict(PARAMS, regression="expectation", distance_scale=1.0))
    np.testing.assert_allclose(e.xyxy, [[208 - 64, 208 - 96, 208 + 128, 208 + 160]], atol=1e-3)

    # a 52x52-grid anchor (stride 8) at row 10, column 20, and a frame twice the input size
    out = _head()
    _put(out, 0, 169 + 676 + 10 * 52 + 20, 0, 0.5, (1, 1, 1, 1))
    (d,) = decode_nanodet(out, [Geometry(2.0, 2.0, 0, 0, 832, 832)], PARAMS)
    cx, cy, r = 20.5 * 8, 10.5 * 8, 8 * 2.5 * 13 / 32
    np.testing.assert_allclose(d.xyxy, [[2 * (cx - r), 2 * (cy - r), 2 * (cx + r), 2 * (cy + r)]], rtol=1e-6)


def test_nanodet_nms_is_class_agnostic_and_limits_apply() -> None:
    out = _head()
    _put(out, 0, CENTRE_ANCHOR, 0, 0.9, (3, 3, 3, 3))
    out[0, CENTRE_ANCHOR, 43] = 0.5  # same box, another class: suppressed
    out[0, CENTRE_ANCHOR, 61] = 0.99  # class 61 is excluded in the manifest (as human does)
    (d,) = decode_nanodet(out, [IDENTITY], dict(PARAMS, exclude_classes=[61]))
    assert d.class_id.tolist() == [0]
    (d,) = decode_nanodet(out, [IDENTITY], PARAMS)
    assert d.class_id.tolist() == [61]  # not excluded: the best class of the box wins

    # many separate boxes: max_detections keeps the best, in score order
    out = _head()
    for k in range(20):
        _put(out, 0, 169 + 676 + k * 2 * 52 + (k % 5) * 10, 1, 0.3 + 0.01 * k, (0, 0, 1, 1))
    (d,) = decode_nanodet(out, [IDENTITY], dict(PARAMS, max_detections=7))
    np.testing.assert_allclose(d.score, [0.3 + 0.01 * k for k in range(19, 12, -1)], rtol=1e-6)
    (d,) = decode_nanodet(out, [IDENTITY], dict(PARAMS, candidate_limit=3))
    assert len(d) == 3 and float(d.score.min()) == pytest.approx(0.47)


def test_nanodet_zero_detections_and_bad_heads() -> None:
    out = _head(3)
    _put(out, 1, CENTRE_ANCHOR, 2, 0.8, (1, 1, 1, 1))
    dets = decode_nanodet(out, [IDENTITY] * 3, PARAMS)
    assert [len(d) for d in dets] == [0, 1, 0]
    assert dets[0].xyxy.shape == (0, 4) and dets[0].score.dtype == np.float32
    assert decode_nanodet(out[:0], [], PARAMS) == []
    with pytest.raises(ModelError, match="nanodet decoder expects"):
        decode_nanodet(out[:, :100], [IDENTITY] * 3, PARAMS)
    with pytest.raises(ModelError, match="regression"):
        decode_nanodet(out, [IDENTITY] * 3, dict(PARAMS, regression="mean"))


def test_nanodet_decoder_is_vectorised_on_a_dense_head() -> None:
    """Every anchor and class above the threshold (a pathological frame): bounded by candidate_limit."""
    rng = np.random.default_rng(0)
    out = rng.random((2, ANCHORS, 80 + 4 * BINS), dtype=np.float32)
    out[:, :, :80] = 0.21 + 0.7 * out[:, :, :80]
    dets = decode_nanodet(out, [IDENTITY] * 2, load_manifest(NANODET).output.params)
    assert all(0 < len(d) <= 100 for d in dets)


# --------------------------------------------------------------------------- parity with TF.js in Node


def _build_module():
    spec = importlib.util.spec_from_file_location("framescan_model_build", BUILD_DIR / "build.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tfjs_outputs(tmp_path_factory: pytest.TempPathFactory, nsfwjs: OnnxModel, nanodet: OnnxModel) -> dict:
    """Run both original TF.js models in Node at once (2 processes) on framescan-preprocessed photos."""
    build = _build_module()
    modules = build.CACHE / "node"
    missing = []
    if shutil.which("node") is None:
        missing.append("node is not on PATH")
    for pkg in ("tfjs-core", "tfjs-converter", "tfjs-layers", "tfjs-backend-wasm"):
        if not (modules / "node_modules" / "@tensorflow" / pkg / "package.json").is_file():
            missing.append(f"@tensorflow/{pkg} is not in {modules}")
    missing += [f"the original TF.js model {p} is absent" for p in build.TFJS_MODELS.values() if not p.is_file()]
    if missing:
        pytest.skip("; ".join(missing) + " (run: bash models/build/build_all.sh)")
    # TF.js' wasm backend (XNNPACK): ~0.4 s a NanoDet image, where the plain-JavaScript cpu backend (the
    # build's reference, which checks both) takes ~13 s.
    plan = {NSFWJS: (nsfwjs, PHOTOS), NANODET: (nanodet, PHOTOS)}
    tmp = tmp_path_factory.mktemp("tfjs")
    procs, inputs = {}, {}
    for name, (model, photos) in plan.items():
        batch, _ = _batch(model, photos)
        files = []
        for photo, x in zip(photos, batch):
            files.append(tmp / f"{name}.{photo}.npy")
            np.save(files[-1], x[None])
        inputs[name] = (photos, batch)
        env = dict(os.environ, TFJS_MODULES=str(modules))
        cmd = ["node", str(BUILD_DIR / "tfjs.js"), "run", str(build.TFJS_MODELS[name]), "--backend", "wasm"]
        cmd += map(str, files)
        procs[name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    result = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr[-2000:]
        reports = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        combine = build.combine_nanodet if name == NANODET else build.combine_single
        refs = [combine([np.load(o["path"]) for o in rep["outputs"]]) for rep in reports]
        result[name] = (*inputs[name], refs)
    return result


@pytest.mark.node
@pytest.mark.parametrize("name", [NSFWJS, NANODET])
def test_onnx_matches_tfjs_on_photographs(
    name: str, tfjs_outputs: dict, nsfwjs: OnnxModel, nanodet: OnnxModel, capsys
) -> None:
    model = nsfwjs if name == NSFWJS else nanodet
    photos, batch, refs = tfjs_outputs[name]
    got = model.raw(batch)  # the whole batch at once: the dynamic batch axis too
    diffs = {p: float(np.abs(got[i : i + 1] - ref).max()) for i, (p, ref) in enumerate(zip(photos, refs))}
    with capsys.disabled():
        print(f"\n{name}: max |ONNX Runtime - TF.js| " + ", ".join(f"{p} {d:.2g}" for p, d in diffs.items()))
    assert max(diffs.values()) <= PARITY_MAX_ABS, diffs
