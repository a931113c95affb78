"""What a benchmark runs: the implementations, stages and modes, the standard matrix, the options
and the configurations. Standard library only: the child processes import it (see ``child``)."""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import ScanConfig

SCHEMA = "framescan.bench/1"
STAGES = ("decode", "preprocess", "infer", "postprocess", "aggregate")
IMPLS = ("framescan", "naive")
#: NudeNet labels that feed ``sexual`` in the default manifest (checked against it by the tests).
SEXUAL_LABELS = frozenset(
    {"BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED", "ANUS_EXPOSED", "MALE_GENITALIA_EXPOSED"}
)
#: The standard matrix (used when neither --sizes nor --modes is given): every common shape
#: at exact 1 fps, every frame only on 720x1280 (the issue's target shape).
DEFAULT_MATRIX = (
    ("480x854", "fps1"),
    ("720x1280", "fps1"),
    ("720x1280", "all"),
    ("1080x1920", "fps1"),
    ("720x1280", "adaptive"),
    # adaptive sampling on a clip without flagged content (most uploads): no refinement pass
    ("720x1280", "adaptive+clean"),
    ("720x1280", "all+int8"),
    ("720x1280", "fps2+early"),
    # the same on NudeNet's square canvas (the default model's canvas is trimmed to the frame)
    ("720x1280", "fps1+square"),
    ("720x1280", "all+square"),
    ("720x1280", "all+int8+square"),
    ("720x1280", "adaptive+square"),
    ("720x1280", "fps2+square+early"),
)
#: framescan's model per combination of the ``+int8`` / ``+square`` suffixes (neither: the
#: default model, ``framescan.models.DEFAULT_MODEL``: NudeNet 320n on a trimmed canvas)
VARIANT_MODELS = {
    (True, False): "nudenet-320n-int8-trim",
    (False, True): "nudenet-320n",
    (True, True): "nudenet-320n-int8",
}
DEFAULT_MODES = ("fps1", "all")
DEFAULT_SIZES = ("480x854", "720x1280", "1080x1920")
DEFAULT_SECONDS = 15.0
DEFAULT_REPEATS = 3
CLIP_FPS = 30
QUICK = {"size": "240x426", "seconds": 2.0, "fps": 10, "modes": ("fps1", "all"), "repeats": 1}
CHILD_TIMEOUT = 1800.0
#: framescan keeps this many evidence items per clip (framescan.aggregate.EVIDENCE_PER_CLIP);
#: a report with that many may have dropped some, and agreement is then not checked.
EVIDENCE_CAP = 50
#: A run is "quiet" when other processes used less than this many cores during it.
QUIET_CORES = 0.3


#: Device profiles (``--profile``): what a profile fixes for both implementations.
#: ``mobile``: one core (``taskset`` when there is one), one inference and one decoder thread
#: for framescan (OpenCV's threads 1 for the naive loop), and the validated int8 model on the
#: trimmed canvas (framescan only, as ``+int8``).
PROFILES: dict[str, dict[str, Any]] = {
    "mobile": {"cores": 1, "threads": 1, "decode_threads": 1, "int8": True},
}


