"""End-to-end scans of generated clips: the issue's acceptance items."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from framescan import Scanner, scan
from framescan.decode import FrameDecoder
from framescan.models import DEFAULT_MODEL
from framescan.preprocess import preprocess_into
from framescan.probe import as_source, open_container, select_video_stream
from framescan.report import segment_evidence
from framescan.sample import make_sampler
from framescan.synth import Shot


def _overlaps(seg: dict, start: float, end: float) -> bool:
    return seg["start"] <= end and seg["end"] >= start


def test_flagged_clip_has_a_sexual_segment_at_6_to_8_s(flagged_clip: Path, scanner: Scanner) -> None:
    d = scanner.scan(flagged_clip).to_dict()
    assert d["status"] == "complete"
    segs = d["categories"]["sexual"]["segments"]
    assert segs, "no sexual segment found"
    # at 2 fps the last hit is 7.5 s; the segment ends at the next frame scored (8.0 s: gone)
    assert [(s["start"], s["last_hit"], s["end"]) for s in segs] == [(6.0, 7.5, 8.0)], segs
    assert all(_overlaps(s, 6.0, 8.0) for s in segs), f"sexual segments outside 6-8 s: {segs}"
    assert any(_overlaps(s, 6.0, 8.0) for s in segs)
    assert d["decision"] != "allow"
    ev = segment_evidence(d, segs[0])[0]
    assert ev["label"] == "BUTTOCKS_EXPOSED" and 6.0 <= ev["time"] <= 8.0 and len(ev["box"]) == 4


def test_clean_clip_is_allowed(clean_clip: Path, scanner: Scanner) -> None:
    d = scanner.scan(clean_clip).to_dict()
    assert d["decision"] == "allow", d["reasons"]
    assert d["categories"]["sexual"]["segments"] == []
    assert d["status"] == "complete"


def test_categories_without_signal_say_so(short_flagged: Path, scanner: Scanner) -> None:
    cats = scanner.scan(short_flagged).to_dict()["categories"]
    assert cats["sexual"]["signals"] == [DEFAULT_MODEL]
    for c in ("violence", "hate", "bullying", "extremism"):
        assert cats[c]["signals"] == [] and cats[c]["score"] is None and "no signal" in cats[c]["note"]


def _comparable(report) -> dict:
    d = report.to_dict()
    d.pop("timings")
    d.pop("source")
    return d


def test_bytes_and_file_object_give_the_same_report(short_flagged: Path, scanner: Scanner) -> None:
    by_path = _comparable(scanner.scan(short_flagged))
    data = short_flagged.read_bytes()
    assert _comparable(scanner.scan(data)) == by_path
    with open(short_flagged, "rb") as f:
        assert _comparable(scanner.scan(f)) == by_path
    assert _comparable(scanner.scan(io.BytesIO(data))) == by_path
    assert by_path["categories"]["sexual"]["segments"], "the comparison must cover a real finding"


def test_module_level_scan(short_flagged: Path) -> None:
    assert scan(short_flagged, threads=2).decision != "allow"


def _count_decoded(path: Path) -> tuple[int, float]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = list(c.decode(s))
        start = frames[0].time
        end = max(f.time + float(f.duration * f.time_base) for f in frames)
    return len(frames), end - start


def test_coverage_equals_what_was_decoded(
    short_flagged: Path, scanner: Scanner, scanner_for: Callable[..., Scanner]
) -> None:
    n, seconds = _count_decoded(short_flagged)
    every = scanner_for(all_frames=True, banks=False).scan(short_flagged).to_dict()["coverage"]
    assert every["decoded_frames"] == every["sampled_frames"] == n == every["claimed_frames"]
    assert every["decoded_seconds"] == pytest.approx(seconds, abs=1e-3)
    assert every["skipped_packets"] == 0
    # At 2 fps the decoder leaves out what no sample needs, and says so; the span read is the same.
    cov = scanner.scan(short_flagged).to_dict()["coverage"]
    assert cov["decoded_frames"] < n
    assert cov["skipped_packets"] > 0
    assert cov["decoded_seconds"] == pytest.approx(seconds, abs=1e-3)
    assert cov["sampled_frames"] == cov["scored_frames"] == 8  # 4 s at 2 fps


FORMATS = [
    # (id, write_clip kwargs)
    ("portrait", dict(width=360, height=640)),
    ("landscape", dict(width=640, height=360)),
    ("odd-1294x964", dict(width=1294, height=964)),
    ("odd-721x405", dict(width=721, height=405, pix_fmt="yuv444p")),
    ("rotated-90", dict(width=360, height=640, rotation=90)),
    ("rotated-minus-90", dict(width=360, height=640, rotation=-90)),
    ("hevc", dict(width=480, height=272, codec="libx265")),
    ("vp9-webm", dict(width=480, height=270, codec="libvpx-vp9", container_format="webm")),
    ("mjpeg-avi", dict(width=480, height=270, codec="mjpeg", pix_fmt="yuvj420p", container_format="avi")),
    ("h264-10bit", dict(width=320, height=240, pix_fmt="yuv420p10le")),
]


@pytest.mark.parametrize("name,kw", FORMATS, ids=[f[0] for f in FORMATS])
def test_formats_scan_and_find_the_flagged_image(
    name: str, kw: dict, make_clip: Callable[..., Path], scanner: Scanner
) -> None:
    suffix = ".webm" if "webm" in name else ".avi" if "avi" in name else ".mp4"
    clip = make_clip(suffix, seconds=2, fps=10, gop=10, shots=[Shot(0, 2, "colorwheel", 0.9)], **kw)
    d = scanner.scan(clip).to_dict()
    assert d["status"] == "complete", d["warnings"]
    # --fps decodes only what the 4 samples need: non-reference frames before a sample and the
    # rest of a group after its last sample are skipped (all of them for intra-only MJPEG)
    cov = d["coverage"]
    assert cov["sampled_frames"] == 4
    assert (4 if "mjpeg" in name else 10) <= cov["decoded_frames"] <= 20
    assert cov["decoded_frames"] + cov["skipped_packets"] <= 20
    assert d["coverage"]["decoded_seconds"] == pytest.approx(2.0, abs=0.15)
    assert d["decision"] != "allow", f"{name}: flagged image not found: {d['categories']['sexual']}"
    assert d["clip"]["display_width"] == kw["width"] and d["clip"]["display_height"] == kw["height"]
    assert d["clip"]["rotation"] == kw.get("rotation", 0)


def _model_inputs(path: Path, scanner: Scanner) -> tuple[np.ndarray, list]:
    model = scanner.models[0]
    spec = model.manifest.input
    src = as_source(path)
    c = open_container(src)
    try:
        frames = list(FrameDecoder(c, select_video_stream(c, src.name), make_sampler(every=5)))
        batch = np.zeros((len(frames), *spec.shape_for(*frames[0].upright_size)), np.float32)
        geos = [preprocess_into(f, spec, batch[i]) for i, f in enumerate(frames)]
        return batch, model.run(batch, geos)
    finally:
        c.close()


@pytest.mark.parametrize(
    "rotation,hflip", [(90, False), (-90, False), (180, False), (0, True), (90, True), (180, True), (-90, True)]
)
def test_rotated_clip_reaches_the_model_upright(
    rotation: int, hflip: bool, make_clip: Callable[..., Path], scanner: Scanner
) -> None:
    """A clip stored rotated and/or mirrored with a display matrix gives the model the same
    upright input (and the same face detection) as the clip stored upright (a mirror that is
    ignored would let an uploader show the model an inverted picture)."""
    kw = dict(width=480, height=640, seconds=1, fps=10, shots=[Shot(0, 1, "astronaut", 0.9)])
    upright, up_dets = _model_inputs(make_clip(**kw), scanner)
    rotated, rot_dets = _model_inputs(make_clip(rotation=rotation, hflip=hflip, **kw), scanner)
    assert upright.shape == rotated.shape
    # same picture up to compression noise; a wrong orientation correlates far worse
    corr = np.corrcoef(upright.ravel(), rotated.ravel())[0, 1]
    wrong = np.corrcoef(upright.ravel(), np.rot90(rotated, 1, axes=(2, 3)).ravel())[0, 1]
    assert corr > 0.98 and wrong < corr - 0.1, (corr, wrong)
    labels = [lab.name for lab in scanner.models[0].manifest.labels]
    for a, b in zip(up_dets, rot_dets):
        faces_a = [a.xyxy[i] for i in range(len(a)) if labels[a.class_id[i]] == "FACE_FEMALE"]
        faces_b = [b.xyxy[i] for i in range(len(b)) if labels[b.class_id[i]] == "FACE_FEMALE"]
        assert faces_a and faces_b
        assert np.abs(faces_a[0] - faces_b[0]).max() < 12, (faces_a[0], faces_b[0])


def test_vfr_fps_sampling_uses_timestamps(make_clip: Callable[..., Path]) -> None:
    """On a variable-frame-rate clip, --fps keeps the first frame at/after each k/fps instant."""
    rng = np.random.default_rng(5)
    times = np.cumsum(rng.choice([1 / 60, 1 / 30, 1 / 10, 0.25], size=60))
    times = np.round(times - times[0], 4)
    clip = make_clip(width=160, height=120, timestamps=list(times), seconds=0)
    src = as_source(clip)
    c = open_container(src)
    try:
        kept = [f.time for f in FrameDecoder(c, select_video_stream(c, src.name), make_sampler(fps=2))]
    finally:
        c.close()
    expected = []
    for k in range(int(times[-1] * 2) + 1):
        at = [t for t in times if t >= k / 2 - 1e-6]
        if at and at[0] not in expected:
            expected.append(at[0])
    assert np.allclose(kept, expected, atol=1e-3), (kept, expected)


def test_sampling_modes_count_frames(short_flagged: Path, scanner_for: Callable[..., Scanner]) -> None:
    """--every, --all and --keyframes score the frames they say (clip: 4 s, 15 fps, GOP 60)."""
    with av.open(str(short_flagged)) as c:
        keyframes = sum(1 for p in c.demux(video=0) if p.is_keyframe and p.size)
    for opts, scored, decoded in [
        (dict(every=4), 15, 60),
        (dict(all_frames=True), 60, 60),
        (dict(keyframes=True), keyframes, keyframes),
        # no B-frames, one group: decoded up to the last sample (3.0 s = frame 45), the rest skipped
        (dict(fps=1), 4, 46),
    ]:
        d = scanner_for(threads=2, **opts).scan(short_flagged).to_dict()
        cov = d["coverage"]
        assert (cov["scored_frames"], cov["decoded_frames"]) == (scored, decoded), opts
        assert d["status"] == "complete", (opts, d["warnings"])


KEYFRAME_CODECS = [
    # (id, write_clip kwargs, file suffix)
    ("h264", dict(codec="libx264"), ".mp4"),
    ("hevc", dict(codec="libx265"), ".mp4"),
    ("vp9", dict(codec="libvpx-vp9", container_format="webm"), ".webm"),
    ("mjpeg", dict(codec="mjpeg", pix_fmt="yuvj420p", container_format="avi"), ".avi"),
]


@pytest.mark.parametrize("name,kw,suffix", KEYFRAME_CODECS, ids=[c[0] for c in KEYFRAME_CODECS])
def test_keyframes_mode_scores_keyframes_only_and_reads_the_whole_clip(
    name: str, kw: dict, suffix: str, make_clip: Callable[..., Path], scanner_for: Callable[..., Scanner]
) -> None:
    """--keyframes scores exactly the stream's keyframes (MJPEG: every frame) and, having read
    every packet, reports a complete clean clip as complete and allow."""
    clip = make_clip(suffix, width=160, height=120, seconds=3, fps=10, gop=10, **kw)
    with av.open(str(clip)) as c:
        flags = [p.is_keyframe for p in c.demux(video=0) if p.size]
    keyframes = sum(flags)
    assert (keyframes == 30) if name == "mjpeg" else (2 <= keyframes < 30), flags
    d = scanner_for(threads=2, keyframes=True, banks=False).scan(clip).to_dict()
    cov = d["coverage"]
    assert cov["sampled_frames"] == cov["scored_frames"] == cov["decoded_frames"] == keyframes, cov
    assert (d["status"], d["decision"]) == ("complete", "allow"), (d["warnings"], d["reasons"])


def test_keyframes_mode_on_a_clean_15_s_clip_is_complete_and_allowed(
    clean_clip: Path, scanner_for: Callable[..., Scanner]
) -> None:
    d = scanner_for(threads=2, keyframes=True, banks=False).scan(clean_clip).to_dict()
    assert (d["status"], d["decision"]) == ("complete", "allow"), (d["warnings"], d["reasons"])
    assert d["coverage"]["decoded_seconds"] == pytest.approx(15.0, abs=0.1)


def test_early_exit_stops_at_block(make_clip: Callable[..., Path], scanner_for: Callable[..., Scanner]) -> None:
    clip = make_clip(width=360, height=640, seconds=8, fps=10, flagged=(0.5, 8))
    full = scanner_for(threads=2, batch_size=2).scan(clip).to_dict()
    early = scanner_for(threads=2, batch_size=2, early_exit=True).scan(clip).to_dict()
    assert full["decision"] == early["decision"] == "block"
    cov = early["coverage"]
    assert cov["stopped_early"] and cov["stopped_at"] < 4.0
    assert cov["decoded_frames"] < full["coverage"]["decoded_frames"]
    assert early["status"] == "complete"


@pytest.mark.integration
def test_cli_coverage_line_says_what_was_read_and_never_complete_beside_stopped_early(
    short_flagged: Path, tmp_path: Path, make_clip: Callable[..., Path]
) -> None:
    """The verdict's coverage line: packets read against the claimed frames, how many were
    decoded, and, after an early exit, where it stopped instead of "complete"."""
    clean = make_clip(width=160, height=120, seconds=2, fps=10)
    out = tmp_path / "reports.json"
    p = subprocess.run(
        [sys.executable, "-m", "framescan", "scan", str(short_flagged), str(clean), "--early-exit", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 20, p.stderr
    flagged, clean_d = json.loads(out.read_text())
    lines = p.stdout.splitlines()
    stopped = flagged["coverage"]
    assert stopped["stopped_early"] and not clean_d["coverage"]["stopped_early"]
    assert lines[1] == (
        f"  stopped early at {stopped['stopped_at']:.2f} s, {stopped['stopped_reason']}: "
        f"read {stopped['read_packets']}/60 frames ({stopped['decoded_frames']} decoded), "
        f"{stopped['decoded_seconds']:.1f}/4.0 s; scored {stopped['scored_frames']} frames (2 fps)"
    ), p.stdout
    i = lines.index(f"{clean}: ALLOW")
    assert not any("complete" in line for line in lines[:i])
    cov = clean_d["coverage"]
    assert (
        lines[i + 1]
        == f"  complete: read 20/20 frames ({cov['decoded_frames']} decoded), 2.0/2.0 s; scored 4 frames (2 fps)"
    )


def test_truncated_clip_is_partial_and_never_allow(
    tmp_path: Path, make_clip: Callable[..., Path], scanner: Scanner
) -> None:
    """An MKV cut at half its size: the header claims 4 s, about 2 s decode."""
    clip = make_clip(".mkv", width=320, height=240, seconds=4, fps=10)
    data = clip.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    d = scanner.scan(cut).to_dict()
    assert d["status"] == "partial" and d["decision"] == "review"
    cov = d["coverage"]
    assert cov["claimed_seconds"] == pytest.approx(4.0, abs=0.1)
    assert 0.5 < cov["decoded_seconds"] < 3.5
    assert any("claims" in w for w in d["warnings"])
    assert any("partial" in r for r in d["reasons"])


class _NoSkipFps:
    """An fps sampler that never lets the decoder skip (the reference for the skip test)."""

    def __new__(cls, fps: float):
        s = make_sampler(fps=fps)
        s.next_needed = lambda: None  # type: ignore[method-assign]
        s.plans = False  # frame by frame with keep(), no planned groups
        return s


def test_fps_sampling_skips_unneeded_b_frames_without_changing_the_samples(make_clip: Callable[..., Path]) -> None:
    """On a stream with B-frames, --fps decodes fewer frames and keeps exactly the same ones."""
    path = make_clip(width=320, height=240, seconds=3, preset="veryfast", encoder_options={"bf": "3"})

    def kept(sampler) -> tuple[list[float], int]:
        src = as_source(path)
        c = open_container(src)
        try:
            dec = FrameDecoder(c, select_video_stream(c, src.name), sampler)
            return [f.time for f in dec], dec.stats.decoded_frames
        finally:
            c.close()

    skipped_times, skipped_n = kept(make_sampler(fps=2))
    full_times, full_n = kept(_NoSkipFps(2))
    assert full_n == 90 and skipped_n < full_n
    assert np.allclose(skipped_times, full_times), (skipped_times, full_times)


@pytest.mark.parametrize(
    "options,batch,spins",
    [({}, 4, False), ({"every": 3}, 4, False), ({"every": 2}, 8, True), ({"all_frames": True}, 8, True),
     ({"early_exit": True}, 2, False)],
)  # fmt: skip
def test_default_batch_size_and_spinning_follow_the_sampling(
    options: dict, batch: int, spins: bool, scanner_for: Callable[..., Scanner]
) -> None:
    """Dense scoring (every frame or every 2nd) is inference-bound: batches of 8, ORT threads
    may spin. Sampled frames: batches of 4 so the model starts sooner, no spinning. Early
    exit: batches of 2 (the decision is checked per batch). An explicit size wins."""
    s = scanner_for(threads=2, banks=False, **options)
    assert (s.batch_size, s.spinning) == (batch, spins)
    assert scanner_for(threads=2, banks=False, batch_size=3, **options).batch_size == 3
