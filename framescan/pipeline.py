"""The scan pipeline: probe -> sample/decode (thread) -> preprocess -> infer -> score ->
aggregate -> decide -> report.

``Scanner`` loads the models once, with the settings (sampling, batches, threads, policy,
banks, OCR), probes each clip and hands it to a ``framescan.clipscan.ClipScan``, which runs the
stages: a decode thread feeds sampled ``YuvFrame`` views into a bounded queue, a preprocessing
thread fills each model's preallocated batch tensor, and the calling thread runs the models a
batch at a time. PyAV, the Numba kernel (``nogil``) and ONNX Runtime all release the GIL, so
decoding overlaps preprocessing and inference on real cores.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .clipscan import ClipScan, ProgressFn
from .decode import DEFAULT_DECODE_THREADS
from .errors import FramescanError
from .frames import Geometry, YuvFrame
from .infer import OnnxModel, available_cores
from .known import BANK_SIGNAL_PREFIX, KnownContent
from .limits import DEFAULT_LIMITS, Limits
from .models import CATEGORIES, DEFAULT_MODEL, ModelManifest, load_manifest
from .policy import DEFAULT_POLICY, Policy, load_policy
from .preprocess import batch_view, preprocess_into
from .probe import SourceLike, as_source, clip_info, open_container, select_video_stream
from .report import Report
from .sample import Sampler, make_sampler
from .score import FrameScore, LabelMap, SignalIndex

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


@dataclass
class LoadedModel:
    model: OnnxModel
    labels: LabelMap
    batch: np.ndarray
    every: int = 1  # the manifest's schedule: run on every Nth frame given to the models


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
        fast_decode: skip H.264/HEVC deblocking as ``framescan.decode.FAST_DECODE`` says.
        limits: resource limits for the input (default ``Limits()``).
        banks: hash-bank database for known-content matching (default: ``framescan.banks.
            default_db_path()`` if it exists; ``False`` turns matching off); its symbol banks
            are matched on the sampled frames too (``framescan.symbols``). A path given here
            that does not exist raises ``ConfigError`` (``framescan.banks.DatabaseNotFound``).
        ocr: read on-screen text (RapidOCR, the ``ocr`` extra) on the sampled frames a
            ``TextGate`` selects and match it against the lexicons (``framescan.lexicon``):
            evidence for hate, bullying and extremism.
        lexicons: extra lexicon files or directories (after the bundled lists and
            ``$FRAMESCAN_LEXICONS``).
        evidence: keep small copies of the scored frames and give each report the evidence
            frames of its evidence (``Report.images``; ``framescan.evidence``).
        blur: pixelate sexual evidence in the evidence frames (default; False for authorised
            reviewers).
        timeline: keep every scored frame's scores in the report (``Report.timeline``), so a
            policy or a fusion rule can be evaluated again without decoding.
        speech: transcribe the first audio stream (faster-whisper, the ``speech`` extra) beside
            the video scan and match it against the lexicons (``framescan.speech``).
        speech_model: a CTranslate2 Whisper model directory (default: the bundled Whisper base).
        speech_languages: the languages Whisper may choose from (default ``("id", "en")``).
        transcript: write the transcript into the report's ``speech`` section.
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
        fast_decode: bool = False,
        limits: Limits | None = None,
        banks: str | os.PathLike | bool | None = None,
        ocr: bool = False,
        lexicons: Sequence[str | os.PathLike] | None = None,
        evidence: bool = False,
        blur: bool = True,
        timeline: bool = False,
        speech: bool = False,
        speech_model: str | os.PathLike | None = None,
        speech_languages: Sequence[str] | None = None,
        transcript: bool = False,
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
        self.evidence, self.blur = evidence, blur
        self.timeline = timeline
        self.fast_decode = bool(fast_decode)
        self.limits = limits or DEFAULT_LIMITS
        # ORT's pool threads spin between the parallel parts of a run unless told not to. When
        # every frame is scored the scan is inference-bound and the decoder needs little CPU:
        # spinning measured -11% wall (720x1280, every frame, 7.40 -> 6.55 s, 3 alternating
        # rounds). With sparse sampling the decoder needs the cores: no spinning (no change
        # measured at 1 fps: 0.436 vs 0.422 s), nor in services with several workers per core.
        self.spinning = dense
        manifests = [m if isinstance(m, ModelManifest) else load_manifest(m) for m in (models or [DEFAULT_MODEL])]
        t0 = time.perf_counter()
        self.loaded = [
            LoadedModel(
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
        self.buffer_sets = [[lm.batch for lm in self.loaded]] + [
            [lm.model.manifest.input.empty_batch(self.batch_size) for lm in self.loaded] for _ in range(sets - 1)
        ]
        # No warm-up here: the kernel loads on its first frame, in the preprocessing thread,
        # while the decoder works (a one-clip run would pay a warm-up in full; ``warm_up``).
        self.load_seconds = time.perf_counter() - t0
        self.signals = {
            c: [lm.model.name for lm in self.loaded if c in lm.model.manifest.categories] for c in CATEGORIES
        }
        self.ocr_reader = None
        self.transcriber = None
        self.transcript = transcript
        if ocr or speech:
            from .lexicon import Lexicon

            self.lexicon = Lexicon.load(lexicons)
        if ocr:
            from .ocr import OcrReader

            self.ocr_reader = OcrReader(threads=self.threads)
        if speech:
            from .speech import DEFAULT_LANGUAGES, Transcriber, speech_threads

            threads, beside = speech_threads()
            self.transcriber = Transcriber(
                speech_model, tuple(speech_languages or DEFAULT_LANGUAGES), threads=threads, beside=beside
            )
        for kind, on in (("ocr", ocr), ("speech", speech)):
            if not on:
                continue
            for cat in sorted({t.category for t in self.lexicon.terms}):
                lists = sorted({t.list_name for t in self.lexicon.terms if t.category == cat})
                self.signals[cat] += [f"{kind}+lexicon:{n}" for n in lists]
        #: how raw signal scores make category scores (the scan's and ``framescan eval --rescore``'s)
        self.signal_index = SignalIndex.of(manifests, self.lexicon if ocr or speech else None)
        self.known = None if banks is False else KnownContent.open(None if banks in (None, True) else banks)  # type: ignore[arg-type]
        if self.known is not None:
            for cat, names in self.known.categories.items():
                self.signals[cat] += [f"{BANK_SIGNAL_PREFIX}{n}" for n in names]
        # symbol banks (reference images matched with local features) from the same database
        from .banks import open_symbol_matcher

        self.symbols = None if banks is False else open_symbol_matcher(None if banks in (None, True) else banks)  # type: ignore[arg-type]
        if self.symbols is not None:
            for cat, names in self.symbols.categories.items():
                self.signals[cat] += [
                    f"{BANK_SIGNAL_PREFIX}{n}" for n in names if f"{BANK_SIGNAL_PREFIX}{n}" not in self.signals[cat]
                ]

    def warm_up(self) -> None:
        """Load the cached Numba kernel (0.3-1 s the first time in a process), import PyAV and run
        each model once, so that this lands on start-up, not on the first clip: for long-lived
        scanners (a service's workers), where the first request should not wait. A one-clip run
        does not call it: the first scan loads the kernel while its decoder works."""
        import av  # noqa: F401 - imported here, not at the first scan (decode and probe use it)

        # Planes as the decoder gives them: contiguous, or views on padded lines (each layout is
        # a specialisation of the kernel of its own).
        for pad in (0, 30):
            luma, chroma = np.zeros((4, 4 + pad), np.uint8)[:, :4], np.zeros((2, 2 + pad), np.uint8)[:, :2]
            frame = YuvFrame(luma, chroma, chroma, 0, 0.0)
            for lm, view in zip(self.loaded, self.views([lm.batch for lm in self.loaded], frame)):
                geo = preprocess_into(frame, lm.model.manifest.input, view[0])
                if not pad:
                    lm.model.run(view, [geo])

    def views(self, bufs: list[np.ndarray], frame: YuvFrame) -> list[np.ndarray]:
        """Each model's batch tensor for this frame's size: the buffer itself, or a view on it
        for a model whose canvas is trimmed (``InputSpec.trim_multiple``)."""
        size = frame.upright_size
        return [batch_view(b, lm.model.manifest.input.shape_for(*size)) for b, lm in zip(bufs, self.loaded)]

    @property
    def models(self) -> list[OnnxModel]:
        return [lm.model for lm in self.loaded]

    def sampler(self) -> Sampler:
        return make_sampler(**self._sampling)

    def describe(self) -> dict[str, Any]:
        return {
            "models": [lm.model.describe() for lm in self.loaded],
            "policy": self.policy.to_dict(),
            "sampling": self.sampler().describe(),
            "batch_size": self.batch_size,
            "threads": {"infer": self.threads, "decode": self.decode_threads, "spinning": self.spinning},
            "fast_decode": self.fast_decode,
            "ocr": self.ocr_reader is not None,
            "symbols": len(self.symbols) if self.symbols is not None else 0,
            "speech": None if self.transcriber is None else self.transcriber.describe(),
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
            return ClipScan(self, src.name, container, stream, info, timings, t_start, progress, limits, src).run()
        except FramescanError as ex:
            # Drop the traceback: its frames (this scan's and the decode thread's) hold the
            # decoder, whose FFmpeg threads and frame pools would otherwise live until the next
            # garbage collection (threads and memory grow over thousands of failing clips).
            raise ex.with_traceback(None) from None
        finally:
            container.close()

    def score_frames(self, frames: list[YuvFrame], stage: dict[str, float]) -> list[FrameScore]:
        """Score frames of one size synchronously, in the first set of batch tensors (the
        refinement pass: ``framescan.refine``)."""
        t0 = time.perf_counter()
        views = self.views(self.buffer_sets[0], frames[0])
        geos = [
            [preprocess_into(f, lm.model.manifest.input, views[mi][k]) for mi, lm in enumerate(self.loaded)]
            for k, f in enumerate(frames)
        ]
        stage["preprocess"] += time.perf_counter() - t0
        scores = [FrameScore(f.index, f.time, pts=f.pts) for f in frames]
        self.run_models(views, geos, scores, stage)  # type: ignore[arg-type]
        return scores

    def run_models(
        self,
        bufs: list[np.ndarray],
        geos: list[list[Geometry | None]],
        scores: list[FrameScore],
        stage: dict[str, float],
    ) -> None:
        """Run every model on its preprocessed slots, add its evidence to the frames and fuse their
        category scores (``SignalIndex.fuse``).
        ``geos[k][mi]`` is frame k's geometry in model mi's input, or None where the model's
        schedule skipped the frame (model mi's slots hold only the frames it runs on, in order)."""
        for mi, lm in enumerate(self.loaded):
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
        t0 = time.perf_counter()
        for fs in scores:  # the category scores: every model's signals fused (calibration, corroboration)
            self.signal_index.fuse(fs)
        stage["postprocess"] += time.perf_counter() - t0


_default: dict[tuple, Scanner] = {}


def scan(source: SourceLike, *, name: str | None = None, **options: Any) -> Report:
    """Scan one clip with a ``Scanner`` built from ``options`` (cached per option set)."""
    key = tuple(sorted((k, repr(v)) for k, v in options.items()))
    if key not in _default:
        _default[key] = Scanner(**options)
    return _default[key].scan(source, name=name)
