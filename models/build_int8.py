"""Build, validate and benchmark a static int8 (QDQ) variant of a model manifest's ONNX file.

    python models/build_int8.py [--manifest models/nudenet-320n.json] [--out models/nudenet-320n-int8]
    python models/build_int8.py --bench-only          # float32 vs int8 speed of the built variant

Steps (docs/int8.md has the reasoning and the figures):

1. *Frames*: clips generated with ``framescan.synth.write_clip`` (skimage.data photographs
   on a moving background), encoded with H.264, decoded with framescan's decoder and written
   into model inputs with framescan's own ``preprocess_into``, so calibration and validation
   see exactly what inference sees. Three disjoint sets (different frame sizes, aspect
   ratios, scales, positions and photographs): *calibration* (activation ranges),
   *selection* (ranks the candidate recipes) and *reference* (validates the chosen one).
2. *Quantisation*: ``onnxruntime.quantization.quantize_static``, QDQ format, activations uint8
   (asymmetric, per tensor), weights int8 (symmetric, per output channel), input height and
   width left dynamic like the float32 graph's (``prepare``), so the int8 model also runs on
   a trimmed canvas (``models/build_trim.py``). What stays float32 is a rule on the graph
   (``Recipe.float_nodes``): the detection head's tail (``tail_nodes``) and the first convs
   of the stem (``stem_nodes``). Candidate recipes: calibration method (MinMax, Percentile,
   Entropy) x tail rule x stem convs; ``choose`` picks one on the selection frames.
3. *Validation*: on the reference frames, a float32 detection is matched by an int8 detection
   of the same class with IoU >= 0.5 (greedy, highest score first);
   ``agreement = matched / (matched + missed + extra)``, with recall, precision and the
   score drift of matched detections. The int8 manifest is written only when the agreement
   reaches ``--min-agreement`` (0.95), with the figures in its ``validation`` field;
   otherwise nothing is offered (and a stale manifest is removed).
4. *Speed* (``--bench`` / ``--bench-only``): float32 vs int8 ms/frame at batch 1 and 8,
   interleaved, medians, after waiting for an idle CPU.

Build-time dependencies: ``onnx`` (``onnxruntime.quantization`` imports it) and scikit-image
(sample clips). Running the int8 model needs neither; the validation code (``compare``,
``make_frames``) needs no ``onnx``, so the tests import this file without it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
try:
    import framescan  # noqa: F401
except ImportError:  # run as a script from a checkout that is not installed
    sys.path.insert(0, str(HERE.parent))

from framescan.decode import FrameDecoder  # noqa: E402
from framescan.frames import Detections, Geometry  # noqa: E402
from framescan.infer import OnnxModel  # noqa: E402
from framescan.inputspec import InputSpec  # noqa: E402
from framescan.models import ModelManifest, file_sha256, load_manifest, parse_manifest  # noqa: E402
from framescan.preprocess import preprocess_into  # noqa: E402
from framescan.probe import as_source, open_container, select_video_stream  # noqa: E402
from framescan.sample import make_sampler  # noqa: E402
from framescan.synth import Shot, load_image, write_clip  # noqa: E402

DEFAULT_MANIFEST = HERE / "nudenet-320n.json"
MIN_AGREEMENT = 0.95
MATCH_IOU = 0.5
METHODS = ("minmax", "percentile", "entropy")
TAILS = ("post-conv", "final-conv")
STEMS = (0, 3)  # float32 stem convs tried
THREADS = 2
CALIBRATION_BATCH = 8
PERCENTILE = 99.999


# --------------------------------------------------------------------------- frame sets


@dataclass(frozen=True)
class ClipSpec:
    """One generated clip: frame size, length, frame rate and the photographs shown."""

    name: str
    width: int
    height: int
    shots: tuple[Shot, ...]
    seconds: float = 3.0
    fps: int = 4


@dataclass
class FrameSet:
    """Preprocessed model inputs and the geometry mapping each back to its frame."""

    inputs: np.ndarray  # [N, ...] float32, exactly what framescan feeds the model
    geometries: list[Geometry]
    names: list[str]  # "<clip>@<time>" per frame

    def __len__(self) -> int:
        return len(self.geometries)

    def batches(self, size: int) -> Iterator[tuple[np.ndarray, list[Geometry]]]:
        for i in range(0, len(self), size):
            yield self.inputs[i : i + size], self.geometries[i : i + size]


def _img(name: str) -> np.ndarray:
    if name == "stereo_motorcycle":
        from skimage import data

        return load_image(data.stereo_motorcycle()[0])
    return load_image(name)


def _collage(*names: str) -> np.ndarray:
    """Photographs side by side, each scaled to the height of the first."""
    import cv2

    imgs = [_img(n) for n in names]
    h = imgs[0].shape[0]
    parts = [im if im.shape[0] == h else cv2.resize(im, (round(im.shape[1] * h / im.shape[0]), h)) for im in imgs]
    return np.ascontiguousarray(np.hstack(parts))


def _flip(name: str) -> np.ndarray:
    return np.ascontiguousarray(_img(name)[:, ::-1])


def _offset(name: str, where: str, margin: float = 0.5) -> np.ndarray:
    """The photograph on a mid-grey canvas ``margin`` larger than it, pushed to the ``where``
    side(s) ("left", "right", "top", "bottom", "top-left", ...), so that it lands away from the
    centre of the frame (write_clip centres its shots)."""
    img = _img(name)
    h, w = img.shape[:2]
    ch = round(h * (1 + margin)) if ("top" in where or "bottom" in where) else h
    cw = round(w * (1 + margin)) if ("left" in where or "right" in where) else w
    canvas = np.full((ch, cw, 3), 128, np.uint8)
    y0 = ch - h if "bottom" in where else 0
    x0 = cw - w if "right" in where else 0
    canvas[y0 : y0 + h, x0 : x0 + w] = img
    return canvas


def _seq(items: Sequence[tuple[str | np.ndarray, float]], seconds_each: float = 1.0) -> tuple[Shot, ...]:
    """Shots one after another; an item with scale 0 leaves the background alone (no photo)."""
    shots = []
    for i, (img, scale) in enumerate(items):
        if scale > 0 and not (isinstance(img, str) and not img):
            shots.append(
                Shot(i * seconds_each, (i + 1) * seconds_each, _img(img) if isinstance(img, str) else img, scale)
            )
    return tuple(shots)


def calibration_clips() -> list[ClipSpec]:
    """Calibration: the ordinary sample photographs and the flagged stand-in, in several
    frame sizes and aspect ratios (portrait, landscape, square, SD), plus background-only frames."""
    base = ("astronaut", "camera", "coffee", "chelsea", "rocket", "colorwheel")
    more = ("immunohistochemistry", "coins", "moon", "brick")
    return [
        ClipSpec("cal-portrait", 720, 1280, _seq([(n, 0.7) for n in base]), seconds=6.0, fps=4),
        ClipSpec("cal-landscape", 1280, 720, _seq([(n, 0.85) for n in (*base[::-1], "")]), seconds=7.0, fps=4),
        ClipSpec("cal-square", 480, 480, _seq([(n, 0.95) for n in (*base, *more)]), seconds=10.0, fps=3),
        ClipSpec("cal-sd", 640, 360, _seq([(n, 0.6) for n in (*more, *base)]), seconds=10.0, fps=3),
        ClipSpec("cal-small", 360, 640, _seq([(n, 0.9) for n in base[1::2] + base[::2]]), seconds=6.0, fps=3),
    ]


def selection_clips() -> list[ClipSpec]:
    """Candidate recipes are ranked on these frames, never on the reference set, so that the
    agreement the manifest reports is measured on frames that played no part in any choice.
    As large as the reference set: on a few dozen detections one flipped borderline
    detection outweighs a twofold difference in score drift."""
    return [
        ClipSpec(
            "sel-square",
            720,
            720,
            _seq([("astronaut", 0.8), ("colorwheel", 0.7), ("camera", 0.8), ("coffee", 0.9), ("", 0)]),
            seconds=5.0,
            fps=4,
        ),
        ClipSpec(
            "sel-45",
            800,
            1000,
            _seq(
                [
                    (_flip("colorwheel"), 0.9),
                    (_offset("astronaut", "right", 0.3), 1.0),
                    (_offset("camera", "bottom", 0.3), 1.0),
                    ("rocket", 0.9),
                ]
            ),
            seconds=4.0,
            fps=4,
        ),
        ClipSpec(
            "sel-43",
            1280,
            960,
            _seq(
                [
                    (_collage("camera", "astronaut"), 1.0),
                    ("colorwheel", 0.6),
                    (_flip("camera"), 0.85),
                    ("chelsea", 0.9),
                    ("immunohistochemistry", 0.9),
                ]
            ),
            seconds=5.0,
            fps=4,
        ),
        ClipSpec(
            "sel-small",
            400,
            300,
            _seq([("camera", 0.95), ("astronaut", 0.95), ("colorwheel", 0.85), (_flip("astronaut"), 0.95), ("", 0)]),
            seconds=5.0,
            fps=5,
        ),
        ClipSpec(
            "sel-portrait",
            600,
            800,
            _seq(
                [
                    (_offset("astronaut", "top", 0.3), 1.0),
                    ("camera", 0.9),
                    ("colorwheel", 0.75),
                    (_flip("camera"), 0.95),
                    ("coins", 0.9),
                ]
            ),
            seconds=5.0,
            fps=5,
        ),
        ClipSpec(
            "sel-45-tall",
            1080,
            1350,
            _seq([("astronaut", 0.9), ("colorwheel", 0.9), (_offset("camera", "left", 0.3), 1.0)]),
            seconds=3.0,
            fps=4,
        ),
        ClipSpec(
            "sel-wide",
            1600,
            900,
            _seq([(_collage("astronaut", "colorwheel"), 1.0), ("camera", 0.9), ("astronaut", 0.9)]),
            seconds=3.0,
            fps=4,
        ),
    ]


def reference_clips() -> list[ClipSpec]:
    """Validation: no frame shared with calibration. Other frame sizes (4:3 both ways, 1:1 at
    600, 9:16 at 540x960, 1024x768, 1920x1080), other scales and positions (photographs pushed
    to a side, flipped, collages), photographs never calibrated on, and frames with nothing
    (background only, or photographs with nothing to detect). Includes the reference
    detections: colorwheel (BUTTOCKS_EXPOSED), astronaut (FACE_FEMALE), camera (FACE_MALE)."""
    return [
        ClipSpec(
            "ref-43",
            640,
            480,
            _seq([("colorwheel", 0.9), ("astronaut", 0.95), ("camera", 0.95), ("colorwheel", 0.5), ("", 0)]),
            seconds=5.0,
            fps=5,
        ),
        ClipSpec(
            "ref-34",
            480,
            640,
            _seq(
                [
                    ("astronaut", 1.0),
                    ("camera", 1.0),
                    ("colorwheel", 0.8),
                    (_flip("astronaut"), 1.0),
                    (_flip("camera"), 1.0),
                    ("hubble_deep_field", 1.0),
                ]
            ),
            seconds=6.0,
            fps=5,
        ),
        ClipSpec(
            "ref-square",
            600,
            600,
            _seq(
                [
                    ("colorwheel", 0.65),
                    (_offset("camera", "right", 0.3), 1.0),
                    ("astronaut", 0.6),
                    (_flip("colorwheel"), 0.8),
                    ("", 0),
                ]
            ),
            seconds=5.0,
            fps=5,
        ),
        ClipSpec(
            "ref-xga",
            1024,
            768,
            _seq(
                [
                    (_offset("astronaut", "left", 0.3), 1.0),
                    (_offset("colorwheel", "right", 0.3), 1.0),
                    (_offset("camera", "top-left", 0.25), 1.0),
                    (_collage("astronaut", "camera"), 1.0),
                    ("retina", 0.9),
                ]
            ),
            seconds=5.0,
            fps=5,
        ),
        ClipSpec(
            "ref-916",
            540,
            960,
            _seq(
                [
                    (_flip("astronaut"), 1.0),
                    ("colorwheel", 1.0),
                    ("camera", 1.0),
                    (_offset("astronaut", "bottom-right", 0.25), 1.0),
                ]
            ),
            seconds=4.0,
            fps=5,
        ),
        ClipSpec(
            "ref-fullhd",
            1920,
            1080,
            _seq([(_collage("colorwheel", "astronaut"), 1.0), ("camera", 1.0), ("", 0)]),
            seconds=3.0,
            fps=4,
        ),
        ClipSpec(
            "ref-other-photos",
            800,
            600,
            _seq(
                [
                    ("hubble_deep_field", 0.9),
                    ("retina", 0.9),
                    ("stereo_motorcycle", 0.9),
                    ("clock", 0.8),
                    ("grass", 0.9),
                    ("gravel", 0.9),
                    ("logo", 0.7),
                    ("page", 0.9),
                    ("text", 0.9),
                    ("horse", 0.9),
                    ("", 0),
                ]
            ),
            seconds=11.0,
            fps=3,
        ),
    ]


def mini_reference_clips() -> list[ClipSpec]:
    """The small subset the test suite re-validates on (a few seconds of work)."""
    return [
        ClipSpec(
            "refmini-a",
            640,
            480,
            _seq([("colorwheel", 0.9), ("astronaut", 0.95), ("camera", 0.95), ("", 0)]),
            seconds=4.0,
            fps=4,
        ),
        ClipSpec(
            "refmini-b",
            480,
            640,
            _seq([(_flip("astronaut"), 1.0), (_offset("colorwheel", "right", 0.3), 1.0), ("retina", 0.9)]),
            seconds=3.0,
            fps=4,
        ),
    ]


def decode_frames(path: Path, spec: InputSpec, name: str = "") -> FrameSet:
    """Every frame of a clip, decoded and preprocessed exactly as ``Scanner`` does."""
    return decode_frame_sets(path, [spec], name)[0]


def decode_frame_sets(path: Path, specs: Sequence[InputSpec], name: str = "") -> list[FrameSet]:
    """``decode_frames`` for several input specs at once (one decode, one ``FrameSet`` each)."""
    src = as_source(path)
    container = open_container(src)
    inputs: list[list[np.ndarray]] = [[] for _ in specs]
    geos: list[list[Geometry]] = [[] for _ in specs]
    names: list[str] = []
    try:
        stream = select_video_stream(container, src.name)
        for frame in FrameDecoder(container, stream, make_sampler(all_frames=True)):
            for spec, ins, gs in zip(specs, inputs, geos):
                slot = np.zeros((1, *spec.shape_for(*frame.upright_size)), np.float32)
                gs.append(preprocess_into(frame, spec, slot[0]))
                ins.append(slot[0])
            names.append(f"{name or path.stem}@{frame.time:.2f}")
    finally:
        container.close()
    return [FrameSet(np.stack(ins), gs, list(names)) for ins, gs in zip(inputs, geos)]


def make_frames(clips: Sequence[ClipSpec], spec: InputSpec, workdir: Path) -> FrameSet:
    """Generate, encode, decode and preprocess ``clips``."""
    sets = []
    for c in clips:
        path = write_clip(
            workdir / f"{c.name}.mp4", width=c.width, height=c.height, seconds=c.seconds, fps=c.fps, shots=c.shots
        )
        sets.append(decode_frames(path, spec, c.name))
    return FrameSet(
        np.concatenate([s.inputs for s in sets]),
        [g for s in sets for g in s.geometries],
        [n for s in sets for n in s.names],
    )


# --------------------------------------------------------------------------- validation


@dataclass
class Validation:
    """How far the int8 model's detections agree with the float32 model's."""

    frames: int
    reference_detections: int  # float32 detections
    candidate_detections: int  # int8 detections
    matched: int
    agreement: float  # matched / (matched + missed + extra)
    recall: float  # matched / float32 detections
    precision: float  # matched / int8 detections
    score_drift_mean: float  # mean |int8 - float32| score over matched detections
    score_drift_max: float
    iou_mean: float  # mean IoU of matched boxes
    per_class: dict[str, dict[str, int]] = field(default_factory=dict)
    disagreements: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "agreement": round(self.agreement, 4),
            "recall": round(self.recall, 4),
            "precision": round(self.precision, 4),
            "score_drift_mean": round(self.score_drift_mean, 4),
            "score_drift_max": round(self.score_drift_max, 4),
            "iou_mean": round(self.iou_mean, 4),
            "frames": self.frames,
            "reference_detections": self.reference_detections,
            "matched": self.matched,
            "missed": self.reference_detections - self.matched,
            "extra": self.candidate_detections - self.matched,
        }


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def match(ref: Detections, cand: Detections, min_iou: float = MATCH_IOU) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching, reference detections by decreasing score: each takes the
    unmatched candidate of the same class with the highest IoU (>= ``min_iou``)."""
    pairs = []
    used: set[int] = set()
    for i in np.argsort(-ref.score, kind="stable"):
        best, best_iou = -1, min_iou
        for j in range(len(cand)):
            if j in used or cand.class_id[j] != ref.class_id[i]:
                continue
            v = _iou(ref.xyxy[i], cand.xyxy[j])
            if v >= best_iou:
                best, best_iou = j, v
        if best >= 0:
            used.add(best)
            pairs.append((int(i), best, best_iou))
    return pairs


