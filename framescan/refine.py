"""Adaptive sampling's second pass: score the ``refine_fps`` grid frames around every hit of the
main pass, decoded with ``FrameDecoder.frames_at`` in a thread while the frames ready are scored."""

from __future__ import annotations

import bisect
import contextlib
import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .decode import FrameDecoder
from .frames import YuvFrame
from .policy import Policy
from .sample import AdaptiveSampler
from .score import FrameScore
from .stages import END, POLL, Failure, produce, stop_and_join

#: Scores a batch of frames of one size, synchronously (``Scanner.score_frames``).
ScoreFn = Callable[[list[YuvFrame]], list[FrameScore]]


def refine(
    decoder: FrameDecoder,
    sampler: AdaptiveSampler,
    scored: list[FrameScore],
    duration: float | None,
    policy: Policy,
    score: ScoreFn,
    batch_size: int,
    stage: dict[str, float],
) -> int:
    """From every frame of ``scored`` (the main pass's) that reaches a review threshold, walk the
    ``refine_fps`` grid (instants k / refine_fps: the frames fixed sampling at that rate scores)
    both ways, going on past a grid frame if it is a hit too, so every hit run and its edges are
    scored where fixed ``refine_fps`` sampling scores them (and, through the speculation below,
    some grid frames past a run's end up to the main pass's next frame). The frames scored are
    appended to ``scored``; returns how many. ``duration``: the header's (else the decoder's end).

    It runs in rounds so decoding overlaps inference: a round's instants are decoded in a
    thread while the frames already decoded are scored, in batches of what is ready. After
    a hit the round also takes, speculatively, the grid instants up to the next frame the
    main pass scored: no cut was seen in between, so the shot (and the hit) most likely goes
    on, and scoring them together saves a decode-then-infer round trip per frame. A miss in
    that span costs inferences fixed ``refine_fps`` sampling makes anyway. Instants the walk
    still needs after a round (behind the decoder, or past a miss) make the next round."""
    step = 1.0 / sampler.refine_fps
    end = duration or decoder.stats.end_time or 0.0
    times = sorted(fs.time for fs in scored)
    main_times = list(times)  # the main pass's frames: a cut lies only at one of them
    tried: set[int] = set()
    pending: list[float] = []

    def is_hit(fs: FrameScore) -> bool:
        return any(v >= policy.rule(c).review for c, v in fs.scores.items())

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
    while pending:
        todo, pending = pending, []
        with contextlib.closing(decoded_batches(decoder, todo, batch_size, stage)) as batches:
            for frames in batches:  # closing: the decoding thread is joined if scoring fails
                fresh = [f for f in frames if f.time not in times]
                # one batch per frame size (a stream can change size; the batch's tensor
                # views are shaped for its first frame)
                runs = [list(g) for _, g in itertools.groupby(fresh, key=lambda f: f.upright_size)]
                new = [fs for run in runs for fs in score(run)]
                scored.extend(new)
                added += len(new)
                for fs in new:
                    bisect.insort(times, fs.time)
                for fs in new:
                    if is_hit(fs):
                        walk(fs.time)
    return added


def decoded_batches(
    decoder: FrameDecoder, instants: list[float], batch_size: int, stage: dict[str, float]
) -> Iterator[list[YuvFrame]]:
    """The frames at ``instants`` (``FrameDecoder.frames_at``), decoded in a thread and given
    in batches of up to ``batch_size`` of the frames ready when the caller asks (at least
    one), so the caller scores a batch while the next frames decode. The thread is always
    joined, also when the caller stops early or raises."""
    ready: queue.Queue[Any] = queue.Queue(maxsize=batch_size)
    stop = threading.Event()

    def run() -> None:
        frames = decoder.frames_at(instants)
        try:
            produce(frames, ready, stop, stage)
        finally:
            frames.close()

    def take() -> Any:
        while True:
            try:
                return ready.get(timeout=POLL)
            except queue.Empty:
                if not thread.is_alive() and ready.empty():  # cannot happen: produce always ends with one
                    return Failure(RuntimeError("the refinement decoder ended without a last frame"))

    thread = threading.Thread(target=run, name="framescan-refine-decode", daemon=True)
    thread.start()
    try:
        done = False
        while not done:
            batch: list[YuvFrame] = []
            item = take()
            while True:
                if item is END:
                    done = True
                    break
                if isinstance(item, Failure):
                    raise item.exc
                batch.append(item)
                if len(batch) == batch_size:
                    break
                try:
                    item = ready.get_nowait()
                except queue.Empty:
                    break
            if batch:
                yield batch
            del batch
    finally:
        stop_and_join(stop, [thread], (ready,), wake=None)
