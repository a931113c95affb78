"""``framescan hash VIDEO``: a video's vPDQ hashes, in Meta's text form (or JSON)."""

from __future__ import annotations

import argparse
import logging
import math
import sys

from framescan import vpdq

from .outpath import check_output

NAME = "hash"

log = logging.getLogger(__name__)


def seconds_per_hash(text: str) -> float:
    """argparse type of --seconds-per-hash: a finite number >= 0 (a usage error otherwise)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0 (0 = every frame), got {text!r}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME,
        help="compute a video's vPDQ hashes (PDQ per sampled frame)",
        description=(
            "Hash a video's frames with PDQ the way Meta's vPDQ does and write one line per "
            "hashed frame: frame_number,quality,hex,timestamp. Output ending in .json gets "
            "ThreatExchange's JSON list of 'hex,quality,timestamp' instead."
        ),
    )
    parser.add_argument("video", help="video file to hash")
    parser.add_argument("-o", "--output", help="write here instead of standard output (.json for JSON)")
    parser.add_argument(
        "--seconds-per-hash",
        type=seconds_per_hash,
        default=vpdq.DEFAULT_SECONDS_PER_HASH,
        metavar="S",
        help=f"hash one frame every S seconds; 0 hashes every frame (default {vpdq.DEFAULT_SECONDS_PER_HASH:g})",
    )
    parser.add_argument("--json", action="store_true", help="JSON list form on standard output")
    return parser


def run(args: argparse.Namespace) -> int:
    check_output(args.output, "-o")
    hashes = vpdq.hash_video(args.video, seconds_per_hash=args.seconds_per_hash)
    if args.output:
        vpdq.write_hashes(hashes, args.output)
        log.info("wrote %d frame hashes to %s", len(hashes), args.output)
    elif args.json:
        sys.stdout.write(vpdq.to_json(hashes) + "\n")
    else:
        sys.stdout.write(vpdq.format_text(hashes))
    return 0