def detect(model: OnnxModel, frames: FrameSet, batch_size: int = 8) -> list[Detections]:
    """framescan's detections (the manifest's decoder and thresholds) for every frame."""
    out: list[Detections] = []
    for batch, geos in frames.batches(batch_size):
        out.extend(model.run(np.ascontiguousarray(batch), geos))
    return out


def compare(reference: OnnxModel, candidate: OnnxModel, frames: FrameSet) -> Validation:
    """Validate ``candidate`` against ``reference`` on ``frames``."""
    labels = [lab.name for lab in reference.manifest.labels]
    return tally(frames.names, detect(reference, frames), detect(candidate, frames), labels)


def tally(
    names: Sequence[str], ref_dets: Sequence[Detections], cand_dets: Sequence[Detections], labels: Sequence[str]
) -> Validation:
    """Match each frame's candidate detections to its reference detections (``match``) and
    sum up: agreement, recall, precision, score drift, per class, and every disagreement."""
    n_ref = n_cand = n_match = 0
    drifts: list[float] = []
    ious: list[float] = []
    per_class: dict[str, dict[str, int]] = {}
    notes: list[str] = []
    for name, r, c in zip(names, ref_dets, cand_dets):
        pairs = match(r, c)
        n_ref, n_cand, n_match = n_ref + len(r), n_cand + len(c), n_match + len(pairs)
        for i, j, v in pairs:
            drifts.append(abs(float(c.score[j]) - float(r.score[i])))
            ious.append(v)
        matched_r, matched_c = {i for i, _, _ in pairs}, {j for _, j, _ in pairs}
        for k in range(len(r)):
            pc = per_class.setdefault(labels[r.class_id[k]], {"reference": 0, "matched": 0, "extra": 0})
            pc["reference"] += 1
            pc["matched"] += k in matched_r
            if k not in matched_r:
                notes.append(f"{name}: missed {labels[r.class_id[k]]} {r.score[k]:.3f}")
        for k in range(len(c)):
            if k not in matched_c:
                per_class.setdefault(labels[c.class_id[k]], {"reference": 0, "matched": 0, "extra": 0})["extra"] += 1
                notes.append(f"{name}: extra {labels[c.class_id[k]]} {c.score[k]:.3f}")
    union = n_ref + n_cand - n_match
    return Validation(
        frames=len(names),
        reference_detections=n_ref,
        candidate_detections=n_cand,
        matched=n_match,
        agreement=n_match / union if union else 1.0,
        recall=n_match / n_ref if n_ref else 1.0,
        precision=n_match / n_cand if n_cand else 1.0,
        score_drift_mean=float(np.mean(drifts)) if drifts else 0.0,
        score_drift_max=float(np.max(drifts)) if drifts else 0.0,
        iou_mean=float(np.mean(ious)) if ious else 1.0,
        per_class=per_class,
        disagreements=notes,
    )


