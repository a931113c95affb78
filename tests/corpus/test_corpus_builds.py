"""The hostile corpus builds: every case's file exists, is small, and every generator is deterministic."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from .hostile import DEFAULT_LIMITS, GENERATORS, OUTCOMES, Case, build_corpus

#: Every case file stays small; the 8192x8192 clip is one flat frame (~0.4 MB).
MAX_CASE_BYTES = 5 * 1024 * 1024
#: Cases the corpus promises (the brief's list); more may be added.
REQUIRED = (
    "zero_bytes",
    "random_bytes",
    "html_as_mp4",
    "moov_end_cut_50pct",
    "faststart_cut_50pct",
    "huge_dims_sps_8192x8208",
    "dims_8192x8192_mjpeg",
    "dims_1x1_mjpeg",
    "dims_2x2_h264",
    "dims_1294x964_h264",
    "rotation_90",
    "vfr_irregular",
    "annexb_raw_h264",
    "duration_stts_3h",
    "long_tiny_frames_limited",
    "audio_only_mp3",
    "audio_only_m4a",
    "cover_art_stream0_mp4",
    "video_stream_no_packets",
    "timecode_and_subtitles",
    "hevc_10bit",
    "h264_yuv444p",
    "vp9_alpha",
    "hls_local_as_mp4",
    "hls_remote_as_mp4",
    "ffconcat_as_mp4",
    "gif_thousands_frames",
    "mkv_300_attachments",
    "video_streams_40",
    "missing_first_keyframe",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Case]]:
    dst = tmp_path_factory.mktemp("hostile")
    return dst, build_corpus(dst)


def _digest(path: Path, root: Path) -> str:
    """sha256 of a case file, with the build directory (named inside playlists) masked out."""
    data = path.read_bytes().replace(str(root.resolve()).encode(), b"<DST>")
    return hashlib.sha256(data).hexdigest()


def test_every_case_is_built(corpus: tuple[Path, list[Case]]) -> None:
    dst, cases = corpus
    names = [c.name for c in cases]
    assert len(cases) >= 30
    assert len(set(names)) == len(names), "case names must be unique"
    assert not set(REQUIRED) - set(names), f"missing cases: {sorted(set(REQUIRED) - set(names))}"
    for case in cases:
        assert case.path.is_file(), case
        assert case.path.parent == dst, f"{case.name}: written outside the corpus directory"
        size = case.path.stat().st_size
        assert size <= MAX_CASE_BYTES, f"{case.name}: {size} bytes"
        assert size > 0 or case.expect == "EMPTY", case.name
        assert set(case.accepted) <= OUTCOMES
        assert case.expect not in case.alt, case.name
        assert case.note, f"{case.name}: say what the case is and what FFmpeg does with it"
        assert set(case.effective_limits()) == set(DEFAULT_LIMITS)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_generator_is_deterministic(name: str, corpus: tuple[Path, list[Case]], tmp_path: Path) -> None:
    first_dst, first_cases = corpus
    again = GENERATORS[name](tmp_path)
    assert again, f"generator {name} made no case"
    by_name = {c.name: c for c in first_cases}
    for case in again:
        before = by_name[case.name]
        assert (case.expect, case.alt, case.limits, case.note) == (
            before.expect,
            before.alt,
            before.limits,
            before.note,
        )
        assert case.path.name == before.path.name
        same = _digest(case.path, tmp_path) == _digest(before.path, first_dst)
        assert same, f"{case.name} differs between builds"


def test_case_rejects_unknown_outcomes_and_limits(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown outcome"):
        Case("x", tmp_path / "x", "CRASH")
    with pytest.raises(ValueError, match="unknown limit"):
        Case("x", tmp_path / "x", "OK", limits={"max_fps": 1})
