"""framescan.vpdq: per-frame hashes vs Meta's vPDQ sample hashes, file forms, frame picking, matching."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from framescan import pdq, vpdq
from framescan.errors import FileNotFound, UnsupportedFormat

DATA = Path(__file__).parent / "data" / "vpdq"

#: Meta's regression criterion for reproducing a frame hash (vpdq/cpp/regtest.py).
META_FRAME_MAX_BITS = vpdq.DISTANCE_THRESHOLD
USABLE_QUALITY = vpdq.QUALITY_THRESHOLD
#: Mean distance over all frames for the clean reference videos. framescan hashes the Y plane,
#: vPDQ the luma of swscale's RGB24 conversion: the same values up to RGB rounding and clipping
#: (see framescan.pdq), so most frames are bit-for-bit and the rest differ by a few bits.
META_MEAN_MAX_BITS = 2.0
#: doorknob-hd-no-bar: half of its frames are nearly flat (quality < 50, a blurred close-up) and
#: there the rounding differences flip many bits; frames of usable quality stay close.
DOORKNOB_USABLE_MEAN_MAX_BITS = 6.0
#: Quality is computed from the same 64x64 image; truncation can move it by a point.
META_QUALITY_MAX_DIFF = 2


@pytest.fixture(scope="module")
def reference_hashes() -> dict[str, tuple[vpdq.VideoHash, vpdq.VideoHash]]:
    """(framescan, Meta) per-frame hashes of each reference video, every frame hashed."""
    out = {}
    for name in ("chair-19-sd-bar", "test-padded-dimensions", "doorknob-hd-no-bar"):
        ours = vpdq.hash_video(DATA / f"{name}.mp4", seconds_per_hash=0)
        meta = vpdq.read_hashes(DATA / f"{name}.txt")
        out[name] = (ours, meta)
    return out


def _figures(ours: vpdq.VideoHash, meta: vpdq.VideoHash) -> dict[str, float]:
    d = pdq.hamming_distance(ours.hashes, meta.hashes)
    usable = (ours.qualities >= USABLE_QUALITY) & (meta.qualities >= USABLE_QUALITY)
    return {
        "mean": float(d.mean()),
        "p95": float(np.percentile(d, 95)),
        "max": int(d.max()),
        "exact": float(np.mean(d == 0)),
        "usable_frames": int(usable.sum()),
        "usable_mean": float(d[usable].mean()),
        "usable_max": int(d[usable].max()),
        "quality_max_diff": int(np.abs(ours.qualities - meta.qualities).max()),
    }


@pytest.mark.parametrize("name", ["chair-19-sd-bar", "test-padded-dimensions", "doorknob-hd-no-bar"])
def test_per_frame_hashes_match_metas_vpdq(name, reference_hashes, capsys):
    ours, meta = reference_hashes[name]
    assert len(ours) == len(meta)
    np.testing.assert_array_equal(ours.frame_numbers, meta.frame_numbers)
    # PTS-based timestamps equal vPDQ's frame_number / fps for these constant-rate files.
    np.testing.assert_array_equal(np.round(ours.timestamps, vpdq.TIMESTAMP_DECIMALS), meta.timestamps)
    f = _figures(ours, meta)
    with capsys.disabled():
        print(
            f"\n{name}: {len(ours)} frames vs Meta: mean {f['mean']:.2f} p95 {f['p95']:.0f} max {f['max']} "
            f"bits, {f['exact']:.0%} identical; {f['usable_frames']} frames of quality >= {USABLE_QUALITY}: "
            f"mean {f['usable_mean']:.2f} max {f['usable_max']}; quality diff <= {f['quality_max_diff']}"
        )
    assert f["usable_max"] <= META_FRAME_MAX_BITS
    assert f["quality_max_diff"] <= META_QUALITY_MAX_DIFF
    if name == "doorknob-hd-no-bar":
        assert f["usable_mean"] <= DOORKNOB_USABLE_MEAN_MAX_BITS
    else:
        assert f["mean"] <= META_MEAN_MAX_BITS
        assert f["usable_frames"] == len(ours)


def test_our_hashes_match_metas_as_videos(reference_hashes):
    ours, meta = reference_hashes["chair-19-sd-bar"]
    m = vpdq.match_hashes(ours, meta)
    assert m.query_match_percent == 100.0 and m.compared_match_percent == 100.0 and m.is_match()
    other, _ = reference_hashes["doorknob-hd-no-bar"]
    assert not vpdq.match_hashes(other, meta).is_match()
    assert vpdq.match_hashes(vpdq.VideoHash.empty(), meta) == vpdq.VpdqMatch(0.0, 0.0)


# -- frame picking -----------------------------------------------------------------------------


def _frames(n: int, fps: float, times: list[float] | None = None):
    luma = np.zeros((8, 8), np.uint8)
    for i in range(n):
        yield i, (times[i] if times else i / fps), luma


@pytest.mark.parametrize(
    ("fps", "seconds_per_hash", "expected"),
    [
        (30.0, 0.0, range(120)),  # 0 = every frame
        (30.0, 1.0, [0, 30, 60, 90]),  # int(1 * 30) = every 30th frame
        (29.97, 1.0, [0, 29, 58, 87, 116]),  # vPDQ truncates: every 29th frame, not every ~1.001 s
        (10.0, 0.05, range(120)),  # int(0.5) = 0 -> every frame (vPDQ's corner case)
    ],
)
def test_frames_are_picked_like_vpdq_given_the_frame_rate(fps, seconds_per_hash, expected):
    got = vpdq.hash_frames(_frames(120, fps), seconds_per_hash=seconds_per_hash, frame_rate=fps)
    assert got.frame_numbers.tolist() == list(expected)


def test_frames_are_picked_by_timestamp_without_a_frame_rate():
    # Variable frame rate: 10 fps for 2 s, then 25 fps.
    times = [i / 10 for i in range(20)] + [2 + i / 25 for i in range(50)]
    got = vpdq.hash_frames(_frames(len(times), 0, times), seconds_per_hash=1.0)
    np.testing.assert_allclose(got.timestamps, [0.0, 1.0, 2.0, 3.0])


def test_hash_video_picks_one_frame_per_second():
    got = vpdq.hash_video(DATA / "test-padded-dimensions.mp4", seconds_per_hash=1.0)
    assert got.frame_numbers.tolist() == [0, 30, 60, 90, 120]
    np.testing.assert_allclose(got.timestamps, [0, 1, 2, 3, 4])


#: The same frames encoded in another pixel format: a different lossy encode, so a few bits move.
PIXEL_FORMAT_MAX_BITS = 16


def _encode_photo_clip(path: Path, codec: str, pix_fmt: str, frames: int = 6) -> Path:
    """A short 128x128 clip of a panning photograph in ``pix_fmt`` (the whole frame is the photograph,
    rolled 8 px a frame: the bit tolerances below are for this content, not ``write_clip``'s)."""
    from fractions import Fraction

    import av
    from skimage import data

    rgb = data.astronaut()[::4, ::4]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 128, 128, pix_fmt
        for i in range(frames):
            img = np.ascontiguousarray(np.roll(rgb, 8 * i, axis=1))
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=pix_fmt)
            frame.pts, frame.time_base = i, Fraction(1, 10)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize(
    ("codec", "pix_fmt"),
    [
        ("libx264", "yuv444p"),  # Y plane used as it is
        (
            "libx264",
            "yuvj420p",
        ),  # full range: converted to limited yuv420p first, as vPDQ's RGB route sees it
        ("libx264", "yuv420p10le"),  # 16-bit plane: converted
        ("libx264rgb", "rgb24"),  # decodes as planar RGB (gbrp): converted
    ],
)
def test_other_pixel_formats_hash_like_yuv420p(tmp_path, codec, pix_fmt):
    base = vpdq.hash_video(_encode_photo_clip(tmp_path / "base.mkv", "libx264", "yuv420p"), seconds_per_hash=0)
    other = vpdq.hash_video(_encode_photo_clip(tmp_path / "other.mkv", codec, pix_fmt), seconds_per_hash=0)
    assert len(other) == len(base)
    assert pdq.hamming_distance(other.hashes, base.hashes).max() <= PIXEL_FORMAT_MAX_BITS
    assert (np.abs(other.qualities - base.qualities) <= META_QUALITY_MAX_DIFF).all()


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("missing.mp4", FileNotFound),  # no such file
        ("chair-19-sd-bar.txt", UnsupportedFormat),  # a text file is not a video
    ],
)
def test_hash_video_errors(path, error):
    with pytest.raises(error):
        vpdq.hash_video(DATA / path)