# --------------------------------------------------------------------------- quantisation


def tail_nodes(graph: Any, tail: str = "post-conv") -> list[str]:
    """Names of the nodes that stay float32: the detection head's tail.

    The head is the module that holds the DFL (Ultralytics names its nodes
    ``/model.<N>/...``, the DFL's ``/model.<N>/dfl/...``). Its box and class conv stacks are
    ``/model.<N>/cv2.<level>/...`` and ``/model.<N>/cv3.<level>/...``. The tail is every
    other node of the head, i.e. everything after the last conv of each stack: the per-level
    Concat/Reshape, Split, DFL (Softmax + 1x1 Conv), anchors and strides, box decoding,
    Sigmoid, output Concat. With ``tail="final-conv"`` the last conv of each stack
    (``cv2.<level>.2`` / ``cv3.<level>.2``, the raw box-distribution and class logits) is
    excluded as well.
    """
    if tail not in TAILS:
        raise ValueError(f"tail must be one of {TAILS}, not {tail!r}")
    names = [n.name for n in graph.node]
    dfl = [n for n in names if "/dfl/" in n]
    if not dfl:
        raise ValueError("no DFL node (name containing '/dfl/') in the graph: not a YOLOv8 detection head")
    head = dfl[0].split("/dfl/")[0] + "/"
    stack = re.compile(re.escape(head) + r"cv[23]\.\d+/")
    final = re.compile(re.escape(head) + r"cv[23]\.\d+/cv[23]\.\d+\.2/")
    excluded = [
        n for n in names if n.startswith(head) and (not stack.match(n) or (tail == "final-conv" and final.match(n)))
    ]
    producers = {o: n.name for n in graph.node for o in n.output}
    out_node = producers.get(graph.output[0].name)
    if out_node not in excluded:
        raise ValueError(f"the output node {out_node!r} is not in the head {head!r}: unexpected graph layout")
    return excluded


