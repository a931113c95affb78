"""Scanning a playlist or script disguised as a video never opens another file or a network
address: inotify watches the file the playlist names, and a listening socket on loopback
counts connection attempts."""

from __future__ import annotations

import ctypes
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from framescan.config import ScanConfig
from framescan.errors import FramescanError
from framescan.isolate import WorkerConfig, WorkerPool
from framescan.pipeline import Scanner
from framescan.synth import write_clip

IN_ACCESS, IN_OPEN = 0x1, 0x20


class OpenWatch:
    """Linux inotify on one file: did anyone open or read it?"""

    def __init__(self, path: Path) -> None:
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK)
        if self.fd < 0:
            pytest.skip("inotify unavailable")
        if self.libc.inotify_add_watch(self.fd, str(path).encode(), IN_OPEN | IN_ACCESS) < 0:
            pytest.skip("inotify_add_watch failed")

    def events(self) -> int:
        try:
            return len(os.read(self.fd, 65536))
        except BlockingIOError:
            return 0

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture()
def target(tmp_path: Path) -> Path:
    """A real clip outside the scanned input: the thing a playlist would make FFmpeg read."""
    (tmp_path / "secret").mkdir()
    return write_clip(tmp_path / "secret" / "target.mp4", width=64, height=64, seconds=0.5, fps=10)


@pytest.fixture()
def listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.setblocking(False)
    yield srv
    srv.close()


def _accepted(srv: socket.socket) -> int:
    n = 0
    while True:
        try:
            conn, _ = srv.accept()
        except BlockingIOError:
            return n
        conn.close()
        n += 1


def _playlists(tmp: Path, target: Path, port: int) -> list[Path]:
    url = f"http://127.0.0.1:{port}/seg.ts"
    texts = {
        "hls_local.mp4": f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{target}\n#EXT-X-ENDLIST\n",
        "hls_file_url.mp4": f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nfile://{target}\n#EXT-X-ENDLIST\n",
        "hls_remote.mp4": f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{url}\n#EXT-X-ENDLIST\n",
        "hls_local.m3u8": f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{target}\n#EXT-X-ENDLIST\n",
        "hls_remote.m3u8": f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{url}\n#EXT-X-ENDLIST\n",
        "concat.mp4": f"ffconcat version 1.0\nfile '{target}'\n",
        "concat_remote.mp4": f"ffconcat version 1.0\nfile '{url}'\n",
        "sdp.mp4": f"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=video {port} RTP/AVP 96\n"
        "a=rtpmap:96 H264/90000\n",
    }
    out = []
    for name, text in texts.items():
        p = tmp / name
        p.write_text(text)
        out.append(p)
    return out


def test_in_process_scan_opens_nothing_else(
    tmp_path: Path, target: Path, listener: socket.socket, scanner_for: Callable[..., Scanner]
) -> None:
    scanner = scanner_for(threads=1, banks=False)
    watch = OpenWatch(target)
    try:
        for p in _playlists(tmp_path, target, listener.getsockname()[1]):
            with pytest.raises(FramescanError) as info:
                scanner.scan(p)
            assert info.value.code.value == "UNSUPPORTED_FORMAT", p.name
            assert watch.events() == 0, f"{p.name}: the playlist's target file was opened"
            assert _accepted(listener) == 0, f"{p.name}: a network connection was made"
    finally:
        watch.close()


@pytest.mark.integration  # the scan runs in a worker process
def test_isolated_scan_opens_nothing_else(tmp_path: Path, target: Path, listener: socket.socket) -> None:
    with WorkerPool(1, WorkerConfig(scan=ScanConfig(threads=1, banks=False))) as pool:
        watch = OpenWatch(target)
        try:
            for p in _playlists(tmp_path, target, listener.getsockname()[1]):
                r = pool.scan(p).to_dict()
                assert r["status"] == "error" and r["error"]["code"] == "UNSUPPORTED_FORMAT", (p.name, r["error"])
                assert watch.events() == 0, f"{p.name}: the playlist's target file was opened"
                assert _accepted(listener) == 0, f"{p.name}: a network connection was made"
        finally:
            watch.close()


def test_the_watch_itself_works(target: Path) -> None:
    """Guard against a test that cannot fail: opening the target is seen."""
    watch = OpenWatch(target)
    try:
        target.read_bytes()
        assert watch.events() > 0
    finally:
        watch.close()
