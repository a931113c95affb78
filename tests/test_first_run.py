"""The first scan after an install compiles the Numba kernels (seconds): ``framescan scan`` says so
on a terminal, once, and never on a pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from terminal import run_on_terminal

NOTICE = "compiling kernels (first run only)"

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal"),
    pytest.mark.integration,  # runs framescan in subprocesses
]


@pytest.fixture(scope="module")
def clip(make_clip: Callable[..., Path]) -> Path:
    return make_clip(width=96, height=160, seconds=1, fps=5)


def scan(clip: Path, cache: Path, tty: bool) -> str:
    """``framescan scan`` with Numba's cache in ``cache``; stderr on a pseudo-terminal when ``tty``
    (read while the scan runs, so the progress bar cannot fill the terminal's buffer). Returns stderr."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "framescan", "scan", str(clip)]
    if not tty:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stderr
    p, err = run_on_terminal(cmd, timeout=600, env=env)
    assert p.returncode == 0, p.stdout + err
    return err


def test_compile_notice_on_a_terminal_once_and_never_on_a_pipe(clip: Path, tmp_path: Path) -> None:
    piped, tty = tmp_path / "piped", tmp_path / "tty"
    piped.mkdir()
    tty.mkdir()
    assert NOTICE not in scan(clip, piped, tty=False)  # compiles (empty cache), but stderr is a pipe
    assert NOTICE in scan(clip, tty, tty=True)  # an empty cache: the first run compiles
    assert any(tty.rglob("*.nbi")), "the first run left no Numba cache"
    assert NOTICE not in scan(clip, tty, tty=True)  # the same cache: nothing to compile
