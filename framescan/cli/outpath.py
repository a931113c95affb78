"""Output paths given on the command line, checked before any work is done.

Every file a command writes (``scan --json``, ``submit --json``, ``export -o``, ``hash -o``,
``sample OUT``, ``archive --db``, ``bank --db``) goes through ``check_output`` first, so a
typo costs nothing: missing parent folders are created, and a directory or a place that
cannot be written is a usage error (exit 2) before anything is scanned.
"""

from __future__ import annotations

import os
from pathlib import Path

from .main import UsageError


def check_output(path: str | None, option: str) -> None:
    """Make ``path`` (given as ``option``) ready to be written: create its missing parent
    folders; refuse a directory or an unwritable place with one line. ``None`` and ``-``
    (standard output) pass as they are."""
    if path is None or path == "-":
        return
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{option} {path}: is a directory; give a file name")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as ex:
        raise UsageError(f"{option} {path}: cannot create the folder {p.parent}: {ex.strerror or ex}") from ex
    if p.exists():
        if not os.access(p, os.W_OK):
            raise UsageError(f"{option} {path}: the file is not writable")
        return
    try:  # the only sure test of a new file is to create it (permissions, read-only mounts, ACLs)
        p.open("xb").close()
        p.unlink()
    except OSError as ex:
        raise UsageError(f"{option} {path}: cannot write here: {ex.strerror or ex}") from ex


def check_output_dir(path: str | None, option: str) -> None:
    """Make the folder ``path`` (given as ``option``) ready to be written into: create it and
    its parents; refuse a file or an unwritable place with one line. ``None`` passes."""
    if path is None:
        return
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{option} {path}: is a file; give a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as ex:
        raise UsageError(f"{option} {path}: cannot create the folder: {ex.strerror or ex}") from ex
    if not os.access(p, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: the folder is not writable")
