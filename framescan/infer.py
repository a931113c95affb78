"""ONNX Runtime sessions, one per model, run on whole batches."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from .cores import available_cores
from .errors import ModelError
from .frames import Detections, Geometry
from .models import ModelManifest
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
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
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
