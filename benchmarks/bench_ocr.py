"""On-screen text reading: time per read frame and word recall, shrunk (540x960) vs full size.

    python benchmarks/bench_ocr.py                 # 3 interleaved rounds; prints a markdown table
    python benchmarks/bench_ocr.py --rounds 5 --defaults

A generated 720x1280 clip (``write_caption_clip``: panning noisy background, 12 outlined captions
of 0.9 s, harmless and lexicon ones, Indonesian and English). From each caption one mid-caption
frame, plus 10 frames without text. Per configuration: word recall over the 12 captions (a word
counts when it appears among the words read) and, over ``--rounds`` interleaved rounds (every
configuration on the same frame back to back), the median time per read frame for caption and
no-text frames. These are the figures in docs/ocr.md.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framescan.decode import to_yuv_frame  # noqa: E402
from framescan.ocr import OcrReader, frame_to_rgb  # noqa: E402
from framescan.synth import write_caption_clip  # noqa: E402

CAPTIONS = [
    "dasar goblok",
    "kill yourself loser",
    "selamat pagi semua teman teman, jangan lupa makan siang ya",
    "bunuh diri aja lu gak ada yang peduli",
    "resep nasi goreng kampung paling enak",
    "nobody likes you, you are worthless",
    "cina babi usir dari sini",
    "tutorial makeup natural untuk sekolah",
    "join the caliphate soldiers of the caliphate",
    "daulah islamiyah bangkit perangi thoghut",
    "happy birthday mama, love you so much",
    "jangan lupa like, komen dan share video ini",
]
FPS = 10


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def frames(path: Path) -> list[tuple[float, object]]:
    import av

    out = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            out.append((i / FPS, frame_to_rgb(to_yuv_frame(f, i, i / FPS))))  # RGB copies
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--defaults", action="store_true", help="also RapidOCR's own defaults on the full frame")
    args = ap.parse_args()
    caps = [(1.0 + i, 1.9 + i, c) for i, c in enumerate(CAPTIONS)]
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_caption_clip(Path(tmp) / "captions.mp4", caps, seconds=len(CAPTIONS) + 1.5, fps=FPS)
        all_frames = frames(clip)
    caption_frames = [(min(all_frames, key=lambda x: abs(x[0] - (s + e) / 2))[1], c) for s, e, c in caps]
    blank = [rgb for t, rgb in all_frames if t < 0.95][:10]
    readers = {
        "OcrReader() (540x960, unclip 2.4)": OcrReader(),
        "OcrReader(max_side=1280) (full size)": OcrReader(max_side=1280),
        "540x960, RapidOCR's unclip 1.6": OcrReader(unclip_ratio=1.6),
    }
    if args.defaults:
        import importlib.resources

        from rapidocr import ModelType, OCRVersion, RapidOCR

        from framescan.ocr import OCR_DET_FILE, OCR_REC_FILE

        models = importlib.resources.files("framescan._models")
        d = OcrReader(max_side=1280)
        d._engine = RapidOCR(  # RapidOCR's default settings on the same PP-OCRv4 models
            params={
                **{f"{t}.ocr_version": OCRVersion.PPOCRV4 for t in ("Det", "Rec")},
                **{f"{t}.model_type": ModelType.MOBILE for t in ("Det", "Rec")},
                "Det.model_path": str(models.joinpath(OCR_DET_FILE)),
                "Rec.model_path": str(models.joinpath(OCR_REC_FILE)),
                "EngineConfig.onnxruntime.intra_op_num_threads": 2,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                "Global.log_level": "error",
            }
        )
        d.use_cls = True
        readers["RapidOCR defaults, full frame"] = d
    recall = {}
    for name, r in readers.items():
        found = total = 0
        for rgb, cap in caption_frames:
            got = words(" ".join(line.text for line in r.read(rgb)))
            want = words(cap)
            total += len(want)
            found += sum(w in got for w in want)
        recall[name] = found / total
    times: dict[tuple[str, str], list[float]] = {(n, k): [] for n in readers for k in ("caption", "no text")}
    for _ in range(args.rounds):
        for kind, imgs in (("caption", [rgb for rgb, _ in caption_frames]), ("no text", blank)):
            for rgb in imgs:
                for name, r in readers.items():
                    t0 = time.perf_counter()
                    r.read(rgb)
                    times[(name, kind)].append((time.perf_counter() - t0) * 1e3)
    print(f"| per read frame (median of {args.rounds} rounds) | caption frame | no-text frame | word recall |")
    print("|---|---|---|---|")
    for name in readers:
        cap_ms = statistics.median(times[(name, "caption")])
        blank_ms = statistics.median(times[(name, "no text")])
        print(f"| {name} | {cap_ms:.0f} ms | {blank_ms:.0f} ms | {recall[name]:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