def stem_nodes(graph: Any, convs: int) -> list[str]:
    """The first ``convs`` Conv nodes in graph (topological) order, with their SiLU (the
    ``Sigmoid`` and ``Mul`` that read the conv's output): they stay float32.

    In YOLOv8n these are ``/model.0/conv``, ``/model.1/conv`` and ``/model.2/cv1/conv``, the
    full-resolution stem. Their outputs have the widest ranges of the network (about -170 to
    +210 after ``/model.1``), so 8 bits cannot resolve the small values that carry the
    picture; quantising any one of them moves scores by 0.03-0.05 on average (see
    docs/int8.md)."""
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    out: list[str] = []
    for conv in [n for n in graph.node if n.op_type == "Conv"][:convs]:
        out.append(conv.name)
        act = [c for c in consumers.get(conv.output[0], []) if c.op_type in ("Sigmoid", "Mul")]
        sig = {o for c in act if c.op_type == "Sigmoid" for o in c.output}
        out += [c.name for c in act if c.op_type == "Sigmoid" or sig & set(c.input)]
    return out


@dataclass(frozen=True)
class Recipe:
    """One way to quantise: calibration method, tail rule, float32 stem convs."""

    method: str
    tail: str
    stem: int

    @property
    def key(self) -> str:
        return f"{self.method}/{self.tail}/stem{self.stem}"

    def float_nodes(self, graph: Any) -> list[str]:
        return stem_nodes(graph, self.stem) + tail_nodes(graph, self.tail)


