"""Known-content stage: PDQ-hash sampled frames in the scan's own decode pass and match them
against the configured hash banks (``framescan.banks``).

Frames are hashed from their decoded Y plane as stored (before the display rotation), the
same way ``framescan hash`` hashes bank items, so a re-upload matches its original. Matching is
by time coverage (``framescan.vpdq``): an item's *query share* is the part of the clip's
usable (quality >= 50) hashed duration that the item covers, whatever the two sampling rates.
A *video match* is a query share >= 80%; items below that are reported too, as frame matches.
A video match in a bank whose action is ``block`` blocks the clip, one in a ``review`` bank (or
frame matches in any bank) sends it to review.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .decide import match_decision

if TYPE_CHECKING:  # frames imports NumPy: the command line's parent process reads reports only
    from .frames import YuvFrame

log = logging.getLogger(__name__)

#: A bank's name in its category's ``signals``: ``bank:NAME``.
BANK_SIGNAL_PREFIX = "bank:"
#: Frame matches listed per matched item in the report (the closest first).
FRAMES_PER_ITEM = 50
#: Matched spans written out in a one-line description (the report lists them all).
SEGMENTS_DESCRIBED = 4
#: The match fields a category result repeats (``categories.<c>.known_content``).
CATEGORY_FIELDS = ("bank", "item", "kind", "action", "decision", "video_match", "query_match_percent", "segments")


def describe(match: dict[str, Any]) -> str:
    """One line on a match (a report's ``known_content.matches`` entry or a category's copy):
    ``bank 'b' item 'i' 100% of the clip, 0.0-15.0 s``."""
    spans = [f"{s['start']:.1f}-{s['end']:.1f} s" for s in match["segments"]]
    if len(spans) > SEGMENTS_DESCRIBED:
        spans = [*spans[:SEGMENTS_DESCRIBED], f"+{len(spans) - SEGMENTS_DESCRIBED} more"]
    kind = " (image)" if match["kind"] == "image" else ""
    text = f"bank {match['bank']!r} item {match['item']!r}{kind} {match['query_match_percent']:.0f}% of the clip"
    text += f", {', '.join(spans)}" if spans else ""
    if not match["video_match"]:
        from .vpdq import QUERY_MATCH_THRESHOLD_PERCENT

        text += f" (frame matches only: a video match covers {QUERY_MATCH_THRESHOLD_PERCENT:.0f}%)"
    return text


@dataclass
class KnownContentResult:
    hashed_frames: int
    bank_hashes: int
    matches: list[dict[str, Any]]
    seconds: float

    def for_category(self, category: str) -> list[dict[str, Any]]:
        """The matches that decide ``category``, with the fields a category result repeats."""
        return [{k: m[k] for k in CATEGORY_FIELDS} for m in self.matches if m["category"] == category]

    def reasons(self) -> list[str]:
        return [
            f"{m['category']}: known content: {describe(m)}; closest {m['min_distance']} bits; "
            f"bank action {m['action']} -> {m['decision']}"
            for m in self.matches
        ]

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
        """Load the bank database ``banks`` (default: ``framescan.banks.default_db_path()``).

        None when the default database does not exist or the database holds no usable hash
        (matching is then off, and the report says ``known_content: null``); a database named
        by ``banks`` that does not exist is a ``ConfigError`` (``banks.DatabaseNotFound``).
        """
        from .banks import default_db_path, open_matcher

        matcher = open_matcher(banks)
        return cls(matcher, str(banks if banks is not None else default_db_path())) if matcher is not None else None

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
            video_match = m.is_match()
            matches.append(
                {
                    "bank": m.bank,
                    "category": m.category,
                    "action": m.action,
                    "item": m.item,
                    "kind": m.kind,
                    "video_match": video_match,
                    "decision": match_decision(m.action, video_match),
                    "query_match_percent": round(m.query_match_percent, 1),
                    "matched_seconds": round(m.query_coverage.seconds, 3),
                    "query_seconds": round(m.query_coverage.total_seconds, 3),
                    "segments": [{"start": round(a, 3), "end": round(b, 3)} for a, b in m.query_coverage.segments],
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
