"""The scan pipeline: probe -> sample/decode (thread) -> preprocess -> infer -> score ->
aggregate -> decide -> report.

A decode thread feeds sampled ``YuvFrame`` views into a bounded queue; the calling
thread preprocesses them into each model's preallocated batch tensor and runs the
models a batch at a time. PyAV, the Numba kernel (``nogil``) and ONNX Runtime all release
the GIL, so decoding overlaps preprocessing and inference on real cores. Whatever raises,
the decode thread is told to stop, the queue is drained and the thread joined.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .aggregate import ClipAggregator
from .decode import DEFAULT_DECODE_THREADS, DecodeStats, FrameDecoder
from .errors import FramescanError, NoFrames, Truncated
from .frames import Geometry, YuvFrame
from .infer import OnnxModel, available_cores
from .known import BANK_SIGNAL_PREFIX, KnownContent, KnownContentResult
from .limits import DEFAULT_LIMITS, Limits
from .models import CATEGORIES, DEFAULT_MODEL, ModelManifest, load_manifest
from .policy import DEFAULT_POLICY, Policy, load_policy
from .preprocess import batch_view, preprocess_into
from .probe import ClipInfo, SourceLike, as_source, clip_info, open_container, select_video_stream
from .report import Coverage, Report
from .sample import AdaptiveSampler, Sampler, make_sampler
from .score import FrameScore, LabelMap
from .thumb import difference, thumbnail

log = logging.getLogger(__name__)

#: Batch size when every frame (or every 2nd) is scored: the scan is inference-bound.
DEFAULT_BATCH_SIZE = 8
#: Batch size for sampled frames (fps, adaptive, keyframes, every N > 2): the model waits for
#: the decoder, so a smaller batch starts it sooner and leaves a shorter tail after the last
#: frame. Inference costs a little more per frame at 4 than at 8 (trimmed canvas, no spinning:
#: 8.9 vs 8.1 ms/frame, ``benchmarks/bench_trim.py --part inference --batches 4 8 --no-spin``),
#: which the earlier start outweighs. Measured in two fresh-process A/B runs of ``framescan bench
#: --sizes 480x854,720x1280 --modes fps1,adaptive --repeats 5 --batch-size 4|8``: 720x1280 at
#: 1 fps 0.372 -> 0.296 s and 0.383 -> 0.332 s (the model's wait for frames 0.16 -> 0.09-0.10 s),
#: 480x854 and adaptive unchanged within noise (benchmarks/RESULTS.md).
SPARSE_BATCH_SIZE = 4
#: With early exit the decision is checked after every batch: small batches stop sooner after
#: the frame that tips it (at 2 fps, batches of 8 are checked every 4 s of video, of 2 every 1 s).
EARLY_EXIT_BATCH_SIZE = 2
#: ``every`` up to this scores enough frames to be inference-bound ("dense" scoring): ORT
#: threads may spin, and batches are DEFAULT_BATCH_SIZE.
DENSE_MAX_EVERY = 2
#: Cores from which preprocessing of the next batch overlaps inference of the current one.
OVERLAP_MIN_CORES = 4
#: Decoded frames waiting for preprocessing are bounded in bytes as well as in count, so
#: an 8192x8192 clip cannot queue gigabytes of frames.
QUEUE_BYTES = 256 << 20
#: A clip counts as completely read when decoding reaches the claimed duration within this
#: share (headers round durations, and the last frame's duration is often unknown).
COVERAGE_TOLERANCE = 0.05
COVERAGE_TOLERANCE_SECONDS = 0.5
_END = object()
#: How often a stage thread blocked on a queue checks whether the scan was stopped.
_POLL = 0.02
_SEVERITY = {"allow": 0, "review": 1, "block": 2}

ProgressFn = Callable[[float, float | None], None]


@dataclass
class _Loaded:
    model: OnnxModel
    labels: LabelMap
    batch: np.ndarray
    every: int = 1  # the manifest's schedule: run on every Nth frame given to the models


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put ``item``, waiting while ``q`` is full, until ``stop`` is set (then False)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL)
            return True
        except queue.Full:
            continue
    return False


def _produce(frames: Iterator[Any], out: queue.Queue, stop: threading.Event, stage: dict[str, float]) -> None:
    """A decoding thread's loop: every frame of ``frames`` into ``out`` (the time taken added
    to ``stage["decode"]``), then _END; a failure is put as a _Failure instead. Either one
    always arrives unless ``stop`` is set first."""
    try:
        while True:
            t0 = time.perf_counter()
            frame = next(frames, _END)
            stage["decode"] += time.perf_counter() - t0
            if not _put(out, frame, stop) or frame is _END:
                return
    except BaseException as ex:
        _put(out, _Failure(ex), stop)


def _stop_and_join(
    stop: threading.Event, threads: list[threading.Thread], queues: Sequence[queue.Queue], wake: queue.Queue | None
) -> None:
    """Stop stage threads and join them. They poll ``stop`` every _POLL s; the queues are
    drained so no put blocks, and ``wake`` gets a None so a thread waiting on it for frames
    wakes at once (early exit decides sooner than _POLL)."""
    stop.set()
    while any(t.is_alive() for t in threads):
        for qq in queues:
            with contextlib.suppress(queue.Empty):
                while True:
                    qq.get_nowait()
        if wake is not None:
            with contextlib.suppress(queue.Full):
                wake.put_nowait(None)
        for t in threads:
            t.join(timeout=0.01)


class Scanner:
    """Loads models once; scans many clips with the same settings.

    Args:
        models: model names or manifest paths (default: ``framescan.models.DEFAULT_MODEL``,
            NudeNet 320n on a trimmed canvas).
        policy: a ``Policy`` or a policy file path (default: ``DEFAULT_POLICY``).
        fps / every / keyframes / all_frames / adaptive: sampling (one of them; default 2 fps).
            ``adaptive``: keyframes + scene changes + a floor rate chosen from the packets,
            near-duplicates reuse the last score, and hits are refined to 2 fps
            (``framescan.sample.AdaptiveSampler``).
        batch_size: frames per inference batch (default 8 when every frame or every 2nd is
            scored, 4 for sampled frames, 2 with ``early_exit``).
        threads: ONNX Runtime intra-op threads (default: the cores available).
        decode_threads: FFmpeg decoder threads (default 2).
        early_exit: stop decoding as soon as the decision is ``block`` (it cannot get worse).
        limits: resource limits for the input (default ``Limits()``).
        banks: hash-bank database for known-content matching (default: ``framescan.banks.
            default_db_path()`` if it exists; ``False`` turns matching off). A path given here
            that does not exist raises ``ConfigError`` (``framescan.banks.DatabaseNotFound``).
        ocr: read on-screen text (RapidOCR, the ``ocr`` extra) on the sampled frames a
            ``TextGate`` selects and match it against the lexicons (``framescan.lexicon``):
            evidence for hate, bullying and extremism.
        lexicons: extra lexicon files or directories (after the bundled lists and
            ``$FRAMESCAN_LEXICONS``).
    """

    def __init__(
        self,
        models: Sequence[str | ModelManifest] | None = None,
        policy: Policy | str | os.PathLike | None = None,
        *,
        fps: float | None = None,
        every: int | None = None,
        keyframes: bool = False,
        all_frames: bool = False,
        adaptive: bool = False,
        batch_size: int | None = None,
        threads: int | None = None,
        decode_threads: int | None = None,
        early_exit: bool = False,
        limits: Limits | None = None,
        banks: str | os.PathLike | bool | None = None,
        ocr: bool = False,
        lexicons: Sequence[str | os.PathLike] | None = None,
    ) -> None:
        self._sampling = {
            "fps": fps,
            "every": every,
            "keyframes": keyframes,
            "all_frames": all_frames,
            "adaptive": adaptive,
        }
        make_sampler(**self._sampling)  # validate now, not on the first clip
        dense = bool(all_frames or (every is not None and every <= DENSE_MAX_EVERY))
        if batch_size is None:
            batch_size = EARLY_EXIT_BATCH_SIZE if early_exit else DEFAULT_BATCH_SIZE if dense else SPARSE_BATCH_SIZE
        if batch_size < 1:
            raise ValueError(f"{batch_size = } must be >= 1")
        self.batch_size = int(batch_size)
        self.policy = policy if isinstance(policy, Policy) else (load_policy(policy) if policy else DEFAULT_POLICY)
        self.threads = int(threads or available_cores())
        self.decode_threads = int(decode_threads or DEFAULT_DECODE_THREADS)
        self.early_exit = early_exit
        self.limits = limits or DEFAULT_LIMITS
        # ORT's pool threads spin between the parallel parts of a run unless told not to. When
        # every frame is scored the scan is inference-bound and the decoder needs little CPU:
        # spinning measured -11% wall (720x1280, every frame, 7.40 -> 6.55 s, 3 alternating
        # rounds). With sparse sampling the decoder needs the cores: no spinning (no change
        # measured at 1 fps: 0.436 vs 0.422 s), nor in services with several workers per core.
        self.spinning = dense
        manifests = [m if isinstance(m, ModelManifest) else load_manifest(m) for m in (models or [DEFAULT_MODEL])]
        t0 = time.perf_counter()
        self._models = [
            _Loaded(
                OnnxModel(m, threads=self.threads, allow_spinning=self.spinning),
                LabelMap(m),
                m.input.empty_batch(self.batch_size),
                m.schedule_every,
            )
            for m in manifests
        ]
        # Double-buffered batches let preprocessing overlap inference. On 2 cores that only
        # oversubscribes them (inference already uses both): measured 12% slower on every
        # frame of a 720x1280 clip, and +260 MB peak RSS (ONNX Runtime keeps a memory pattern
        # per input buffer) — benchmarks/RESULTS.md. So one set below OVERLAP_MIN_CORES.
        sets = 2 if available_cores() >= OVERLAP_MIN_CORES else 1
        self._buffer_sets = [[lm.batch for lm in self._models]] + [
            [lm.model.manifest.input.empty_batch(self.batch_size) for lm in self._models] for _ in range(sets - 1)
        ]
        self._warm_up()
        self.load_seconds = time.perf_counter() - t0
        self.signals = {
            c: [lm.model.name for lm in self._models if c in lm.model.manifest.categories] for c in CATEGORIES
        }
        self._ocr = None
        if ocr:
            from .lexicon import Lexicon
            from .ocr import OcrReader

            self._lexicon = Lexicon.load(lexicons)
            self._ocr = OcrReader(threads=self.threads)
            for cat in sorted({t.category for t in self._lexicon.terms}):
                lists = sorted({t.list_name for t in self._lexicon.terms if t.category == cat})
                self.signals[cat] += [f"ocr+lexicon:{n}" for n in lists]
        self.known = None if banks is False else KnownContent.open(None if banks in (None, True) else banks)  # type: ignore[arg-type]
        if self.known is not None:
            for cat, names in self.known.categories.items():
                self.signals[cat] += [f"{BANK_SIGNAL_PREFIX}{n}" for n in names]

    def _warm_up(self) -> None:
        """Load the cached Numba kernels (~0.5 s the first time in a process), import PyAV
        (~0.07 s) and run each model once, so that cost lands on start-up, not on the first
        clip's timings."""
        import av  # noqa: F401 - imported here, not at the first scan (decode and probe use it)

        tiny = np.zeros((2, 2), np.uint8)
        chroma = np.zeros((1, 1), np.uint8)
        frame = YuvFrame(tiny, chroma, chroma, 0, 0.0)
        for lm, view in zip(self._models, self._views([lm.batch for lm in self._models], frame)):
            geo = preprocess_into(frame, lm.model.manifest.input, view[0])
            lm.model.run(view, [geo])

    def _views(self, bufs: list[np.ndarray], frame: YuvFrame) -> list[np.ndarray]:
        """Each model's batch tensor for this frame's size: the buffer itself, or a view on it
        for a model whose canvas is trimmed (``InputSpec.trim_multiple``)."""
        size = frame.upright_size
        return [batch_view(b, lm.model.manifest.input.shape_for(*size)) for b, lm in zip(bufs, self._models)]

    @property
    def models(self) -> list[OnnxModel]:
        return [lm.model for lm in self._models]

    def sampler(self) -> Sampler:
        return make_sampler(**self._sampling)

    def describe(self) -> dict[str, Any]:
        return {
            "models": [lm.model.describe() for lm in self._models],
            "policy": self.policy.to_dict(),
            "sampling": self.sampler().describe(),
            "batch_size": self.batch_size,
            "threads": {"infer": self.threads, "decode": self.decode_threads, "spinning": self.spinning},
            "ocr": self._ocr is not None,
        }

    # ------------------------------------------------------------------ scanning

    def scan(
        self,
        source: SourceLike,
        *,
        name: str | None = None,
        progress: ProgressFn | None = None,
        limits: Limits | None = None,
    ) -> Report:
        """Scan one clip. Raises a ``FramescanError`` when nothing trustworthy could be scored
        (missing, empty, unreadable, no video, no frames, over a limit); a clip read only in
        part gives a report with ``status == "partial"``. ``limits`` overrides the scanner's
        limits for this clip."""
        t_start = time.perf_counter()
        limits = limits or self.limits
        src = as_source(source, name)
        limits.check_file(src.size_bytes, src.name)
        timings: dict[str, float] = {}
        container = open_container(src)
        try:
            stream = select_video_stream(container, src.name)
            info = clip_info(container, stream, src)
            limits.check_header(info.width, info.height, len(container.streams), src.name)
            timings["probe"] = time.perf_counter() - t_start
            return self._scan_open(src.name, container, stream, info, timings, t_start, progress, limits)
        except FramescanError as ex:
            # Drop the traceback: its frames (this scan's and the decode thread's) hold the
            # decoder, whose FFmpeg threads and frame pools would otherwise live until the next
            # garbage collection (threads and memory grow over thousands of failing clips).
            raise ex.with_traceback(None) from None
        finally:
            container.close()

    def _scan_open(
        self,
        name: str,
        container: Any,
        stream: Any,
        info: ClipInfo,
        timings: dict[str, float],
        t_start: float,
        progress: ProgressFn | None,
        limits: Limits,
    ) -> Report:
        sampler = self.sampler()
        stop = threading.Event()
        frame_bytes = max(1, info.width * info.height * 3 // 2)
        ahead = self.batch_size if self.early_exit else 2 * self.batch_size  # early exit: decode less ahead
        q: queue.Queue[Any] = queue.Queue(maxsize=max(2, min(ahead, QUEUE_BYTES // frame_bytes)))

        def check(t: float, st: DecodeStats, width: int, height: int) -> None:
            limits.check_progress(t, st.read_packets, name)
            if width != info.width or height != info.height:
                limits.check_header(width, height, 0, name)

        decoder = FrameDecoder(
            container, stream, sampler, self.decode_threads, stop.is_set, check, max_pixels=limits.max_pixels
        )
        stage = {"decode": 0.0, "preprocess": 0.0, "infer": 0.0, "postprocess": 0.0, "aggregate": 0.0}
        known = self.known
        if known is not None:
            known.reset()
        # Two sets of batch tensors: the preprocessing thread fills one while the models run
        # on the other.
        free: queue.Queue[list[np.ndarray]] = queue.Queue()
        for bufs in self._buffer_sets:
            free.put(bufs)
        batches: queue.Queue[Any] = queue.Queue(maxsize=1)
        rotation: list[tuple[int, bool]] = []

        def put(qq: queue.Queue, item: Any) -> bool:
            return _put(qq, item, stop)

        def get(qq: queue.Queue) -> Any:
            while not stop.is_set():
                try:
                    return qq.get(timeout=_POLL)
                except queue.Empty:
                    continue
            return None

        def run_decoder() -> None:
            _produce(iter(decoder), q, stop, stage)

        dedupe = sampler.dedupe if isinstance(sampler, AdaptiveSampler) else 0.0
        fresh_count = [0]  # frames given to the models so far in this clip
        counts = {"reused": 0, "refined": 0, "ocr": 0}
        text_evidence: dict[int, list] = {}  # frame index -> on-screen text evidence
        read_text = self._text_reader(stage, text_evidence, counts)
        last_thumb: list[np.ndarray] = []

        def duplicate(frame: YuvFrame) -> bool:
            """Whether the frame is a near-duplicate of the last scored one (adaptive sampling)."""
            if dedupe <= 0:
                return False
            thumb = thumbnail(frame.y)
            if last_thumb and difference(thumb, last_thumb[0]) < dedupe:
                return True
            last_thumb[:] = [thumb]
            return False

        def run_preprocess() -> None:
            bufs: list[np.ndarray] | None = None
            views: list[np.ndarray] = []  # bufs' tensors shaped for this batch's frames
            views_for = (0, 0)  # the upright frame size they were shaped for
            # (index, time, pts) only: the decoded frame is released as soon as it is preprocessed,
            # so the decoder's buffer pool does not grow with the batches in flight. A
            # near-duplicate frame has no geometries: it reuses the last scored frame's result.
            items: list[tuple[tuple[int, float, int | None], list[Geometry | None] | None]] = []
            slot = 0
            model_slots = [0] * len(self._models)
            try:
                while True:
                    item = get(q)
                    if item is None:
                        return
                    if item is _END or isinstance(item, _Failure):
                        if items and not put(batches, (bufs, views, items)):
                            return
                        put(batches, item)
                        return
                    frame: YuvFrame = item
                    if not rotation:
                        rotation.append((frame.rotation, frame.mirror))
                    if bufs is not None and frame.upright_size != views_for:
                        # the frame size changed; if a trimmed tensor's shape changed with it: new batch
                        if [v.shape for v in self._views(bufs, frame)] != [v.shape for v in views]:
                            if not put(batches, (bufs, views, items)):
                                return
                            bufs, items, slot = None, [], 0
                            model_slots[:] = [0] * len(self._models)
                        views_for = frame.upright_size
                    if bufs is None:
                        bufs = get(free)
                        if bufs is None:
                            return
                        views, views_for = self._views(bufs, frame), frame.upright_size
                    t0 = time.perf_counter()
                    geos: list[Geometry | None] | None = None
                    if not duplicate(frame):
                        # a model with a schedule runs on every Nth frame given to the models
                        geos = []
                        for mi, lm in enumerate(self._models):
                            if fresh_count[0] % lm.every:
                                geos.append(None)
                            else:
                                geos.append(preprocess_into(frame, lm.model.manifest.input, views[mi][model_slots[mi]]))
                                model_slots[mi] += 1
                        fresh_count[0] += 1
                        slot += 1
                    stage["preprocess"] += time.perf_counter() - t0
                    if known is not None:
                        known.add(frame)
                    if read_text is not None:
                        read_text(frame)
                    items.append(((frame.index, frame.time, frame.pts), geos))
                    del frame, item
                    if slot == self.batch_size or len(items) >= 4 * self.batch_size:
                        if not put(batches, (bufs, views, items)):
                            return
                        bufs, items, slot = None, [], 0
                        model_slots[:] = [0] * len(self._models)
            except BaseException as ex:
                put(batches, _Failure(ex))

        scored: list[FrameScore] = []  # every frame's score, kept when frames can be added later
        keep_scores = isinstance(sampler, AdaptiveSampler)

        def infer(
            bufs: list[np.ndarray], items: list[tuple[tuple[int, float, int | None], list[Geometry | None] | None]]
        ) -> None:
            fresh = [(key, g) for key, g in items if g is not None]
            scores = [FrameScore(index, t, pts=pts) for (index, t, pts), _ in fresh]
            self._run_models(bufs, [g for _, g in fresh], scores, stage)  # type: ignore[misc]
            t0 = time.perf_counter()
            it = iter(scores)
            for (index, t, pts), g in items:
                if g is not None:
                    fs = next(it)
                else:  # near-duplicate: the last scored frame's result, at this frame's time
                    fs = _reuse(last_scored[0], index, t, pts)
                    counts["reused"] += 1
                last_scored[:] = [fs]
                for ev in text_evidence.pop(index, ()):
                    fs.add(ev)
                agg.update(fs)
                if keep_scores:
                    scored.append(fs)
            stage["aggregate"] += time.perf_counter() - t0

        last_scored: list[FrameScore] = []

        agg = ClipAggregator(self.policy, self.signals)
        stopped_at: float | None = None
        threads = [
            threading.Thread(target=run_decoder, name="framescan-decode", daemon=True),
            threading.Thread(target=run_preprocess, name="framescan-preprocess", daemon=True),
        ]
        for t in threads:
            t.start()
        try:
            while True:
                item = batches.get()
                if item is _END:
                    break
                if isinstance(item, _Failure):
                    raise item.exc
                bufs, views, items = item
                infer(views, items)
                free.put(bufs)
                last = items[-1][0][1]
                if progress is not None:
                    progress(last, info.duration)
                if self.early_exit and agg.decision() == "block":
                    stopped_at = last
                    break
        finally:
            _stop_and_join(stop, threads, (q, batches), wake=q)
        if keep_scores and stopped_at is None and scored:
            t0 = time.perf_counter()
            counts["refined"] = self._refine(decoder, sampler, scored, info, stage)  # type: ignore[arg-type]
            if counts["refined"]:
                agg.reset()
                for fs in sorted(scored, key=lambda f: f.time):
                    agg.update(fs)
            timings["refine"] = time.perf_counter() - t0
        st = decoder.stats
        if stopped_at is not None:
            st.stopped_by = "early_exit"
        # a segment still showing at the last scored frame ends where what is known ends
        agg.finish(stopped_at if stopped_at is not None else st.end_time or 0.0)
        timings.update(stage)
        if rotation:
            info = info.with_rotation(*rotation[0])
        kc = known.result() if known is not None else None
        if kc is not None:
            timings["known_content"] = kc.seconds
        report = self._report(name, info, st, agg, sampler, timings, t_start, stopped_at, kc)
        if report.coverage is not None and keep_scores:
            report.coverage.reused_frames = counts["reused"]
            report.coverage.refined_frames = counts["refined"]
        if report.coverage is not None and self._ocr is not None:
            report.coverage.ocr_frames = counts["ocr"]
        return report

    def _text_reader(
        self, stage: dict[str, float], out: dict[int, list], counts: dict[str, int]
    ) -> Callable[[YuvFrame], None] | None:
        """Per clip: a function that reads the on-screen text of the sampled frames a ``TextGate``
        selects (a caption appearing or changing, a cut, at least every 2 s) and files the
        lexicon matches as evidence under the frame's index. A sampled frame the gate does not
        read shows the same text as the last read one: it carries that frame's evidence
        (``reused``), so a caption on screen for 2 s hits every sampled frame it is on."""
        if self._ocr is None:
            return None
        from .ocr import TextGate, evidence, find_terms

        gate = TextGate()
        reader, lexicon = self._ocr, self._lexicon
        last: list = []  # the last read frame's evidence: its text is on screen until the gate sees a change

        def read(frame: YuvFrame) -> None:
            t0 = time.perf_counter()
            if gate.should_read(frame, frame.time):
                counts["ocr"] += 1
                last[:] = evidence(find_terms(reader.read_frame(frame), lexicon), frame.index, frame.time, frame.pts)
                found = list(last)
            else:
                found = [e.carried_to(frame.index, frame.time, frame.pts) for e in last]
            if found:
                out[frame.index] = found
            stage["ocr"] = stage.get("ocr", 0.0) + time.perf_counter() - t0

        return read

    def _refine(
        self,
        decoder: FrameDecoder,
        sampler: AdaptiveSampler,
        scored: list[FrameScore],
        info: ClipInfo,
        stage: dict[str, float],
    ) -> int:
        """Adaptive sampling's second pass. From every frame that reaches a review threshold it
        walks the ``refine_fps`` grid (instants k / refine_fps: the frames fixed sampling at that
        rate scores) both ways, going on past a grid frame if it is a hit too, so every hit run
        and its edges are scored where fixed ``refine_fps`` sampling scores them (and, through
        the speculation below, some grid frames past a run's end up to the main pass's next
        frame). Returns the number of frames added.

        It runs in rounds so decoding overlaps inference: a round's instants are decoded in a
        thread while the frames already decoded are scored, in batches of what is ready. After
        a hit the round also takes, speculatively, the grid instants up to the next frame the
        main pass scored: no cut was seen in between, so the shot (and the hit) most likely goes
        on, and scoring them together saves a decode-then-infer round trip per frame. A miss in
        that span costs inferences fixed ``refine_fps`` sampling makes anyway. Instants the walk
        still needs after a round (behind the decoder, or past a miss) make the next round."""
        step = 1.0 / sampler.refine_fps
        end = info.duration or decoder.stats.end_time or 0.0
        times = sorted(fs.time for fs in scored)
        main_times = list(times)  # the main pass's frames: a cut lies only at one of them
        tried: set[int] = set()
        pending: list[float] = []

        def is_hit(fs: FrameScore) -> bool:
            return any(v >= self.policy.rule(c).review for c, v in fs.scores.items())

        def scored_near(x: float) -> bool:
            """Whether the frame fixed sampling takes for instant ``x`` is already scored: a
            scored frame at or after ``x`` and before the next grid instant."""
            i = bisect.bisect_left(times, x - 1e-6)
            return i < len(times) and times[i] < x + step - 1e-6

        def add(k: int) -> bool:
            x = k * step
            if k < 0 or k in tried or x > end or scored_near(x):
                return False
            tried.add(k)
            bisect.insort(pending, x)
            return True

        def walk(t: float) -> None:
            """Queue the grid instants just before and just after a hit at ``t``, and the rest
            of the grid up to the main pass's next frame (speculation: see above)."""
            add(int(np.ceil(t / step - 1e-6)) - 1)  # largest k with k * step < t
            k = int(np.floor(t / step + 1e-6)) + 1  # smallest k with k * step > t
            i = bisect.bisect_right(main_times, t + 1e-6)
            # the main pass scores a frame at least every 1 / floor_fps s; after its last frame
            # the header's duration is all there is, so that bound also caps the speculation
            until = min(main_times[i] if i < len(main_times) else end, t + 1.0 / sampler.floor_fps)
            add(k)
            while (k + 1) * step < until - 1e-6:
                k += 1
                add(k)

        for fs in scored:
            if is_hit(fs):
                walk(fs.time)
        added = 0
        bufs = self._buffer_sets[0]
        while pending:
            todo, pending = pending, []
            with contextlib.closing(self._decoded_batches(decoder, todo, stage)) as batches:
                for frames in batches:  # closing: the decoding thread is joined if scoring fails
                    fresh = [f for f in frames if f.time not in times]
                    # one batch per frame size (a stream can change size; the batch's tensor
                    # views are shaped for its first frame)
                    runs = [list(g) for _, g in itertools.groupby(fresh, key=lambda f: f.upright_size)]
                    new = [fs for run in runs for fs in self._score_now(run, bufs, scored, stage)]
                    added += len(new)
                    for fs in new:
                        bisect.insort(times, fs.time)
                    for fs in new:
                        if is_hit(fs):
                            walk(fs.time)
        return added

    def _decoded_batches(
        self, decoder: FrameDecoder, instants: list[float], stage: dict[str, float]
    ) -> Iterator[list[YuvFrame]]:
        """The frames at ``instants`` (``FrameDecoder.frames_at``), decoded in a thread and given
        in batches of up to ``batch_size`` of the frames ready when the caller asks (at least
        one), so the caller scores a batch while the next frames decode. The thread is always
        joined, also when the caller stops early or raises."""
        ready: queue.Queue[Any] = queue.Queue(maxsize=self.batch_size)
        stop = threading.Event()

        def run() -> None:
            frames = decoder.frames_at(instants)
            try:
                _produce(frames, ready, stop, stage)
            finally:
                frames.close()

        def take() -> Any:
            while True:
                try:
                    return ready.get(timeout=_POLL)
                except queue.Empty:
                    if not thread.is_alive() and ready.empty():  # cannot happen: _produce always ends with one
                        return _Failure(RuntimeError("the refinement decoder ended without a last frame"))

        thread = threading.Thread(target=run, name="framescan-refine-decode", daemon=True)
        thread.start()
        try:
            done = False
            while not done:
                batch: list[YuvFrame] = []
                item = take()
                while True:
                    if item is _END:
                        done = True
                        break
                    if isinstance(item, _Failure):
                        raise item.exc
                    batch.append(item)
                    if len(batch) == self.batch_size:
                        break
                    try:
                        item = ready.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    yield batch
                del batch
        finally:
            _stop_and_join(stop, [thread], (ready,), wake=None)

    def _score_now(
        self, frames: list[YuvFrame], bufs: list[np.ndarray], out: list[FrameScore], stage: dict[str, float]
    ) -> list[FrameScore]:
        """Score frames synchronously (the refinement pass); returns their scores."""
        t0 = time.perf_counter()
        views = self._views(bufs, frames[0])
        geos = [
            [preprocess_into(f, lm.model.manifest.input, views[mi][k]) for mi, lm in enumerate(self._models)]
            for k, f in enumerate(frames)
        ]
        stage["preprocess"] += time.perf_counter() - t0
        scores = [FrameScore(f.index, f.time, pts=f.pts) for f in frames]
        self._run_models(views, geos, scores, stage)  # type: ignore[arg-type]
        out.extend(scores)
        return scores

    def _run_models(
        self,
        bufs: list[np.ndarray],
        geos: list[list[Geometry | None]],
        scores: list[FrameScore],
        stage: dict[str, float],
    ) -> None:
        """Run every model on its preprocessed slots and add its evidence to the frames' scores.
        ``geos[k][mi]`` is frame k's geometry in model mi's input, or None where the model's
        schedule skipped the frame (model mi's slots hold only the frames it runs on, in order)."""
        for mi, lm in enumerate(self._models):
            run = [k for k, g in enumerate(geos) if g[mi] is not None]
            if not run:
                continue
            t0 = time.perf_counter()
            raw = lm.model.raw(bufs[mi][: len(run)])
            t1 = time.perf_counter()
            for k, d in zip(run, lm.model.decode(raw, [geos[k][mi] for k in run])):  # type: ignore[misc]
                lm.labels.evidence(d, scores[k])
            stage["infer"] += t1 - t0
            stage["postprocess"] += time.perf_counter() - t1

    def _report(
        self,
        name: str,
        info: ClipInfo,
        st: DecodeStats,
        agg: ClipAggregator,
        sampler: Sampler,
        timings: dict[str, float],
        t_start: float,
        stopped_at: float | None,
        kc: KnownContentResult | None = None,
    ) -> Report:
        if st.decoded_frames == 0:
            if st.error:
                raise Truncated(f"{name}: no frame could be decoded ({st.error})")
            if st.corrupt_packets:
                raise NoFrames(
                    f"{name}: no frame could be decoded: the decoder rejected all {st.corrupt_packets} packets"
                )
            raise NoFrames(f"{name}: the video stream contains no frames")
        warnings = list(st.warnings)
        partial = False
        if st.error:
            partial = True
            warnings.append(f"decoding stopped early: {st.error}")
        if st.corrupt_packets or st.corrupt_frames:
            partial = True
            warnings.append(f"{st.corrupt_packets} corrupt packets skipped, {st.corrupt_frames} frames flagged corrupt")
        claimed = info.duration
        if st.stopped_by != "early_exit" and claimed:
            short = claimed - st.decoded_seconds
            if short > max(COVERAGE_TOLERANCE_SECONDS, COVERAGE_TOLERANCE * claimed):
                partial = True
                warnings.append(f"decoded {st.decoded_seconds:.2f} s of the {claimed:.2f} s the header claims")
        coverage = Coverage(
            read_packets=st.read_packets,
            decoded_frames=st.decoded_frames,
            decoded_seconds=st.decoded_seconds,
            sampled_frames=st.sampled_frames,
            scored_frames=agg.frames,
            claimed_frames=info.frame_count,
            claimed_seconds=claimed,
            corrupt_packets=st.corrupt_packets,
            corrupt_frames=st.corrupt_frames,
            skipped_packets=st.skipped_packets,
            stopped_early=st.stopped_by == "early_exit",
            stopped_reason="decision reached block (early exit)" if st.stopped_by == "early_exit" else None,
            stopped_at=stopped_at,
        )
        if kc is not None:
            for cat, res in agg.results.items():
                res.known_content = kc.for_category(cat)
                for m in res.known_content:
                    if _SEVERITY[m["decision"]] > _SEVERITY[res.decision]:
                        res.decision = m["decision"]
        decision = agg.decision()
        reasons = [
            f"{r.category}: peak {r.score:.2f} at {r.peak_time:.2f} s, {r.hit_frames} frame(s) >= review, "
            f"{r.block_frames} >= block -> {r.decision}"
            for r in agg.results.values()
            if r.signals and r.decision != "allow" and r.hit_frames and r.peak_time is not None
        ]
        if kc is not None:
            reasons += kc.reasons()
        if partial and decision == "allow":
            decision = "review"
            reasons.append("clip was not read completely: a partial scan is never a plain allow")
        timings["total"] = time.perf_counter() - t_start
        return Report(
            source=name,
            status="partial" if partial else "complete",
            decision=decision,
            clip=info,
            coverage=coverage,
            sampling=sampler.describe(),
            models=[lm.model.manifest.summary() for lm in self._models],
            policy=self.policy.to_dict(),
            categories=agg.results,
            evidence=agg.top_evidence(),
            reasons=reasons,
            timings=timings,
            warnings=warnings,
            extra={
                "known_content": kc.to_dict() if kc is not None else None,
                "context": {
                    k: {
                        **v,
                        "first_time": round(float(v["first_time"]), 3),
                        "peak_time": round(float(v.get("peak_time", v["first_time"])), 3),
                    }
                    for k, v in agg.context.items()
                },
            },
        )


_default: dict[tuple, Scanner] = {}


def scan(source: SourceLike, *, name: str | None = None, **options: Any) -> Report:
    """Scan one clip with a ``Scanner`` built from ``options`` (cached per option set)."""
    key = tuple(sorted((k, repr(v)) for k, v in options.items()))
    if key not in _default:
        _default[key] = Scanner(**options)
    return _default[key].scan(source, name=name)


def _reuse(fs: FrameScore, index: int, t: float, pts: int | None) -> FrameScore:
    """A near-duplicate frame's score: ``fs``'s result, at this frame's index, time and pts."""
    return FrameScore(
        index,
        t,
        dict(fs.scores),
        [e.carried_to(index, t, pts) for e in fs.evidence],
        dict(fs.context),
        pts,
    )
