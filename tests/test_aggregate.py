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
    agg = run([(0, 0.0), (0.5, 0.7), (1.0, 0.1), (1.5, 0.8), (2.0, 0.0), (5.0, 0.5), (9.0, 0.0)])
    segs = agg.results["sexual"].segments
    assert [(s.start, s.end, s.frames) for s in segs] == [(0.5, 1.5, 2), (5.0, 5.0, 1)]
    assert segs[0].peak == 0.8 and segs[0].peak_time == 1.5
    assert agg.results["sexual"].score == 0.8 and agg.decision() == "block"


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
    d = run([(0, 0.9)]).results["violence"].to_dict()
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
