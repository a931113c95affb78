#!/usr/bin/env python
"""Fuzz framescan's in-process ``Scanner.scan(bytes)`` and ``probe(bytes)`` with mutated clips.

Contract under test: for any input, ``scan`` returns a ``Report`` or raises a
``framescan.errors.FramescanError`` subclass, and so does ``probe``. Anything else is a
*finding*: another exception type (``av.error.*``, ``ValueError``, ``ZeroDivisionError``, ...),
a warning (the test suite turns warnings into errors), an ERROR log record from ``framescan.*``
(the suite fails on those too), or a native crash / hang of the process.

Modes (see fuzz/README.md)::

    python fuzz/fuzz_scan.py -atheris_runs=N [libFuzzer flags] [CORPUS_DIR ...]   # atheris
    python fuzz/fuzz_scan.py --fallback --runs N [--seed S] [--max-seconds T]      # no atheris
    python fuzz/fuzz_scan.py --make-seeds DIR
    python fuzz/fuzz_scan.py --reproduce FILE...
    python fuzz/fuzz_scan.py --minimize FILE [--out OUT]

Only libFuzzer-style flags (``-name=value``) go to atheris; ``--options`` are this script's.
Nothing here imports ``framescan`` at module level, so that atheris can instrument it on import
(and so that the test suite can import this file for its seeds and mutator without atheris).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from framescan.limits import Limits
    from framescan.pipeline import Scanner

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "framescan-fuzz"

#: Largest input the mutators produce (the seeds are at most ~25 KB).
MAX_LEN = 64 * 1024

#: Scanner options for fuzzing: one inference thread (the machine is shared), FFmpeg's decoder
#: threads as in production (frame threading has its own flush and error paths).
SCANNER_OPTIONS: dict[str, Any] = {"threads": 1, "decode_threads": 2}
#: Sampling modes the atheris harness rotates through (picked by a hash of the input, so an
#: input always meets the same one): the default fps=2, keyframes only (the decoder skips
#: non-keyframes: its own code path in FFmpeg) and every 3rd frame.
SAMPLING_MODES: tuple[dict[str, Any], ...] = ({}, {"keyframes": True}, {"every": 3})

#: Limits for fuzzing: tighter than the defaults so a mutated header that claims 8192x8192 or a
#: million frames costs milliseconds, not seconds (the LIMIT_EXCEEDED paths are still exercised).
FUZZ_LIMIT_OVERRIDES: dict[str, float] = {
    "max_pixels": 2048 * 2048,
    "max_side": 4096,
    "max_frames": 600,
    "max_duration": 600.0,
    "max_seconds_per_clip": 30.0,
}

#: Modules atheris must not instrument: Numba compiles kernels from Python bytecode, and
#: instrumented bytecode is not something it can compile.
NO_INSTRUMENT = ("framescan._jit", "framescan.preprocess", "framescan.pdq", "framescan.banks", "framescan.vpdq")


def fuzz_limits() -> Limits:
    from framescan.limits import DEFAULT_LIMITS

    return DEFAULT_LIMITS.updated(**FUZZ_LIMIT_OVERRIDES)


# ----------------------------------------------------------------------------------------------
# seeds

#: Clips written with framescan.synth.write_clip: (file name, write_clip options).
CLIP_SEEDS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("clip_h264.mp4", {"codec": "libx264"}),
    ("clip_h264.mkv", {"codec": "libx264"}),
    ("clip_vp9.webm", {"codec": "libvpx-vp9"}),
    ("clip_mjpeg.avi", {"codec": "mjpeg", "pix_fmt": "yuvj420p"}),
    ("clip_anim.gif", {"codec": "gif", "pix_fmt": "rgb8"}),
    ("clip_h264_rot90_flagged.mp4", {"codec": "libx264", "rotation": 90, "flagged": (0.25, 0.75)}),
)
#: Hostile-corpus generators (tests/corpus/hostile.py) whose small files make good seeds.
CORPUS_GENERATORS = (
    "truncated_faststart",
    "time",
    "cover_art",
    "extra_streams",
    "codecs",
    "size_changes",
    "lying_durations",
    "empty_stream",
    "huge_dimensions",
)
#: The corpus cases used as seeds (each under ~25 KB).
CORPUS_SEEDS = (
    "cut_faststart_after_frame0",
    "rotation_90",
    "vfr_irregular",
    "annexb_raw_h264",
    "resolution_change_midstream",
    "cover_art_stream0_mp4",
    "still_track_first_mkv",
    "mpegts_subtitles_and_klv",
    "timecode_and_subtitles",
    "hevc_10bit",
    "vp9_alpha",
    "mpeg4_avi",
    "mkv_duration_3h",
    "video_stream_no_packets",
    "huge_dims_y4m_8193x8192",
)
#: A smaller, quicker subset for the test suite's smoke run.
SMOKE_GENERATORS = ("truncated_faststart", "time", "cover_art", "codecs")
SMOKE_CORPUS_SEEDS = ("cut_faststart_after_frame0", "rotation_90", "vfr_irregular", "annexb_raw_h264",
                      "cover_art_stream0_mp4", "still_track_first_mkv", "hevc_10bit", "mpeg4_avi")  # fmt: skip


def write_clip_seeds(dst: Path) -> list[Path]:
    """Small clips (64x48, 1 s at 8 fps, GOP 4) in every container/codec ``write_clip`` makes."""
    from framescan.synth import write_clip

    dst.mkdir(parents=True, exist_ok=True)
    return [write_clip(dst / name, width=64, height=48, seconds=1.0, fps=8, gop=4, **opts) for name, opts in CLIP_SEEDS]


def write_corpus_seeds(
    dst: Path, generators: Sequence[str] = CORPUS_GENERATORS, cases: Sequence[str] = CORPUS_SEEDS
) -> list[Path]:
    """The named hostile-corpus files, copied into ``dst`` as ``corpus_<case><suffix>``."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    from corpus.hostile import GENERATORS

    dst.mkdir(parents=True, exist_ok=True)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for gen in generators:
            for case in GENERATORS[gen](Path(tmp)):
                if case.name in cases:
                    target = dst / f"corpus_{case.name}{case.path.suffix}"
                    shutil.copyfile(case.path, target)
                    out.append(target)
    return out