class FrameReader:
    """``CalibrationDataReader`` protocol (duck-typed, so importing this file needs no ``onnx``):
    batches of preprocessed frames; ``set_range`` lets the calibrator collect in strides."""

    def __init__(self, input_name: str, inputs: np.ndarray, batch: int = CALIBRATION_BATCH) -> None:
        self.input_name = input_name
        self.items = [np.ascontiguousarray(inputs[i : i + batch]) for i in range(0, len(inputs), batch)]
        self.set_range(0, len(self.items))

    def __len__(self) -> int:
        return len(self.items)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._iter = iter(self.items[start_index:end_index])

    def get_next(self) -> dict[str, np.ndarray] | None:
        item = next(self._iter, None)
        return None if item is None else {self.input_name: item}


def _stride(n: int, want: int = 4) -> int:
    """Largest divisor of ``n`` up to ``want`` (ORT requires the stride to divide the count)."""
    return max(d for d in range(1, want + 1) if n % d == 0)


def fix_input_size(model: Any, spec: InputSpec) -> Any:
    """Pin the input's height and width to the manifest's (the batch stays dynamic).

    framescan only ever feeds ``spec.height x spec.width``; with the size fixed, ONNX
    Runtime's symbolic shape inference (``quant_pre_process``) completes, which it does not
    on the fully dynamic Ultralytics export. (Pinning alone does not change float32 speed.)"""
    from onnxruntime.tools.onnx_model_utils import make_dim_param_fixed

    graph = model.graph
    inp = next((i for i in graph.input if i.name == spec.name), None)
    if inp is None:
        raise ValueError(f"input {spec.name!r} not in the graph")
    dims = inp.type.tensor_type.shape.dim
    axes = (2, 3) if spec.layout == "NCHW" else (1, 2)
    for axis, size in zip(axes, (spec.height, spec.width)):
        d = dims[axis]
        if d.HasField("dim_param"):
            make_dim_param_fixed(graph, d.dim_param, size)
        elif d.dim_value not in (0, size):
            raise ValueError(f"input {spec.name!r} axis {axis} is fixed to {d.dim_value}, the manifest says {size}")
        else:
            d.dim_value = size
    batch = dims[0].dim_param if dims[0].HasField("dim_param") else None
    for o in graph.output:  # symbolic output sizes derived from height/width: let inference redo them
        for d in o.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param != batch:
                d.Clear()
    del graph.value_info[:]
    return model


