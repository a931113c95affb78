"""``framescan sample OUT``: write a sample clip to try the scanner on (``DESCRIPTION`` says what it holds)."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import Any

NAME = "sample"
DESCRIPTION = """\
Write a sample clip to try the scanner on: ordinary photographs on a moving background,
15 s of 720x1280 H.264 by default. With --flagged START END it also shows scikit-image's
colorwheel image from START to END seconds; NudeNet 320n flags that image (as
BUTTOCKS_EXPOSED), so it is a harmless stand-in for flagged content.
Needs scikit-image (installed with the dev extra).

examples:
  framescan sample clip.mp4 --flagged 6 8      # then: framescan scan clip.mp4
  framescan sample small.mkv --seconds 4 --size 360x640 --fps 15 --codec libx265
"""
#: x264's and x265's presets, fastest first.
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="write a sample clip to scan", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("out", metavar="OUT", help="output file; its extension picks the container (.mp4, .mkv, .webm ...)")
    p.add_argument(
        "--flagged",
        nargs=2,
        type=float,
        metavar=("START", "END"),
        help="show the flagged image from START to END seconds, inside the clip (default: never, a clean clip)",
    )
    p.add_argument("--seconds", type=float, default=15.0, help="length of the clip in seconds (default 15)")
    p.add_argument("--size", default="720x1280", help="WIDTHxHEIGHT, both even (default 720x1280, portrait)")
    p.add_argument("--fps", type=int, default=30, help="frames per second (default 30)")
    p.add_argument(
        "--codec",
        default="libx264",
        help="FFmpeg video encoder: libx264, libx265, libvpx-vp9, mjpeg, ... (default libx264)",
    )
    p.add_argument(
        "--preset",
        default=None,
        choices=PRESETS,
        metavar="PRESET",
        help="libx264/libx265 preset, ultrafast to placebo (default ultrafast: quick to write and to decode; medium "
        "is the encoders' default, closer to uploaded clips: B-frames, keyframes at cuts, costlier to decode)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    import av

    from ..errors import ConfigError
    from ..synth import check_flagged, frame_times, write_clip
    from .main import UsageError
    from .outpath import check_output

    try:
        w, h = (int(x) for x in args.size.lower().split("x"))
    except ValueError as ex:
        raise UsageError(f"--size must be WIDTHxHEIGHT, got {args.size!r}") from ex
    if w < 2 or h < 2 or w % 2 or h % 2:
        raise UsageError(f"--size must be even and at least 2x2 (4:2:0 video), got {args.size!r}")
    if not args.fps > 0 or not args.seconds > 0:
        raise UsageError(f"--fps and --seconds must be > 0, got {args.fps} and {args.seconds:g}")
    try:
        if av.codec.Codec(args.codec, "w").type != "video":
            raise UsageError(f"--codec {args.codec} is not a video encoder")
    except av.codec.codec.UnknownCodecError as ex:
        raise UsageError(f"--codec {args.codec}: FFmpeg has no such encoder") from ex
    x26x = args.codec in ("libx264", "libx265")
    if args.preset is not None and not x26x:
        raise UsageError(f"--preset applies to libx264 and libx265, not to --codec {args.codec}")
    preset = args.preset or "ultrafast"
    check_output(args.out, "OUT")
    out = Path(args.out)
    flagged = tuple(args.flagged) if args.flagged else None
    if flagged:
        try:
            check_flagged(flagged, args.seconds, frame_times(args.seconds, args.fps))
        except ValueError as ex:  # a usage error: the clip would hold no flagged content where asked
            raise UsageError(f"--flagged {flagged[0]:g} {flagged[1]:g}: {ex}") from ex
    pix_fmt = "yuvj420p" if args.codec == "mjpeg" else "yuv420p"  # FFmpeg's MJPEG takes full-range YUV only
    # Written under a temporary name (same extension: it picks the container) and renamed when
    # complete, so a failure leaves neither a partial clip nor a damaged file of that name.
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp{out.suffix}")
    try:
        write_clip(tmp, width=w, height=h, seconds=args.seconds, fps=args.fps, codec=args.codec,
                   flagged=flagged, preset=preset, pix_fmt=pix_fmt)  # fmt: skip
        os.replace(tmp, out)
    except (av.FFmpegError, ValueError) as ex:  # a container or options the encoder refuses
        raise UsageError(f"cannot write {out} with --codec {args.codec}: {ex}") from ex
    except OSError as ex:
        raise ConfigError(f"cannot write {out}: {ex.strerror or ex}") from ex
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    print(
        f"wrote {out} ({w}x{h}, {args.seconds:g} s, {args.codec}"
        + (f" {preset}" if x26x else "")
        + (f", flagged {flagged[0]:g}-{flagged[1]:g} s)" if flagged else ")")
    )
    return 0
