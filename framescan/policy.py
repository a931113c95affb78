"""Policy: per-category thresholds -> allow / review / block.

A policy file is JSON::

    {"name": "strict",
     "max_gap": 1.0,
     "categories": {"sexual": {"review": 0.3, "block": 0.5, "min_block_frames": 2}}}

Categories not listed keep the default rule. The default policy (``DEFAULT_POLICY``):
every category reviews at 0.4 and blocks at 0.6 when at least 2 sampled frames reach the
block threshold (a single-frame flash of a detector's false positive goes to a human,
not to an automatic block). Decision order: block > review > allow, and a clip that was
not read completely is never a plain ``allow`` (it becomes ``review``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .models import CATEGORIES

DEFAULT_REVIEW = 0.4
DEFAULT_BLOCK = 0.6
DEFAULT_MIN_BLOCK_FRAMES = 2
#: Hits of one category less than this many seconds apart belong to one segment.
DEFAULT_MAX_GAP = 1.0
#: The keys a policy file may have, at the top and per category.
POLICY_KEYS = ("name", "max_gap", "categories")
RULE_KEYS = ("review", "block", "min_block_frames")


@dataclass(frozen=True)
class CategoryRule:
    review: float = DEFAULT_REVIEW
    block: float = DEFAULT_BLOCK
    min_block_frames: int = DEFAULT_MIN_BLOCK_FRAMES

    def __post_init__(self) -> None:
        if not (0.0 <= self.review <= self.block <= 1.0):
            raise ConfigError(
                f"thresholds must satisfy 0 <= review <= block <= 1, got review {self.review:g} and block {self.block:g}"
            )
        if self.min_block_frames < 1:
            raise ConfigError(f"min_block_frames must be >= 1, got {self.min_block_frames}")


@dataclass(frozen=True)
class Policy:
    name: str = "default"
    rules: dict[str, CategoryRule] = field(default_factory=lambda: {c: CategoryRule() for c in CATEGORIES})
    max_gap: float = DEFAULT_MAX_GAP

    def rule(self, category: str) -> CategoryRule:
        return self.rules.get(category, CategoryRule())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "max_gap": self.max_gap,
            "categories": {
                c: {"review": r.review, "block": r.block, "min_block_frames": r.min_block_frames}
                for c, r in self.rules.items()
            },
        }


DEFAULT_POLICY = Policy()


def _number(value: Any, key: str, kind: type[float] | type[int] = float) -> Any:
    """``value`` as a ``kind``; a string, a boolean or a fraction where a count belongs is an error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise ConfigError(f"{key} must be {'a whole number' if kind is int else 'a number'}, got {value!r}")
    return kind(value)


def parse_policy(data: dict[str, Any], where: str = "policy") -> Policy:
    """A policy from its JSON form; every error names ``where`` (the file) and the category."""
    unknown = set(data) - set(POLICY_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)} (known: {', '.join(POLICY_KEYS)})")
    cats = data.get("categories", {})
    if not isinstance(cats, dict):
        raise ConfigError(f"{where}: 'categories' must be an object")
    rules = {c: CategoryRule() for c in CATEGORIES}
    for cat, rule in cats.items():
        if cat not in CATEGORIES:
            raise ConfigError(f"{where}: unknown category {cat!r} (known: {', '.join(CATEGORIES)})")
        if not isinstance(rule, dict):
            raise ConfigError(f"{where}: category {cat!r} must be an object with {', '.join(RULE_KEYS)}")
        unknown = set(rule) - set(RULE_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown fields for {cat!r}: {sorted(unknown)} (known: {', '.join(RULE_KEYS)})")
        base = rules[cat]
        try:
            rules[cat] = CategoryRule(
                review=_number(rule.get("review", base.review), "review"),
                block=_number(rule.get("block", base.block), "block"),
                min_block_frames=_number(rule.get("min_block_frames", base.min_block_frames), "min_block_frames", int),
            )
        except ConfigError as ex:
            raise ConfigError(f"{where}: category {cat!r}: {ex.message}") from ex
    try:
        max_gap = _number(data.get("max_gap", DEFAULT_MAX_GAP), "max_gap")
    except ConfigError as ex:
        raise ConfigError(f"{where}: {ex.message}") from ex
    if not max_gap >= 0:
        raise ConfigError(f"{where}: max_gap must be >= 0, got {max_gap:g}")
    return Policy(name=str(data.get("name", Path(where).stem)), rules=rules, max_gap=max_gap)


def load_policy(path: str | Path) -> Policy:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError as ex:
        raise ConfigError(f"policy file {p} does not exist") from ex
    except (OSError, json.JSONDecodeError) as ex:
        raise ConfigError(f"policy file {p} cannot be read as JSON: {ex}") from ex
    if not isinstance(data, dict):
        raise ConfigError(f"policy file {p}: expected a JSON object")
    return parse_policy(data, str(p))