def prepare(src: Path, dst: Path, spec: InputSpec, fixed_size: bool = False) -> Path:
    """The float32 model as it is quantised.

    By default the graph as it is: its input height and width stay dynamic, so the int8 model
    also runs on a trimmed canvas (``InputSpec.trim_multiple``). ``quant_pre_process`` would
    fold the anchor grid for one size into constants (then any other size fails in an
    ``Expand``), and its symbolic shape inference does not complete on the dynamic export;
    quantising without it gave the same validation figures (0.9828 agreement, 0.0186 mean
    drift) as the pinned build. ``fixed_size``: the earlier build, input size pinned
    (``fix_input_size``), then ``quant_pre_process`` (symbolic shape inference + basic graph
    optimisations, as the ONNX Runtime docs recommend before quantising)."""
    if not fixed_size:
        shutil.copyfile(src, dst)
        return dst
    import onnx
    from onnxruntime.quantization import quant_pre_process

    fixed = dst.with_name(dst.stem + ".fixed.onnx")
    onnx.save(fix_input_size(onnx.load(str(src)), spec), str(fixed))
    cwd = os.getcwd()
    # when shape inference fails, ORT leaves sym_shape_infer_temp.onnx and a <uuid>.data file
    # (the weights) in the working directory: keep them out of the caller's
    os.chdir(dst.parent)
    try:
        quant_pre_process(str(fixed.resolve()), str(dst.resolve()), auto_merge=True)
    finally:
        os.chdir(cwd)
    fixed.unlink()
    return dst


def quantize(
    pre: Path,
    dst: Path,
    calibration: FrameSet,
    spec: InputSpec,
    method: str,
    excluded: Sequence[str],
    *,
    op_types: Sequence[str] | None = None,
    cache: Path | None = None,
) -> Path:
    """Static QDQ quantisation of the prepared model ``pre`` into ``dst``: activations uint8
    (asymmetric, per tensor), weights int8 (symmetric, per output channel); ``excluded`` nodes
    stay float32. ``cache`` keeps the calibrated ranges (JSON) for the same model and method."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    calib_method = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[method]
    reader = FrameReader(spec.name, calibration.inputs)
    extra: dict[str, Any] = {
        "ActivationSymmetric": False,
        "WeightSymmetric": True,
        # collect in strides: histogram calibrators otherwise keep every activation of every batch
        "CalibStridedMinMax": _stride(len(reader)),
    }
    if method == "percentile":
        extra["CalibPercentile"] = PERCENTILE
    quantize_static(
        str(pre),
        str(dst),
        reader,  # type: ignore[arg-type]
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(op_types) if op_types else None,
        per_channel=True,
        reduce_range=False,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=list(excluded),
        calibrate_method=calib_method,
        extra_options=extra,
        calibration_cache_path=cache,
    )
    return dst


def tag(path: Path, info: dict[str, Any]) -> None:
    """Provenance in the file's own metadata, next to the Ultralytics metadata (licence
    included) that quantisation keeps."""
    import onnx

    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    meta["framescan_int8"] = json.dumps(info, sort_keys=True)
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))


# --------------------------------------------------------------------------- manifests


def candidate_manifest(base: dict[str, Any], name: str, onnx_path: Path, source: str) -> ModelManifest:
    """A ``ModelManifest`` for an int8 file, to load it with framescan before it is offered."""
    data = {**base, "name": name, "file": {"path": str(onnx_path.resolve())}, "sha256": file_sha256(onnx_path)}
    return parse_manifest(data, source)


def int8_manifest(
    base: dict[str, Any],
    name: str,
    onnx_name: str,
    sha256: str,
    source_sha256: str,
    quantization: dict[str, Any],
    validation: dict[str, Any],
) -> dict[str, Any]:
    """The manifest JSON of the int8 variant: same input, output and labels as ``base``."""
    src_license = base.get("license", {})
    file_note = src_license.get("file", "its own licence")
    licence = {
        "file": (
            f"derived from {base.get('name')}'s ONNX file (sha256 {source_sha256}) by int8 quantisation "
            f"(models/build_int8.py), so under that file's terms: {file_note}"
        ),
    }
    if "package" in src_license:
        licence["source_package"] = f"the source file ships in a package that declares {src_license['package']}"
    return {
        "manifest_version": base.get("manifest_version", 1),
        "name": name,
        "description": (
            f"{base.get('name')} quantised to int8 (static QDQ: activations uint8, weights int8 per channel; "
            "the stem's first convolutions and the detection-head tail stay float32). Built by models/build_int8.py "
            "and offered only after validation against the float32 model (see 'validation' and docs/int8.md)."
        ),
        "file": {"path": onnx_name},
        "sha256": sha256,
        "license": licence,
        "input": base["input"],
        "output": base["output"],
        "labels": base["labels"],
        "quantization": quantization,
        "validation": validation,
    }


# --------------------------------------------------------------------------- speed


def cpu_busy(interval: float = 2.0) -> float:
    """Share of the machine's CPU time (all cores) spent busy over ``interval`` seconds
    (Linux ``/proc/stat``; 0 elsewhere)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return idle, sum(fields)

    try:
        i0, t0 = sample()
        time.sleep(interval)
        i1, t1 = sample()
    except OSError:
        return 0.0
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_idle(max_busy: float = 0.15, timeout: float = 300.0) -> float:
    """Wait (up to ``timeout`` s) until other processes leave the CPU mostly idle; returns
    the last busy share measured (the machine is shared: timings under load mean little)."""
    end = time.monotonic() + timeout
    busy = cpu_busy()
    while busy > max_busy and time.monotonic() < end:
        busy = cpu_busy()
    return busy


