"""What evidence frames and the HTML report add to a default scan of the Quick start clip.

Two scanners in one process, the default one and one with evidence frames and the timeline (what
``framescan scan --evidence DIR --html OUT`` asks for), scan the Quick start clip (15 s
720x1280 H.264, flagged 6-8 s) in alternation; the second run's time includes writing the
evidence files and the HTML page. Prints the median wall and CPU times of each and their ratios
(CPU time is the steadier figure on a shared machine).

    python benchmarks/bench_evidence.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()

    from framescan import Scanner
    from framescan.evidence import write_images
    from framescan.htmlreport import run_page
    from framescan.synth import write_clip

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        clip = write_clip(d / "clip.mp4", width=720, height=1280, seconds=15, flagged=(6.0, 8.0))
        plain = Scanner(banks=False)
        full = Scanner(banks=False, evidence=True, timeline=True)

        def run_plain() -> tuple[float, float]:
            t0, c0 = time.perf_counter(), time.process_time()
            plain.scan(clip)
            return time.perf_counter() - t0, time.process_time() - c0

        def run_full(i: int) -> tuple[float, float]:
            t0, c0 = time.perf_counter(), time.process_time()
            r = full.scan(clip)
            write_images(r, d / f"ev{i}", d)
            (d / f"r{i}.html").write_text(run_page([r]))
            return time.perf_counter() - t0, time.process_time() - c0

        run_plain(), run_full(-1)  # warm-up
        a: list[tuple[float, float]] = []
        b: list[tuple[float, float]] = []
        for i in range(args.rounds):
            if i % 2:
                a.append(run_plain())
                b.append(run_full(i))
            else:
                b.append(run_full(i))
                a.append(run_plain())
        for k, what in ((0, "wall"), (1, "CPU (all threads of this process)")):
            ma, mb = statistics.median(x[k] for x in a), statistics.median(x[k] for x in b)
            pairs = statistics.median(y[k] / x[k] for x, y in zip(a, b))
            print(f"{what}: default scan median {ma:.3f} s, + evidence frames + HTML page {mb:.3f} s (n={len(a)})")
            print(f"  ratio of medians {mb / ma:.3f}; median of paired ratios {pairs:.3f}")
        # the added work on its own (steadier than the difference of two noisy totals): copying the
        # sampled frames, drawing and encoding the evidence frames, writing them and the page
        from framescan.decode import FrameDecoder
        from framescan.evidence import EvidenceCapture
        from framescan.probe import as_source, open_container, select_video_stream
        from framescan.score import FrameScore

        report = full.scan(clip)
        by_index: dict[int, list] = {}
        for e in report.evidence_items():
            by_index.setdefault(e.frame_index, []).append(e)
        parts: list[float] = []
        for i in range(5):
            src = as_source(clip)
            c = open_container(src)
            frames = list(FrameDecoder(c, select_video_stream(c, src.name), plain.sampler()))
            cap = EvidenceCapture()
            t0 = time.perf_counter()
            for f in frames:
                cap.add(f)
                fs = FrameScore(f.index, f.time)
                for e in by_index.get(f.index, []):
                    fs.add(e)
                cap.scored(fs)
            report.images = cap.images(report.evidence_items())
            write_images(report, d / f"part{i}", d)
            (d / f"part{i}.html").write_text(run_page([report]))
            parts.append(time.perf_counter() - t0)
            del frames
            c.close()
        part = statistics.median(parts)
        base = statistics.median(x[0] for x in a)
        print(
            f"the added work alone ({len(report.images)} evidence frames): median {part * 1000:.0f} ms = "
            f"{100 * part / base:.1f}% of the default scan's median wall time"
        )


if __name__ == "__main__":
    main()
