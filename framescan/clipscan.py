"""One clip's scan, stage by stage: decode (thread) -> preprocess (thread) -> infer -> aggregate,
then adaptive refinement, known content, the decision and the report (``ClipScan.run``)."""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .aggregate import ClipAggregator
from .decide import decide, should_stop
from .decode import FAST_DECODE, DecodeStats, FrameDecoder
from .errors import NoFrames, Truncated
from .evidence import EvidenceCapture
from .frames import Geometry, YuvFrame
from .known import KnownContentResult
from .limits import Limits
from .preprocess import preprocess_into
from .probe import ClipInfo, Source
from .refine import refine
from .report import Coverage, Evidence, Report
from .sample import AdaptiveSampler
from .score import FrameScore
from .stages import END, Failure, get, produce, put, stop_and_join
from .symbols import SymbolScan
from .thumb import difference, thumbnail

if TYPE_CHECKING:
    from .pipeline import Scanner

#: Decoded frames waiting for preprocessing are bounded in bytes as well as in count, so
#: an 8192x8192 clip cannot queue gigabytes of frames.
QUEUE_BYTES = 256 << 20
#: A clip counts as completely read when decoding reaches the claimed duration within this
#: share (headers round durations, and the last frame's duration is often unknown).
COVERAGE_TOLERANCE = 0.05
COVERAGE_TOLERANCE_SECONDS = 0.5

ProgressFn = Callable[[float, float | None], None]
#: A frame given to the models: (index, time, pts), and its geometry in each model's input (None
#: where a model's schedule skips it), or None for a near-duplicate (it reuses the last score).
_Item = tuple[tuple[int, float, int | None], list[Geometry | None] | None]


