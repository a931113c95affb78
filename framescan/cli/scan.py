"""``framescan scan PATH...``: scan clips, print verdicts, optionally write JSON reports."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError, FramescanError, InputError
from ..known import BANK_SIGNAL_PREFIX
from ..known import describe as describe_match
from ..limits import DEFAULT_LIMITS, Limits
from ..report import Report
from .main import EXIT_ALLOW, EXIT_BLOCK, EXIT_ERROR, EXIT_REVIEW
from .progress import ProgressBar

NAME = "scan"
_SEVERITY = {"allow": (0, EXIT_ALLOW), "review": (1, EXIT_REVIEW), "error": (2, EXIT_ERROR), "block": (3, EXIT_BLOCK)}


def add_sampling_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampling (one of; default --fps 2)").add_mutually_exclusive_group()
    g.add_argument("--fps", type=float, help="score N frames per second of video (timestamps from PTS)")
    g.add_argument("--every", type=int, metavar="N", help="score every Nth decoded frame")
    g.add_argument("--keyframes", action="store_true", help="decode and score keyframes only")
    g.add_argument("--all", dest="all_frames", action="store_true", help="score every frame")
    g.add_argument(
        "--adaptive",
        action="store_true",
        help="keyframes + scene changes + a 0.5 fps floor, near-duplicates skipped, hits refined to 2 fps",
    )


def add_signal_options(p: argparse.ArgumentParser) -> None:
    """What the scan looks for: models and on-screen text (scan, archive and serve)."""
    p.add_argument(
        "--model",
        action="append",
        metavar="NAME|MANIFEST",
        help="model (repeatable; default nudenet-320n-trim: NudeNet 320n on a trimmed canvas; "
        "nudenet-320n: on NudeNet's square canvas)",
    )
    p.add_argument(
        "--all-signals",
        action="store_true",
        help="run every shipped image model: nudenet-320n-trim and nsfwjs-mobilenetv2 (sexual), nanodet-coco "
        "(violence: knife, scissors, baseball bat - no gun class; people counted as context)",
    )
    p.add_argument(
        "--ocr",
        action="store_true",
        help="read on-screen text and match it against the hate / bullying / extremism lexicons "
        '(needs pip install "framescan[ocr]")',
    )
    p.add_argument(
        "--lexicon",
        action="append",
        metavar="PATH",
        help="extra lexicon file or directory for --ocr (repeatable; see docs/ocr.md)",
    )


def add_scanner_options(p: argparse.ArgumentParser) -> None:
    add_sampling_options(p)
    add_signal_options(p)
    p.add_argument(
        "--policy", metavar="FILE", help="policy JSON with per-category thresholds (default policy if absent)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="frames per inference batch (default 8 with --all or --every 1-2, 4 otherwise, 2 with --early-exit)",
    )
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: available cores)")
    p.add_argument("--early-exit", action="store_true", help="stop a clip as soon as its decision is block")
    p.add_argument(
        "--banks",
        metavar="DB",
        help="hash-bank database for known-content matching; it must exist (default: $FRAMESCAN_HOME/banks.sqlite, "
        "else ~/.framescan/banks.sqlite, when it exists)",
    )
    p.add_argument("--no-banks", action="store_true", help="do not match against hash banks")
    p.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a resource limit (max_file_bytes, max_pixels, max_side, max_duration, max_frames, "
        "max_streams, max_seconds_per_clip); repeatable",
    )
    p.add_argument("--timeout", type=float, help="wall-clock seconds per clip (same as --limit max_seconds_per_clip=S)")


def parse_limits(args: argparse.Namespace) -> Limits:
    changes: dict[str, Any] = {}
    for item in args.limit:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--limit takes NAME=VALUE, got {item!r}")
        try:
            changes[key.strip()] = float(value) if "." in value or "e" in value.lower() else int(value)
        except ValueError as ex:
            raise ConfigError(f"--limit {key}: {value!r} is not a number") from ex
    if args.timeout is not None:
        changes["max_seconds_per_clip"] = args.timeout
    return DEFAULT_LIMITS.updated(**changes)


def models_from_args(args: argparse.Namespace) -> list[str] | None:
    """The models named by --model and --all-signals (scan, archive and serve)."""
    if not args.all_signals:
        return args.model
    from ..models import ALL_SIGNAL_MODELS

    return list(dict.fromkeys([*ALL_SIGNAL_MODELS, *(args.model or [])]))


def scanner_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "models": models_from_args(args),
        "policy": args.policy,
        "fps": args.fps,
        "every": args.every,
        "keyframes": args.keyframes,
        "all_frames": args.all_frames,
        "adaptive": args.adaptive,
        "ocr": args.ocr,
        "lexicons": args.lexicon,
        "threads": args.threads,
        "early_exit": args.early_exit,
        "banks": False if args.no_banks else args.banks,
    }
    if args.batch_size is not None:
        kw["batch_size"] = args.batch_size
    return kw


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="scan video clips", description=__doc__)
    p.add_argument("paths", nargs="+", metavar="PATH", help="video files to scan")
    add_scanner_options(p)
    p.add_argument("--json", metavar="OUT", help="write the full report(s) as JSON to OUT ('-' for stdout)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument(
        "--no-isolate",
        dest="isolate",
        action="store_false",
        help="decode in this process (default: in a supervised worker process that a crash or hang cannot take down)",
    )
    return p


def _fmt_time(t: float | None) -> str:
    return "-" if t is None else f"{t:.2f}"


def render(report: Report) -> str:
    """The human-readable verdict of one report."""
    d = report.to_dict()
    if d["status"] == "error":
        err = d["error"]
        return f"{d['source']}: ERROR [{err['code']}] {err['message']}"
    cov = d["coverage"]
    claimed_f = cov["claimed_frames"] if cov["claimed_frames"] is not None else "?"
    claimed_s = f"{cov['claimed_seconds']:.1f}" if cov["claimed_seconds"] is not None else "?"
    state = d["status"]
    if cov["stopped_early"]:  # not "complete": the rest of the clip was not read, on purpose
        stopped = f"stopped early at {cov['stopped_at']:.2f} s, {cov['stopped_reason']}"
        state = f"partial, {stopped}" if state == "partial" else stopped
    lines = [
        f"{d['source']}: {d['decision'].upper()}",
        f"  {state}: read {cov['read_packets']}/{claimed_f} frames ({cov['decoded_frames']} decoded), "
        f"{cov['decoded_seconds']:.1f}/{claimed_s} s; scored {cov['scored_frames']} frames "
        f"({_describe_sampling(d['sampling'])})",
    ]
    for cat, r in d["categories"].items():
        if not r["signals"]:
            lines.append(f"  {cat:<10} -      no signal configured")
            continue
        segs = ", ".join(
            f"{s['start']:.2f}-{s['end']:.2f} s (peak {s['peak']:.2f} at {s['peak_time']:.2f} s"
            + (f", {d['evidence'][s['evidence'][0]]['label']}" if s["evidence"] else "")
            + ")"
            for s in r["segments"]
        )
        # a category fed by hash banks only has no model score: its decision is the matches'
        scored = any(not s.startswith(BANK_SIGNAL_PREFIX) for s in r["signals"])
        score = f"{r['score']:.2f}" if scored else "-"
        known = "; ".join(describe_match(m) for m in r.get("known_content", []))
        lines.append(
            f"  {cat:<10} {score:<4}  {r['decision']:<6}"
            + (f" segments: {segs}" if segs else "")
            + (f"{';' if segs else ''} known content: {known}" if known else "")
        )
    for w in d["warnings"]:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


def _describe_sampling(s: dict[str, Any]) -> str:
    if s.get("mode") == "fps":
        return f"{s['fps']:g} fps"
    if s.get("mode") == "every":
        return f"every {s['every']} frames"
    return str(s.get("mode"))


def outcome(report: Report) -> str:
    return "error" if report.status == "error" else str(report.decision)


def exit_code(outcomes: list[str]) -> int:
    worst = max(outcomes, key=lambda o: _SEVERITY[o][0], default="allow")
    return _SEVERITY[worst][1]


def write_json(reports: list[Report], out: str) -> None:
    data = reports[0].to_dict() if len(reports) == 1 else [r.to_dict() for r in reports]
    text = json.dumps(data, indent=2) + "\n"
    if out == "-":
        sys.stdout.write(text)
    else:
        Path(out).write_text(text)


def run(args: argparse.Namespace) -> int:
    from .._jit import stale_kernels
    from ..isolate import WorkerConfig, WorkerPool
    from ..pipeline import Scanner

    limits = parse_limits(args)
    kwargs = scanner_kwargs(args)
    if not args.quiet and sys.stderr.isatty() and stale_kernels("framescan.preprocess"):  # every scan runs it
        print("compiling kernels (first run only)...", file=sys.stderr, flush=True)
    # Model/config errors end the run before any clip (exit 4).
    engine: Any = WorkerPool(1, WorkerConfig(scanner=kwargs, limits=limits)) if args.isolate else None
    scanner = None if args.isolate else Scanner(limits=limits, **kwargs)
    reports: list[Report] = []
    try:
        for path in args.paths:
            bar = ProgressBar(Path(path).name, enabled=None if not args.quiet else False)
            try:
                if engine is not None:
                    report = engine.scan(path, progress=bar)
                else:
                    report = scanner.scan(path, progress=bar)  # type: ignore[union-attr]
            except (InputError, FramescanError) as ex:
                report = Report.from_error(path, ex)
            finally:
                bar.close()
            reports.append(report)
            if not args.quiet and args.json != "-":
                print(render(report), flush=True)
            elif report.status == "error" and not args.quiet:
                print(render(report), file=sys.stderr, flush=True)
    finally:
        if engine is not None:
            engine.close()
    if args.json:
        write_json(reports, args.json)
    return exit_code([outcome(r) for r in reports])
