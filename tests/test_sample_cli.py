"""``framescan sample`` and ``framescan bench`` as a new user meets them: a flagged range the clip
cannot show is refused as a usage error, and ``--help`` is plain text with every option's default."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from framescan.cli.main import EXIT_USAGE, build_parser
from framescan.synth import write_clip


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "framescan", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.integration
@pytest.mark.parametrize(
    "seconds,flagged,says",
    [
        ("4", ("6", "8"), "END must be at most 4"),  # wholly after the clip's end
        ("4", ("3", "6"), "END must be at most 4"),  # runs past the end: not the range asked for
        ("15", ("3", "1"), "less than END"),  # backwards
        ("15", ("2", "2"), "less than END"),  # empty
        ("15", ("-1", "2"), "at least 0"),
        ("1", ("0.51", "0.52"), "no frame"),  # between two frames at 30 fps (0.5 and 0.533 s)
    ],
)
def test_sample_refuses_a_flagged_range_outside_the_clip(
    tmp_path: Path, seconds: str, flagged: tuple[str, str], says: str
) -> None:
    """The clip would show no flagged content (or not where asked): exit 2 with one line, nothing written."""
    clip = tmp_path / "x.mp4"
    p = run("sample", str(clip), "--seconds", seconds, "--size", "160x284", "--flagged", *flagged)
    assert p.returncode == EXIT_USAGE, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("framescan sample: error: --flagged") and says in lines[0], p.stderr
    assert list(tmp_path.iterdir()) == []


def test_write_clip_refuses_a_flagged_range_outside_the_clip(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at most 1"):
        write_clip(tmp_path / "x.mp4", width=64, height=64, seconds=1, fps=5, flagged=(2.0, 3.0))
    assert not (tmp_path / "x.mp4").exists()


def test_write_clip_passes_encoder_options_to_the_encoder(make_clip: Callable[..., Path]) -> None:
    """``encoder_options`` reach x264 on top of the preset: ``bf`` gives B-frames with ``ultrafast``
    (which has none of its own)."""
    import av
    from av.video.frame import PictureType

    def b_frames(clip: Path) -> int:
        with av.open(str(clip)) as c:
            return sum(f.pict_type == PictureType.B for f in c.decode(video=0))

    tiny = dict(width=64, height=64, seconds=1, fps=10)
    assert b_frames(make_clip(**tiny)) == 0
    assert b_frames(make_clip(**tiny, encoder_options={"bf": "2"})) > 0


def _subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.parser_for(name)


@pytest.mark.integration
@pytest.mark.parametrize("command", ["sample", "bench"])
def test_help_is_plain_and_names_every_default(command: str) -> None:
    p = run(command, "--help")
    assert p.returncode == 0 and "usage: framescan " + command in p.stdout, p.stderr
    assert "``" not in p.stdout and "`" not in p.stdout, "raw reST markup in --help"
    assert "issue" not in p.stdout, "--help refers to an issue the user has never seen"
    for action in _subparser(command)._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and "default" in action.help, f"{command} {action.option_strings[0]}: no default"