class ClipScan:
    """The scan of one open clip with a ``Scanner``'s models and settings; the state the stages
    share is kept here. The decode thread feeds sampled frames into ``frames``; the preprocessing
    thread fills batch tensors (taken from ``free``) and passes them through ``batches`` to the
    calling thread, which runs the models and aggregates. Whatever raises, the threads are
    stopped and joined."""

    def __init__(
        self,
        scanner: Scanner,
        name: str,
        container: Any,
        stream: Any,
        info: ClipInfo,
        timings: dict[str, float],
        t_start: float,
        progress: ProgressFn | None,
        limits: Limits,
        source: Source | None = None,
    ) -> None:
        self.scanner = scanner
        self.name = name
        self.info = info
        self.timings = timings
        self.t_start = t_start
        self.progress = progress
        self.sampler = scanner.sampler()
        self.stop = threading.Event()
        frame_bytes = max(1, info.width * info.height * 3 // 2)
        bs = scanner.batch_size
        ahead = bs if scanner.early_exit else 2 * bs  # early exit: decode less ahead
        self.frames: queue.Queue[Any] = queue.Queue(maxsize=max(2, min(ahead, QUEUE_BYTES // frame_bytes)))
        self.decoder = FrameDecoder(
            container,
            stream,
            self.sampler,
            scanner.decode_threads,
            self.stop.is_set,
            # not a bound method: the decoder must not refer back to this scan (a reference cycle
            # would keep the decoder, its FFmpeg threads and frame pools, until a garbage collection)
            functools.partial(_check_limits, limits, info, name),
            max_pixels=limits.max_pixels,
            skip_loop_filter=FAST_DECODE if scanner.fast_decode else None,
        )
        self.stage = {"decode": 0.0, "preprocess": 0.0, "infer": 0.0, "postprocess": 0.0, "aggregate": 0.0}
        self.known = scanner.known
        if self.known is not None:
            self.known.reset()
        # One set of batch tensors per set the scanner has: with two, the preprocessing thread
        # fills one while the models run on the other.
        self.free: queue.Queue[list[np.ndarray]] = queue.Queue()
        for bufs in scanner.buffer_sets:
            self.free.put(bufs)
        self.batches: queue.Queue[Any] = queue.Queue(maxsize=1)
        self.rotation: tuple[int, bool] | None = None  # the first frame's display transform
        # adaptive sampling: near-duplicates reuse the last score, and every score is kept for
        # the refinement pass
        self.adaptive = isinstance(self.sampler, AdaptiveSampler)
        self.dedupe = self.sampler.dedupe if isinstance(self.sampler, AdaptiveSampler) else 0.0
        self.last_thumb: np.ndarray | None = None
        self.last_scored: FrameScore | None = None
        self.scored: list[FrameScore] = []
        self.fresh_frames = 0  # frames given to the models so far
        self.counts = {"reused": 0, "refined": 0, "ocr": 0}
        self.text = _TextReader(scanner, self.stage, self.counts) if scanner.ocr_reader is not None else None
        self.symbols = SymbolScan(scanner.symbols, scanner.policy) if scanner.symbols is not None else None
        self.agg = ClipAggregator(scanner.policy, scanner.signals, timeline=scanner.timeline)
        self.capture = EvidenceCapture(scanner.blur) if scanner.evidence else None
        self.stopped_at: float | None = None  # where an early exit stopped
        # spoken words (framescan.speech): their own thread and demuxer; every frame score is kept
        # so that the clip can be aggregated again with the speech hits in time order
        self.speech = None
        if scanner.transcriber is not None and source is not None:
            from .speech import SpeechScan

            self.speech = SpeechScan(scanner.transcriber, scanner.lexicon, source, limits)
        self.keep_scores = self.adaptive or self.speech is not None

    def run(self) -> Report:
        sp = self.speech
        beside = False
        if sp is not None:
            from .speech import can_decode_beside

            beside = sp.transcriber.beside and can_decode_beside(sp.source)
        if beside:
            self.speech.start()  # type: ignore[union-attr]
        try:
            self._main_pass()
            if self.adaptive and self.stopped_at is None and self.scored:
                self._refine()
        except BaseException:
            if beside:
                self.speech.join(stop=True)  # type: ignore[union-attr]
            raise
        if beside:  # an early exit stops it too
            self.speech.join(stop=self.stopped_at is not None)  # type: ignore[union-attr]
        if sp is not None:
            if not beside:  # after the video: on few cores, or a file object the video demuxer reads too
                if self.stopped_at is not None:
                    sp.status = "stopped early"  # an early exit: not started at all
                else:
                    sp.run()
            self._add_speech()
        st = self.decoder.stats
        if self.stopped_at is not None:
            st.stopped_by = "early_exit"
        # a segment still showing at the last scored frame ends where what is known ends
        self.agg.finish(self.stopped_at if self.stopped_at is not None else st.end_time or 0.0)
        self.timings.update(self.stage)
        info = self.info.with_rotation(*self.rotation) if self.rotation is not None else self.info
        kc = self.known.result() if self.known is not None else None
        if kc is not None:
            self.timings["known_content"] = kc.seconds
        if self.symbols is not None:
            self.timings["symbols"] = self.symbols.seconds
        return self._report(info, st, kc)

    # ------------------------------------------------------------------ the main pass

    def _main_pass(self) -> None:
        """Run the decode and preprocessing threads; infer and aggregate each batch they give."""
        threads = [
            threading.Thread(target=self._decode, name="framescan-decode", daemon=True),
            threading.Thread(target=self._preprocess, name="framescan-preprocess", daemon=True),
        ]
        for t in threads:
            t.start()
        try:
            while True:
                item = self.batches.get()
                if item is END:
                    break
                if isinstance(item, Failure):
                    raise item.exc
                bufs, views, items = item
                self._infer(views, items)
                self.free.put(bufs)
                last = items[-1][0][1]
                if self.progress is not None:
                    self.progress(last, self.info.duration)
                if self.scanner.early_exit and should_stop(self.agg.decision()):
                    self.stopped_at = last
                    break
        finally:
            stop_and_join(self.stop, threads, (self.frames, self.batches), wake=self.frames)
            if self.symbols is not None:
                self.symbols.close()

    def _decode(self) -> None:
        """The decode thread: sampled frames into ``frames``."""
        produce(iter(self.decoder), self.frames, self.stop, self.stage)

    def _preprocess(self) -> None:
        """The preprocessing thread: frames from ``frames`` into batch tensors, given to
        ``batches`` with their items (``_Item``) once ``batch_size`` frames are in (or the
        frame size changes the tensors' shape, or the clip ends). Only (index, time, pts) of a
        frame is kept: the decoded frame is released as soon as it is preprocessed, so the
        decoder's buffer pool does not grow with the batches in flight."""
        scanner = self.scanner
        n_models = len(scanner.loaded)
        bufs: list[np.ndarray] | None = None
        views: list[np.ndarray] = []  # bufs' tensors shaped for this batch's frames
        views_for = (0, 0)  # the upright frame size they were shaped for
        items: list[_Item] = []
        slot = 0  # frames given to the models in this batch
        model_slots = [0] * n_models  # frames each model runs on in this batch
        try:
            while True:
                item = get(self.frames, self.stop)
                if item is None:
                    return
                if item is END or isinstance(item, Failure):
                    if items and not put(self.batches, (bufs, views, items), self.stop):
                        return
                    put(self.batches, item, self.stop)
                    return
                frame: YuvFrame = item
                if self.rotation is None:
                    self.rotation = (frame.rotation, frame.mirror)
                if bufs is not None and frame.upright_size != views_for:
                    # the frame size changed; if a trimmed tensor's shape changed with it: new batch
                    if [v.shape for v in scanner.views(bufs, frame)] != [v.shape for v in views]:
                        if not put(self.batches, (bufs, views, items), self.stop):
                            return
                        bufs, items, slot, model_slots = None, [], 0, [0] * n_models
                    views_for = frame.upright_size
                if bufs is None:
                    bufs = get(self.free, self.stop)
                    if bufs is None:
                        return
                    views, views_for = scanner.views(bufs, frame), frame.upright_size
                geos = self._fill(frame, views, model_slots)
                slot += geos is not None
                if self.known is not None:
                    self.known.add(frame)
                if self.text is not None:
                    self.text.read(frame)
                if self.symbols is not None:
                    self.symbols.read(frame)
                if self.capture is not None:
                    self.capture.add(frame)
                items.append(((frame.index, frame.time, frame.pts), geos))
                del frame, item
                if slot == scanner.batch_size or len(items) >= 4 * scanner.batch_size:
                    if not put(self.batches, (bufs, views, items), self.stop):
                        return
                    bufs, items, slot, model_slots = None, [], 0, [0] * n_models
        except BaseException as ex:
            put(self.batches, Failure(ex), self.stop)

    def _fill(self, frame: YuvFrame, views: list[np.ndarray], model_slots: list[int]) -> list[Geometry | None] | None:
        """Preprocess ``frame`` into the next slot of each model that runs on it (a model with a
        schedule runs on every Nth frame given to the models); its geometry per model. None for
        a near-duplicate, which is not given to the models."""
        t0 = time.perf_counter()
        geos: list[Geometry | None] | None = None
        if not self._duplicate(frame):
            geos = []
            for mi, lm in enumerate(self.scanner.loaded):
                if self.fresh_frames % lm.every:
                    geos.append(None)
                else:
                    geos.append(preprocess_into(frame, lm.model.manifest.input, views[mi][model_slots[mi]]))
                    model_slots[mi] += 1
            self.fresh_frames += 1
        self.stage["preprocess"] += time.perf_counter() - t0
        return geos

    def _duplicate(self, frame: YuvFrame) -> bool:
        """Whether the frame is a near-duplicate of the last scored one (adaptive sampling)."""
        if self.dedupe <= 0:
            return False
        thumb = thumbnail(frame.y)
        if self.last_thumb is not None and difference(thumb, self.last_thumb) < self.dedupe:
            return True
        self.last_thumb = thumb
        return False

    def _infer(self, bufs: list[np.ndarray], items: list[_Item]) -> None:
        """Run the models on a batch and aggregate its frames in order (a near-duplicate takes
        the last scored frame's result)."""
        fresh = [(key, g) for key, g in items if g is not None]
        scores = [FrameScore(index, t, pts=pts) for (index, t, pts), _ in fresh]
        self.scanner.run_models(bufs, [g for _, g in fresh], scores, self.stage)  # type: ignore[misc]
        t0 = time.perf_counter()
        it = iter(scores)
        for (index, t, pts), g in items:
            if g is not None:
                fs = next(it)
            else:
                fs = _reuse(self.last_scored, index, t, pts)  # type: ignore[arg-type]
                self.counts["reused"] += 1
            self.last_scored = fs
            if self.text is not None:
                found = self.text.found.pop(index, ())
                for ev in found:
                    fs.add(ev)
                if found:  # on-screen text joins the fusion
                    self.scanner.signal_index.fuse(fs)
            if self.symbols is not None:  # symbol-bank matches: weighted by decide.symbol_weight
                for ev in self.symbols.take(index):
                    fs.add(ev)
            self.agg.update(fs)
            if self.capture is not None:
                self.capture.scored(fs)
            if self.keep_scores:
                self.scored.append(fs)
        self.stage["aggregate"] += time.perf_counter() - t0

    # ------------------------------------------------------------------ after the main pass

    def _refine(self) -> None:
        """Adaptive sampling's refinement pass (``framescan.refine``); when it added frames, the
        clip is aggregated again from every score in time order."""
        t0 = time.perf_counter()
        scanner = self.scanner
        added = refine(
            self.decoder,
            self.sampler,  # type: ignore[arg-type]
            self.scored,
            self.info.duration,
            scanner.policy,
            self._score_refined,
            scanner.batch_size,
            self.stage,
        )
        self.counts["refined"] = added
        if added:
            self.agg.reset()
            for fs in sorted(self.scored, key=lambda f: f.time):
                self.agg.update(fs)
        self.timings["refine"] = time.perf_counter() - t0

    def _score_refined(self, frames: list[YuvFrame]) -> list[FrameScore]:
        """Score the refinement pass's frames (and keep copies of them for evidence frames)."""
        if self.capture is not None:
            for f in frames:
                self.capture.add(f)
        scores = self.scanner.score_frames(frames, self.stage)
        if self.capture is not None:
            for fs in scores:
                self.capture.scored(fs)
        return scores

    def _add_speech(self) -> None:
        """Aggregate the clip again with the speech hits as points in time among the frames: each
        hit's evidence at its first word's start and again at its last word's end."""
        sp = self.speech
        self.timings["speech"] = sp.seconds  # type: ignore[union-attr]
        evidence = sp.evidence()  # type: ignore[union-attr]
        if not evidence:
            return
        from .score import FrameScore

        points = []
        for e in evidence:
            end = e.end if e.end is not None else e.time
            for t in (e.time, end):
                fs = FrameScore(-1, t)
                fs.add(e)
                points.append(fs)
            for fs in self.scored:  # the frames shown while the term was said carry it
                if e.time < fs.time < end:
                    fs.add(e.carried_to(fs.index, fs.time, fs.pts))
        self.agg.reset()
        merged = sorted(
            [(fs.time, 0, fs) for fs in self.scored] + [(fs.time, 1, fs) for fs in points], key=lambda x: x[:2]
        )
        for _, is_point, fs in merged:
            self.agg.update(fs, point=bool(is_point))

    def _report(self, info: ClipInfo, st: DecodeStats, kc: KnownContentResult | None) -> Report:
        """The clip's report. Raises when no frame could be decoded; a clip not read completely
        (decoding stopped, corrupt data, short of the claimed duration) is ``partial``."""
        name = self.name
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
        extra: dict[str, Any] = {}
        if self.speech is not None:
            warnings += self.speech.warnings
            if self.speech.error is not None:
                partial = True
                warnings.append(f"speech: {self.speech.error['message']}")
            extra["speech"] = self.speech.to_dict(self.scanner.transcript)
        early_exit = st.stopped_by == "early_exit"
        coverage = Coverage(
            read_packets=st.read_packets,
            decoded_frames=st.decoded_frames,
            decoded_seconds=st.decoded_seconds,
            sampled_frames=st.sampled_frames,
            scored_frames=self.agg.frames,
            claimed_frames=info.frame_count,
            claimed_seconds=claimed,
            corrupt_packets=st.corrupt_packets,
            corrupt_frames=st.corrupt_frames,
            skipped_packets=st.skipped_packets,
            reused_frames=self.counts["reused"] if self.adaptive else None,
            refined_frames=self.counts["refined"] if self.adaptive else None,
            ocr_frames=self.counts["ocr"] if self.text is not None else None,
            stopped_early=early_exit,
            stopped_reason="decision reached block (early exit)" if early_exit else None,
            stopped_at=self.stopped_at,
        )
        verdict = decide(self.agg.results, kc, partial)
        report = Report(
            source=name,
            status="partial" if partial else "complete",
            decision=verdict.decision,
            clip=info,
            coverage=coverage,
            sampling=self.sampler.describe(),
            models=[lm.model.manifest.summary() for lm in self.scanner.loaded],
            policy=self.scanner.policy.to_dict(),
            categories=verdict.categories,
            evidence=self.agg.top_evidence(),
            reasons=verdict.reasons,
            timings=self.timings,
            warnings=warnings,
            timeline=self.agg.timeline(),
            extra={
                "known_content": kc.to_dict() if kc is not None else None,
                "context": {
                    k: {
                        **v,
                        "first_time": round(float(v["first_time"]), 3),
                        "peak_time": round(float(v.get("peak_time", v["first_time"])), 3),
                    }
                    for k, v in self.agg.context.items()
                },
                **extra,
            },
        )
        if self.capture is not None:
            t0 = time.perf_counter()
            report.images = self.capture.images(report.evidence_items())
            self.timings["evidence"] = time.perf_counter() - t0
        self.timings["total"] = time.perf_counter() - self.t_start
        return report


class _TextReader:
    """Reads the on-screen text of the sampled frames a ``TextGate`` selects (a caption
    appearing or changing, a cut, at least every 2 s) and files the lexicon matches as evidence
    under the frame's index (``found``). A sampled frame the gate does not read shows the same
    text as the last read one: it carries that frame's evidence (``reused``), so a caption on
    screen for 2 s hits every sampled frame it is on."""

    def __init__(self, scanner: Scanner, stage: dict[str, float], counts: dict[str, int]) -> None:
        from .ocr import TextGate

        self.gate = TextGate()
        self.reader, self.lexicon = scanner.ocr_reader, scanner.lexicon
        self.stage, self.counts = stage, counts
        self.last: list[Evidence] = []  # the last read frame's evidence: on screen until the gate sees a change
        self.found: dict[int, list[Evidence]] = {}  # frame index -> on-screen text evidence

    def read(self, frame: YuvFrame) -> None:
        from .ocr import evidence, find_terms

        t0 = time.perf_counter()
        if self.gate.should_read(frame, frame.time):
            self.counts["ocr"] += 1
            self.last = evidence(
                find_terms(self.reader.read_frame(frame), self.lexicon), frame.index, frame.time, frame.pts
            )  # type: ignore[union-attr]
            found = list(self.last)
        else:
            found = [e.carried_to(frame.index, frame.time, frame.pts) for e in self.last]
        if found:
            self.found[frame.index] = found
        self.stage["ocr"] = self.stage.get("ocr", 0.0) + time.perf_counter() - t0


def _check_limits(
    limits: Limits, info: ClipInfo, name: str, t: float, st: DecodeStats, width: int, height: int
) -> None:
    """The decoder's check of every decoded frame (``FrameDecoder``'s ``on_frame``)."""
    limits.check_progress(t, st.read_packets, name)
    if width != info.width or height != info.height:
        limits.check_header(width, height, 0, name)


def _reuse(fs: FrameScore, index: int, t: float, pts: int | None) -> FrameScore:
    """A near-duplicate frame's score: ``fs``'s result, at this frame's index, time and pts."""
    return FrameScore(
        index,
        t,
        dict(fs.scores),
        [e.carried_to(index, t, pts) for e in fs.evidence],
        dict(fs.context),
        pts,
        dict(fs.labels),
    )
