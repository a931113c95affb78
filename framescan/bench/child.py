"""The code that runs inside a timed child process: one implementation, one clip, one mode.

Standard library only at module level, and it imports framescan only inside the framescan run:
``run.CHILD_BOOTSTRAP`` imports this module (and the modules it imports) under a private package
name, so the naive run never imports framescan (Numba, ...: that would inflate its import time and
RSS), and the framescan run imports the framescan under test (``--framescan-from``), not this tree.
"""

from __future__ import annotations

import contextlib
import json
import logging
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..cores import available_cores
from .device import machine_busy_seconds, read_text
from .options import EVIDENCE_CAP, SEXUAL_LABELS, STAGES, BenchError, Mode

#: A fixed name: under ``CHILD_BOOTSTRAP`` this module's ``__name__`` is a private one.
log = logging.getLogger("framescan.bench.child")


class NaiveSampler:
    """The naive run's copy of framescan's sampling rule (``framescan.sample``), kept here so
    the naive child never imports framescan: fps keeps the first frame at or after each
    instant k/fps (from timestamps), every keeps every Nth frame, all keeps all."""

    _EPS = 1e-6

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self._next = 0.0

    def keep(self, index: int, t: float) -> bool:
        if self.mode.all_frames:
            return True
        if self.mode.every is not None:
            return index % self.mode.every == 0
        if t + self._EPS < self._next:
            return False
        step = 1.0 / float(self.mode.fps)  # type: ignore[arg-type]
        k = int((t + self._EPS) // step) + 1
        self._next = max(self._next + step, k * step)
        return True


def _peak_rss_mb() -> float:
    """This process's peak RSS. On Linux from /proc/self/status ``VmHWM``: ``ru_maxrss``
    cannot be used in a spawned child, because execve records the parent's peak (the
    address space it replaced) as the child's starting maximum."""
    for line in (read_text("/proc/self/status") or "").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB elsewhere


def _rss_mb() -> float | None:
    """Current RSS (Linux), e.g. when the process is ready to scan."""
    for line in (read_text("/proc/self/status") or "").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _others(machine0: float | None, cpu: float, wall: float) -> float | None:
    """Cores used by other processes during our timed run (machine busy minus our own CPU)."""
    machine1 = machine_busy_seconds()
    if machine0 is None or machine1 is None or wall <= 0:
        return None
    return max(0.0, (machine1 - machine0 - cpu) / wall)


def _ort_threads(session: Any) -> dict[str, Any]:
    try:
        so = session.get_session_options()
    except Exception:  # older ORT
        return {}
    spinning = None
    with contextlib.suppress(Exception):
        spinning = so.get_session_config_entry("session.intra_op.allow_spinning")
    return {
        "intra_op": so.intra_op_num_threads,
        "inter_op": so.inter_op_num_threads,
        "spinning": spinning if spinning else "default (on)",
        "providers": session.get_providers(),
        "input_type": session.get_inputs()[0].type,
    }


def _use_tree(repo: str) -> None:
    """Import framescan from ``repo`` (a checkout or exported tree), with the manifests of
    its ``models/`` folder as ``framescan._models`` (what setup.py's package_dir does)."""
    import importlib.util

    sys.path.insert(0, repo)
    models = Path(repo) / "models" / "__init__.py"
    if (Path(repo) / "framescan" / "_models").exists() or not models.is_file():
        return
    spec = importlib.util.spec_from_file_location(
        "framescan._models", models, submodule_search_locations=[str(models.parent)]
    )
    if spec is None or spec.loader is None:  # pragma: no cover - cannot happen for a .py file
        return
    mod = importlib.util.module_from_spec(spec)
    sys.modules["framescan._models"] = mod
    spec.loader.exec_module(mod)


def _child_framescan(job: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    if job.get("repo"):
        _use_tree(job["repo"])
    import framescan

    import_s = time.perf_counter() - t0
    mode = Mode.parse(job["mode"])
    speed = {k: int(job[k]) if job.get(k) else None for k in ("threads", "decode_threads", "batch_size")}
    config = mode.scan_config(**speed)
    t1 = time.perf_counter()
    scanner = framescan.Scanner(**config.scanner_kwargs())  # the framescan under test (--framescan-from)
    load_s = time.perf_counter() - t1

    # Warm-up: the clip's real first frame (same array types as in the scan, so the Numba
    # kernel specialisation is the one the scan uses: compiled, or loaded from Numba's cache)
    # through preprocessing into a full batch and one inference of that batch (the shape the
    # scan uses, so the warm-up allocates nothing the scan would not): that ends the cold start.
    import av
    import onnxruntime as ort

    from framescan.decode import to_yuv_frame
    from framescan.preprocess import batch_view, preprocess_into

    with av.open(job["clip"]) as c:
        first = to_yuv_frame(next(iter(c.decode(video=0))), 0, 0.0)
        jit_s = 0.0
        t2 = time.perf_counter()
        for model in scanner.models:
            spec = model.manifest.input
            batch = batch_view(spec.empty_batch(scanner.batch_size), spec.shape_for(*first.upright_size))
            t = time.perf_counter()
            preprocess_into(first, spec, batch[0])
            jit_s += time.perf_counter() - t
            for slot in range(1, scanner.batch_size):
                preprocess_into(first, spec, batch[slot])
            model.raw(batch)
        warmup_s = time.perf_counter() - t2
        ready_wall = time.time()
        del first, batch
    result: dict[str, Any] = {
        "import_s": import_s,
        "load_s": load_s,
        "warmup_s": warmup_s,
        "jit_s": jit_s,
        "cold_start_s": import_s + load_s + warmup_s,
        "ready_wall": ready_wall,
        "ready_rss_mb": _rss_mb(),
        "threads": {
            "infer": scanner.threads,
            "decode": scanner.decode_threads,
            "batch_size": scanner.batch_size,
            "ort": _ort_threads(scanner.models[0].session),
        },
        "ort_available_providers": ort.get_available_providers(),
        "ffmpeg": getattr(av, "ffmpeg_version_info", None),
        "models": [m.name for m in scanner.models],
    }
    if not job.get("scan", True):
        return result

    # Per-batch timestamps: the pipeline calls ``model.decode`` once per batch per model.
    marks: list[tuple[float, int]] = []
    last = scanner.models[-1]
    orig_decode = last.decode

    def timed_decode(raw: Any, geometries: Sequence[Any]) -> Any:
        out = orig_decode(raw, geometries)
        marks.append((time.perf_counter(), len(geometries)))
        return out

    last.decode = timed_decode  # type: ignore[method-assign]
    machine0 = machine_busy_seconds()
    cpu0 = _cpu_seconds()
    w0 = time.perf_counter()
    report = scanner.scan(job["clip"])
    wall = time.perf_counter() - w0
    cpu = _cpu_seconds() - cpu0
    others = _others(machine0, cpu, wall)
    last.decode = orig_decode  # type: ignore[method-assign]

    latency: list[float] = []
    prev = w0
    for t, n in marks:
        latency.extend([(t - prev) / max(1, n) * 1e3] * n)
        prev = t
    hits: dict[float, set[str]] = {}
    for ev in report.evidence:
        if ev.category == "sexual":
            hits.setdefault(round(ev.time, 4), set()).add(ev.label)
    try:
        from framescan.aggregate import EVIDENCE_PER_CLIP
    except ImportError:  # pragma: no cover - renamed
        EVIDENCE_PER_CLIP = EVIDENCE_CAP
    cov = report.coverage
    result.update(
        wall_s=wall,
        cpu_s=cpu,
        others_cores=others,
        cores=available_cores(),
        stages_s={k: float(report.timings.get(k, 0.0)) for k in STAGES},
        # timings the pipeline adds beyond the five stages (e.g. known-content hashing)
        extra_stages_s={k: float(v) for k, v in report.timings.items() if k not in (*STAGES, "probe", "total")},
        probe_s=float(report.timings.get("probe", 0.0)),
        report_total_s=float(report.timings.get("total", wall)),
        scored_frames=cov.scored_frames if cov else None,
        decoded_frames=cov.decoded_frames if cov else None,
        status=report.status,
        decision=report.decision,
        batches=len(marks),
        latency_ms=[round(v, 3) for v in latency],
        detections=[{"time": t, "labels": sorted(ls)} for t, ls in sorted(hits.items())],
        evidence_truncated=len(report.evidence) >= EVIDENCE_PER_CLIP,
    )
    return result


def _child_naive(job: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    import cv2
    import nudenet
    from nudenet import nudenet as nn

    import_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    detector = nudenet.NudeDetector()
    if job.get("naive_threads"):  # a profile's thread limit (--profile mobile): the same for the naive loop
        import onnxruntime

        cv2.setNumThreads(int(job["naive_threads"]))
        so = onnxruntime.SessionOptions()
        so.intra_op_num_threads = int(job["naive_threads"])
        so.inter_op_num_threads = 1
        detector.onnx_session = onnxruntime.InferenceSession(detector.onnx_session._model_path, sess_options=so)
    load_s = time.perf_counter() - t1
    cap = cv2.VideoCapture(job["clip"])
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise BenchError(f"OpenCV cannot read {job['clip']}")
    t2 = time.perf_counter()
    detector.detect(frame)
    warmup_s = time.perf_counter() - t2
    ready_wall = time.time()
    result: dict[str, Any] = {
        "import_s": import_s,
        "load_s": load_s,
        "warmup_s": warmup_s,
        "cold_start_s": import_s + load_s + warmup_s,
        "ready_wall": ready_wall,
        "ready_rss_mb": _rss_mb(),
        "threads": {"ort": _ort_threads(detector.onnx_session), "opencv": cv2.getNumThreads()},
    }
    if not job.get("scan", True):
        return result

    stage = dict.fromkeys(STAGES, 0.0)

    def timed(fn: Callable[..., Any], key: str) -> Callable[..., Any]:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                stage[key] += time.perf_counter() - t

        return wrapper

    orig = nn._read_image, nn._postprocess
    nn._read_image = timed(orig[0], "preprocess")
    nn._postprocess = timed(orig[1], "postprocess")
    detector.onnx_session.run = timed(detector.onnx_session.run, "infer")  # type: ignore[method-assign]
    sampler = NaiveSampler(Mode.parse(job["mode"]))
    hits: list[dict[str, Any]] = []
    latency: list[float] = []
    index = scored = 0
    machine0 = machine_busy_seconds()
    cpu0 = _cpu_seconds()
    w0 = time.perf_counter()
    cap = cv2.VideoCapture(job["clip"])  # opening counts, as framescan's probe does
    clip_fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    prev = w0
    try:
        while True:
            t = time.perf_counter()
            ok, frame = cap.read()
            if not ok:
                stage["decode"] += time.perf_counter() - t
                break
            ts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1e3
            if ts <= 0 and index > 0 and clip_fps > 0:
                ts = index / clip_fps
            stage["decode"] += time.perf_counter() - t
            if sampler.keep(index, ts):
                dets = detector.detect(frame)
                t = time.perf_counter()
                labels = sorted({d["class"] for d in dets if d["class"] in SEXUAL_LABELS})
                if labels:
                    hits.append({"time": round(ts, 4), "labels": labels})
                scored += 1
                now = time.perf_counter()
                stage["aggregate"] += now - t
                latency.append((now - prev) * 1e3)
                prev = now
            index += 1
    finally:
        cap.release()
        nn._read_image, nn._postprocess = orig
    wall = time.perf_counter() - w0
    cpu = _cpu_seconds() - cpu0
    others = _others(machine0, cpu, wall)
    result.update(
        wall_s=wall,
        cpu_s=cpu,
        others_cores=others,
        cores=available_cores(),
        stages_s=stage,
        scored_frames=scored,
        decoded_frames=index,
        latency_ms=[round(v, 3) for v in latency],
        detections=hits,
        evidence_truncated=False,
    )
    return result


def child_main(job_json: str) -> int:
    """Entry point of a benchmark child process (see ``CHILD_BOOTSTRAP``)."""
    job = json.loads(job_json)
    try:
        res = _child_framescan(job) if job["impl"] == "framescan" else _child_naive(job)
        res["ok"] = True
    except Exception as ex:
        log.exception("benchmark child failed")
        res = {"ok": False, "error": f"{type(ex).__name__}: {ex}"}
    res["peak_rss_mb"] = _peak_rss_mb()
    Path(job["result"]).write_text(json.dumps(res))
    return 0 if res["ok"] else 1
