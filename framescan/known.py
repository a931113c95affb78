"""Known-content stage: PDQ-hash sampled frames in the scan's own decode pass and match them
against the configured hash banks (``framescan.banks``).

Frames are hashed from their decoded Y plane as stored (before the display rotation), the
same way ``framescan hash`` hashes bank items, so a re-upload matches its original. A *video
match* follows vPDQ's rule (share of the clip's usable frames that match an item >= 80%);
single-frame matches below that are reported too. A video match in a bank whose action is
``block`` blocks the clip, one in a ``review`` bank (or frame-only matches in any bank) sends it
to review.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .frames import YuvFrame

log = logging.getLogger(__name__)

#: Frame matches listed per matched item in the report (the closest first).
FRAMES_PER_ITEM = 50


@dataclass
class KnownContentResult:
    hashed_frames: int
    bank_hashes: int
    matches: list[dict[str, Any]]
    seconds: float

    def decision_for(self, item: dict[str, Any]) -> str:
        if item["video_match"]:
            return "block" if item["action"] == "block" else "review"
        return "review"

    def to_dict(self) -> dict[str, Any]:
        return {
            "hashed_frames": self.hashed_frames,
            "bank_hashes": self.bank_hashes,
            "matches": self.matches,
        }


class KnownContent:
    """Hashes frames of one clip at a time and matches them against a loaded ``BankMatcher``."""

    def __init__(self, matcher: Any, source: str) -> None:
        self.matcher = matcher
        self.source = source
        self._features: list[Any] = []
        self.seconds = 0.0

    @classmethod
    def open(cls, banks: str | os.PathLike | None) -> KnownContent | None:
        """Load the bank database (default location if ``banks`` is None); None when there is
        no database or it has no usable hash (matching is then off, and the report says so)."""
        from .banks import default_db_path, open_matcher

        path = Path(banks) if banks is not None else default_db_path()
        matcher = open_matcher(path)
        return cls(matcher, str(path)) if matcher is not None else None

    @property
    def categories(self) -> dict[str, list[str]]:
        """Which categories the loaded banks feed: {category: [bank names]}."""
        out: dict[str, list[str]] = {}
        for item in self.matcher.items:
            out.setdefault(item.bank.category, [])
            if item.bank.name not in out[item.bank.category]:
                out[item.bank.category].append(item.bank.name)
        return out

    def reset(self) -> None:
        self._features = []
        self.seconds = 0.0

    def add(self, frame: YuvFrame) -> None:
        from .vpdq import hash_luma

        t0 = time.perf_counter()
        rng = "full" if frame.color.full_range else "limited"
        self._features.append(hash_luma(frame.index, frame.time, frame.y, luma_range=rng))
        self.seconds += time.perf_counter() - t0

    def result(self) -> KnownContentResult:
        from .vpdq import VideoHash

        t0 = time.perf_counter()
        vh = VideoHash.from_features(self._features)
        matches = []
        for m in self.matcher.match_video(vh):
            frames = sorted(m.frames, key=lambda f: (f.distance, f.query_timestamp))[:FRAMES_PER_ITEM]
            matches.append(
                {
                    "bank": m.bank,
                    "category": m.category,
                    "action": m.action,
                    "item": m.item,
                    "kind": m.kind,
                    "video_match": bool(m.is_match()),
                    "query_match_percent": round(m.query_match_percent, 1),
                    "item_match_percent": round(m.item_match_percent, 1),
                    "min_distance": int(m.min_distance),
                    "frames": [
                        {
                            "query_time": round(f.query_timestamp, 3),
                            "item_time": round(f.item_timestamp, 3),
                            "distance": int(f.distance),
                        }
                        for f in sorted(frames, key=lambda f: f.query_timestamp)
                    ],
                }
            )
        self.seconds += time.perf_counter() - t0
        return KnownContentResult(len(self._features), len(self.matcher.hashes), matches, self.seconds)
