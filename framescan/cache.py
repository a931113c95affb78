"""framescan's cache directory: things worth keeping between runs that can always be rebuilt.

``cache_dir()`` is ``$FRAMESCAN_CACHE``, else ``$XDG_CACHE_HOME/framescan``, else
``~/.cache/framescan``. What is kept there (verified model hashes, ONNX Runtime's optimised
models, generated benchmark clips) is a shortcut, never a source of truth:

- every entry is written to a temporary file and renamed into place (``atomic_write``), so
  concurrent processes see a whole entry or none;
- an entry names the file it was made from by ``FileStamp`` (path, size, mtime_ns, inode,
  device): a model file replaced or rewritten no longer matches and the entry is rebuilt;
- an entry that cannot be read or does not match is ignored and rebuilt, never trusted;
- a cache directory that cannot be written only costs speed (a debug line, no error).

Standard library only: ``framescan.models`` (a light module) uses it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Overrides the cache directory (e.g. a read-only home, or tests).
CACHE_ENV = "FRAMESCAN_CACHE"


def cache_dir() -> Path:
    """The directory framescan keeps its caches in (not created here)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "framescan"


@dataclass(frozen=True)
class FileStamp:
    """What identifies one version of a file without reading it."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, path: str | os.PathLike) -> FileStamp:
        st = os.stat(path)
        return cls(os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def atomic_write(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename.
    Returns False (and logs at debug) when the cache cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    except OSError as ex:
        log.debug("cache entry %s not written: %s", path, ex)
        return False
    return True


def read_json(path: Path) -> dict[str, Any] | None:
    """A cache entry written by ``write_json``; None when missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as ex:
        if not isinstance(ex, FileNotFoundError):
            log.debug("ignoring cache entry %s: %s", path, ex)
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any]) -> bool:
    return atomic_write(path, json.dumps(data, sort_keys=True).encode())
