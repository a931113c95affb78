"""Adaptive sampling: never misses a segment that fixed 2 fps sampling finds, on clips whose
flagged shots start on and off keyframes, with and without B-frames and encoder scene cuts."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from framescan.decode import FrameDecoder
from framescan.pipeline import Scanner
from framescan.probe import as_source, clip_info, open_container, select_video_stream
from framescan.refine import decoded_batches, refine
from framescan.report import segment_evidence
from framescan.sample import AdaptiveSampler, PacketInfo
from framescan.score import FrameScore
from framescan.synth import Shot, default_shots, render_frame

SIZE = (360, 640)
SECONDS = 10.0


def _clip(make_clip: Callable[..., Path], shots: list[Shot], encoding: dict[str, Any], gop: int = 60) -> Path:
    """A 10 s 360x640 clip of ``shots`` encoded as ``encoding`` says (B-frames, scene cuts)."""
    return make_clip(width=SIZE[0], height=SIZE[1], seconds=SECONDS, shots=shots, gop=gop, **encoding)


ULTRAFAST = {"preset": "ultrafast"}  # no B-frames, no scene-cut keyframes
BFRAMES = {"preset": "veryfast", "encoder_options": {"bf": "3"}}  # B-frames, scene-cut I-frames
MEDIUM = {"preset": "medium"}  # x264 default: adaptive B-frames, mbtree, scene-cut keyframes
CLIPS = [
    # (id, flagged interval, encoder options)
    ("on-keyframe", (6.0, 8.0), ULTRAFAST),
    ("off-keyframe", (4.3, 5.4), ULTRAFAST),
    ("short-0.7s", (7.15, 7.85), ULTRAFAST),
    ("bframes-scenecut", (2.6, 4.9), BFRAMES),
    ("bframes-long", (1.1, 8.7), BFRAMES),
    ("x264-medium", (6.0, 8.0), MEDIUM),
    ("cut-after-keyframe", (2.1, 2.7), ULTRAFAST),  # 3 frames after the keyframe at 2 s
]


@pytest.fixture(scope="module")
def scanners(scanner_for: Callable[..., Scanner]) -> tuple[Scanner, Scanner]:
    return scanner_for(fps=2, banks=False), scanner_for(adaptive=True, banks=False)


def _segments(d: dict) -> list[tuple[str, float, float]]:
    return [(s["category"], s["start"], s["end"]) for s in d["segments"]]


@pytest.mark.parametrize("name,flagged,options", CLIPS, ids=[c[0] for c in CLIPS])
def test_adaptive_never_misses_a_segment_that_2fps_finds(
    name: str,
    flagged: tuple[float, float],
    options: dict,
    make_clip: Callable[..., Path],
    scanners: tuple[Scanner, Scanner],
) -> None:
    clip = _clip(make_clip, default_shots(SECONDS, flagged), options)
    fixed, adaptive = (s.scan(clip).to_dict() for s in scanners)
    assert fixed["segments"], f"{name}: the reference (2 fps) found nothing: the clip does not test anything"
    # never less severe (it can be more: a shot starting off the 2 fps grid gets its first frame)
    severity = ["allow", "review", "block"]
    assert severity.index(adaptive["decision"]) >= severity.index(fixed["decision"]), (
        _segments(fixed),
        _segments(adaptive),
    )
    for cat, start, end in _segments(fixed):
        overlap = [s for s in _segments(adaptive) if s[0] == cat and s[1] <= end + 0.5 and s[2] >= start - 0.5]
        assert overlap, f"{name}: adaptive missed {cat} {start}-{end}: {_segments(adaptive)}"
    # every 2 fps hit frame has an adaptive hit frame within half a second
    cat = fixed["segments"][0]["category"]
    assert adaptive["categories"][cat]["hit_frames"] >= fixed["categories"][cat]["hit_frames"] - 1
    cov = adaptive["coverage"]
    if flagged[1] - flagged[0] < SECONDS / 2:  # a mostly flagged clip is refined almost everywhere
        assert cov["scored_frames"] < fixed["coverage"]["scored_frames"], "adaptive scored no fewer frames"
        assert cov["decoded_frames"] < fixed["coverage"]["decoded_frames"]
    assert cov["refined_frames"] is not None and adaptive["sampling"]["mode"] == "adaptive"
    # frames decoded again by the refinement pass count once: every packet read is decoded or skipped
    assert cov["decoded_frames"] + cov["skipped_packets"] == cov["read_packets"] == cov["claimed_frames"], cov


def test_adaptive_allows_a_clean_clip_with_few_frames(
    make_clip: Callable[..., Path], scanners: tuple[Scanner, Scanner]
) -> None:
    clip = _clip(make_clip, default_shots(SECONDS, None), ULTRAFAST)
    fixed, adaptive = (s.scan(clip).to_dict() for s in scanners)
    assert fixed["decision"] == adaptive["decision"] == "allow"
    assert adaptive["coverage"]["refined_frames"] == 0
    assert adaptive["coverage"]["scored_frames"] <= fixed["coverage"]["scored_frames"] // 2


def test_near_duplicates_reuse_the_last_score(tmp_path: Path, scanners: tuple[Scanner, Scanner]) -> None:
    """A still shot (every frame the same picture): the floor and keyframes give frames, but
    only the first is run through the model; the rest reuse its result and say so."""
    w, h = SIZE
    still = render_frame(w, h, 0.0, [Shot(0, 10, "colorwheel", 0.8)], {})
    path = tmp_path / "still.mp4"
    # encoded here, not with write_clip: its frames always move, this clip's are all the same picture
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.gop_size = 10
        s.options = {"preset": "ultrafast"}
        for i in range(80):
            f = av.VideoFrame.from_ndarray(still, format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode(None))
    fixed, d = (s.scan(path).to_dict() for s in scanners)
    cov = d["coverage"]
    assert cov["reused_frames"] >= 3 and cov["scored_frames"] >= cov["reused_frames"] + 1
    assert d["decision"] == fixed["decision"] != "allow"
    assert d["categories"]["sexual"]["hit_frames"] >= fixed["categories"]["sexual"]["hit_frames"]
    reused = [e for s in d["segments"] for e in segment_evidence(d, s) if e.get("reused")]
    assert reused and all(e["frame_index"] > 0 for e in reused)


def test_plan_takes_keyframes_scene_changes_and_the_floor() -> None:
    s = AdaptiveSampler(floor_fps=0.5, scene_ratio=1.5)
    t = np.arange(0, 6, 0.1)
    sizes = [5000] * len(t)
    sizes[31] = 30000  # a cut at 3.1 s
    packets = [PacketInfo(float(x), sz, i == 0) for i, (x, sz) in enumerate(zip(t, sizes))]
    kept = [round(packets[i].time, 1) for i in s.plan(packets)]
    # keyframe 0.0, floor 2.0, the cut 3.1, floor 5.1
    assert kept == [0.0, 2.0, 3.1, 5.1]
    assert s.scene_changes == [pytest.approx(3.1)]


@pytest.mark.parametrize("bframes", [False, True], ids=["p-only", "p-and-b"])
@pytest.mark.parametrize("cut_on_keyframe", [False, True], ids=["cut-mid-group", "cut-on-keyframe"])
def test_a_cut_into_a_busier_shot_is_not_a_run_of_cuts(cut_on_keyframe: bool, bframes: bool) -> None:
    """After a cut into a shot whose every packet is 3x larger (more detail, more motion), the
    new shot's packets are not all called cuts: the cut is, and at most the packet after it
    when the cut was a keyframe (whose size says nothing). B-frames: small packets between
    the P-frames, in both shots."""
    s = AdaptiveSampler(floor_fps=0.5, scene_ratio=1.5)
    t = np.arange(0, 6, 0.1)
    sizes = [(2000 if x < 3.05 else 6000) // (4 if bframes and i % 2 else 1) for i, x in enumerate(t)]
    cut = 31  # 3.1 s
    sizes[cut] = 20000
    packets = [
        PacketInfo(float(x), sz, i == 0 or (cut_on_keyframe and i == cut)) for i, (x, sz) in enumerate(zip(t, sizes))
    ]
    kept = [round(packets[i].time, 1) for i in s.plan(packets)]
    if cut_on_keyframe:
        assert kept == [0.0, 2.0, 3.1, 3.2, 5.2]
        assert s.scene_changes == [pytest.approx(3.2)]
    else:
        assert kept == [0.0, 2.0, 3.1, 5.1]
        assert s.scene_changes == [pytest.approx(3.1)]


@pytest.mark.parametrize("after", [1, 2, 3, 4, 10])
def test_a_cut_just_after_a_keyframe_is_called(after: int) -> None:
    """A keyframe that is not a cut (a periodic one, mid-shot) leaves the shot's history as it
    is: a cut 1-4 packets after it is still seen."""
    s = AdaptiveSampler(floor_fps=0.5, scene_ratio=1.5)
    t = np.arange(0, 4, 0.1)
    sizes = [5000] * len(t)
    sizes[20] = 40000  # the keyframe at 2.0 s
    sizes[20 + after] = 30000
    packets = [PacketInfo(float(x), sz, i in (0, 20)) for i, (x, sz) in enumerate(zip(t, sizes))]
    kept = [round(packets[i].time, 1) for i in s.plan(packets)]
    assert s.scene_changes == [pytest.approx(2.0 + after / 10)]
    assert round(2.0 + after / 10, 1) in kept


def test_planned_decoding_keeps_exactly_the_planned_frames(make_clip: Callable[..., Path]) -> None:
    """The frames the decoder returns are the ones the plan chose (B-frames: presentation order)."""
    clip = _clip(make_clip, default_shots(4, (1.0, 2.0)), BFRAMES, gop=30)
    src = as_source(clip)
    c = open_container(src)
    try:
        sampler = AdaptiveSampler()
        dec = FrameDecoder(c, select_video_stream(c, src.name), sampler)
        times = [round(f.time, 3) for f in dec]
        assert times == sorted(times) and len(times) == len(set(times))
        assert times[0] == 0.0 and {1.0, 2.0, 3.0} <= set(times)  # keyframes every second
        assert dec.stats.decoded_frames < 120 and dec.stats.skipped_packets > 0
        extra = [round(f.time, 3) for f in dec.frames_at([0.5, 2.5, 12.0])]
        assert extra == [0.5, 2.5]  # 12.0 is past the end (10 s): nothing
    finally:
        c.close()


def _refine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "framescan-refine-decode" and t.is_alive()]


def test_refinement_decodes_in_a_thread_that_is_always_joined(
    make_clip: Callable[..., Path], scanner_for: Callable[..., Scanner]
) -> None:
    """The refinement pass decodes its instants in a thread, gives them in order in batches of
    at most batch_size, and joins the thread also when the caller stops after the first batch."""
    clip = _clip(make_clip, default_shots(4, (1.0, 2.0)), ULTRAFAST, gop=30)
    scanner = scanner_for(adaptive=True, banks=False, batch_size=2)
    src = as_source(clip)
    c = open_container(src)
    try:
        dec = FrameDecoder(c, select_video_stream(c, src.name), AdaptiveSampler())
        main = [f.time for f in dec]  # the main pass: frames_at uses the keyframes it saw
        assert main and dec.stats.decoded_frames < 300
        stage = {"decode": 0.0}
        batches = decoded_batches(dec, [0.5, 1.5, 2.5, 3.5, 4.5], scanner.batch_size, stage)
        first = next(batches)
        assert 1 <= len(first) <= 2 and round(first[0].time, 3) == 0.5
        batches.close()
        assert not _refine_threads()
        got = [
            round(f.time, 3) for b in decoded_batches(dec, [0.5, 2.5, 7.5, 12.0], scanner.batch_size, stage) for f in b
        ]
        assert got == [0.5, 2.5, 7.5] and stage["decode"] > 0  # 12.0: past the end
        assert not _refine_threads()
    finally:
        c.close()


def test_refinement_decoding_failure_reaches_the_caller(
    make_clip: Callable[..., Path], scanner_for: Callable[..., Scanner]
) -> None:
    """A decoder failure in the refinement thread is raised to the caller, also when the queue
    is full at that moment and the caller is busy scoring for a while (it used to be dropped
    after 1 s, and the caller then waited forever)."""

    broke = threading.Event()

    class BreaksAfterTwo(FrameDecoder):
        def frames_at(self, pending: list[float]):  # type: ignore[override]
            yield from itertools.islice(super().frames_at(pending), 2)
            broke.set()
            raise RuntimeError("decoder broke")

    clip = _clip(make_clip, default_shots(4, (1.0, 2.0)), ULTRAFAST, gop=30)
    scanner = scanner_for(adaptive=True, banks=False, batch_size=1)
    src = as_source(clip)
    c = open_container(src)
    got: list[float] = []
    raised: list[BaseException] = []

    def consume() -> None:
        try:
            for batch in decoded_batches(dec, [0.5, 1.5, 2.5, 3.5], scanner.batch_size, {"decode": 0.0}):
                got.extend(f.time for f in batch)
                if len(got) == 1:  # "scoring": meanwhile the thread fails with a full queue ...
                    assert broke.wait(30), "the decoder never reached its failure"
                    time.sleep(1.5)  # ... and is held longer than the 1 s after which it was dropped
        except RuntimeError as ex:
            raised.append(ex)

    try:
        dec = BreaksAfterTwo(c, select_video_stream(c, src.name), AdaptiveSampler())
        list(dec)
        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
        consumer.join(timeout=30)
        assert not consumer.is_alive(), "the caller never heard of the failure"
        assert [round(t, 3) for t in got] == [0.5, 1.5] and "decoder broke" in str(raised[0])
        assert not _refine_threads()
    finally:
        c.close()


def test_refinement_scores_the_grid_frames_around_a_hit_run(
    make_clip: Callable[..., Path], scanners: tuple[Scanner, Scanner]
) -> None:
    """Flagged 6-8 s, keyframes every 2 s, no cut at 6 or 8 s: the main pass scores the keyframe
    at 6 s; refinement adds the 2 fps grid frame before it (5.5 s, no hit) and the three after
    it up to the next keyframe (6.5, 7.0, 7.5 s), and nothing else: adaptive finds the hit run
    fixed 2 fps finds, frame for frame."""
    clip = _clip(make_clip, default_shots(SECONDS, (6.0, 8.0)), ULTRAFAST)
    fixed, adaptive = (s.scan(clip).to_dict() for s in scanners)
    assert adaptive["coverage"]["refined_frames"] == 4
    hits = sorted({e["time"] for e in adaptive["evidence"]})
    assert hits == sorted({e["time"] for e in fixed["evidence"]}) == [6.0, 6.5, 7.0, 7.5]


def _refine_after(
    scanner: Scanner, clip: Path, main: tuple[float, ...], hit: float, duration: float | None = None
) -> list[FrameScore]:
    """Run ``scanner``'s (adaptive) refinement pass on ``clip`` after a given main pass: frames
    at ``main``, the one at ``hit`` scoring 0.7 ``sexual``, the rest nothing (``duration``
    overrides the header's). Returns the frames it added, in the order scored."""
    sampler = AdaptiveSampler()
    src = as_source(clip)
    c = open_container(src)
    try:
        stream = select_video_stream(c, src.name)
        info = clip_info(c, stream, src)
        if duration is not None:
            info = dataclasses.replace(info, duration=duration)
        dec = FrameDecoder(c, stream, sampler)
        list(dec)  # the main pass's decoding: keyframe times for seeking
        scored = [FrameScore(int(t * 30), t) for t in main]
        scored[main.index(hit)].scores["sexual"] = 0.7
        stage = dict.fromkeys(("decode", "preprocess", "infer", "postprocess"), 0.0)
        score = lambda frames: scanner.score_frames(frames, stage)  # noqa: E731
        added = refine(dec, sampler, scored, info.duration, scanner.policy, score, scanner.batch_size, stage)
    finally:
        c.close()
    assert added == len(scored) - len(main)
    return scored[len(main) :]


def test_refinement_speculates_up_to_the_next_main_pass_frame(
    make_clip: Callable[..., Path], scanners: tuple[Scanner, Scanner]
) -> None:
    """After a hit, the grid up to the main pass's next frame is scored in one round, also past
    the first miss (a frame-by-frame walk stops there), and never beyond that frame; before
    the hit only the nearest grid frame. The main pass is given: frames at 0, 2, 4, 6 (a hit)
    and 8 s, on a clip flagged 6-6.7 s (so 6.5 s is a hit, 7.0 and 7.5 s are not)."""
    clip = _clip(make_clip, default_shots(SECONDS, (6.0, 6.7)), ULTRAFAST)
    new = {round(fs.time, 3): fs for fs in _refine_after(scanners[1], clip, (0.0, 2.0, 4.0, 6.0, 8.0), hit=6.0)}
    assert sorted(new) == [5.5, 6.5, 7.0, 7.5]
    assert [t for t, fs in sorted(new.items()) if fs.scores.get("sexual", 0.0) >= 0.4] == [6.5]


def test_refinement_speculation_is_bounded_when_the_header_claims_more(
    make_clip: Callable[..., Path], scanners: tuple[Scanner, Scanner]
) -> None:
    """A hit at the main pass's last frame: speculation stops 1 / floor_fps (2 s) after each hit
    (6.0 s, and 6.5 s, which is a hit too: up to 8.0 s), not at the duration the header claims
    (here 1000 s for a 10 s clip; unbounded, it queued ~2000 instants and scored every grid
    frame to the real end)."""
    clip = _clip(make_clip, default_shots(SECONDS, (6.0, 6.7)), ULTRAFAST)
    new = _refine_after(scanners[1], clip, (0.0, 2.0, 4.0, 6.0), hit=6.0, duration=1000.0)
    assert sorted(round(fs.time, 3) for fs in new) == [5.5, 6.5, 7.0, 7.5, 8.0]