# -- file forms --------------------------------------------------------------------------------


def test_text_form_round_trips_metas_file_byte_for_byte():
    text = (DATA / "chair-19-sd-bar.txt").read_text()
    assert vpdq.format_text(vpdq.parse_text(text)) == text


def test_json_form_round_trips(tmp_path):
    meta = vpdq.read_hashes(DATA / "test-padded-dimensions.txt")
    path = tmp_path / "h.json"
    vpdq.write_hashes(meta, path)
    items = json.loads(path.read_text())
    assert items[1] == "e6cf059c4c6696362cc9d66638d9c263716169d98327399993363d9c3d9cc666,100,0.033"
    back = vpdq.read_hashes(path)
    np.testing.assert_array_equal(back.hashes, meta.hashes)
    np.testing.assert_array_equal(back.qualities, meta.qualities)
    np.testing.assert_allclose(back.timestamps, meta.timestamps)
    assert (back.frame_numbers == vpdq.UNKNOWN_FRAME_NUMBER).all()


@pytest.mark.parametrize(
    ("text", "parser"),
    [
        ("0,100,abc,0.0\n", vpdq.parse_text),  # short hex
        ("0,100\n", vpdq.parse_text),  # missing fields
        ('["' + "0" * 64 + ',101,0.0"]', vpdq.from_json),  # quality out of range
        ('{"a": 1}', vpdq.from_json),  # not a list
    ],
)
def test_malformed_hash_files_are_rejected(text, parser):
    with pytest.raises(ValueError):
        parser(text)


