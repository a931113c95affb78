"""Model manifests: data (JSON in ``models/``), not code.

A manifest names the ONNX file (a path, or a resource inside an installed package), its
sha256, the input spec, the output decoder with its parameters, and the labels with the
category each feeds and its weight. Nothing in framescan's core names a particular model:
the default (``DEFAULT_MODEL``) is just the manifest the CLI picks when none is given.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cache import FileStamp, cache_dir, read_json, write_json
from .categories import CATEGORIES
from .errors import ConfigError, ModelError
from .inputspec import InputSpec

log = logging.getLogger(__name__)

#: NudeNet 320n (its own ONNX file) on a canvas trimmed to the frame: ~40% less compute than
#: NudeNet's square canvas on portrait and landscape video, and as close to NudeNet's own
#: pipeline as the square canvas (validation.nudenet in its manifest: models/build_trim.py).
#: ``nudenet-320n`` is the square canvas.
DEFAULT_MODEL = "nudenet-320n-trim"
#: Every image model shipped: two independent sexual-content signals (NudeNet's detector, nsfwjs'
#: classifier) and an object detector (weapons COCO knows -> violence; people as context).
ALL_SIGNAL_MODELS = (DEFAULT_MODEL, "nsfwjs-mobilenetv2", "nanodet-coco")
#: The output decoders a manifest can name (``output.decoder``): the one list of them.
#: ``framescan.postprocess`` implements each as ``decode_<name>`` (it loads NumPy; this module must not).
DECODERS = ("yolov8", "softmax", "sigmoid", "nanodet")
MANIFEST_VERSION = 1
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Label:
    name: str
    category: str | None = None
    weight: float = 1.0
    context: bool = False  # counted per frame and reported as context (e.g. people), never scored


@dataclass(frozen=True)
class LabelCalibration:
    """How one label's raw scores count in its category (manifest ``calibration.labels``),
    measured on clean footage (``calibration.data`` says which): ``min_score``, a raw score below
    it counts as 0 (a per-label threshold); ``second_signal``, when set, the label counts only on
    a frame where a signal of another model (or on-screen text) feeding the same category reaches
    this raw score (its own ``min_score`` passed too): a label known to fire on clean textures
    cannot put a clip in review on its own. ``framescan.score.SignalIndex`` applies it."""

    min_score: float = 0.0
    second_signal: float | None = None


#: The keys of a manifest's ``calibration`` section and of its per-label entries.
CALIBRATION_KEYS = ("data", "measured_by", "method", "labels")
CALIBRATION_LABEL_KEYS = ("min_score", "second_signal", "measured", "reason")


@dataclass(frozen=True)
class OutputSpec:
    name: str | None
    decoder: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelManifest:
    """A parsed, validated model manifest."""

    name: str
    description: str
    file: dict[str, str]
    sha256: str
    license: dict[str, str]
    input: InputSpec
    output: OutputSpec
    labels: tuple[Label, ...]
    source: str  # where the manifest was read from
    extra: dict[str, Any] = field(default_factory=dict)
    #: label name -> its calibration (manifest ``calibration.labels``; labels not named count
    #: as ``score x weight``)
    calibration: dict[str, LabelCalibration] = field(default_factory=dict)

    @property
    def categories(self) -> tuple[str, ...]:
        """Categories this model feeds, in report order."""
        fed = {lab.category for lab in self.labels if lab.category}
        return tuple(c for c in CATEGORIES if c in fed)

    def resolve_file(self) -> Path:
        """The ONNX file on disk (``ModelError`` if it is not there)."""
        if "package" in self.file:
            pkg, res = self.file["package"], self.file.get("resource", "")
            spec = importlib.util.find_spec(pkg)
            if spec is None:
                raise ModelError(
                    f"model {self.name!r}: package {pkg!r} is not installed (pip install {pkg})", model=self.name
                )
            # The package's folder from its spec: ``importlib.resources.files`` would import the
            # package (NudeNet's imports OpenCV: 0.04-0.18 s of start-up for a file name).
            found = [Path(d) / res for d in spec.submodule_search_locations or ()]
            found = [p for p in found if p.is_file()]
            path = found[0] if found else Path(str(importlib.resources.files(pkg).joinpath(res)))
        elif "path" in self.file:
            path = Path(self.file["path"])
            if not path.is_absolute():
                path = Path(self.source).parent / path
        else:
            raise ModelError(f"model {self.name!r}: manifest 'file' needs 'package'+'resource' or 'path'")
        if not path.is_file():
            raise ModelError(f"model {self.name!r}: file {path} does not exist", model=self.name, path=str(path))
        return path

    def verified_file(self) -> Path:
        """The ONNX file, after checking its sha256 against the manifest."""
        path = self.resolve_file()
        actual = file_sha256(path)
        if actual != self.sha256.lower():
            raise ModelError(
                f"model {self.name!r}: {path} has sha256 {actual}, the manifest expects {self.sha256}; "
                "the file is corrupt or a different version",
                model=self.name,
                path=str(path),
            )
        return path

    @property
    def schedule_every(self) -> int:
        """Run on every Nth frame the scan gives the models (manifest ``"schedule": {"every": N}``,
        default 1: a costly model with a weak signal can look less often)."""
        every = (self.extra.get("schedule") or {}).get("every", 1)
        if not isinstance(every, int) or every < 1:
            raise ConfigError(
                f"model manifest {self.source}: schedule.every must be a whole number >= 1, got {every!r}"
            )
        return every

    def summary(self) -> dict[str, Any]:
        d = {"name": self.name, "sha256": self.sha256, "decoder": self.output.decoder, "license": self.license}
        if self.schedule_every > 1:
            d["schedule"] = {"every": self.schedule_every}
        return d


_sha_cache: dict[FileStamp, str] = {}
#: A sha256 as a cache entry must hold it.
_SHA256_HEX = frozenset("0123456789abcdef")


def _hash_entry(stamp: FileStamp) -> Path:
    return cache_dir() / "hashes" / f"{hashlib.sha256(stamp.path.encode()).hexdigest()[:32]}.json"


def file_sha256(path: Path) -> str:
    """sha256 of a file, cached per ``FileStamp`` (path, size, mtime_ns, inode, device): for the
    life of the process, and on disk in ``framescan.cache.cache_dir()`` so that the next process
    does not read the whole model file again. An entry for another stamp (the file was replaced
    or rewritten) or one that cannot be read is ignored and rewritten."""
    stamp = FileStamp.of(path)
    if stamp in _sha_cache:
        return _sha_cache[stamp]
    entry = _hash_entry(stamp)
    data = read_json(entry)
    digest = data.get("sha256") if data and data.get("stamp") == stamp.to_dict() else None
    if not (isinstance(digest, str) and len(digest) == 64 and set(digest) <= _SHA256_HEX):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                h.update(chunk)
        digest = h.hexdigest()
        if FileStamp.of(path) == stamp:  # not rewritten while it was read
            write_json(entry, {"stamp": stamp.to_dict(), "sha256": digest})
    _sha_cache[stamp] = digest
    return digest


def _require(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise ConfigError(f"{where}: missing required field {key!r}")
    return d[key]


def parse_manifest(data: dict[str, Any], source: str) -> ModelManifest:
    """Validate a manifest dict (as read from JSON) into a ``ModelManifest``."""
    where = f"model manifest {source}"
    version = data.get("manifest_version", MANIFEST_VERSION)
    if version != MANIFEST_VERSION:
        raise ConfigError(f"{where}: manifest_version {version} not supported (expected {MANIFEST_VERSION})")
    inp = dict(_require(data, "input", where))
    try:
        spec = InputSpec(
            name=inp.pop("name"),
            width=int(inp.pop("width")),
            height=int(inp.pop("height")),
            layout=inp.pop("layout", "NCHW"),
            channels=inp.pop("channels", "RGB"),
            scale=float(inp.pop("scale", 1.0 / 255.0)),
            mean=tuple(float(x) for x in inp.pop("mean", (0.0, 0.0, 0.0))),  # type: ignore[arg-type]
            std=tuple(float(x) for x in inp.pop("std", (1.0, 1.0, 1.0))),  # type: ignore[arg-type]
            resize=inp.pop("resize", "stretch"),
            pad_value=float(inp.pop("pad_value", 0.0)),
            trim_multiple=int(inp.pop("trim_multiple", 0)),
        )
    except (KeyError, ValueError) as ex:
        raise ConfigError(f"{where}: invalid input section: {ex}") from ex
    if inp:
        raise ConfigError(f"{where}: unknown input fields {sorted(inp)}")
    out = dict(_require(data, "output", where))
    decoder = out.pop("decoder", None)
    if decoder not in DECODERS:
        raise ConfigError(f"{where}: output decoder {decoder!r} not supported; use one of {DECODERS}")
    output = OutputSpec(name=out.pop("name", None), decoder=decoder, params=out)
    labels = []
    for i, lab in enumerate(_require(data, "labels", where)):
        cat = lab.get("category")
        if cat is not None and cat not in CATEGORIES:
            raise ConfigError(f"{where}: label {i} category {cat!r} is not one of {CATEGORIES}")
        labels.append(
            Label(str(_require(lab, "name", where)), cat, float(lab.get("weight", 1.0)), bool(lab.get("context")))
        )
    known = {"manifest_version", "name", "description", "file", "sha256", "license", "input", "output", "labels"}
    known |= {"calibration"}  # parsed into ``ModelManifest.calibration``, not kept in ``extra``
    return ModelManifest(
        name=str(_require(data, "name", where)),
        description=str(data.get("description", "")),
        file=dict(_require(data, "file", where)),
        sha256=str(_require(data, "sha256", where)).lower(),
        license=dict(data.get("license", {})),
        input=spec,
        output=output,
        labels=tuple(labels),
        source=source,
        extra={k: v for k, v in data.items() if k not in known},
        calibration=_calibration(data.get("calibration"), labels, where),
    )


def _calibration(section: Any, labels: list[Label], where: str) -> dict[str, LabelCalibration]:
    """The manifest's ``calibration`` section, checked: it names the data it was measured on
    (``data``) and calibrates only labels that feed a category, with scores in [0, 1]."""
    if section is None:
        return {}
    where = f"{where}: calibration"
    if not isinstance(section, dict):
        raise ConfigError(f"{where} must be an object with {', '.join(CALIBRATION_KEYS)}")
    unknown = set(section) - set(CALIBRATION_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown fields {sorted(unknown)} (known: {', '.join(CALIBRATION_KEYS)})")
    if not isinstance(section.get("data"), str) or not section["data"].strip():
        raise ConfigError(f"{where}: 'data' must say which footage the calibration was measured on")
    entries = section.get("labels", {})
    if not isinstance(entries, dict):
        raise ConfigError(f"{where}: 'labels' must be an object: label name -> its calibration")
    feeding = {lab.name for lab in labels if lab.category is not None}
    out = {}
    for name, entry in entries.items():
        if name not in feeding:
            raise ConfigError(f"{where}: label {name!r} feeds no category of this model (calibrate one that does)")
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: label {name!r} must be an object with {', '.join(CALIBRATION_LABEL_KEYS)}")
        unknown = set(entry) - set(CALIBRATION_LABEL_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}: label {name!r}: unknown fields {sorted(unknown)} (known: {', '.join(CALIBRATION_LABEL_KEYS)})"
            )
        values = {}
        for key in ("min_score", "second_signal"):
            v = entry.get(key)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ConfigError(f"{where}: label {name!r}: {key} must be a number from 0 to 1, got {v!r}")
            values[key] = float(v)
        out[name] = LabelCalibration(**values)
    return out


def manifest_dirs() -> list[Path]:
    """Where manifests are looked up by name: ``$FRAMESCAN_MODELS`` (``os.pathsep``-separated),
    then the manifests shipped with framescan."""
    dirs = [Path(p) for p in os.environ.get("FRAMESCAN_MODELS", "").split(os.pathsep) if p]
    dirs.append(Path(str(importlib.resources.files("framescan._models"))))
    return dirs


def load_manifest(name_or_path: str | os.PathLike) -> ModelManifest:
    """Load a manifest by file path or by model name."""
    p = Path(name_or_path)
    if p.suffix == ".json" or p.is_file():
        if not p.is_file():
            raise ModelError(f"model manifest {p} does not exist")
        candidates = [p]
    else:
        candidates = [d / f"{name_or_path}.json" for d in manifest_dirs()]
        candidates = [c for c in candidates if c.is_file()]
        if not candidates:
            known = ", ".join(m.name for m in list_manifests()) or "none"
            raise ModelError(f"no model named {str(name_or_path)!r} (known: {known})")
    path = candidates[0]
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as ex:
        raise ConfigError(f"model manifest {path}: cannot be read as JSON: {ex}") from ex
    return parse_manifest(data, str(path))


def list_manifests() -> list[ModelManifest]:
    """Every manifest found in ``manifest_dirs()`` (first one wins for a name)."""
    seen: dict[str, ModelManifest] = {}
    for d in manifest_dirs():
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.json")):
            try:
                m = load_manifest(f)
            except (ConfigError, ModelError) as ex:
                log.warning("skipping manifest %s: %s", f, ex)
                continue
            seen.setdefault(m.name, m)
    return list(seen.values())
