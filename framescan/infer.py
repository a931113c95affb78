"""ONNX Runtime sessions, one per model, run on whole batches."""

from __future__ import annotations

import hashlib
import logging
import os
import platform
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .cache import cache_dir, read_json, write_json
from .cores import available_cores
from .errors import ModelError
from .frames import Detections, Geometry
from .models import ModelManifest, file_sha256
from .postprocess import DECODERS

log = logging.getLogger(__name__)


class OnnxModel:
    """A loaded model: verified file, ORT session with explicit threads, and its decoder."""

    def __init__(self, manifest: ModelManifest, threads: int | None = None, allow_spinning: bool = False) -> None:
        import onnxruntime as ort

        self.manifest = manifest
        path = manifest.verified_file()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or available_cores())
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads burn the cores the decoder and the Numba kernel need.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        opts.log_severity_level = 3
        # A memory pattern is a plan kept per input shape (full batches, the last partial one):
        # off, a 1080x1920 scan peaks at 389 MB instead of 441 MB, and inference time is the same
        # within noise (interleaved batches of 8 + 3: 174-188 ms vs 166-185 ms) — RESULTS.md.
        opts.enable_mem_pattern = False
        try:
            self.session, self.optimized_from_cache = _session(ort, manifest, path, opts)
        except Exception as ex:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
            raise ModelError(f"model {manifest.name!r}: ONNX Runtime cannot load {path}: {ex}") from ex
        self.path = path
        self.threads = opts.intra_op_num_threads
        inputs = {i.name: i for i in self.session.get_inputs()}
        if manifest.input.name not in inputs:
            raise ModelError(
                f"model {manifest.name!r}: input {manifest.input.name!r} not in the graph (has {sorted(inputs)})"
            )
        outputs = [o.name for o in self.session.get_outputs()]
        want = manifest.output.name or outputs[0]
        if want not in outputs:
            raise ModelError(f"model {manifest.name!r}: output {want!r} not in the graph (has {outputs})")
        self.output_name = want
        self._decode = DECODERS[manifest.output.decoder]

    @property
    def name(self) -> str:
        return self.manifest.name

    def raw(self, batch: np.ndarray) -> np.ndarray:
        """Run the graph on a ready ``[N, ...]`` float32 batch and return the raw output."""
        return self.session.run([self.output_name], {self.manifest.input.name: batch})[0]

    def decode(self, raw: np.ndarray, geometries: Sequence[Geometry]) -> list[Detections]:
        return self._decode(raw, geometries, self.manifest.output.params)

    def run(self, batch: np.ndarray, geometries: Sequence[Geometry]) -> list[Detections]:
        """Infer and decode a batch; ``batch[: len(geometries)]`` holds the frames."""
        return self.decode(self.raw(batch[: len(geometries)]), geometries)

    def describe(self) -> dict[str, Any]:
        d = self.manifest.summary()
        d["file"] = str(self.path)
        d["threads"] = self.threads
        return d


# --------------------------------------------------------------------------- optimised models
#
# ONNX Runtime's graph optimisation (fusions, constant folding, the NCHWc layout) takes 0.1-0.3 s
# of every process start for NudeNet 320n; the optimised graph is saved once in the cache
# directory and later sessions load it with optimisation off (0.04-0.06 s). With
# ``ORT_ENABLE_ALL`` the saved graph may hold kernels for this CPU (ORT says so), so an entry is
# keyed by the source model's sha256, the ORT version and the machine (architecture and CPU
# flags); its own sha256 is checked (through ``file_sha256``'s stamp cache) before it is used.


@lru_cache(maxsize=1)
def machine_tag() -> str:
    """Architecture and CPU feature flags, hashed: an optimised graph is only reused on the same."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return hashlib.sha256(f"{platform.machine()}|{flags}".encode()).hexdigest()[:12]


def optimized_entry(ort: Any, manifest: ModelManifest) -> Path:
    """Where the optimised graph of ``manifest``'s model is kept (its ``.json`` beside it)."""
    name = f"{manifest.sha256[:32]}-ort{ort.__version__}-{machine_tag()}.onnx"
    return cache_dir() / "ort" / name


def _session(ort: Any, manifest: ModelManifest, path: Path, opts: Any) -> tuple[Any, bool]:
    """An ORT session on ``path`` with ``opts`` (optimisation ``ORT_ENABLE_ALL``), from the cached
    optimised graph when a valid one is there (then True), else optimising it now and saving the
    result for the next process. An entry that fails its check or does not load is rebuilt."""
    cpu = ["CPUExecutionProvider"]
    entry = optimized_entry(ort, manifest)
    meta_path = entry.with_suffix(".json")
    meta = read_json(meta_path)
    if meta and meta.get("source_sha256") == manifest.sha256 and entry.is_file():
        try:
            valid = file_sha256(entry) == meta.get("sha256")
        except OSError:
            valid = False
        if valid:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            try:
                return ort.InferenceSession(str(entry), sess_options=opts, providers=cpu), True
            except Exception as ex:  # a damaged entry: optimise the source again below
                log.debug("cached optimised model %s does not load (%s): rebuilding it", entry, ex)
            finally:
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        else:
            log.debug("cached optimised model %s does not match its record: rebuilding it", entry)
    tmp = None
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
        opts.optimized_model_filepath = str(tmp)
    except OSError as ex:
        log.debug("optimised model not cached: %s", ex)
    try:
        try:
            session = ort.InferenceSession(str(path), sess_options=opts, providers=cpu)
        except Exception:
            if tmp is None:
                raise
            opts.optimized_model_filepath = ""  # perhaps only the saving failed: the model decides
            session = ort.InferenceSession(str(path), sess_options=opts, providers=cpu)
        if tmp is not None and tmp.is_file():
            try:
                os.replace(tmp, entry)
                write_json(meta_path, {"source_sha256": manifest.sha256, "sha256": file_sha256(entry)})
            except OSError as ex:
                log.debug("optimised model not cached: %s", ex)
    finally:
        opts.optimized_model_filepath = ""
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return session, False
