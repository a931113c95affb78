"""``framescan hash VIDEO``: a video's vPDQ hashes, in Meta's text form (or JSON)."""

from __future__ import annotations

import argparse
import logging
import sys

from framescan import vpdq

from .outpath import check_output

NAME = "hash"

log = logging.getLogger(__name__)


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
        type=float,
        default=vpdq.DEFAULT_SECONDS_PER_HASH,
        metavar="S",
        help=f"hash one frame every S seconds; 0 hashes every frame (default {vpdq.DEFAULT_SECONDS_PER_HASH:g})",
    )
    parser.add_argument("--json", action="store_true", help="JSON list form on standard output")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.seconds_per_hash < 0:
        print(f"framescan hash: --seconds-per-hash must be >= 0, got {args.seconds_per_hash}", file=sys.stderr)
        return 2
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
