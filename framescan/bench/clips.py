"""The benchmark's clips: generated (``framescan.synth.write_clip``) and cached, or given."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .options import (
    CLIP_FPS,
    DEFAULT_MATRIX,
    DEFAULT_MODES,
    DEFAULT_SECONDS,
    DEFAULT_SIZES,
    QUICK,
    BenchError,
    BenchOptions,
    Config,
    Mode,
    parse_size,
)

log = logging.getLogger(__name__)

#: The early-exit clip: flagged from this second to the end.
EARLY_FLAG_START = 2.0
#: Where a generated clip of at least 8 s is flagged (``flagged_window``).
FLAGGED = (6.0, 8.0)
#: Bumped whenever generated clips change (v2: the flagged image at ``FLAGGED_SCALE`` 1.0), so a
#: cached clip of an older kind is not reused.
CLIP_VERSION = "2"


def default_clip_dir() -> Path:
    from ..cache import cache_dir

    return cache_dir() / "bench-clips"


@dataclass(frozen=True)
class UploadClip:
    """A clip encoded as phones and platforms encode uploads: the encoders' ``medium`` or
    ``veryfast`` presets (CABAC, deblocking, B-frames, keyframes at scene cuts), keyframes 2-8 s
    apart, at the sizes uploads come in. The bench's default clips are x264 ``ultrafast`` (no
    B-frames, no deblocking: quick to decode), which flatters any decoder."""

    name: str
    width: int
    height: int
    seconds: float
    codec: str  # libx264, libx265, libvpx-vp9
    preset: str
    gop: int  # frames between keyframes at most (30 fps)
    flagged: tuple[float, float] | None = FLAGGED

    @property
    def filename(self) -> str:
        ext = "webm" if self.codec == "libvpx-vp9" else "mp4"
        return f"upload{UPLOAD_VERSION}-{self.name}.{ext}"


#: Bumped whenever the upload-like clips change.
UPLOAD_VERSION = "1"
#: The upload-like set (issue 21): H.264 portrait at two presets and keyframe distances, HEVC,
#: VP9 landscape, an odd 4:3 size and full-HD portrait.
UPLOAD_CLIPS = (
    UploadClip("720x1280-h264-medium-gop250", 720, 1280, 15.0, "libx264", "medium", 250),
    UploadClip("720x1280-h264-veryfast-gop60", 720, 1280, 10.0, "libx264", "veryfast", 60),
    UploadClip("480x854-hevc-medium-gop250", 480, 854, 12.0, "libx265", "medium", 250),
    UploadClip("960x540-vp9-gop240", 960, 540, 10.0, "libvpx-vp9", "realtime", 240, None),
    UploadClip("1294x964-h264-veryfast-gop120", 1294, 964, 12.0, "libx264", "veryfast", 120),
)
#: The full-HD portrait upload (the memory target's shape), separately: slow to encode.
UPLOAD_1080 = UploadClip("1080x1920-h264-medium-gop250", 1080, 1920, 10.0, "libx264", "medium", 250)


def ensure_upload_clip(clip_dir: Path, spec: UploadClip) -> Path:
    """``spec`` encoded (``framescan.synth.write_clip``) into ``clip_dir``, reused when there."""
    path = clip_dir / spec.filename
    if path.exists() and path.stat().st_size > 0:
        return path
    from ..synth import write_clip

    clip_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    log.info("writing %s", path)
    try:
        write_clip(tmp, width=spec.width, height=spec.height, seconds=spec.seconds, fps=CLIP_FPS, codec=spec.codec,
                   preset=spec.preset, gop=spec.gop, flagged=spec.flagged)  # fmt: skip
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def flagged_window(seconds: float) -> tuple[float, float]:
    """Flagged content from 6 to 8 s; on clips shorter than 8 s, the middle half."""
    return FLAGGED if seconds >= FLAGGED[1] else (round(seconds * 0.25, 3), round(seconds * 0.75, 3))


def ensure_clip(
    clip_dir: Path,
    width: int,
    height: int,
    seconds: float,
    fps: int,
    flagged: tuple[float, float] | None = None,
    clean: bool = False,
) -> tuple[Path, tuple[float, float] | None]:
    """A generated H.264 clip (``framescan.synth.write_clip``), reused when already written:
    flagged during ``flagged`` (default ``flagged_window``), or nowhere when ``clean``."""
    if clean:
        flagged, tag = None, "clean"
    else:
        flagged = flagged or flagged_window(seconds)
        tag = f"flag{flagged[0]:g}-{flagged[1]:g}"
    path = clip_dir / f"bench{CLIP_VERSION}-{width}x{height}-{seconds:g}s-{fps}fps-{tag}.mp4"
    if path.exists() and path.stat().st_size > 0:
        log.info("reusing %s", path)
        return path, flagged
    from ..synth import write_clip

    clip_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.mp4")
    log.info("writing %s", path)
    try:
        write_clip(tmp, width=width, height=height, seconds=seconds, fps=fps, flagged=flagged)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path, flagged


def build_configs(opts: BenchOptions, notify: Callable[[str], None] | None = None) -> list[Config]:
    """The configurations to run: given clips x modes, or generated sizes x modes."""
    modes = [Mode.parse(m) for m in (opts.modes or [])]
    if opts.clips:
        from ..probe import probe

        out = []
        for p in opts.clips:
            if not Path(p).is_file():
                raise BenchError(f"clip not found: {p}")
            info = probe(p)
            w, h = info.display_size
            frames = info.frame_count
            for m in modes or [Mode.parse(x) for x in DEFAULT_MODES]:
                if m.clean:
                    raise BenchError(f"{m.name}: +clean picks a generated clip; with --clips, give a clean one")
                out.append(Config(f"{Path(p).name} {m.name}", str(Path(p).resolve()), m, w, h, info.duration,
                                  info.fps, frames, generated=False))  # fmt: skip
        return out
    if opts.upload:
        clip_dir = Path(opts.clip_dir) if opts.clip_dir else default_clip_dir()
        out = []
        for spec in UPLOAD_CLIPS:
            if notify:
                notify(f"upload-like clip {spec.name}")
            path = ensure_upload_clip(clip_dir, spec)
            for m in modes or [Mode.parse("fps1")]:
                if m.clean or m.early_exit:
                    raise BenchError(f"{m.name}: +clean and +early pick generated clips; not with --upload")
                frames = int(round(spec.seconds * CLIP_FPS))
                out.append(Config(f"upload-{spec.name} {m.name}", str(path), m, spec.width, spec.height,
                                  spec.seconds, float(CLIP_FPS), frames, generated=True,
                                  flagged=spec.flagged))  # fmt: skip
        return out
    if opts.quick:
        pairs = [(s, m) for s in (opts.sizes or [QUICK["size"]]) for m in (opts.modes or QUICK["modes"])]
        seconds, fps = float(opts.seconds or QUICK["seconds"]), int(QUICK["fps"])  # type: ignore[call-overload]
    else:
        if opts.sizes is None and opts.modes is None:
            pairs = list(DEFAULT_MATRIX)
        else:
            pairs = [(s, m) for s in (opts.sizes or DEFAULT_SIZES) for m in (opts.modes or DEFAULT_MODES)]
        seconds, fps = float(opts.seconds or DEFAULT_SECONDS), CLIP_FPS
    if seconds <= 0:
        raise BenchError(f"--seconds must be > 0, got {seconds}")
    clip_dir = Path(opts.clip_dir) if opts.clip_dir else default_clip_dir()
    out = []
    clips: dict[str, tuple[Path, tuple[float, float]]] = {}
    expanded: list[tuple[str, str]] = []
    for size, mode_name in pairs:
        m = Mode.parse(mode_name)
        if m.early_exit and (size, m.without_early + "@early") not in expanded:
            expanded.append((size, m.without_early + "@early"))  # the full scan of the same clip, to compare with
        expanded.append((size, mode_name))
    for size, mode_name in expanded:
        w, h = parse_size(size)
        early_clip = mode_name.endswith("@early") or Mode.parse(mode_name.split("@")[0]).early_exit
        mode_name = mode_name.split("@")[0]
        m = Mode.parse(mode_name)
        key = f"{w}x{h}" + ("-early" if early_clip else "-clean" if m.clean else "")
        if key not in clips:
            if notify:
                notify(f"clip {key}, {seconds:g} s at {fps} fps")
            window = (min(EARLY_FLAG_START, seconds / 2), seconds) if early_clip else None
            clips[key] = ensure_clip(clip_dir, w, h, seconds, fps, window, clean=m.clean)
        path, flagged = clips[key]
        out.append(Config(f"{key} {m.name}", str(path), m, w, h, seconds, float(fps), int(round(seconds * fps)),
                          generated=True, flagged=flagged))  # fmt: skip
    return out