#: Uncompressed seeds: (file name, container, pixel format). Raw frames reach the conversion
#: and plane-view code with whatever pixel format and line layout the header declares.
RAW_SEEDS = (("raw_yuv420p.nut", "nut", "yuv420p"), ("raw_bgr24.avi", "avi", "bgr24"), ("raw_gray.nut", "nut", "gray"))


def write_raw_seeds(dst: Path) -> list[Path]:
    """Tiny rawvideo clips (34x26, 3 frames) in NUT and AVI."""
    import av
    import numpy as np

    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for name, fmt, pix in RAW_SEEDS:
        path = dst / name
        with av.open(str(path), "w", format=fmt) as container:
            stream = container.add_stream("rawvideo", rate=8)
            stream.width, stream.height, stream.pix_fmt = 34, 26, pix
            for i in range(3):
                rgb = np.random.default_rng(i).integers(0, 256, (26, 34, 3), dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix)
                frame.pts = i
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        out.append(path)
    return out


def make_seeds(dst: Path, smoke: bool = False) -> list[Path]:
    """Write every seed into ``dst`` and return their paths (sorted, so runs are repeatable)."""
    clips = write_clip_seeds(dst) + write_raw_seeds(dst)
    if smoke:
        corpus = write_corpus_seeds(dst, SMOKE_GENERATORS, SMOKE_CORPUS_SEEDS)
    else:
        corpus = write_corpus_seeds(dst)
    return sorted(clips + corpus)


def ensure_seeds(dst: Path) -> list[Path]:
    """Seeds in ``dst``, written by a child process if missing (so that the fuzzing process
    imports framescan only under atheris' instrumentation)."""
    files = sorted(p for p in dst.glob("*") if p.is_file()) if dst.is_dir() else []
    if not files:
        subprocess.run([sys.executable, __file__, "--make-seeds", str(dst)], check=True)
        files = sorted(p for p in dst.glob("*") if p.is_file())
    return files