def test_usable_timeline_drops_low_quality_frames_but_not_their_time():
    meta = vpdq.read_hashes(DATA / "chair-19-sd-bar.txt")
    low = meta.qualities.copy()
    low[1::2] = 0  # every other frame unusable
    shuffled = np.random.default_rng(0).permutation(len(meta))
    mixed = vpdq.VideoHash(meta.frame_numbers, meta.timestamps, low, meta.hashes).select(shuffled)
    usable, durations = vpdq.usable_timeline(mixed)
    assert (usable.qualities >= vpdq.QUALITY_THRESHOLD).all()
    assert usable.timestamps.tolist() == meta.timestamps[0::2].tolist()  # in time order again
    # each usable frame stands for its own time only, not the dropped frame's after it
    np.testing.assert_allclose(durations, np.diff(meta.timestamps)[0::2][: len(durations)], atol=1e-9)


# -- CLI ---------------------------------------------------------------------------------------


def _parse(module, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_hash_writes_the_text_form(tmp_path, capsys):
    from framescan.cli import hash as hash_cmd

    out = tmp_path / "padded.txt"
    args = _parse(hash_cmd, ["hash", str(DATA / "test-padded-dimensions.mp4"), "-o", str(out)])
    assert hash_cmd.run(args) == 0
    got = vpdq.read_hashes(out)
    assert got.frame_numbers.tolist() == [0, 30, 60, 90, 120]
    args = _parse(hash_cmd, ["hash", str(DATA / "test-padded-dimensions.mp4"), "--seconds-per-hash", "0"])
    assert hash_cmd.run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 150 and lines[0].startswith("0,100,")