def benchmark(
    models: dict[str, OnnxModel], frames: FrameSet, batch_sizes: Sequence[int] = (1, 8), seconds: float = 20.0
) -> dict[str, dict[int, float]]:
    """Median ms/frame per model and batch size; models run interleaved (one batch each in
    turn) so that load from other processes hits them alike."""
    result: dict[str, dict[int, float]] = {k: {} for k in models}
    for bs in batch_sizes:
        batch = np.ascontiguousarray(frames.inputs[:bs])
        for m in models.values():  # warm-up
            for _ in range(3):
                m.raw(batch)
        times: dict[str, list[float]] = {k: [] for k in models}
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or len(next(iter(times.values()))) < 5:
            for k, m in models.items():
                t0 = time.perf_counter()
                m.raw(batch)
                times[k].append((time.perf_counter() - t0) * 1000.0 / bs)
        for k in models:
            result[k][bs] = statistics.median(times[k])
    return result


# --------------------------------------------------------------------------- command line


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def choose(ranked: Sequence[tuple[Recipe, Path, Validation]]) -> tuple[tuple[Recipe, Path, Validation], float]:
    """The recipe to offer, from candidates measured on the selection frames.

    Agreement counts whole detections, and most disagreements are borderline detections
    (score near the threshold, or two face classes with close scores), so on ~100 detections
    it moves by 0.01 per flip: a recipe can win by one lucky flip while its scores drift
    2-3 times more (which shows on the next set of frames). Candidates within one standard
    error of the best agreement (``sqrt(p (1 - p) / n)``, at least one detection) are
    therefore tied, and the tie goes to the lowest mean score drift. Returns the choice and
    the margin used."""
    best = max(v.agreement for _, _, v in ranked)
    top = max(ranked, key=lambda x: x[2].agreement)[2]
    n = max(1, top.reference_detections + top.candidate_detections - top.matched)
    margin = max(math.sqrt(best * (1.0 - best) / n), 1.0 / n)
    tied = [c for c in ranked if c[2].agreement >= best - margin - 1e-12]
    return min(tied, key=lambda c: (c[2].score_drift_mean, -c[2].agreement)), margin


def run_benchmark(
    fp32_manifest: ModelManifest,
    int8_manifest_: ModelManifest,
    frames: FrameSet,
    threads: int,
    seconds: float,
    wait: float,
) -> dict[str, dict[int, float]]:
    """float32 vs int8 ms/frame at batch 1 and 8 (medians, interleaved), printed to stderr."""
    fp32 = OnnxModel(fp32_manifest, threads=threads)
    int8 = OnnxModel(int8_manifest_, threads=threads)
    print(f"benchmark: waiting up to {wait:.0f} s for an idle CPU ...", file=sys.stderr, flush=True)
    busy = wait_idle(timeout=wait)
    print(f"benchmark: CPU {busy:.0%} busy before the run; {threads} threads", file=sys.stderr, flush=True)
    speed = benchmark({"float32": fp32, "int8": int8}, frames, seconds=seconds)
    for bs in (1, 8):
        f, q = speed["float32"][bs], speed["int8"][bs]
        print(f"batch {bs}: float32 {f:.2f} ms/frame, int8 {q:.2f} ms/frame ({f / q:.2f}x)", file=sys.stderr)
    print(f"benchmark: CPU {cpu_busy():.0%} busy after the run", file=sys.stderr, flush=True)
    return speed