class BenchError(RuntimeError):
    """A benchmark could not be set up (bad option, missing clip, unreadable report)."""


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Mode:
    """A sampling mode: ``fpsN`` (exact N fps from timestamps), ``everyN``, ``all`` or ``adaptive``
    (framescan only; the naive loop runs it at 1 fps, the rate the adaptive target compares to),
    with optional framescan-only suffixes: ``+int8`` (the validated int8 model; naive stays
    fp32), ``+square`` (NudeNet's square canvas, ``nudenet-320n``, instead of the default
    model's trimmed one; both: the int8 model on the square canvas), ``+early`` (early exit, on
    a clip flagged from 2 s to the end, next to the same mode without early exit on that clip)
    and ``+clean`` (on a generated clip without flagged content)."""

    name: str
    fps: float | None = None
    every: int | None = None
    all_frames: bool = False
    adaptive: bool = False
    model: str | None = None
    early_exit: bool = False
    clean: bool = False

    @classmethod
    def parse(cls, text: str) -> Mode:
        t = text.strip().lower()
        base, *suffixes = t.split("+")
        extra: dict[str, Any] = {}
        for suffix in suffixes:
            if suffix == "early":
                extra["early_exit"] = True
            elif suffix == "clean":
                extra["clean"] = True
            elif suffix not in ("int8", "square"):
                raise BenchError(f"unknown mode suffix {suffix!r} in {text!r}: use +int8, +square, +early or +clean")
        if extra.get("early_exit") and extra.get("clean"):
            raise BenchError(f"{text!r}: early exit needs a flagged clip, +clean has none")
        variant = ("int8" in suffixes, "square" in suffixes)
        if any(variant):
            extra["model"] = VARIANT_MODELS[variant]
        if base == "all":
            return cls(t, all_frames=True, **extra)
        if base == "adaptive":
            return cls(t, fps=1.0, adaptive=True, **extra)
        m = re.fullmatch(r"fps(\d+(?:\.\d+)?)", base)
        if m and float(m.group(1)) > 0:
            return cls(t, fps=float(m.group(1)), **extra)
        m = re.fullmatch(r"every(\d+)", base)
        if m and int(m.group(1)) >= 1:
            return cls(t, every=int(m.group(1)), **extra)
        raise BenchError(
            f"unknown mode {text!r}: use fpsN (e.g. fps1), everyN, all or adaptive (+int8, +square, +early, +clean)"
        )

    @property
    def base(self) -> str:
        return self.name.split("+")[0]

    @property
    def without_early(self) -> str:
        """The same mode without early exit: the full scan an early-exit run is compared with."""
        return "+".join(p for p in self.name.split("+") if p != "early")

    def scan_config(self, **speed: int | None) -> ScanConfig:
        """framescan's settings for this mode; ``speed``: ``threads``, ``decode_threads``, ``batch_size``."""
        from ..config import ScanConfig  # imported when used: this module is standard library only

        if self.adaptive:
            sampling: dict[str, Any] = {"adaptive": True}
        elif self.all_frames:
            sampling = {"all_frames": True}
        elif self.every is not None:
            sampling = {"every": self.every}
        else:
            sampling = {"fps": self.fps}
        models = (self.model,) if self.model else None
        return ScanConfig(**sampling, models=models, early_exit=self.early_exit, **speed)


def parse_size(text: str) -> tuple[int, int]:
    """``"720x1280"`` -> ``(720, 1280)`` (width, height)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 16 or int(m.group(2)) < 16:
        raise BenchError(f"size must be WIDTHxHEIGHT (at least 16x16), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def parse_list(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


@dataclass
class BenchOptions:
    sizes: list[str] | None = None  # WxH; None: the standard matrix (or the --clips)
    modes: list[str] | None = None
    seconds: float | None = None  # None: DEFAULT_SECONDS (QUICK["seconds"] with quick)
    repeats: int | None = None
    clips: list[str] | None = None
    clip_dir: str | None = None
    quick: bool = False
    threads: int | None = None
    decode_threads: int | None = None
    batch_size: int | None = None
    naive: bool = True
    cold_uncached: bool = True
    timeout: float = CHILD_TIMEOUT
    wait_idle: float = 0.0  # seconds to wait, before each run, for other processes to go quiet
    framescan_from: str | None = None  # a tree holding the framescan package to benchmark (default: this one)
    upload: bool = False  # the upload-like clips (clips.UPLOAD_CLIPS) instead of generated sizes
    profile: str | None = None  # "mobile": PROFILES["mobile"]
    command: str = ""

    def __post_init__(self) -> None:
        if self.profile is not None and self.profile not in PROFILES:
            raise BenchError(f"unknown profile {self.profile!r}: use one of {', '.join(PROFILES)}")
        if self.upload and self.clips:
            raise BenchError("--upload and --clips both name the clips: give one of them")

    @property
    def n_repeats(self) -> int:
        if self.repeats is not None:
            if self.repeats < 1:
                raise BenchError(f"--repeats must be >= 1, got {self.repeats}")
            return self.repeats
        return QUICK["repeats"] if self.quick else DEFAULT_REPEATS  # type: ignore[return-value]


@dataclass
class Config:
    """One clip with one sampling mode."""

    name: str
    clip: str
    mode: Mode
    width: int
    height: int
    seconds: float | None
    fps: float | None
    frames: int | None
    generated: bool
    flagged: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "clip": self.clip,
            "mode": self.mode.name,
            "sampling": self.mode.scan_config().to_dict(),
            "width": self.width,
            "height": self.height,
            "seconds": self.seconds,
            "fps": self.fps,
            "frames": self.frames,
            "generated": self.generated,
            "flagged": list(self.flagged) if self.flagged else None,
        }


def command_line(argv: Sequence[str] | None = None) -> str:
    return shlex.join(["framescan", *(argv if argv is not None else sys.argv[1:])])
