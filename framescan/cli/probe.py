"""``framescan probe PATH``: what the container header says about a clip (no scanning)."""

from __future__ import annotations

import argparse
import json
from typing import Any

NAME = "probe"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="show a clip's stream information",
        description="Print what a clip's container header says (streams, codec, size, rotation, fps, duration, "
        "frame count, audio) as JSON, without decoding or scanning it.",
    )
    p.add_argument("path", metavar="PATH", help="video file")
    return p


def run(args: argparse.Namespace) -> int:
    from ..probe import probe

    print(json.dumps(probe(args.path).to_dict(), indent=2))
    return 0
