"""Run a command with stderr on a pseudo-terminal (where framescan draws its progress bar, hints
and notices), the way a user at a terminal sees it."""

from __future__ import annotations

import os
import pty
import subprocess
import threading
from collections.abc import Mapping, Sequence


def run_on_terminal(
    cmd: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run ``cmd`` (stdout a pipe, stderr a pseudo-terminal, stdin empty) and return the finished
    process (``stdout`` captured) and the text written to the terminal. The terminal is read while
    the command runs, so a chatty progress bar cannot fill its buffer and block the command."""
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            list(cmd),
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
            env=None if env is None else dict(env),
            check=False,
        )
    finally:
        os.close(slave)
        reader.join(30)
        os.close(master)
    return proc, b"".join(chunks).decode(errors="replace")
