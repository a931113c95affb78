"""Measure how the image signals combine: false reviews on clean footage and finds on stand-in
positives, per signal, under the plain maximum and under the manifests' calibrated fusion.

    python benchmarks/accuracy_fusion.py [--dir /tmp/framescan-fusion] [--json out.json]

It builds (once, in ``--dir``) generated clean clips of ``skimage.data`` photographs and
textures, moving and zooming (``framescan.synth``), and stand-in positives (the ``colorwheel``
image NudeNet calls ``BUTTOCKS_EXPOSED``, at several sizes, durations and codecs); scans them
and the real clips in ``--real`` (``shared/testdata/real``) once with every image model and the
timeline kept (reports cached in ``--dir/reports``); then re-scores every clip offline from its
timeline through ``SignalIndex.category_scores`` and ``ClipAggregator`` (the scan's own
functions) under each fusion: ``max`` (every label's raw score x weight, no calibration: the
fusion before issue 19), two alternatives for nsfwjs ``Porn`` (a per-label threshold, two
frames in a row) and ``calibrated`` (the manifests' ``calibration`` sections). It prints
Markdown tables (benchmarks/ACCURACY.md, "Fusion and calibration").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REAL = REPO.parent.parent / "shared" / "testdata" / "real"
if not REAL.is_dir():
    REAL = Path("/work/shared/testdata/real")

#: Clean generated clips: (name, images shown in turn, width, height). Each image is shown
#: zooming in (scale 0.6 -> 0.9 -> 1.2 -> 1.6 of the frame's shorter side, drifting), over the
#: synth's moving background. Photographs and textures (brick, grass, gravel: the kind of
#: surface a classifier mistakes for skin).
CLEAN = (
    ("clean-astronaut-coffee", ("astronaut", "coffee"), 360, 640),
    ("clean-chelsea-rocket", ("chelsea", "rocket"), 640, 360),
    ("clean-camera-motorcycle", ("camera", "stereo_motorcycle"), 360, 640),
    ("clean-hubble-ihc", ("hubble_deep_field", "immunohistochemistry"), 640, 360),
    ("clean-coins-moon", ("coins", "moon"), 360, 640),
    ("clean-retina-clock", ("retina", "clock"), 640, 360),
    ("clean-brick-grass", ("brick", "grass"), 360, 640),
    ("clean-gravel-page", ("gravel", "page"), 640, 360),
    ("clean-text-logo", ("text", "logo"), 360, 640),
    ("clean-horse-checker", ("horse", "checkerboard"), 640, 360),
    ("clean-cat-microaneurysms", ("cat", "microaneurysms"), 360, 640),
    ("clean-astronaut-hd", ("astronaut", "chelsea"), 720, 1280),
)
#: Clean clips kept out of the choice of the fusion rule (measured once the rule was chosen, to
#: see whether it holds beyond the data it was chosen on): matplotlib's sample photographs
#: (Grace Hopper, a present), a montage of 100 real face photographs (skimage's LFW subset),
#: a microscope image of cells, binary blobs and the Shepp-Logan phantom.
HELDOUT = (
    ("heldout-hopper-present", ("mpl:grace_hopper.jpg", "mpl:Minduka_Present_Blue_Pack.png"), 360, 640),
    ("heldout-faces-cell", ("lfw_montage", "cell"), 640, 360),
    ("heldout-blobs-phantom", ("binary_blobs", "shepp_logan_phantom"), 360, 640),
)
ZOOM = (0.6, 0.9, 1.2, 1.6)
SHOT_SECONDS = 1.5

#: Stand-in positives: (name, write_clip keyword arguments, flagged interval). The first two are
#: the test suite's ``flagged_clip`` and ``short_flagged``.
POSITIVES: tuple[tuple[str, dict[str, Any], tuple[float, float]], ...] = (
    ("pos-suite-flagged", dict(width=720, height=1280, seconds=15), (6.0, 8.0)),
    ("pos-suite-short", dict(width=360, height=640, seconds=4, fps=15), (1.0, 3.0)),
    ("pos-0.5s", dict(width=360, height=640, seconds=6, fps=15), (2.0, 2.5)),
    ("pos-1s-landscape", dict(width=640, height=360, seconds=6, fps=15), (3.0, 4.0)),
    ("pos-3s-hevc", dict(width=360, height=640, seconds=6, fps=15, codec="libx265"), (1.5, 4.5)),
    ("pos-2s-vp9", dict(width=360, height=640, seconds=6, fps=15, codec="libvpx-vp9"), (0.0, 2.0)),
    ("pos-1s-end", dict(width=480, height=480, seconds=5, fps=15), (4.0, 5.0)),
)
#: Smaller colorwheels (share of the shorter side): found or not, per fusion.
SMALL = ((0.8, "pos-scale0.8"), (0.6, "pos-scale0.6"))


def _image(name: str) -> Any:
    """An image for a shot: a skimage.data name, ``mpl:<file>`` (matplotlib's sample data) or
    ``lfw_montage`` (100 of skimage's 25x25 LFW faces in a 10x10 grid)."""
    import numpy as np

    if name.startswith("mpl:"):
        import cv2
        from matplotlib import cbook

        path = str(cbook.get_sample_data(name[4:], asfileobj=False))
        return np.ascontiguousarray(cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1])
    if name == "lfw_montage":
        from skimage import data

        faces = data.lfw_subset()[:100]
        return faces.reshape(10, 10, 25, 25).transpose(0, 2, 1, 3).reshape(250, 250)
    return name


def build(d: Path) -> list[tuple[str, Path, tuple[float, float] | None]]:
    """Write the generated clips (once) and return (name, path, flagged interval or None)."""
    from framescan.synth import FLAGGED_IMAGE, Shot, write_clip

    d.mkdir(parents=True, exist_ok=True)
    out: list[tuple[str, Path, tuple[float, float] | None]] = []
    for name, images, w, h in CLEAN + HELDOUT:
        shots, t = [], 0.0
        for img in images:
            for z in ZOOM:
                shots.append(Shot(t, t + SHOT_SECONDS, _image(img), z))
                t += SHOT_SECONDS
        path = d / f"{name}.mp4"
        if not path.exists():
            write_clip(path, width=w, height=h, seconds=t, fps=15, shots=shots)
        out.append((name, path, None))
    for name, kw, flagged in POSITIVES:
        path = d / f"{name}{'.webm' if kw.get('codec') == 'libvpx-vp9' else '.mp4'}"
        if not path.exists():
            write_clip(path, flagged=flagged, **kw)
        out.append((name, path, flagged))
    for scale, name in SMALL:
        path = d / f"{name}.mp4"
        if not path.exists():
            from framescan.synth import default_shots

            shots = [*default_shots(6.0, None), Shot(2.0, 4.0, FLAGGED_IMAGE, scale)]
            write_clip(path, width=360, height=640, seconds=6, fps=15, shots=shots)
        out.append((name, path, (2.0, 4.0)))
    return out


def scan_all(clips: Iterable[tuple[str, Path, Any]], d: Path) -> dict[str, dict[str, Any]]:
    """Every clip's report with its timeline, every image model (cached as JSON in ``d``)."""
    from framescan.models import ALL_SIGNAL_MODELS

    d.mkdir(parents=True, exist_ok=True)
    reports, scanner = {}, None
    for name, path, _ in clips:
        f = d / f"{name}.json"
        if not f.exists():
            if scanner is None:
                from framescan import Scanner

                scanner = Scanner(list(ALL_SIGNAL_MODELS), timeline=True, banks=False)
            t0 = time.perf_counter()
            f.write_text(json.dumps(scanner.scan(path).to_dict()))
            print(f"scanned {name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        reports[name] = json.loads(f.read_text())
    return reports


@dataclass
class Outcome:
    decision: str
    segments: list[tuple[float, float]]  # sexual/violence segments (start, end)
    reasons: dict[str, float]  # "model:label" -> its best raw score on a frame that hit


#: The fusions compared: the manifests' calibration replaced by these per-label calibrations
#: ("model:label" -> LabelCalibration keyword arguments), or as shipped (None). ``two frames``
#: is simulated here (not a rule framescan ships): nsfwjs ``Porn`` counts only on a frame whose
#: previous or next scored frame also has it at the review threshold.
FUSIONS: dict[str, dict[str, dict[str, float]] | None] = {
    "max": {},
    "threshold 0.75": {"nsfwjs-mobilenetv2:Porn": {"min_score": 0.75}},
    "two frames": {},
    "calibrated": None,
}
TEXTURE_LABEL = "nsfwjs-mobilenetv2:Porn"


def rescore(report: dict[str, Any], manifests: list[Any], models: Iterable[str], fusion: str) -> Outcome:
    """The clip's decision from its timeline alone, with only ``models``' signals, through the
    scan's fusion (``SignalIndex.fuse``, ``ClipAggregator``, ``decide``) under ``fusion``."""
    from framescan.aggregate import ClipAggregator
    from framescan.decide import decide
    from framescan.models import LabelCalibration
    from framescan.policy import DEFAULT_POLICY
    from framescan.score import FrameScore, SignalIndex

    use = [m for m in manifests if m.name in set(models)]
    cal = FUSIONS[fusion]
    if cal is not None:
        use = [
            replace(
                m,
                calibration={
                    k.split(":", 1)[1]: LabelCalibration(**v) for k, v in cal.items() if k.split(":", 1)[0] == m.name
                },
            )
            for m in use
        ]
    index = SignalIndex.of(use)
    policy = DEFAULT_POLICY
    signals = {c: [m.name for m in use if c in m.categories] for c in ("sexual", "violence")}
    agg = ClipAggregator(policy, signals)
    tl = report["timeline"]
    names = [m.name for m in use]
    keys = [k for k in tl["labels"] if k.split(":", 1)[0] in names]
    if fusion == "two frames" and TEXTURE_LABEL in keys:
        v = tl["labels"][TEXTURE_LABEL]
        on = [x >= policy.rule("sexual").review for x in v]
        kept = [
            x if on[i] and ((i > 0 and on[i - 1]) or (i + 1 < len(v) and on[i + 1])) else 0.0 for i, x in enumerate(v)
        ]
        tl = {**tl, "labels": {**tl["labels"], TEXTURE_LABEL: kept}}
    hits: dict[str, float] = {}
    for i, (t, fi) in enumerate(zip(tl["time"], tl["frame_index"])):
        fs = FrameScore(fi, t, labels={k: tl["labels"][k][i] for k in keys if tl["labels"][k][i] > 0})
        index.fuse(fs)
        agg.update(fs)
    agg.finish(report["coverage"]["decoded_seconds"])
    verdict = decide(agg.results, None, False)
    segs = []
    for r in verdict.categories.values():
        for s in r.segments:
            segs.append((s.start, s.end))
            for k in keys:
                for i, t in enumerate(tl["time"]):
                    cat, weight = index.signals.get(k, ("", 0.0))
                    v = tl["labels"][k][i]
                    if s.start <= t <= s.last_hit and cat == r.category and v * weight >= policy.rule(cat).review:
                        hits[k] = max(hits.get(k, 0.0), v)
    return Outcome(str(verdict.decision), segs, hits)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/framescan-fusion"))
    ap.add_argument("--real", type=Path, default=REAL)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    from framescan.models import ALL_SIGNAL_MODELS, DEFAULT_MODEL, load_manifest

    clips = [(p.stem, p, None) for p in sorted(args.real.glob("*.mp4"))] + build(args.dir / "clips")
    flagged = {n: f for n, _, f in clips}
    reports = scan_all(clips, args.dir / "reports")
    manifests = [load_manifest(m) for m in ALL_SIGNAL_MODELS]
    real = [n for n, _, f in clips if f is None and not n.startswith(("clean-", "heldout-"))]
    gen = [n for n, _, f in clips if n.startswith("clean-")]
    held = [n for n, _, f in clips if n.startswith("heldout-")]
    pos = [n for n, _, f in clips if f is not None]
    combos = {
        "default model alone": (DEFAULT_MODEL,),
        "nsfwjs alone": ("nsfwjs-mobilenetv2",),
        "nanodet alone": ("nanodet-coco",),
        "all signals": ALL_SIGNAL_MODELS,
        **{f"all but {m.split('-')[0]}": tuple(x for x in ALL_SIGNAL_MODELS if x != m) for m in ALL_SIGNAL_MODELS},
    }
    figures: dict[str, Any] = {}
    for fusion in FUSIONS:
        for combo, models in combos.items():
            if fusion in ("threshold 0.75", "two frames") and combo != "all signals":
                continue
            out = {n: rescore(reports[n], manifests, models, fusion) for n in reports}
            found = {}
            for n in pos:
                a, b = flagged[n]  # type: ignore[misc]
                found[n] = out[n].decision != "allow" and any(s < b and e > a for s, e in out[n].segments)
            figures[f"{fusion}/{combo}"] = {
                "real_review": sorted(n for n in real if out[n].decision != "allow"),
                "generated_review": sorted(n for n in gen if out[n].decision != "allow"),
                "heldout_review": sorted(n for n in held if out[n].decision != "allow"),
                "positives_found": sorted(n for n in pos if found[n]),
                "false_signals": sorted(
                    {k for n in real + gen + held if out[n].decision != "allow" for k in out[n].reasons}
                ),
                "detail": {
                    n: {"decision": out[n].decision, "segments": out[n].segments, "signals": out[n].reasons}
                    for n in out
                },
            }
    print(
        f"clean: {len(real)} real clips ({args.real}), {len(gen)} generated, {len(held)} held out "
        f"(not used to choose the rule); stand-in positives: {len(pos)}\n"
    )
    print(
        "| fusion | signals | real clean -> review/block | generated clean | held-out clean | "
        "positives found (with segment) | signals behind the false reviews |"
    )
    print("|---|---|---|---|---|---|---|")
    for key, f in figures.items():
        fusion, combo = key.split("/")
        print(
            f"| {fusion} | {combo} | {len(f['real_review'])}/{len(real)} | {len(f['generated_review'])}/{len(gen)} | "
            f"{len(f['heldout_review'])}/{len(held)} | {len(f['positives_found'])}/{len(pos)} | "
            f"{', '.join(f['false_signals']) or '-'} |"
        )
    print()
    for key, f in figures.items():
        flagged_clean = f["real_review"] + f["generated_review"] + f["heldout_review"]
        if flagged_clean or len(f["positives_found"]) < len(pos):
            missed = sorted(set(pos) - set(f["positives_found"]))
            print(f"{key}: clean flagged {flagged_clean}; positives missed {missed}")
    print("\nStand-in positives, every image model: decision and segments (s) under each fusion.\n")
    print(f"| clip | flagged | {' | '.join(FUSIONS)} |")
    print(f"|---|---|{'---|' * len(FUSIONS)}")
    for n in pos:
        cells = []
        for fusion in FUSIONS:
            det = figures[f"{fusion}/all signals"]["detail"][n]
            cells.append(f"{det['decision']} {', '.join(f'{a:g}-{b:g}' for a, b in det['segments'])}")
        print(f"| {n} | {flagged[n][0]:g}-{flagged[n][1]:g} | {' | '.join(cells)} |")  # type: ignore[index]
    print("\nRaw score of each category-feeding signal: highest on any frame of the real clean clips, of the")
    print("generated clean clips, and of the stand-in positives' flagged intervals.\n")
    print("| signal | weight | real clean max | generated clean max | held-out clean max | stand-in positives max |")
    print("|---|---|---|---|---|---|")
    index = {f"{m.name}:{lab.name}": lab.weight for m in manifests for lab in m.labels if lab.category}
    for key, weight in index.items():
        cols = []
        for names in (real, gen, held, pos):
            best = 0.0
            for n in names:
                tl = reports[n]["timeline"]
                a, b = flagged[n] or (-1.0, 1e9)
                for t, v in zip(tl["time"], tl["labels"].get(key, [])):
                    if a - 0.5 <= t < b:
                        best = max(best, v)
            cols.append(f"{best:.3f}")
        print(f"| {key} | {weight:g} | {' | '.join(cols)} |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
