"""``framescan bench``: time framescan against the naive alternative on this device (``DESCRIPTION``
says what it runs; framescan.bench does the work)."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

NAME = "bench"
DESCRIPTION = """\
Time framescan against the naive alternative on this device.

Generates (or takes, with --clips) 30 fps H.264 clips of the common portrait shapes, then
runs framescan (Scanner.scan) and the naive alternative (cv2.VideoCapture reading every
frame + nudenet.NudeDetector().detect on each sampled frame) on the same clips with the same
sampling, interleaved, each run in a fresh process. Prints a table of medians [min-max]:
per-stage times, total and per-frame time, frames/s, p50/p95 per-frame latency, CPU
efficiency, cold start, peak RSS, the naive/framescan ratios, whether both find the same
frames with a sexual label, and the project's speed and memory targets, each MET or MISS
(not judged on a --quick smoke run).

Without --sizes/--modes the standard matrix runs: 480x854, 720x1280 and 1080x1920 at exact
1 fps; 720x1280 at every frame (fp32 and the validated int8 model), with adaptive sampling
(also on a clip without flagged content: adaptive+clean) and with early exit (fps2+early: a
clip flagged from 2 s, against the full scan of it), all with the default model (NudeNet
320n on a canvas trimmed to the frame); then the 720x1280 modes again on NudeNet's square
canvas (+square: nudenet-320n, nudenet-320n-int8). With --sizes or --modes: sizes x modes.

examples:
  framescan bench --quick                                  # smoke run, about a minute
  framescan bench --json bench.json --chart bench.png      # the standard matrix
  framescan bench --sizes 720x1280 --modes fps1 --repeats 5
  framescan bench --clips a.mp4 b.mp4 --modes fps1
  framescan bench --upload --modes fps1,fps2               # clips encoded as uploads are
  framescan bench --profile mobile --upload --modes fps1,fps2
  framescan bench --compare laptop.json phone.json
