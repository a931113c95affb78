"""framescan.progress: the one status line a scan (``ProgressBar``) and an archive run
(``Progress``, also tested in test_archive.py) draw on a terminal."""

from __future__ import annotations

import io

import pytest

from framescan.progress import ProgressBar, bar, fmt_duration

#: What a scan of ``clip.mp4`` draws, 5 of 10 seconds decoded.
HALF_WAY = "clip.mp4 [##############--------------]    5.0/10.0 s"


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # what shutil.get_terminal_size reads first


def test_scan_bar_redraws_in_place_and_wipes_its_line() -> None:
    out = io.StringIO()
    progress = ProgressBar("clip.mp4", out, enabled=True)
    progress(5.0, 10.0)
    assert out.getvalue() == "\r" + HALF_WAY
    progress.close()
    assert out.getvalue() == "\r" + HALF_WAY + "\r" + " " * len(HALF_WAY) + "\r"
    unknown = io.StringIO()
    ProgressBar("clip.mp4", unknown, enabled=True)(2.5, None)  # a clip that does not say its duration
    assert unknown.getvalue() == "\rclip.mp4    2.5 s"


@pytest.mark.parametrize("enabled", [None, False])  # None: ask the stream, which is no terminal
def test_scan_bar_is_silent_off_a_terminal(enabled: bool | None) -> None:
    out = io.StringIO()
    progress = ProgressBar("clip.mp4", out, enabled=enabled)
    progress(5.0, 10.0)
    progress.close()
    assert out.getvalue() == ""


def test_a_line_is_cut_to_the_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "30")  # a long file name must not wrap (\r would redraw only the last row)
    out = io.StringIO()
    ProgressBar("clip.mp4", out, enabled=True)(5.0, 10.0)
    assert out.getvalue() == "\r" + HALF_WAY[:29]


@pytest.mark.parametrize(
    ("fraction", "drawn"),
    [(0.0, "----"), (0.5, "##--"), (0.99, "###-"), (1.0, "####"), (1.5, "####"), (-1.0, "----")],
)
def test_bar(fraction: float, drawn: str) -> None:
    assert bar(fraction, 4) == drawn


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "?"), (float("nan"), "?"), (float("inf"), "?"), (62.9, "1:02"), (3723, "1:02:03")]
)
def test_fmt_duration(seconds: float | None, text: str) -> None:
    assert fmt_duration(seconds) == text