def _line(r: Recipe, v: Validation) -> str:
    return (
        f"{r.key:<28} agreement {v.agreement:.4f} recall {v.recall:.4f} precision {v.precision:.4f} "
        f"drift mean {v.score_drift_mean:.4f} max {v.score_drift_max:.4f} "
        f"({v.matched}/{v.reference_detections} matched, {v.candidate_detections - v.matched} extra)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--manifest", default=str(DEFAULT_MANIFEST), help="float32 model manifest (default: %(default)s)")
    ap.add_argument(
        "--out", default=None, help="output prefix: writes OUT.onnx and OUT.json (default: <manifest>-int8)"
    )
    ap.add_argument("--methods", default=",".join(METHODS), help="calibration methods to try (default: %(default)s)")
    ap.add_argument("--tails", default=",".join(TAILS), help="float32 tail rules to try (default: %(default)s)")
    ap.add_argument(
        "--stems", default=",".join(map(str, STEMS)), help="float32 stem convs to try (default: %(default)s)"
    )
    ap.add_argument("--min-agreement", type=float, default=MIN_AGREEMENT)
    ap.add_argument(
        "--fixed-size", action="store_true", help="pin the input size and run quant_pre_process (no trimmed canvas)"
    )
    ap.add_argument("--bench", action="store_true", help="also measure float32 vs int8 speed")
    ap.add_argument("--bench-only", action="store_true", help="only measure the speed of the built OUT.json")
    ap.add_argument("--bench-seconds", type=float, default=20.0, help="per batch size (default: %(default)s)")
    ap.add_argument("--wait-idle", type=float, default=300.0, help="max seconds to wait for an idle CPU before --bench")
    ap.add_argument("--threads", type=int, default=THREADS, help="ONNX Runtime threads (default: %(default)s)")
    ap.add_argument("--show", type=int, default=10, help="disagreements to print (default: %(default)s)")
    args = ap.parse_args(argv)

    manifest_path = Path(args.manifest).resolve()
    base = json.loads(manifest_path.read_text())
    fp32_manifest = load_manifest(manifest_path)
    out = Path(args.out).resolve() if args.out else manifest_path.with_name(manifest_path.stem + "-int8")
    onnx_out, json_out = out.with_suffix(".onnx"), out.with_suffix(".json")
    name = out.name
    src = fp32_manifest.verified_file()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    tails = [t.strip() for t in args.tails.split(",") if t.strip()]
    stems = [int(x) for x in args.stems.split(",") if x.strip()]
    if bad := [m for m in methods if m not in METHODS] + [t for t in tails if t not in TAILS]:
        ap.error(f"unknown method/tail {bad}; methods {METHODS}, tails {TAILS}")
    recipes = [Recipe(m, t, k) for m in methods for t in tails for k in stems]
    spec = fp32_manifest.input
    if args.bench_only:
        with tempfile.TemporaryDirectory(prefix="framescan-int8-") as tmp_s:
            frames = make_frames(mini_reference_clips(), spec, Path(tmp_s))
        run_benchmark(fp32_manifest, load_manifest(json_out), frames, args.threads, args.bench_seconds, args.wait_idle)
        return 0

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="framescan-int8-") as tmp_s:
        tmp = Path(tmp_s)
        t0 = time.perf_counter()
        calibration = make_frames(calibration_clips(), spec, tmp)
        selection = make_frames(selection_clips(), spec, tmp)
        reference = make_frames(reference_clips(), spec, tmp)
        log(
            f"frames: {len(calibration)} calibration, {len(selection)} selection, {len(reference)} reference "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        pre = prepare(src, tmp / "prepared.onnx", spec, fixed_size=args.fixed_size)
        import onnx

        graph = onnx.load(str(pre)).graph
        fp32 = OnnxModel(fp32_manifest, threads=args.threads)
        ranked: list[tuple[Recipe, Path, Validation]] = []
        for r in recipes:
            t0 = time.perf_counter()
            cand = tmp / f"{r.method}-{r.tail}-stem{r.stem}.onnx"
            # one calibration per method; the other recipes reuse its ranges from the cache
            quantize(
                pre, cand, calibration, spec, r.method, r.float_nodes(graph), cache=tmp / f"ranges-{r.method}.json"
            )
            model = OnnxModel(candidate_manifest(base, name, cand, str(json_out)), threads=args.threads)
            v = compare(fp32, model, selection)
            log(f"selection  {_line(r, v)} {time.perf_counter() - t0:.0f} s")
            ranked.append((r, cand, v))
        (recipe, best, _), margin = choose(ranked)
        best_model = OnnxModel(candidate_manifest(base, name, best, str(json_out)), threads=args.threads)
        v = compare(fp32, best_model, reference)
        log(f"chosen on the selection frames: {recipe.key} (lowest drift within {margin:.3f} of the best agreement)")
        log(f"reference  {_line(recipe, v)} on {v.frames} frames")
        for note in v.disagreements[: args.show]:
            log(f"           {note}")
        per_class = {k: v.per_class[k] for k in sorted(v.per_class)}
        log(f"per class: {json.dumps(per_class)}")
        if v.agreement < args.min_agreement:
            log(f"NOT offered: agreement {v.agreement:.4f} < {args.min_agreement}; {json_out} not written")
            if json_out.exists():
                json_out.unlink()  # a stale manifest must not keep offering an older build
                log(f"removed stale {json_out}")
            return 1
        float_nodes = recipe.float_nodes(graph)
        tag(best, {"source_sha256": fp32_manifest.sha256, "recipe": recipe.key, "float32_nodes": len(float_nodes)})
        shutil.copyfile(best, onnx_out)
        import onnxruntime

        quantization = {
            "tool": f"onnxruntime.quantization.quantize_static (onnxruntime {onnxruntime.__version__})",
            "format": "QDQ",
            "activations": "uint8, asymmetric, per tensor",
            "weights": "int8, symmetric, per output channel",
            "calibration": recipe.method,
            "calibration_frames": len(calibration),
            "float32_tail": recipe.tail,
            "float32_stem_convs": recipe.stem,
            "float32_nodes": len(float_nodes),
            "input_size": [spec.height, spec.width] if args.fixed_size else "dynamic (as the float32 graph)",
            "chosen_on": f"{len(selection)} selection frames, from {len(recipes)} recipes",
            "built_by": "models/build_int8.py (see docs/int8.md)",
        }
        validation = {
            **v.summary(),
            "min_agreement": args.min_agreement,
            "match_rule": f"same class, IoU >= {MATCH_IOU}; agreement = matched / (matched + missed + extra)",
            "reference_model": fp32_manifest.name,
            "reference_model_sha256": fp32_manifest.sha256,
        }
        data = int8_manifest(base, name, onnx_out.name, _sha(onnx_out), fp32_manifest.sha256, quantization, validation)
        json_out.write_text(json.dumps(data, indent=2) + "\n")
        load_manifest(json_out).verified_file()  # what framescan will do with it
        log(f"wrote {onnx_out} ({onnx_out.stat().st_size / 1e6:.2f} MB) and {json_out}")
        if args.bench:
            run_benchmark(
                fp32_manifest, load_manifest(json_out), reference, args.threads, args.bench_seconds, args.wait_idle
            )
        print(json.dumps({"manifest": str(json_out), "validation": validation, "per_class": per_class}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
