"""End-to-end benchmark: framescan against the naive alternative, stage by stage.

For each configuration (a clip and a sampling mode) both implementations do the same work:

- **framescan**: ``framescan.Scanner(...).scan(clip)`` in process (PyAV decode thread ->
  fused Numba preprocessing -> ONNX Runtime in batches -> aggregation);
- **naive**: ``cv2.VideoCapture`` reads every frame (decoded and converted to BGR) and
  ``nudenet.NudeDetector().detect(frame)`` runs on each sampled frame (same sampling rule:
  the first frame at or after each instant k/fps, from the frames' timestamps).

Every run (one implementation, one configuration, one repeat) is a fresh subprocess, so
its cold start (import + model load + first preprocessing/inference, i.e. JIT and ORT
first-run allocations) and its peak RSS are its own. After a warm-up on the clip's first
frame the child times one full scan. Runs are interleaved (framescan and naive alternate,
and the order flips every repeat) because the machine may be shared; every figure is
reported as a median with its min-max over the repeats.

Stages: framescan's come from the report's ``timings`` (the decode stage runs in its own
thread and overlaps the others, so stage times can add up to more than the wall time).
The naive run is timed by wrapping ``cap.read`` (decode), nudenet's ``_read_image``
(preprocess), its ``onnx_session.run`` (infer) and ``_postprocess`` (postprocess).

Per-frame latency: time between consecutive results divided by the frames in the result
(framescan: per inference batch, measured by wrapping the model's ``decode`` on the
``Scanner.models`` instances; naive: per frame), pooled over repeats, p50/p95.

Efficiency: ``wall / (CPU time / cores)``, with the process's user+system CPU time
(``getrusage``) over the timed scan and the cores available to it: 1.0 means every core
was busy the whole time; the stage-time variant (``sum of stage times / cores``) is
reported next to it. On a shared machine other processes take cores too: the child reads
the machine-wide busy time from /proc/stat, and "efficiency on cores left" divides by
``cores - (cores other processes used meanwhile)`` instead (an estimate).

Modules, each importing only those listed before it: ``options`` (modes, settings, the standard
matrix), ``device`` (what the measurements ran on), ``child`` (the code inside the timed child
processes), ``clips``, ``stats``, ``targets``, ``render`` and ``run`` (orchestration). This
package re-exports the names the CLI, the tests and ``benchmarks/`` use.
"""

from .child import NaiveSampler
from .clips import build_configs, default_clip_dir, ensure_clip
from .options import (
    DEFAULT_MATRIX,
    IMPLS,
    QUIET_CORES,
    SCHEMA,
    SEXUAL_LABELS,
    STAGES,
    BenchError,
    BenchOptions,
    Mode,
    command_line,
    parse_list,
    parse_size,
)
from .render import load_report, render_compare, render_table, to_json, write_chart
from .run import run_bench, wait_for_idle
from .stats import compare_detections, percentile, stat
from .targets import NOT_RUN, evaluate_targets

__all__ = [
    "DEFAULT_MATRIX",
    "IMPLS",
    "NOT_RUN",
    "QUIET_CORES",
    "SCHEMA",
    "SEXUAL_LABELS",
    "STAGES",
    "BenchError",
    "BenchOptions",
    "Mode",
    "NaiveSampler",
    "build_configs",
    "command_line",
    "compare_detections",
    "default_clip_dir",
    "ensure_clip",
    "evaluate_targets",
    "load_report",
    "parse_list",
    "parse_size",
    "percentile",
    "render_compare",
    "render_table",
    "run_bench",
    "stat",
    "to_json",
    "wait_for_idle",
    "write_chart",
]
