"""The environment ``pip install -e ".[dev]"`` makes is consistent: every declared requirement is met
(``pip check``), and ``cv2`` belongs to the headless OpenCV build alone. Two distributions writing
the same ``cv2/`` files (the GUI ``opencv-python`` next to ``opencv-python-headless``) means that
uninstalling either deletes files the other needs."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest


@pytest.mark.integration
def test_pip_check_passes() -> None:
    p = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr


def test_only_the_headless_opencv_owns_cv2() -> None:
    owners = {
        dist.metadata["Name"].lower().replace("_", "-")
        for dist in importlib.metadata.distributions()
        if any(f.parts and f.parts[0] == "cv2" for f in dist.files or ())
    }
    assert owners == {"opencv-python-headless"}, f"cv2/ is written by {sorted(owners)}"
    import cv2

    assert cv2.resize is not None
