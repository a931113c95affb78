"""Shared fixtures: generated clips (real encodes, made once per test session)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from framescan.synth import write_clip


@pytest.fixture(autouse=True)
def _no_error_logs(caplog: pytest.LogCaptureFixture):
    """A test that makes framescan log at ERROR fails (errors must be raised or reported)."""
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith("framescan")]
    assert not errors, f"framescan logged errors: {[r.getMessage() for r in errors]}"


@pytest.fixture(autouse=True, scope="session")
def _private_framescan_home(tmp_path_factory: pytest.TempPathFactory):
    """Tests never read or write the user's ~/.framescan (hash banks)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("FRAMESCAN_HOME", str(tmp_path_factory.mktemp("framescan_home")))
    yield
    mp.undo()


@pytest.fixture(autouse=True, scope="session")
def _validate_every_report():
    """Every report framescan builds during the tests, in this process and in the CLI, worker,
    archive and service processes it starts, is checked against the shipped JSON Schema
    (framescan/schema/report-1.json): a mismatch raises where the report is built."""
    from framescan.report import VALIDATE_ENV

    mp = pytest.MonkeyPatch()
    mp.setenv(VALIDATE_ENV, "1")
    yield
    mp.undo()


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def flagged_clip(clip_dir: Path) -> Path:
    """The acceptance clip: 15 s, 720x1280 H.264, colorwheel from 6 s to 8 s."""
    return write_clip(clip_dir / "flagged.mp4", width=720, height=1280, seconds=15, flagged=(6.0, 8.0))


@pytest.fixture(scope="session")
def clean_clip(clip_dir: Path) -> Path:
    """The same clip without the flagged image."""
    return write_clip(clip_dir / "clean.mp4", width=720, height=1280, seconds=15)


@pytest.fixture(scope="session")
def short_flagged(clip_dir: Path) -> Path:
    """A small, quick clip: 4 s 360x640, flagged from 1 s to 3 s."""
    return write_clip(clip_dir / "short_flagged.mp4", width=360, height=640, seconds=4, fps=15, flagged=(1.0, 3.0))


@pytest.fixture(scope="session")
def scanner():
    from framescan import Scanner

    return Scanner(threads=2)
