"""Policy files: every mistake is refused with a message that names the file and the category."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from framescan.errors import ConfigError
from framescan.policy import load_policy


@pytest.mark.parametrize(
    "text,says",
    [
        ('{"max_gap": 1, "thresholds": {}}', "unknown keys ['thresholds']"),  # a misspelt 'categories'
        ('{"categories": {"sexual": {"review": 0.7, "block": 0.5}}}', "category 'sexual': thresholds must satisfy"),
        ('{"categories": {"hate": {"block": 1.5}}}', "category 'hate': thresholds must satisfy"),
        ('{"categories": {"sexual": {"min_block_frames": 0}}}', "category 'sexual': min_block_frames must be >= 1"),
        ('{"categories": {"sexual": {"min_block_frames": 1.5}}}', "min_block_frames must be a whole number"),
        ('{"categories": {"sexual": {"review": "high"}}}', "category 'sexual': review must be a number"),
        ('{"categories": {"sexual": {"review": true}}}', "review must be a number"),
        ('{"categories": {"sexual": 0.5}}', "category 'sexual' must be an object"),
        ('{"categories": {"sexual": {"revue": 0.1}}}', "unknown fields for 'sexual': ['revue']"),
        ('{"categories": {"cats": {}}}', "unknown category 'cats'"),
        ('{"max_gap": "1s"}', "max_gap must be a number"),
        ('{"max_gap": -1}', "max_gap must be >= 0"),
    ],
)
def test_bad_policy_file_names_file_and_category(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "strict.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    message = info.value.message
    assert message.startswith(f"{path}: ") and says in message, message
    assert "CategoryRule(" not in message and "\n" not in message


def test_review_above_block_gives_both_values(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"categories": {"violence": {"review": 0.7, "block": 0.5}}}')
    with pytest.raises(ConfigError, match=re.escape("got review 0.7 and block 0.5")):
        load_policy(path)


def test_a_complete_policy_file_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "strict.json"
    path.write_text(
        '{"name": "strict", "max_gap": 2, "categories": {"sexual": {"review": 0.3, "block": 0.5, "min_block_frames": 1}}}'
    )
    p = load_policy(path)
    assert (p.name, p.max_gap, p.rule("sexual").block, p.rule("sexual").min_block_frames) == ("strict", 2.0, 0.5, 1)
