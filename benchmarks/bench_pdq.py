"""Benchmark PDQ hashing per frame and bank queries (brute force vs multi-index), as medians.

    python benchmarks/bench_pdq.py                 # full run, writes benchmarks/PDQ_RESULTS.md
    python benchmarks/bench_pdq.py --quick --no-write

Banks are synthetic: "uniform" hashes are independent random 256-bit values (the best case
for the multi-index: every 16-bit chunk value equally likely); "clustered" hashes imitate
video: 100 frames per video, each a few bits from the previous one, so chunk values repeat
and index buckets are fuller. Each query batch has planted neighbours, so there are matches.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framescan import banks, pdq, vpdq  # noqa: E402

FRAME_SHAPES = [(720, 480), (720, 1280), (1080, 1920)]  # rows, cols: chair (portrait), 720p, 1080p
LINE_PADDING = 64  # a decoder's line padding: hash strided Y-plane views, as the pipeline does
BANK_SIZES = [10_000, 100_000, 1_000_000]
BATCH = 30  # a 30 s clip at one hash per second
FRAMES_PER_VIDEO = 100  # clustered banks
STEP_FLIPS = (0, 6)  # clustered banks: bits flipped between consecutive frames (uniform range)
CHAIR = ROOT / "tests" / "data" / "vpdq" / "chair-19-sd-bar.mp4"


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (compilation, caches)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def flip(h: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    out = h.copy()
    for b in rng.choice(pdq.HASH_BITS, size=n, replace=False):
        out[pdq.HASH_WORDS - 1 - b // 64] ^= np.uint64(1) << np.uint64(b % 64)
    return out


def uniform_bank(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.integers(0, 2**64, size=(size, pdq.HASH_WORDS), dtype=np.uint64)


def clustered_bank(rng: np.random.Generator, size: int) -> np.ndarray:
    """Random walks: each video starts at a random hash, each next frame flips a few bits."""
    videos = -(-size // FRAMES_PER_VIDEO)
    steps = np.zeros((videos, FRAMES_PER_VIDEO, pdq.HASH_BYTES), dtype=np.uint8)
    flips = rng.integers(*STEP_FLIPS, endpoint=True, size=(videos, FRAMES_PER_VIDEO))
    flips[:, 0] = 0
    v, f = np.nonzero(flips)
    v, f = np.repeat(v, flips[v, f]), np.repeat(f, flips[v, f])
    bits = rng.integers(0, pdq.HASH_BITS, size=len(v))
    np.bitwise_xor.at(steps, (v, f, bits // 8), (1 << (bits % 8)).astype(np.uint8))
    walk = np.bitwise_xor.accumulate(steps, axis=1)
    start = rng.integers(0, 256, size=(videos, 1, pdq.HASH_BYTES), dtype=np.uint8)
    raw = (walk ^ start).reshape(-1, pdq.HASH_BYTES)[:size]
    return np.ascontiguousarray(raw).view(np.uint64).reshape(size, pdq.HASH_WORDS)


def queries_for(rng: np.random.Generator, bank: np.ndarray, n: int) -> np.ndarray:
    """Half near a bank hash (5-30 bits away), half random."""
    q = uniform_bank(rng, n)
    for i in range(0, n, 2):
        q[i] = flip(bank[rng.integers(len(bank))], rng, int(rng.integers(5, 31)))
    return q


def bench_hashing(repeats: int) -> list[str]:
    rng = np.random.default_rng(0)
    lines = [
        "| frame (rows x cols) | framescan `pdq_hash` (Y plane, limited) | pdqhash (C++ reference, RGB in) |",
        "|---|---|---|",
    ]
    try:
        import pdqhash
    except ImportError:
        pdqhash = None
    from skimage import data, transform

    photo = data.astronaut()
    for rows, cols in FRAME_SHAPES:
        rgb = (transform.resize(photo, (rows, cols), anti_aliasing=False) * 255).astype(np.uint8)
        y = np.empty((rows, cols + LINE_PADDING), np.uint8)
        y[:, :cols] = pdq.luma_from_rgb(rgb).astype(np.uint8)
        y[:, cols:] = rng.integers(0, 255, size=(rows, LINE_PADDING))
        view = y[:, :cols]
        ours = median_ms(lambda v=view: pdq.pdq_hash(v, luma_range="limited"), repeats)
        ref = f"{median_ms(lambda r=rgb: pdqhash.compute(r), repeats):.2f} ms" if pdqhash else "not installed"
        lines.append(f"| {rows} x {cols} | {ours:.2f} ms | {ref} |")
        print(lines[-1], flush=True)
    t = time.perf_counter()
    n = len(vpdq.hash_video(CHAIR, seconds_per_hash=0))
    dt = time.perf_counter() - t
    lines.append("")
    lines.append(
        f"End to end, `hash_video(chair-19-sd-bar.mp4, seconds_per_hash=0)` (PyAV decode of every "
        f"480x720 frame + hash): {n} frames in {dt:.2f} s, {dt / n * 1e3:.2f} ms per frame."
    )
    print(lines[-1], flush=True)
    return lines


def bench_queries(sizes: list[int], repeats: int, measured: dict[tuple[str, int], tuple[float, ...]]) -> list[str]:
    lines = [
        "| bank | hashes | brute force, 1 query | index, 1 query | brute force, 30 queries "
        "| index, 30 queries | index build |",
        "|---|---|---|---|---|---|---|",
    ]
    banks.MultiIndex(uniform_bank(np.random.default_rng(0), 10))  # compile the build kernels first
    for kind, make in (("uniform", uniform_bank), ("clustered", clustered_bank)):
        for size in sizes:
            rng = np.random.default_rng(size)
            bank = make(rng, size)
            singles = queries_for(rng, bank, repeats + 1)
            batch = queries_for(rng, bank, BATCH)
            it = iter(range(10**9))

            def one_brute(b=bank, s=singles, it=it) -> object:
                return banks.brute_force_search(s[next(it) % len(s)][None], b)

            t = time.perf_counter()
            index = banks.MultiIndex(bank)
            build = time.perf_counter() - t
            brute_1 = median_ms(one_brute, repeats)
            index_1 = median_ms(lambda s=singles, ix=index, it=it: ix.search(s[next(it) % len(s)][None]), repeats)
            brute_b = median_ms(lambda b=bank, q=batch: banks.brute_force_search(q, b), max(3, repeats // 4))
            index_b = median_ms(lambda q=batch, ix=index: ix.search(q), max(3, repeats // 4))
            a = {tuple(r) for r in zip(*(x.tolist() for x in banks.brute_force_search(batch, bank)), strict=True)}
            b = {tuple(r) for r in zip(*(x.tolist() for x in index.search(batch)), strict=True)}
            assert a == b, "index and brute force disagree"
            measured[(kind, size)] = (brute_1, index_1, brute_b, index_b)
            lines.append(
                f"| {kind} | {size:,} | {brute_1:.3f} ms | {index_1:.3f} ms | {brute_b:.2f} ms "
                f"| {index_b:.3f} ms | {build:.2f} s |"
            )
            print(lines[-1], flush=True)
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, banks up to 100k")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement")
    ap.add_argument("--output", default=str(ROOT / "benchmarks" / "PDQ_RESULTS.md"))
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    repeats = args.repeats or (5 if args.quick else 21)
    sizes = BANK_SIZES[:2] if args.quick else BANK_SIZES
    command = "python " + " ".join(["benchmarks/bench_pdq.py", *sys.argv[1:]])
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor(),
    )
    header = [
        "# PDQ / vPDQ benchmark results",
        "",
        f"Command: `{command}` (medians of {repeats} runs after a warm-up).",
        f"Machine: {cpu}, {os.cpu_count()} cores (shared with other work while measured), "
        f"Python {platform.python_version()}, NumPy {np.__version__}.",
        "",
        "## Hashing one frame",
        "",
    ]
    hashing = bench_hashing(repeats)
    measured: dict[tuple[str, int], tuple[float, ...]] = {}
    queries = bench_queries(sizes, repeats, measured)
    biggest = max(sizes)
    b1, i1, bb, ib = (max(measured[(k, biggest)][n] for k in ("uniform", "clustered")) for n in range(4))
    text = "\n".join(
        header
        + hashing
        + [
            "",
            "## Bank queries (radius 31)",
            "",
            "Times per call; a 30-query call is one clip's frame hashes searched together.",
            "",
        ]
        + queries
        + [
            "",
            "## Notes",
            "",
            "- `pdq_hash` takes the strided uint8 Y plane and does the whole hash (luma fill, two Jarosz",
            "  passes, 64x64 quality, DCT, median, bits) in Numba on one core. The pdqhash column is the",
            "  reference C++ through its Cython binding, timed from an RGB array: it includes pdqhash's",
            "  float64 NumPy RGB->luma step, and its column box filter walks memory with a row stride.",
            "- Brute force streams the whole bank once per call (bank-major, all queries of the call in",
            "  the inner loop, early exit after two of the four words). The multi-index is exact for",
            "  radius 31 (16 chunks x 16 bits, each chunk probed at distance <= 1); the benchmark checks",
            "  that it returns the same pairs as brute force.",
            f"- `BankMatcher` switches to the index at {banks.INDEX_MIN_HASHES:,} hashes. Here, at {biggest:,}",
            f"  hashes, brute force took up to {b1:.1f} ms for one query and {bb:.0f} ms for a clip's {BATCH}",
            f"  hashes, the index {i1:.2f} ms and {ib:.1f} ms (brute force single queries measured 3.5-5.7 ms",
            "  over several runs on this shared machine: at the 5 ms budget). Below 100k hashes brute",
            "  force stays under 0.5 ms per query and the index's memory (72 bytes per hash plus 4 MB)",
            "  is not worth it.",
        ]
    )
    if not args.no_write:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
