"""Fast decoding of upload-like clips: is skipping H.264/HEVC deblocking worth it, and does it
change what the model sees? Also frame- vs slice-threading.

For each clip of the upload-like reference set (``framescan.bench.clips.UPLOAD_CLIPS`` plus the
1080x1920 one, generated once into the cache; or ``--clips``):

- agreement: the frames a ``--fps`` scan samples, decoded normally and with each
  ``skip_loop_filter`` level (``framescan.decode.FrameDecoder``), run through the default model;
  detections matched by class and IoU >= 0.5 (``models/build_int8.py``'s ``tally``, as the int8
  model was validated), a matched pair counting as agreeing only when its scores are within
  ``--max-drift`` (0.02): agreement = agreeing / (reference + candidate - agreeing);
- speed: decoding the whole clip (every frame, and the frames a ``--fps`` scan needs), each
  level interleaved with the normal decode, ``--repeats`` times, medians;
- threading (``--threading``): every frame decoded with frame threads vs slice threads, 2 and 4.

    python benchmarks/bench_fastdecode.py --repeats 3 --json benchmarks/fastdecode.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from framescan.bench.clips import UPLOAD_1080, UPLOAD_CLIPS, default_clip_dir, ensure_upload_clip  # noqa: E402
from framescan.decode import FrameDecoder  # noqa: E402
from framescan.infer import OnnxModel  # noqa: E402
from framescan.models import DEFAULT_MODEL, load_manifest  # noqa: E402
from framescan.preprocess import batch_view, preprocess_into  # noqa: E402
from framescan.sample import make_sampler  # noqa: E402

CPU_TIME = False


def _build_int8() -> Any:
    spec = importlib.util.spec_from_file_location("build_int8", ROOT / "models" / "build_int8.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_int8"] = module
    spec.loader.exec_module(module)
    return module


def decode(
    clip: str, sampler_kw: dict[str, Any], level: str | None, threads: int = 2, keep: bool = True
) -> tuple[list, float]:
    """The sampled frames (YuvFrame copies when ``keep``) and the seconds decoding took."""
    with av.open(clip) as c:
        stream = c.streams.video[0]
        t0, c0 = time.perf_counter(), os.times()
        dec = FrameDecoder(c, stream, make_sampler(**sampler_kw), threads=threads, skip_loop_filter=level)
        frames = []
        for f in dec:
            if keep:
                frames.append(_copy(f))
        c1 = os.times()
        if CPU_TIME:  # CPU seconds of the process (all decoder threads): less swayed by a busy machine
            return frames, (c1.user - c0.user) + (c1.system - c0.system)
        return frames, time.perf_counter() - t0


def _copy(f: Any) -> Any:  # the planes outlive the decoder's frame pool
    from dataclasses import replace

    return replace(f, y=f.y.copy(), u=f.u.copy(), v=f.v.copy())


def detect(model: OnnxModel, frames: list) -> dict[int, Any]:
    spec = model.manifest.input
    out = {}
    for f in frames:
        buf = batch_view(spec.empty_batch(1), spec.shape_for(*f.upright_size))
        geo = preprocess_into(f, spec, buf[0])
        out[f.index] = model.run(buf, [geo])[0]
    return out


def strict(tally_mod: Any, ref: dict, cand: dict, labels: list[str], max_drift: float) -> dict[str, Any]:
    keys = sorted(ref)
    assert keys == sorted(cand), "the two decodes sampled different frames"
    v = tally_mod.tally([str(k) for k in keys], [ref[k] for k in keys], [cand[k] for k in keys], labels)
    agree = 0
    for k in keys:
        for i, j, _ in tally_mod.match(ref[k], cand[k]):
            agree += abs(float(ref[k].score[i]) - float(cand[k].score[j])) <= max_drift
    union = v.reference_detections + v.candidate_detections - agree
    return {**v.summary(), "agreeing": agree, "agreement_strict": round(agree / union, 4) if union else 1.0}


def threading_table(clip: str, repeats: int) -> dict[str, float]:
    res: dict[str, list[float]] = {}
    for _ in range(repeats):
        for kind in ("FRAME", "SLICE"):
            for n in (2, 4):
                with av.open(clip) as c:
                    s = c.streams.video[0]
                    s.codec_context.thread_type = kind
                    s.codec_context.thread_count = n
                    t0 = time.perf_counter()
                    for _f in c.decode(s):
                        pass
                    res.setdefault(f"{kind.lower()}{n}", []).append(time.perf_counter() - t0)
    return {k: round(statistics.median(v), 3) for k, v in res.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", nargs="*", help="clips to use (default: the upload-like set, generated once)")
    ap.add_argument(
        "--levels", default="noref,bidir,all", help="skip_loop_filter levels to try (default noref,bidir,all)"
    )
    ap.add_argument("--fps", type=float, default=2.0, help="sampling rate compared (default 2, the CLI's)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-drift", type=float, default=0.02)
    ap.add_argument("--threading", action="store_true", help="also time frame vs slice threading (2 and 4)")
    ap.add_argument("--no-1080", action="store_true", help="leave the 1080x1920 clip out of the generated set")
    ap.add_argument("--cpu", action="store_true", help="time decoding in CPU seconds, not wall seconds")
    ap.add_argument("--no-agreement", action="store_true", help="time decoding only")
    ap.add_argument("--no-timing", action="store_true", help="measure agreement only")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    levels = [x.strip() for x in args.levels.split(",") if x.strip()]
    global CPU_TIME
    CPU_TIME = args.cpu
    if args.clips:
        clips = args.clips
    else:
        specs = list(UPLOAD_CLIPS) + ([] if args.no_1080 else [UPLOAD_1080])
        clips = [str(ensure_upload_clip(default_clip_dir(), s)) for s in specs]
    tally_mod = _build_int8()
    model = OnnxModel(load_manifest(DEFAULT_MODEL), threads=2)
    labels = [lab.name for lab in model.manifest.labels]
    results: list[dict[str, Any]] = []
    totals = {lv: {"agreeing": 0, "reference": 0, "candidate": 0} for lv in levels}
    for clip in clips:
        with av.open(clip) as c:
            s = c.streams.video[0]
            codec, size = s.codec_context.name, f"{s.codec_context.width}x{s.codec_context.height}"
        row: dict[str, Any] = {"clip": Path(clip).name, "codec": codec, "size": size, "levels": {}}
        for lv in [] if args.no_agreement else levels:
            if lv == levels[0]:
                ref = detect(model, decode(clip, {"fps": args.fps}, None)[0])
                row["frames_compared"] = len(ref)
            cand = detect(model, decode(clip, {"fps": args.fps}, lv)[0])
            st = strict(tally_mod, ref, cand, labels, args.max_drift)
            row["levels"][lv] = {"agreement": st}
            t = totals[lv]
            t["agreeing"] += st["agreeing"]
            t["reference"] += st["reference_detections"]
            t["candidate"] += st["reference_detections"] - st["missed"] + st["extra"]
        times: dict[str, dict[str, list[float]]] = {}
        for rep in range(0 if args.no_timing else args.repeats):
            order = [None, *levels] if rep % 2 == 0 else [*levels[::-1], None]
            for lv in order:
                for what, kw in (("all", {"all_frames": True}), (f"fps{args.fps:g}", {"fps": args.fps})):
                    _, secs = decode(clip, kw, lv, keep=False)
                    times.setdefault(lv or "normal", {}).setdefault(what, []).append(secs)
        row["decode_s" if not args.cpu else "decode_cpu_s"] = {
            lv: {w: round(statistics.median(v), 3) for w, v in d.items()} for lv, d in times.items()
        }
        if args.threading:
            row["threading_s"] = threading_table(clip, args.repeats)
        results.append(row)
        print(json.dumps(row), flush=True)
    overall = {}
    for lv, t in totals.items():
        union = t["reference"] + t["candidate"] - t["agreeing"]
        overall[lv] = round(t["agreeing"] / union, 4) if union else 1.0
    out = {
        "command": " ".join(["python", "benchmarks/bench_fastdecode.py", *sys.argv[1:]]),
        "load_average": os.getloadavg(),
        "overall_agreement_strict": overall,
        "clips": results,
    }
    print(json.dumps({"overall_agreement_strict": overall}))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