# ----------------------------------------------------------------------------------------------
# mutations (pure Python, deterministic for a given random.Random)

_INTERESTING = (0, 1, 2, 3, 7, 8, 15, 16, 0x7F, 0x80, 0xFF, 0x100, 0x3FF, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
                0xFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)  # fmt: skip
#: Four printable bytes: an MP4 box type, a RIFF chunk id, a Matroska/Y4M keyword...
_TAG = re.compile(rb"[A-Za-z][A-Za-z0-9 ]{3}")


def _pos(rng: random.Random, data: bytearray, width: int = 1) -> int:
    return rng.randrange(0, max(1, len(data) - width + 1))


def _interesting(rng: random.Random, data: bytearray) -> int:
    if rng.random() < 0.2:
        return len(data) + rng.randint(-16, 16)
    return rng.choice(_INTERESTING) + (rng.randint(-2, 2) if rng.random() < 0.2 else 0)


def _put_int(data: bytearray, at: int, value: int, width: int, big: bool) -> None:
    if at < 0 or at + width > len(data):
        return
    data[at : at + width] = (value % (1 << (8 * width))).to_bytes(width, "big" if big else "little")


def m_flip_bits(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> bytearray:
    for _ in range(rng.randint(1, 8)):
        if data:
            data[_pos(rng, data)] ^= 1 << rng.randrange(8)
    return data


def m_random_burst(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> bytearray:
    n = rng.randint(1, 32)
    at = _pos(rng, data, n)
    data[at : at + n] = rng.randbytes(n)
    return data


def m_interesting_int(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> bytearray:
    width = rng.choice((1, 2, 4, 4, 8))
    _put_int(data, _pos(rng, data, width), _interesting(rng, data), width, rng.random() < 0.6)
    return data


def m_tag_field(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> bytearray:
    """Patch an integer next to a 4-character tag: an MP4 box size (big-endian, before the
    type), a RIFF chunk size (little-endian, after the id), or a header field a few bytes in
    (width, height, timescale, duration, sample counts)."""
    tags = [m.start() for m in _TAG.finditer(bytes(data[:MAX_LEN]))]
    if not tags:
        return m_interesting_int(rng, data, _)
    at = rng.choice(tags)
    value = _interesting(rng, data)
    kind = rng.randrange(3)
    if kind == 0:
        _put_int(data, at - 4, value, 4, True)
    elif kind == 1:
        _put_int(data, at + 4, value, 4, False)
    else:
        width = rng.choice((2, 4))
        _put_int(data, at + 4 + rng.randrange(0, 40, 2), value, width, rng.random() < 0.7)
    return data


def m_truncate(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> bytearray:
    if len(data) < 2:
        return data
    # biased towards keeping most of the file (cut frames, cut index) but sometimes a header only
    keep = int(len(data) * (1 - rng.random() ** 2)) if rng.random() < 0.7 else rng.randrange(1, len(data))
    return data[: max(1, keep)]


def m_delete(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> bytearray:
    n = rng.randint(1, max(1, min(512, len(data) // 4)))
    at = _pos(rng, data, n)
    del data[at : at + n]
    return data


def m_insert(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> bytearray:
    n = rng.randint(1, 256)
    at = rng.randrange(0, len(data) + 1)
    chunk = rng.randbytes(n) if rng.random() < 0.5 else bytes([rng.choice((0, 0xFF))]) * n
    data[at:at] = chunk
    return data


def m_duplicate(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> bytearray:
    if not data:
        return data
    n = rng.randint(1, max(1, min(2048, len(data) // 2)))
    src = _pos(rng, data, n)
    chunk = bytes(data[src : src + n])
    at = rng.randrange(0, len(data) + 1)
    if rng.random() < 0.5:
        data[at:at] = chunk
    else:
        data[at : at + n] = chunk
    return data


def m_zero(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> bytearray:
    n = rng.randint(1, max(1, min(1024, len(data) // 4)))
    at = _pos(rng, data, n)
    data[at : at + n] = bytes(len(data[at : at + n]))
    return data


def m_splice(rng: random.Random, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    if not seeds:
        return data
    other = rng.choice(seeds)
    cut = rng.randrange(0, len(data) + 1)
    return data[:cut] + bytearray(other[rng.randrange(0, len(other) + 1) :])


MUTATORS: tuple[Callable[[random.Random, bytearray, Sequence[bytes]], bytearray], ...] = (
    m_flip_bits,
    m_random_burst,
    m_interesting_int,
    m_tag_field,
    m_tag_field,
    m_truncate,
    m_delete,
    m_insert,
    m_duplicate,
    m_zero,
    m_splice,
)


def mutate(rng: random.Random, data: bytes, seeds: Sequence[bytes] = (), max_len: int = MAX_LEN) -> bytes:
    """1-4 random structure-agnostic or tag-aware mutations of ``data``; never empty."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        out = rng.choice(MUTATORS)(rng, out, seeds)
    return bytes(out[:max_len]) or b"\x00"


def mutated_inputs(seeds: Sequence[bytes], count: int, seed: int) -> list[bytes]:
    """``count`` mutants of the seeds (round-robin), reproducible from ``seed``."""
    rng = random.Random(seed)
    return [mutate(rng, seeds[i % len(seeds)], seeds) for i in range(count)]


# ----------------------------------------------------------------------------------------------
# running one input


@dataclasses.dataclass
class Finding:
    """Something other than a report or a FramescanError."""

    kind: str  # "exception", "warning", "log-error", "thread-exception", "crash", "timeout"
    type: str  # exception/warning class, signal, or logger
    where: str  # innermost framescan frame "file:line (function)", else innermost frame
    stage: str  # "scan" or "probe" (or "worker" in fallback mode)
    message: str
    traceback: str = ""

    @property
    def signature(self) -> str:
        return f"{self.kind}:{self.type}@{self.where}"

    @classmethod
    def from_exception(cls, kind: str, stage: str, ex: BaseException) -> Finding:
        frames = traceback.extract_tb(ex.__traceback__)
        ours = [f for f in frames if f"{os.sep}framescan{os.sep}" in f.filename]
        frame = (ours or frames or [None])[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno} ({frame.name})" if frame is not None else "?"
        tb = "".join(traceback.format_exception(type(ex), ex, ex.__traceback__))
        return cls(kind, f"{type(ex).__module__}.{type(ex).__qualname__}", where, stage, str(ex)[:500], tb)


class _ErrorLogs(logging.Handler):
    """Collects ERROR records from framescan's loggers (the test suite fails on those)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_error_logs = _ErrorLogs()
_thread_failures: list[Finding] = []
_hooks_installed = False


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    logging.getLogger("framescan").addHandler(_error_logs)

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            _thread_failures.append(Finding.from_exception("thread-exception", "thread", args.exc_value))

    threading.excepthook = hook


def outcome_of_report(report: Any) -> str:
    """``OK``/``PARTIAL`` for a result, the error code for an error report."""
    d = report.to_dict()
    if d["status"] == "error":
        return str(d["error"]["code"])
    return "OK" if d["status"] == "complete" else "PARTIAL"


def run_input(scanner: Scanner, data: bytes, limits: Limits | None = None) -> tuple[list[str], list[Finding]]:
    """Scan and probe ``data`` in-process. Returns the two outcomes (``OK``, ``PARTIAL``, an
    error code, or ``FINDING``) and the findings (empty when the contract held)."""
    from framescan.errors import FramescanError
    from framescan.probe import probe

    _install_hooks()
    outcomes: list[str] = []
    findings: list[Finding] = []
    steps: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("scan", lambda: scanner.scan(data, name="<fuzz>", limits=limits)),
        ("probe", lambda: probe(data)),
    )
    for stage, call in steps:
        _error_logs.records.clear()
        _thread_failures.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # as pytest.ini does for the test suite
            try:
                result = call()
                outcomes.append(outcome_of_report(result) if stage == "scan" else "OK")
            except FramescanError as ex:
                outcomes.append(ex.code.value)
            except Warning as ex:
                outcomes.append("FINDING")
                findings.append(Finding.from_exception("warning", stage, ex))
            except Exception as ex:
                outcomes.append("FINDING")
                findings.append(Finding.from_exception("exception", stage, ex))
        for rec in _error_logs.records:
            findings.append(Finding("log-error", rec.name, f"{rec.filename}:{rec.lineno}", stage, rec.getMessage()))
        for f in _thread_failures:
            f.stage = stage
            findings.append(f)
    return outcomes, findings


#: An input that raises a process' peak resident memory by more than this is a "memory" finding
#: (a 64 KB input should not cost hundreds of MB; the limits bound frame sizes, not buffering).
PEAK_RSS_JUMP = 256 << 20


def peak_rss(pid: int | None = None) -> int:
    """Peak resident memory (VmHWM) of a process, in bytes (0 if unknown)."""
    try:
        with open(f"/proc/{pid or 'self'}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def memory_finding(before: int, after: int, stage: str) -> Finding | None:
    if before and after - before > PEAK_RSS_JUMP:
        mb = (after - before) >> 20
        return Finding("memory", "peak-rss", stage, stage, f"peak RSS rose by {mb} MB to {after >> 20} MB")
    return None


def new_scanner(**sampling: Any) -> Scanner:
    from framescan.pipeline import Scanner

    return Scanner(**SCANNER_OPTIONS, **sampling, limits=fuzz_limits())


def pick(scanners: Sequence[Scanner], data: bytes) -> Scanner:
    """The scanner (sampling mode) an input is run with: fixed per input."""
    return scanners[zlib.crc32(data) % len(scanners)]


# ----------------------------------------------------------------------------------------------
# bookkeeping


class Findings:
    """Deduplicated findings with their smallest reproducer, saved as they come in."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.by_sig: dict[str, dict[str, Any]] = {}
        self.outcomes: Counter[str] = Counter()
        self.execs = 0
        self.t0 = time.monotonic()
        self.cpu0 = time.process_time()
        self._last_write = 0.0

    def add(self, finding: Finding, data: bytes) -> bool:
        """Record ``finding`` for input ``data``; True when its signature is new."""
        sig = finding.signature
        entry = self.by_sig.get(sig)
        new = entry is None
        if new:
            entry = {**dataclasses.asdict(finding), "signature": sig, "count": 0, "first_exec": self.execs}
            self.by_sig[sig] = entry
        entry["count"] += 1
        if new or len(data) < entry["size"]:
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{finding.kind}-{finding.type.rsplit('.', 1)[-1]}")
            path = self.dir / f"{name}-{hashlib.sha1(sig.encode()).hexdigest()[:10]}.bin"
            path.write_bytes(data)
            entry.update(reproducer=str(path), size=len(data), sha1=hashlib.sha1(data).hexdigest())
            if not new:  # keep the traceback/message of the reproducer that is kept
                entry.update(message=finding.message, traceback=finding.traceback)
            self.write()
        return new

    def tick(self, outcomes: Sequence[str]) -> None:
        self.execs += 1
        self.outcomes.update(outcomes)
        if time.monotonic() - self._last_write > 5:
            self.write()

    def summary(self) -> dict[str, Any]:
        return {
            "execs": self.execs,
            "wall_seconds": round(time.monotonic() - self.t0, 1),
            "cpu_seconds": round(time.process_time() - self.cpu0, 1),
            "outcomes": dict(self.outcomes.most_common()),
            "findings": sorted(self.by_sig.values(), key=lambda e: -e["count"]),
        }

    def write(self) -> None:
        self._last_write = time.monotonic()
        (self.dir / "findings.json").write_text(json.dumps(self.summary(), indent=2, default=str))

    def report(self) -> None:
        s = self.summary()
        print(
            f"\n== framescan fuzz: {s['execs']} inputs, {s['wall_seconds']} s wall, {s['cpu_seconds']} s CPU "
            f"(this process)\n   outcomes: {s['outcomes']}\n   {len(s['findings'])} distinct finding(s) -> "
            f"{self.dir / 'findings.json'}",
            flush=True,
        )
        for e in s["findings"]:
            print(f"   [{e['count']:5d}x] {e['signature']}  ({e['stage']}; smallest {e['size']} B: {e['reproducer']})")
            print(f"            {e['message'][:200]}")


# ----------------------------------------------------------------------------------------------
# atheris


def _split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(libFuzzer flags ``-name=value`` / ``-name``, everything else)."""
    lf = [a for a in argv if a != "-h" and re.match(r"^-[A-Za-z_]+(=.*)?$", a)]
    return lf, [a for a in argv if a not in lf]


def run_atheris(args: argparse.Namespace, libfuzzer_flags: list[str]) -> None:
    import atheris

    # Heavy dependencies load uninstrumented; framescan's own modules get coverage feedback.
    import av  # noqa: F401
    import numba  # noqa: F401
    import numpy  # noqa: F401
    import onnxruntime  # noqa: F401

    seeds_dir = Path(args.seeds_dir)
    seed_files = ensure_seeds(seeds_dir)
    seeds = [p.read_bytes() for p in seed_files]
    work = Path(args.workdir) / "corpus"
    work.mkdir(parents=True, exist_ok=True)
    corpus_dirs = args.paths or [str(work), str(seeds_dir)]

    with atheris.instrument_imports(include=["framescan"], exclude=list(NO_INSTRUMENT)):
        import framescan
        import framescan.pipeline
        import framescan.probe  # noqa: F401

    scanners = [new_scanner(**mode) for mode in SAMPLING_MODES]
    limits = fuzz_limits()
    book = Findings(Path(args.findings_dir))

    def test_one_input(data: bytes) -> None:
        before = peak_rss()
        outcomes, findings = run_input(pick(scanners, data), data, limits)
        mem = memory_finding(before, peak_rss(), "in-process")
        if mem is not None:
            findings.append(mem)
        book.tick(outcomes)
        for f in findings:
            if book.add(f, data):
                print(f"\n#### new finding: {f.signature}\n{f.traceback or f.message}", flush=True)
        if findings and args.stop_on_finding:
            book.report()
            raise RuntimeError(f"finding: {findings[0].signature}: {findings[0].message}")

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.5:
            return atheris.Mutate(data, max_size)
        return mutate(rng, data, seeds, max_len=max_size)

    import atexit

    atexit.register(book.report)
    atexit.register(book.write)
    defaults = {"-max_len": str(MAX_LEN), "-timeout": "30", "-rss_limit_mb": "3072"}
    given = {f.split("=", 1)[0] for f in libfuzzer_flags}
    flags = libfuzzer_flags + [f"{k}={v}" for k, v in defaults.items() if k not in given]
    print(f"atheris: flags {flags}, corpus {corpus_dirs}, findings -> {book.dir}", flush=True)
    atheris.Setup([sys.argv[0], *flags, *corpus_dirs], test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


# ----------------------------------------------------------------------------------------------
# fallback: pure Python mutation, every input in an isolated worker (native crashes counted)

_UNEXPECTED = re.compile(r"scanning failed unexpectedly: ([\w.]+): (.*)", re.S)


def classify_worker_report(report: Any) -> Finding | None:
    """A finding from a WorkerPool report: DECODER_CRASHED is either a dead worker (native
    crash: signal or exit code) or a Python exception the worker caught ('scanning failed
    unexpectedly: Type: message'); TIMEOUT is a hang."""
    d = report.to_dict()
    if d["status"] != "error":
        return None
    err = d["error"]
    code, msg = err["code"], err["message"]
    if code == "DECODER_CRASHED":
        m = _UNEXPECTED.search(msg)
        if m:
            return Finding("exception", m.group(1), "worker (see --reproduce)", "worker", m.group(2)[:500])
        sig = (err.get("details") or {}).get("signal") or f"exit {(err.get('details') or {}).get('exitcode')}"
        return Finding("crash", str(sig), "native", "worker", msg)
    if code == "TIMEOUT":
        return Finding("timeout", "TIMEOUT", "worker", "worker", msg)
    return None


def run_fallback(args: argparse.Namespace) -> Findings:
    from framescan.isolate import WorkerConfig, WorkerPool

    _install_hooks()
    seeds = [p.read_bytes() for p in ensure_seeds(Path(args.seeds_dir))]
    book = Findings(Path(args.findings_dir))
    limits = fuzz_limits()
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.max_seconds if args.max_seconds else None
    current = book.dir / "current-input.bin"
    crashes = 0
    config = WorkerConfig(scanner=dict(SCANNER_OPTIONS), limits=limits)
    print(f"fallback: {args.runs} runs, seed {args.seed}, {len(seeds)} seeds, findings -> {book.dir}", flush=True)
    with WorkerPool(1, config) as pool:
        for i in range(args.runs):
            if deadline is not None and time.monotonic() > deadline:
                break
            data = mutate(rng, rng.choice(seeds), seeds)
            worker = pool.pids[0]
            before = peak_rss(worker)
            report = pool.scan(data, name=f"fuzz-{i}", timeout=args.timeout)
            outcomes = [outcome_of_report(report)]
            finding = classify_worker_report(report)
            mem = memory_finding(before, peak_rss(worker), "worker") if pool.pids == [worker] else None
            if mem is not None and book.add(mem, data):
                print(f"#### new finding at input {i}: {mem.signature}: {mem.message}", flush=True)
            if finding is not None:
                crashes += finding.kind == "crash"
                if book.add(finding, data):
                    print(f"#### new finding at input {i}: {finding.signature}: {finding.message}", flush=True)
            if finding is None or finding.kind == "exception":
                # The worker survived this input, so probing it in this process is safe enough;
                # current-input.bin names the culprit should it not be.
                current.write_bytes(data)
                probe_outcome, probe_findings = _probe_only(data)
                outcomes.append(probe_outcome)
                for f in probe_findings:
                    if book.add(f, data):
                        print(f"#### new finding at input {i}: {f.signature}: {f.message}", flush=True)
            book.tick(outcomes)
            if (i + 1) % 100 == 0:
                print(f"  {i + 1} inputs, {len(book.by_sig)} finding(s), {crashes} crash(es)", flush=True)
        print(f"fallback: worker restarts {pool.restarts}, DECODER_CRASHED (native) {crashes}", flush=True)
    current.unlink(missing_ok=True)
    _attach_tracebacks(book)
    book.write()
    return book


def _probe_only(data: bytes) -> tuple[str, list[Finding]]:
    from framescan.errors import FramescanError
    from framescan.probe import probe

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            probe(data)
            return "OK", []
        except FramescanError as ex:
            return ex.code.value, []
        except Exception as ex:
            kind = "warning" if isinstance(ex, Warning) else "exception"
            return "FINDING", [Finding.from_exception(kind, "probe", ex)]


def _attach_tracebacks(book: Findings) -> None:
    """Re-run the worker's exception findings in-process for a traceback and a location."""
    todo = [e for e in book.by_sig.values() if e["stage"] == "worker" and e["kind"] == "exception"]
    if not todo:
        return
    scanner = new_scanner()
    for e in todo:
        _, findings = run_input(scanner, Path(e["reproducer"]).read_bytes(), fuzz_limits())
        match = [f for f in findings if f.stage == "scan" and f.type.endswith(e["type"])]
        if match:
            e.update(where=match[0].where, traceback=match[0].traceback, type=match[0].type)


# ----------------------------------------------------------------------------------------------
# reproduce and minimise


def reproduce(paths: Sequence[str]) -> int:
    """Run each file in-process (scan in every sampling mode, and probe) and print what
    happened; exit status 1 when any finding reproduces."""
    scanners = [new_scanner(**mode) for mode in SAMPLING_MODES]
    bad = 0
    for p in paths:
        data = Path(p).read_bytes()
        for mode, scanner in zip(SAMPLING_MODES, scanners):
            outcomes, findings = run_input(scanner, data, fuzz_limits())
            print(f"{p} ({len(data)} B) sampling {mode or 'fps=2'}: scan {outcomes[0]}, probe {outcomes[1]}")
            for f in findings:
                bad += 1
                print(f"  FINDING {f.signature}\n{f.traceback or f.message}")
    return 1 if bad else 0


def minimize(path: str, out: str | None, budget: float = 120.0) -> int:
    """Shrink ``path`` while the first finding's signature still reproduces (chunk removal,
    halving the chunk size: a simple ddmin). In-process, so for exception findings only."""
    limits = fuzz_limits()
    data = Path(path).read_bytes()
    for mode in SAMPLING_MODES:
        scanner = new_scanner(**mode)
        findings = run_input(scanner, data, limits)[1]
        if findings:
            break
    else:
        print(f"{path}: no finding reproduces")
        return 1
    sig = findings[0].signature
    print(f"{path}: {len(data)} B, target {sig}")

    def still(candidate: bytes) -> bool:
        return bool(candidate) and any(f.signature == sig for f in run_input(scanner, candidate, limits)[1])

    deadline = time.monotonic() + budget
    chunk = max(1, len(data) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        i, shrunk = 0, False
        while i < len(data) and time.monotonic() < deadline:
            cand = data[:i] + data[i + chunk :]
            if still(cand):
                data, shrunk = cand, True
            else:
                i += chunk
        if not shrunk:
            chunk //= 2
    target = Path(out or f"{path}.min")
    target.write_bytes(data)
    print(f"minimised to {len(data)} B -> {target}")
    return 0


# ----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    libfuzzer_flags, rest = _split_argv(argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", help="atheris: corpus directories; --reproduce: input files")
    ap.add_argument("--fallback", action="store_true", help="pure Python mutation loop (no atheris)")
    ap.add_argument("--runs", type=int, default=1000, help="fallback: number of inputs")
    ap.add_argument("--seed", type=int, default=1, help="fallback: RNG seed")
    ap.add_argument("--max-seconds", type=float, default=0.0, help="fallback: stop after this long (0: no limit)")
    ap.add_argument("--timeout", type=float, default=30.0, help="fallback: per-input watchdog (seconds)")
    ap.add_argument("--workdir", default=str(DEFAULT_WORKDIR), help="working corpus (atheris) [%(default)s]")
    ap.add_argument("--seeds-dir", default=None, help="seed clips [WORKDIR/seeds]")
    ap.add_argument("--findings-dir", default=None, help="reproducers and findings.json [WORKDIR/findings]")
    ap.add_argument("--stop-on-finding", action="store_true", help="atheris: raise on the first finding")
    ap.add_argument("--make-seeds", metavar="DIR", help="write the seed clips into DIR and exit")
    ap.add_argument("--reproduce", action="store_true", help="run the given files in-process and exit")
    ap.add_argument("--minimize", metavar="FILE", help="shrink a reproducer while its finding reproduces")
    ap.add_argument("--out", help="--minimize: output file [FILE.min]")
    args = ap.parse_args(rest)
    args.seeds_dir = args.seeds_dir or str(Path(args.workdir) / "seeds")
    args.findings_dir = args.findings_dir or str(Path(args.workdir) / "findings")
    return args, libfuzzer_flags


def main(argv: Sequence[str] | None = None) -> int:
    args, libfuzzer_flags = parse_args(sys.argv[1:] if argv is None else argv)
    if args.make_seeds:
        for p in make_seeds(Path(args.make_seeds)):
            print(f"{p} {p.stat().st_size}")
        return 0
    if args.reproduce:
        return reproduce(args.paths)
    if args.minimize:
        return minimize(args.minimize, args.out)
    if args.fallback:
        book = run_fallback(args)
        book.report()
        return 1 if book.by_sig else 0
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed (pip install atheris); running the fallback loop", file=sys.stderr)
        book = run_fallback(args)
        book.report()
        return 1 if book.by_sig else 0
    run_atheris(args, libfuzzer_flags)
    return 0


if __name__ == "__main__":
    sys.exit(main())
