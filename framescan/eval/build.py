"""``framescan eval --build-set DIR``: the project's evaluation set, made here, nothing downloaded.

Negatives: the real clean clips of ``shared/testdata/real`` (ThreatExchange sample videos, BSD
licence: copied with their licence) and generated clips of skimage photographs, some with
harmless captions. Positives, one kind per signal that has a stand-in: the ``colorwheel``
stand-in for ``sexual`` (sizes, positions, durations 0.5-3 s, codecs); burnt-in captions with
lexicon terms for ``hate``, ``bullying`` and ``extremism`` (sizes, leetspeak, two lines,
Indonesian); re-encoded, cropped, resized and cut copies of videos the set's own bank database
(``banks.sqlite``) holds, for known content. Stand-ins test the pipeline (sampling,
localisation, aggregation, fusion, policy), not how well the models find real harmful content.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

from ..errors import ConfigError

#: Categories the set labels (violence has no stand-in: unlabelled).
SET_CATEGORIES = ("sexual", "hate", "bullying", "extremism")
REAL_ENV = "FRAMESCAN_REAL_CLIPS"
BANK_NAME = "eval-known"

#: colorwheel stand-in clips: name, (width, height), seconds, codec, container suffix, shown
#: ranges, stand-in scale (share of the shorter side), background photo it is pasted into
#: (None: over the moving background, centred; else at a corner of the photo: "tl" / "br").
STANDIN = [
    ("portrait-2s", (720, 1280), 6.0, "libx264", ".mp4", [(2.0, 4.0)], 1.0, None),
    ("portrait-0.5s", (720, 1280), 4.0, "libx264", ".mp4", [(1.0, 1.5)], 1.0, None),
    ("landscape-3s", (1280, 720), 6.0, "libx264", ".mp4", [(2.0, 5.0)], 1.0, None),
    ("sd-mpeg4", (480, 854), 5.0, "mpeg4", ".mp4", [(1.0, 3.0)], 1.0, None),
    ("sd-vp9", (480, 854), 5.0, "libvpx-vp9", ".webm", [(2.0, 3.0)], 1.0, None),
    ("portrait-hevc", (720, 1280), 6.0, "libx265", ".mp4", [(3.0, 4.0)], 1.0, None),
    ("square-scale0.7", (640, 640), 4.0, "libx264", ".mp4", [(1.0, 2.0)], 0.7, None),
    ("portrait-scale0.5", (720, 1280), 6.0, "libx264", ".mp4", [(2.0, 4.0)], 0.5, None),
    ("small-360p", (360, 640), 4.0, "libx264", ".mp4", [(1.0, 3.0)], 1.0, None),
    ("corner-tl", (720, 1280), 5.0, "libx264", ".mp4", [(1.0, 4.0)], 1.0, ("coffee", "tl")),
    ("corner-br", (1280, 720), 5.0, "libx264", ".mp4", [(2.0, 3.5)], 1.0, ("chelsea", "br")),
    ("at-start", (720, 1280), 3.0, "libx264", ".mp4", [(0.0, 0.5)], 1.0, None),
    ("at-end", (720, 1280), 8.0, "libx264", ".mp4", [(7.0, 8.0)], 1.0, None),
    ("two-segments", (480, 854), 6.0, "libx264", ".mp4", [(1.0, 2.0), (4.0, 5.0)], 1.0, None),
]
#: caption clips: name, category (None: a harmless caption, a negative), size, seconds, captions.
CAPTIONS: list[tuple[str, str | None, tuple[int, int], float, list[tuple[float, float, str]]]] = [
    ("bully-en", "bullying", (720, 1280), 5.0, [(1.0, 3.0, "kill yourself loser")]),
    ("bully-leet", "bullying", (480, 854), 5.0, [(1.5, 3.5, "k1ll y0urs3lf")]),
    ("bully-id", "bullying", (1280, 720), 4.0, [(1.0, 3.0, "dasar goblok")]),
    (
        "bully-two-lines",
        "bullying",
        (720, 1280),
        6.0,
        [(2.0, 4.5, "nobody at school likes you and honestly you should die")],
    ),
    ("bully-small", "bullying", (360, 640), 4.0, [(1.0, 3.0, "go die")]),
    ("extremism-en", "extremism", (720, 1280), 5.0, [(1.0, 3.0, "join the caliphate")]),
    ("extremism-leet", "extremism", (480, 854), 5.0, [(1.0, 3.0, "j0in the c4liphate")]),
    ("extremism-two-lines", "extremism", (1280, 720), 6.0, [(2.0, 5.0, "brothers, be soldiers of the caliphate now")]),
    ("hate-en", "hate", (720, 1280), 5.0, [(1.0, 3.0, "go home raghead")]),
    ("hate-leet", "hate", (480, 854), 5.0, [(1.5, 3.5, "t0welhead")]),
    ("clean-caption-food", None, (720, 1280), 5.0, [(1.0, 3.0, "resep nasi goreng enak")]),
    ("clean-caption-beach", None, (480, 854), 5.0, [(1.0, 4.0, "see you at the beach tomorrow")]),
    (
        "clean-caption-two-lines",
        None,
        (1280, 720),
        5.0,
        [(1.0, 4.0, "my grandmother taught me how to bake this bread")],
    ),
]
#: clean clips of skimage photographs: name, size, seconds, photographs shown in turn.
PHOTOS = [
    ("astronaut-coffee", (720, 1280), 5.0, ("astronaut", "coffee")),
    ("chelsea-rocket", (1280, 720), 5.0, ("chelsea", "rocket")),
    ("camera-moon", (480, 854), 4.0, ("camera", "moon")),
    ("cat-page", (720, 1280), 6.0, ("cat", "page")),
    ("brick-grass", (640, 640), 4.0, ("brick", "grass")),
    ("text-coins", (720, 1280), 5.0, ("text", "coins")),
    ("hubble-gravel", (360, 640), 4.0, ("hubble_deep_field", "gravel")),
    ("retina-horse", (1280, 720), 5.0, ("retina", "horse")),
]
#: videos the set's bank holds (never in the set themselves) and the copies that are.
BANKED = [
    ("known-a", ("immunohistochemistry", "colorwheel", "immunohistochemistry"), (720, 1280), 8.0),
    ("known-b", ("rocket", "coffee", "astronaut"), (1280, 720), 8.0),
]
#: copy name, banked item, what is done: cut (s dropped at the start), crop (share kept), size, bit rate, codec
COPIES = [
    ("reencode-low-bitrate", "known-a", {"bit_rate": 250_000}),
    ("crop-90", "known-a", {"crop": 0.9}),
    ("resize-360p", "known-a", {"size": (360, 640)}),
    ("cut-2s-mpeg4", "known-b", {"cut": 2.0, "codec": "mpeg4"}),
    ("crop-80-resize", "known-b", {"crop": 0.8, "size": (640, 360)}),
    ("reencode-vp9", "known-b", {"codec": "libvpx-vp9", "suffix": ".webm"}),
]


@dataclass
class Built:
    root: Path
    manifest: Path
    banks: Path
    clips: dict[str, int] = field(default_factory=dict)  # kind -> count
    seconds_of_video: float = 0.0
    real_clips: Path | None = None
    elapsed_s: float = 0.0


def find_real_clips() -> Path | None:
    """The real clean clips: ``$FRAMESCAN_REAL_CLIPS``, else ``shared/testdata/real`` beside a
    folder above this package (the project's checkout layout)."""
    env = os.environ.get(REAL_ENV)
    if env:
        p = Path(env)
        if not p.is_dir():
            raise ConfigError(f"{REAL_ENV}={env}: no such folder")
        return p
    for parent in Path(__file__).resolve().parents:
        p = parent / "shared" / "testdata" / "real"
        if p.is_dir():
            return p
    return None


def _composite(photo: str, corner: str, scale_of: float = 0.45) -> Any:
    """A skimage photograph with the colorwheel stand-in pasted into one corner."""
    import numpy as np

    from ..synth import FLAGGED_IMAGE, _resize, load_image

    base = load_image(photo).copy()
    h, w = base.shape[:2]
    side = int(min(h, w) * scale_of)
    wheel = load_image(FLAGGED_IMAGE)
    wheel = _resize(wheel, side, side)
    y0, x0 = (0, 0) if corner == "tl" else (h - side, w - side)
    base[y0 : y0 + side, x0 : x0 + side] = wheel
    return np.ascontiguousarray(base)


def _standin_shots(seconds: float, ranges: list[tuple[float, float]], scale: float, photo: Any) -> list[Any]:
    from ..synth import FLAGGED_IMAGE, Shot, default_shots

    if photo is not None:
        img = _composite(*photo)
        return [Shot(0.0, seconds, photo[0], 0.9), *(Shot(a, b, img, 0.9) for a, b in ranges)]
    return [*default_shots(seconds, None), *(Shot(a, b, FLAGGED_IMAGE, scale) for a, b in ranges)]


def _copy_of(src: Path, dst: Path, cut: float = 0.0, crop: float = 1.0, size: tuple[int, int] | None = None,
             bit_rate: int | None = None, codec: str = "libx264", suffix: str = ".mp4") -> Path:  # fmt: skip
    """A re-upload of ``src``'s own frames: the first ``cut`` seconds dropped, the centre
    ``crop`` share kept, scaled to ``size``, re-encoded with ``codec`` at ``bit_rate`` (frame by
    frame: one decoded frame in memory at a time)."""
    import av

    from ..synth import _resize

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        s = None
        n = 0
        for f in inp.decode(video=0):
            if f.time is not None and f.time < cut:
                continue
            rgb = f.to_ndarray(format="rgb24")
            if crop < 1.0:
                h, w = rgb.shape[:2]
                ch, cw = int(h * crop) // 2 * 2, int(w * crop) // 2 * 2
                y0, x0 = (h - ch) // 2, (w - cw) // 2
                rgb = rgb[y0 : y0 + ch, x0 : x0 + cw]
            if size is not None:
                rgb = _resize(rgb, *size)
            if s is None:
                s = out.add_stream(codec, rate=30)
                s.width, s.height, s.pix_fmt = rgb.shape[1] // 2 * 2, rgb.shape[0] // 2 * 2, "yuv420p"
                if bit_rate:
                    s.codec_context.bit_rate = bit_rate
                if codec == "libx264":
                    s.options = {"preset": "ultrafast"}
                elif codec == "libvpx-vp9":
                    s.options = {"deadline": "realtime", "cpu-used": "8"}
            g = av.VideoFrame.from_ndarray(rgb[: s.height, : s.width].copy(), format="rgb24").reformat(format="yuv420p")
            g.pts, g.time_base = n, Fraction(1, 30)
            n += 1
            for p in s.encode(g):
                out.mux(p)
        if s is None:
            raise ConfigError(f"{src}: no frame after {cut:g} s to copy")
        for p in s.encode(None):
            out.mux(p)
    return dst


def _row(
    path: Path, root: Path, labels: dict[str, bool], segments: dict[str, list[tuple[float, float]]], kind: str
) -> dict:
    row: dict[str, Any] = {"path": str(path.relative_to(root)), **labels, "split": kind}
    for cat, segs in segments.items():
        row[f"{cat}_segments"] = [list(s) for s in segs]
    return row


def build_set(
    folder: str | os.PathLike[str], *, real: str | os.PathLike[str] | None = None, progress: TextIO | None = None
) -> Built:
    """Write the set to ``folder`` (``manifest.jsonl``, ``clips/``, ``banks.sqlite``,
    ``bank-originals/``, ``README.md``). The same encoders give the same pictures (the WebM muxer
    writes random track ids, so those two files differ byte-wise and are scanned again)."""
    try:
        import skimage  # noqa: F401
    except ImportError as ex:
        raise ConfigError("building the set needs scikit-image: pip install 'framescan[dev]'") from ex
    from ..banks import BankStore
    from ..synth import Shot, write_caption_clip, write_clip
    from ..vpdq import hash_video

    t0 = time.perf_counter()
    root = Path(folder)
    clips_dir = root / "clips"
    originals = root / "bank-originals"
    try:
        for d in (clips_dir, originals):
            d.mkdir(parents=True, exist_ok=True)
    except OSError as ex:
        raise ConfigError(f"--build-set {root}: cannot create the folder: {ex.strerror or ex}") from ex
    real_dir = Path(real) if real is not None else find_real_clips()
    built = Built(root, root / "manifest.jsonl", root / "banks.sqlite", real_clips=real_dir)
    rows: list[dict[str, Any]] = []
    no = dict.fromkeys(SET_CATEGORIES, False)

    def note(kind: str, path: Path, seconds: float) -> None:
        built.clips[kind] = built.clips.get(kind, 0) + 1
        built.seconds_of_video += seconds
        if progress is not None:
            print(f"  {kind:<9} {path.relative_to(root)}", file=progress, flush=True)

    if progress is not None:
        print(f"building the evaluation set in {root}", file=progress, flush=True)
    if real_dir is not None:
        dst = clips_dir / "real"
        dst.mkdir(exist_ok=True)
        for f in sorted(real_dir.iterdir()):
            if f.suffix.lower() == ".mp4" or f.name.startswith(("LICENSE", "README")):
                shutil.copyfile(f, dst / f.name)
            if f.suffix.lower() == ".mp4":
                rows.append(_row(dst / f.name, root, no, {}, "real-negative"))
                note("real", dst / f.name, _duration(dst / f.name))
    for name, size, seconds, photos in PHOTOS:
        half = seconds / len(photos)
        shots = [Shot(i * half, (i + 1) * half, p, 0.8) for i, p in enumerate(photos)]
        path = write_clip(clips_dir / f"photo-{name}.mp4", width=size[0], height=size[1], seconds=seconds, shots=shots)
        rows.append(_row(path, root, no, {}, "photo-negative"))
        note("photo", path, seconds)
    for name, size, seconds, codec, suffix, ranges, scale, photo in STANDIN:
        shots = _standin_shots(seconds, ranges, scale, photo)
        path = write_clip(
            clips_dir / f"standin-{name}{suffix}",
            width=size[0],
            height=size[1],
            seconds=seconds,
            codec=codec,
            shots=shots,
        )
        rows.append(_row(path, root, {**no, "sexual": True}, {"sexual": ranges}, "standin-sexual"))
        note("stand-in", path, seconds)
    for name, cat, size, seconds, caps in CAPTIONS:
        path = write_caption_clip(clips_dir / f"caption-{name}.mp4", caps, size=size, seconds=seconds)
        labels = {**no, **({cat: True} if cat else {})}
        segs = {cat: [(a, b) for a, b, _ in caps]} if cat else {}
        rows.append(_row(path, root, labels, segs, f"caption-{cat}" if cat else "caption-negative"))
        note("caption", path, seconds)
    if built.banks.exists():
        built.banks.unlink()
    with BankStore(built.banks, create=True) as store:
        store.create_bank(BANK_NAME, "sexual", "block")
        for name, photos, size, seconds in BANKED:
            third = seconds / len(photos)
            shots = [Shot(i * third, (i + 1) * third, p, 0.9) for i, p in enumerate(photos)]
            src = write_clip(originals / f"{name}.mp4", width=size[0], height=size[1], seconds=seconds, shots=shots)
            store.add_video(BANK_NAME, name, hash_video(src), source=str(src.relative_to(root)))
    for name, item, how in COPIES:
        how = dict(how)
        suffix = how.pop("suffix", ".mp4")
        path = _copy_of(originals / f"{item}.mp4", clips_dir / f"known-{name}{suffix}", suffix=suffix, **how)
        seconds = _duration(path)
        rows.append(_row(path, root, {**no, "sexual": True}, {"sexual": [(0.0, round(seconds, 3))]}, "known-content"))
        note("known", path, seconds)
    built.manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "README.md").write_text(_readme(built))
    built.elapsed_s = time.perf_counter() - t0
    return built


