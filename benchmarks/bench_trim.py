"""Square vs trimmed canvas, stage by stage, on a 720x1280 (9:16) clip.

    python benchmarks/bench_trim.py                       # all three parts, 5 rounds
    python benchmarks/bench_trim.py --part preprocess --against /tmp/old-checkout
    python benchmarks/bench_trim.py --part inference --manifests models/nudenet-320n-int8.json /tmp/pinned.json
    python benchmarks/bench_trim.py --part inference --batches 4 8 --no-spin --rounds 7 \
        --manifests nudenet-320n-trim nudenet-320n-int8-trim      # batch size, as sampled scans run

Parts (each interleaved: every round runs every variant once, medians reported):

- ``inference``: an isolated ONNX Runtime session per manifest (2 threads, spinning on as in
  every-frame scans, or off with ``--no-spin`` as in sampled scans), ms/frame at each of
  ``--batches`` (default 8) on the square input (320x320) and, where the graph takes any
  size, on the trimmed one (320x192 for 9:16).
- ``preprocess``: ``preprocess_into`` ms/frame on 20 decoded frames of the clip, square vs
  trimmed spec, upright and (the same planes flagged) rotated 90 degrees as phone clips are
  stored. ``--against DIR`` loads another checkout's ``framescan.preprocess`` into the same
  process under another name and interleaves its runs with this one's: on a VM whose speed
  drifts, only such in-process pairs give a stable ratio.
- ``scan``: ``Scanner(all_frames=True).scan`` seconds with ``nudenet-320n`` vs
  ``nudenet-320n-trim`` (warm scanners, alternating order).

The clip is the one ``framescan bench`` generates (``framescan.bench.ensure_clip``, cached).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _interleaved(runs: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Median of each run's value over ``rounds`` rounds (order flipped every round)."""
    values: dict[str, list[float]] = {k: [] for k in runs}
    for _, run in runs.items():  # warm-up
        run()
    for r in range(rounds):
        for k in list(runs) if r % 2 == 0 else list(reversed(runs)):
            values[k].append(runs[k]())
    return {k: statistics.median(v) for k, v in values.items()}