"""
EXIT_OK = 0
EXIT_FAILED_RUNS = 3  # some runs failed (the report says which); same code as an unscannable clip

log = logging.getLogger(__name__)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="benchmark framescan against the naive alternative",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--sizes",
        metavar="WxH,...",
        help="clip sizes to generate, e.g. 480x854,720x1280,1080x1920 (default: the standard matrix; "
        "480x854,720x1280,1080x1920 with --modes; 240x426 with --quick)",
    )
    p.add_argument("--seconds", type=float, help="length of generated clips in seconds (default 15; 2 with --quick)")
    p.add_argument(
        "--modes",
        metavar="MODE,...",
        help="sampling modes: fpsN, everyN, all, adaptive; suffixes +int8 (int8 model), +square (NudeNet's "
        "square canvas), +early (early exit), +clean (a clip without flagged content) "
        "(e.g. fps1,all,all+int8,all+int8+square,adaptive,adaptive+clean,fps2+early; default: the standard "
        "matrix; fps1,all with --sizes or --quick)",
    )
    p.add_argument(
        "--clips", nargs="+", metavar="PATH", help="benchmark these clips (default: generated ones; modes fps1,all)"
    )
    p.add_argument(
        "--upload",
        action="store_true",
        help="benchmark the upload-like clips (x264/x265 medium and veryfast, keyframes 2-8 s apart, B-frames; "
        "HEVC, VP9; generated once) instead of generated sizes (default modes: fps1)",
    )
    p.add_argument(
        "--profile",
        choices=("mobile",),
        help="a device class: mobile = one core (taskset), one inference and one decoder thread, the int8 model "
        "(the naive loop restricted to the same core and threads) (default: none, the whole machine)",
    )
    p.add_argument(
        "--clip-dir",
        metavar="DIR",
        help="where generated clips are kept and reused (default $XDG_CACHE_HOME/framescan/bench-clips, "
        "else ~/.cache/framescan/bench-clips)",
    )
    p.add_argument("--repeats", type=int, help="runs per implementation and configuration (default 3; 1 with --quick)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 240x426, 2 s at 10 fps, fps1 and all, one repeat, no cold start with an empty Numba "
        "cache, no target verdicts (default: off)",
    )
    p.add_argument("--threads", type=int, help="framescan's inference threads (default: available cores)")
    p.add_argument("--decode-threads", type=int, help="framescan's decoder threads (default 2)")
    p.add_argument(
        "--batch-size",
        type=int,
        help="framescan's batch size (default 8 when every frame or every 2nd is scored, 4 otherwise, "
        "2 with early exit)",
    )
    p.add_argument(
        "--framescan-from",
        metavar="DIR",
        help="benchmark the framescan package in DIR (a checkout or git archive of another commit) (default: this one)",
    )
    p.add_argument(
        "--no-naive", dest="naive", action="store_false", help="time framescan only (default: framescan and naive)"
    )
    p.add_argument(
        "--no-cold-uncached",
        dest="cold_uncached",
        action="store_false",
        help="skip the cold start with empty Numba and framescan caches (the first run on a new device; default: run it, "
        "except with --quick)",
    )
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per run (default 1800)")
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="on a shared machine: before each run wait up to SECONDS for other processes to use < 0.3 cores "
        "(from /proc/stat); speed targets are judged on quiet pairs when there are any (default 0: no waiting)",
    )
    p.add_argument(
        "--json",
        metavar="OUT",
        help="also write the full report as JSON; '-': JSON on stdout instead of the table (default: the table only)",
    )
    p.add_argument("--chart", metavar="OUT.png", help="write a stage-breakdown chart (needs matplotlib; default: none)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr (default: progress)")
    p.add_argument(
        "--compare",
        nargs=2,
        metavar=("A.json", "B.json"),
        help="print two saved reports side by side (e.g. two devices) and exit (default: run a benchmark)",
    )
    return p


def _options(args: argparse.Namespace) -> Any:
    from ..bench import BenchOptions, command_line, parse_list

    return BenchOptions(
        sizes=parse_list(args.sizes) or None,
        modes=parse_list(args.modes) or None,
        seconds=args.seconds,
        repeats=args.repeats,
        clips=args.clips,
        clip_dir=args.clip_dir,
        quick=args.quick,
        threads=args.threads,
        decode_threads=args.decode_threads,
        batch_size=args.batch_size,
        naive=args.naive,
        cold_uncached=args.cold_uncached,
        timeout=args.timeout,
        wait_idle=args.wait_idle,
        framescan_from=args.framescan_from,
        upload=args.upload,
        profile=args.profile,
        command=getattr(args, "command_line", None) or command_line(),
    )


def run(args: argparse.Namespace) -> int:
    from .. import bench
    from ..errors import ConfigError

    try:
        if args.compare:
            a, b = (bench.load_report(p) for p in args.compare)
            print(bench.render_compare(a, b, (Path(args.compare[0]).name, Path(args.compare[1]).name)))
            return EXIT_OK
        opts = _options(args)

        def notify(msg: str) -> None:
            if not args.quiet:
                print(f"bench: {msg}", file=sys.stderr, flush=True)

        report = bench.run_bench(opts, notify)
    except bench.BenchError as ex:
        raise ConfigError(str(ex)) from ex
    if args.json == "-":
        sys.stdout.write(bench.to_json(report))
    else:
        print(bench.render_table(report))
        if args.json:
            Path(args.json).write_text(bench.to_json(report))
            print(f"wrote {args.json}")
    if args.chart:
        if bench.write_chart(report, args.chart):
            if args.json != "-":
                print(f"wrote {args.chart}")
        else:
            print("chart skipped: matplotlib is not installed (pip install matplotlib)", file=sys.stderr)
    failed = sum(1 for r in report["runs"] if not r.get("ok"))
    return EXIT_FAILED_RUNS if failed else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run ``bench`` on its own (``python -m framescan.cli.bench``), until it is listed in
    ``framescan.cli.main.COMMANDS``."""
    from ..errors import FramescanError

    parser = argparse.ArgumentParser(prog="framescan")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != NAME:
        argv = [NAME, *argv]
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["framescan", *argv])
    logging.basicConfig(level=logging.WARNING, format="framescan: %(levelname)s: %(message)s")
    try:
        return run(args)
    except FramescanError as ex:
        print(f"framescan: error [{ex.code.value}]: {ex.message}", file=sys.stderr)
        return 4


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