def _duration(path: Path) -> float:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if s.duration is not None and s.time_base is not None:
            return float(s.duration * s.time_base)
        return float(c.duration or 0) / 1e6


def _readme(b: Built) -> str:
    real = (
        f"copied from {b.real_clips} (ThreatExchange sample videos, BSD licence: clips/real/LICENSE-ThreatExchange.txt)"
        if b.real_clips is not None
        else f"NOT included: the real clips were not found (set ${REAL_ENV})"
    )
    return (
        "# framescan's evaluation set\n\n"
        "Built by `framescan eval --build-set DIR` (framescan.eval.build); nothing downloaded. "
        "`manifest.jsonl` labels every clip for sexual, hate, bullying and extremism (violence has no "
        "stand-in and is unlabelled); `split` says what kind of clip it is. The known-content copies "
        "match `banks.sqlite` (bank eval-known, category sexual, action block), whose originals are in "
        "bank-originals/ and not in the set.\n\n"
        f"- real clean clips: {real}\n"
        "- stand-ins test the pipeline (sampling, localisation, aggregation, fusion, policy), not how "
        "well the models find real harmful content: only labelled real data can show that.\n\n"
        "Evaluate: `framescan eval DIR --all-signals --ocr --banks DIR/banks.sqlite`\n"
    )


def render_built(b: Built) -> str:
    parts = ", ".join(f"{k} {n}" for k, n in b.clips.items())
    lines = [
        f"evaluation set written to {b.root}: {sum(b.clips.values())} clips ({parts}), "
        f"{b.seconds_of_video:.0f} s of video, built in {b.elapsed_s:.0f} s",
        f"  manifest {b.manifest}, bank database {b.banks}",
    ]
    if b.real_clips is None:
        lines.append(f"  the real clean clips were not found: set {REAL_ENV} to their folder and build again")
    lines.append(f"  evaluate: framescan eval {b.root} --all-signals --ocr --banks {b.banks}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(render_built(build_set(sys.argv[1], progress=sys.stderr)))
