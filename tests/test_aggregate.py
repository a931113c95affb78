"""Aggregation into segments and the policy's decision."""

from __future__ import annotations

import pytest

from framescan.aggregate import ClipAggregator
from framescan.errors import ConfigError
from framescan.policy import DEFAULT_POLICY, CategoryRule, Policy, parse_policy
from framescan.score import Evidence, FrameScore

SIGNALS = {"sexual": ["m"], "violence": []}


def frame(t: float, score: float, index: int = 0) -> FrameScore:
    fs = FrameScore(index, t)
    if score > 0:
        fs.add(Evidence(t, index, "m", "L", "sexual", score, score, (0, 0, 1, 1)))
    return fs


def run(scores: list[tuple[float, float]], policy: Policy = DEFAULT_POLICY) -> ClipAggregator:
    agg = ClipAggregator(policy, SIGNALS)
    for i, (t, s) in enumerate(scores):
        agg.update(frame(t, s, i))
    return agg


def test_hits_merge_across_small_gaps_and_split_on_large() -> None:
    """A segment ends at the first scored frame after its last hit that does not hit (the
    content was gone by then), not at the last hit."""
    agg = run([(0, 0.0), (0.5, 0.7), (1.0, 0.1), (1.5, 0.8), (2.0, 0.0), (5.0, 0.5), (9.0, 0.0)])
    agg.finish(10.0)
    segs = agg.results["sexual"].segments
    assert [(s.start, s.last_hit, s.end, s.frames) for s in segs] == [(0.5, 1.5, 2.0, 2), (5.0, 5.0, 9.0, 1)]
    assert segs[0].peak == 0.8 and segs[0].peak_time == 1.5
    assert agg.results["sexual"].score == 0.8 and agg.decision() == "block"
    index = {e.key(): i for i, e in enumerate(segs[0].evidence)}
    assert segs[0].to_dict(index)["last_hit"] == 1.5 and segs[0].to_dict(index)["end"] == 2.0


def test_a_segment_still_showing_at_the_last_frame_ends_where_finish_says() -> None:
    """Content 6-8 s at 2 fps: hits 6.0-7.5, ends at 8.0; one still hitting at the last scored
    frame ends at the end given to finish (the end of what was read, or the early exit)."""
    grid = [(k / 2, 0.7 if 6.0 <= k / 2 < 8.0 else 0.0) for k in range(30)]
    agg = run(grid)
    agg.finish(15.0)
    assert [(s.start, s.last_hit, s.end) for s in agg.results["sexual"].segments] == [(6.0, 7.5, 8.0)]
    agg = run(grid[:15])  # stopped at 7.0 s
    agg.finish(7.0)
    assert [(s.start, s.last_hit, s.end) for s in agg.results["sexual"].segments] == [(6.0, 7.0, 7.0)]
    agg = run([(0.0, 0.0), (14.5, 0.7)])
    agg.finish(15.0)
    assert [(s.start, s.last_hit, s.end) for s in agg.results["sexual"].segments] == [(14.5, 14.5, 15.0)]


@pytest.mark.parametrize(
    "scores,decision",
    [
        ([(0, 0.1), (1, 0.2)], "allow"),  # below review
        ([(0, 0.45)], "review"),  # review threshold reached
        ([(0, 0.9)], "review"),  # one frame at block level: not enough frames to block
        ([(0, 0.9), (0.5, 0.65)], "block"),  # two frames at block level
    ],
)
def test_default_policy_decisions(scores: list, decision: str) -> None:
    assert run(scores).decision() == decision


def test_category_without_signal_is_reported_as_such() -> None:
    d = run([(0, 0.9)]).results["violence"].to_dict({})
    assert d["signals"] == [] and d["score"] is None and d["decision"] is None


def test_policy_parsing_and_validation() -> None:
    p = parse_policy(
        {"name": "x", "max_gap": 2, "categories": {"sexual": {"review": 0.2, "block": 0.3, "min_block_frames": 1}}}
    )
    assert p.rule("sexual") == CategoryRule(0.2, 0.3, 1) and p.rule("hate") == CategoryRule()
    assert run([(0, 0.35)], p).decision() == "block"
    for bad in [{"categories": {"cats": {}}}, {"categories": {"sexual": {"review": 2}}}, {"max_gap": -1},
                {"categories": {"sexual": {"revue": 0.1}}}]:  # fmt: skip
        with pytest.raises(ConfigError):
            parse_policy(bad)