def bench_inference(
    manifests: Sequence[str], rounds: int, batches: Sequence[int] = (8,), spinning: bool = True
) -> dict[str, float]:
    import numpy as np

    from framescan.infer import OnnxModel
    from framescan.models import load_manifest

    rng = np.random.default_rng(0)
    runs: dict[str, Callable[[], float]] = {}
    for name in manifests:
        m = load_manifest(name)
        model = OnnxModel(m, threads=2, allow_spinning=spinning)
        inp = model.session.get_inputs()[0]
        sizes = {"square": m.input.shape}
        if not isinstance(inp.shape[2], int) and not isinstance(inp.shape[3], int):
            trim = dataclasses.replace(m.input, trim_multiple=32)
            sizes["trimmed"] = trim.shape_for(720, 1280)
        for label, shape in sizes.items():
            for batch in batches:
                x = rng.random((batch, *shape), dtype=np.float32)
                reps = max(1, 32 // batch)

                def run(model: OnnxModel = model, x: np.ndarray = x, reps: int = reps) -> float:
                    t = time.perf_counter()
                    for _ in range(reps):
                        model.raw(x)
                    return (time.perf_counter() - t) * 1000.0 / (reps * len(x))

                runs[f"{m.name} {label} {'x'.join(map(str, shape))} batch {batch} ms/frame"] = run
    return _interleaved(runs, rounds)


def _other_framescan(checkout: Path) -> Any:
    """``framescan`` of another checkout, imported as package ``framescan_other``."""
    import importlib.util

    init = checkout.resolve() / "framescan" / "__init__.py"
    spec = importlib.util.spec_from_file_location("framescan_other", init, submodule_search_locations=[])
    assert spec is not None and spec.loader is not None
    spec.submodule_search_locations.append(str(init.parent))  # type: ignore[union-attr]
    mod = importlib.util.module_from_spec(spec)
    sys.modules["framescan_other"] = mod
    spec.loader.exec_module(mod)
    return mod


def bench_preprocess(clip: Path, rounds: int, against: Path | None = None) -> dict[str, float]:
    import importlib

    import av

    import framescan
    from framescan.decode import to_yuv_frame
    from framescan.models import load_manifest

    with av.open(str(clip)) as c:
        decoded = [to_yuv_frame(f, i, 0.0) for i, f in zip(range(20), c.decode(video=0))]
    packages = {"": framescan} | ({" (against)": _other_framescan(against)} if against else {})
    full = load_manifest("nudenet-320n").input
    runs: dict[str, Callable[[], float]] = {}
    for tag, pkg in packages.items():
        pre = importlib.import_module(f"{pkg.__name__}.preprocess")
        fr = importlib.import_module(f"{pkg.__name__}.frames")
        square = pre.InputSpec(**{f.name: getattr(full, f.name) for f in dataclasses.fields(full) if f.name != "resize"},
                               resize=full.resize.value)  # fmt: skip
        for rotation in (0, 90):
            frames = [
                fr.YuvFrame(d.y, d.u, d.v, d.index, d.time, rotation, fr.ColorInfo(d.color.matrix, d.color.full_range))
                for d in decoded
            ]
            for label, spec in (("square", square), ("trimmed", dataclasses.replace(square, trim_multiple=32))):
                out = pre.batch_view(spec.empty_batch(8), spec.shape_for(*frames[0].upright_size))

                def run(pre=pre, frames=frames, spec=spec, out=out) -> float:
                    t = time.perf_counter()
                    for _ in range(5):
                        for i, f in enumerate(frames):
                            pre.preprocess_into(f, spec, out[i % 8])
                    return (time.perf_counter() - t) * 1000.0 / (5 * len(frames))

                shape = "x".join(map(str, out.shape[1:]))
                runs[f"preprocess {label} rot{rotation} {shape} ms/frame{tag}"] = run
    return _interleaved(runs, rounds)


def bench_scan(clip: Path, rounds: int) -> dict[str, float]:
    from framescan import Scanner

    runs: dict[str, Callable[[], float]] = {}
    for name in ("nudenet-320n", "nudenet-320n-trim"):
        scanner = Scanner([name], all_frames=True, banks=False)

        def run(scanner: Scanner = scanner) -> float:
            t = time.perf_counter()
            scanner.scan(clip)
            return time.perf_counter() - t

        runs[f"every-frame scan {name} s"] = run
    return _interleaved(runs, rounds)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=("all", "inference", "preprocess", "scan"), default="all")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--manifests", nargs="+", default=["nudenet-320n", "nudenet-320n-int8"])
    ap.add_argument("--batches", nargs="+", type=int, default=[8], help="inference part: batch sizes")
    ap.add_argument("--no-spin", dest="spinning", action="store_false", help="inference part: ORT threads do not spin")
    ap.add_argument("--framescan-from", default=None, help="import framescan from this checkout")
    ap.add_argument("--against", type=Path, default=None,
                    help="preprocess part: also time this checkout's kernel, in the same process")  # fmt: skip
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(args.framescan_from).resolve() if args.framescan_from else ROOT))
    from framescan.bench import default_clip_dir, ensure_clip

    clip, _ = ensure_clip(default_clip_dir(), 720, 1280, 15.0, 30)
    results: dict[str, float] = {}
    if args.part in ("all", "inference"):
        results |= bench_inference(args.manifests, args.rounds, args.batches, args.spinning)
    if args.part in ("all", "preprocess"):
        results |= bench_preprocess(clip, args.rounds, args.against)
    if args.part in ("all", "scan"):
        results |= bench_scan(clip, max(1, args.rounds // 2 * 2 - 1))
    for k, v in results.items():
        print(f"{k:<58} {v:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
