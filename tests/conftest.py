"""Shared fixtures: generated clips (real encodes, made once per test session) and scanners
(one per configuration, shared by the whole session)."""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from framescan.synth import write_caption_clip, write_clip

if TYPE_CHECKING:
    from framescan import Scanner


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
def _private_framescan_cache(tmp_path_factory: pytest.TempPathFactory):
    """Tests never read or write the user's framescan cache (model hashes, optimised models):
    one for the session, shared by the processes the tests start."""
    from framescan.cache import CACHE_ENV

    mp = pytest.MonkeyPatch()
    mp.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("framescan_cache")))
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
def make_clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``make_clip(suffix=".mp4", **params) -> Path``: a clip for *reading*, keyed by its content.

    ``params`` are ``write_clip``'s keyword arguments, or ``write_caption_clip``'s when they
    include ``captions``; the container follows ``suffix``. The same parameters give the same
    file, encoded once per session (the name is a hash of the parameters). A test that changes
    the file copies it first."""
    root = tmp_path_factory.mktemp("clips")

    def make(suffix: str = ".mp4", **params: Any) -> Path:
        key = hashlib.sha256(pickle.dumps((suffix, sorted(params.items())))).hexdigest()[:16]
        path = root / f"{key}{suffix}"
        if not path.exists():  # written under another name first: a failed encode leaves no clip behind
            writer = write_caption_clip if "captions" in params else write_clip
            partial = writer(root / f"{key}.partial{suffix}", **params)
            partial.replace(path)
        return path

    return make


@pytest.fixture(scope="session")
def flagged_clip(make_clip: Callable[..., Path]) -> Path:
    """The acceptance clip: 15 s, 720x1280 H.264, colorwheel from 6 s to 8 s."""
    return make_clip(width=720, height=1280, seconds=15, flagged=(6.0, 8.0))


@pytest.fixture(scope="session")
def clean_clip(make_clip: Callable[..., Path]) -> Path:
    """The same clip without the flagged image."""
    return make_clip(width=720, height=1280, seconds=15)


@pytest.fixture(scope="session")
def short_flagged(make_clip: Callable[..., Path]) -> Path:
    """A small, quick clip: 4 s 360x640, flagged from 1 s to 3 s."""
    return make_clip(width=360, height=640, seconds=4, fps=15, flagged=(1.0, 3.0))


@pytest.fixture(scope="session")
def scanner_for() -> Callable[..., Scanner]:
    """``scanner_for(*models, **options) -> Scanner``: one ``Scanner`` per configuration for the
    whole session (a Scanner keeps no state between clips; loading one costs seconds). Only for
    configurations that do not depend on files a test makes (a bank database, a policy file)."""
    from framescan import Scanner

    made: dict[str, Scanner] = {}

    def get(*models: str, **options: Any) -> Scanner:
        key = repr((models, sorted(options.items())))
        if key not in made:
            made[key] = Scanner(list(models) or None, **options)
        return made[key]

    return get


@pytest.fixture(scope="session")
def scanner(scanner_for: Callable[..., Scanner]) -> Scanner:
    return scanner_for(threads=2)
