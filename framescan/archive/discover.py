"""Finding what an archive run scans: folder walks, list files, the extensions picked up, why
a file is skipped (``SKIP_REASONS``), and sniffing the first bytes for a video container."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from ..errors import ConfigError
from ..probe import VIDEO_KINDS, sniff

#: File extensions an archive walk picks up by default (case-insensitive; ``--ext`` changes them).
DEFAULT_EXTENSIONS = (
    "mp4", "m4v", "mov", "qt", "3gp", "3g2", "mkv", "webm", "avi", "flv", "f4v", "wmv", "asf",
    "ts", "mts", "m2ts", "mpg", "mpeg", "m2v", "vob", "ogv", "ivf", "h264", "264", "hevc",
    "h265", "265", "y4m", "nut", "gif", "mjpeg", "mjpg",
)  # fmt: skip


def sniff_video(head: bytes) -> bool:
    """True when the first bytes of a file look like a container or stream holding moving
    pictures (``framescan.probe.sniff``, the one sniffer the service uses too)."""
    return sniff(head) in VIDEO_KINDS


def parse_extensions(values: Sequence[str] | None) -> frozenset[str] | None:
    """``--ext`` values (repeatable, comma-separated, with or without dots) -> a set; ``*`` means any."""
    if not values:
        return frozenset(DEFAULT_EXTENSIONS)
    exts = {e.strip().lower().lstrip(".") for v in values for e in v.split(",") if e.strip()}
    if "*" in exts:
        return None
    if not exts:
        raise ConfigError("--ext needs at least one extension (or '*')")
    return frozenset(exts)


@dataclass
class Job:
    path: str
    sniff: bool  # check the first bytes before hashing (folder walks; not explicit lists)
    sha256: str | None = None
    retries: int = 0


#: Why a file was not scanned (the code stored and exported -> the words the summary uses).
SKIP_REASONS = {
    "extension": "extension not selected",
    "not_video": "not a video",
    "symlink_outside": "symlink out of SRC",
    "symlink_dir": "symlink to a folder",
    "not_regular": "not a regular file",
    "unreadable_dir": "unreadable folder",
}


@dataclass
class Skipped:
    reason: str  # a key of SKIP_REASONS
    path: str


def walk_folder(root: str | os.PathLike[str], exts: frozenset[str] | None) -> Iterator[Job | Skipped]:
    """Files under ``root`` (sorted, recursive) whose extension is in ``exts`` (None: any).

    Symlinks are never followed out of ``root``: a symlink to a regular file inside ``root``
    is a candidate (its content deduplicates with the target), symlinks to directories and to
    anything outside ``root`` are skipped."""
    top = os.path.realpath(root)
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=errors.append):
        while errors:
            ex = errors.pop()
            yield Skipped("unreadable_dir", str(ex.filename or dirpath))
        dirnames.sort()
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):
                yield Skipped("symlink_dir", os.path.join(dirpath, d))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if exts is not None and os.path.splitext(name)[1].lower().lstrip(".") not in exts:
                yield Skipped("extension", path)
                continue
            try:
                st = os.lstat(path)
                if os.path.islink(path):
                    real = os.path.realpath(path)
                    if os.path.commonpath([top, real]) != top:
                        yield Skipped("symlink_outside", path)
                        continue
                    st = os.stat(real)
            except (OSError, ValueError):
                yield Skipped("not_regular", path)
                continue
            if not is_regular(st.st_mode):
                yield Skipped("not_regular", path)
                continue
            yield Job(path, sniff=True)
    while errors:
        ex = errors.pop()
        yield Skipped("unreadable_dir", str(ex.filename or root))


def is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def read_list(list_file: str) -> Iterator[Job]:
    """Paths from a list file (one per line; blank lines and ``#`` comments skipped; ``-`` is
    stdin). Relative paths are relative to the current directory. Listed paths are not filtered:
    each is an item, and a missing one is recorded as ``NOT_FOUND``. Paths are made absolute."""
    f: TextIO
    if list_file == "-":
        f = sys.stdin
    else:
        try:
            f = open(list_file, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
        except OSError as ex:
            raise ConfigError(f"list file {list_file}: {ex.strerror or ex}") from ex
    try:
        for line in f:
            path = line.rstrip("\r\n")
            if not path.strip() or path.lstrip().startswith("#"):
                continue
            yield Job(os.path.abspath(path), sniff=False)
    finally:
        if f is not sys.stdin:
            f.close()
