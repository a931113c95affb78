"""Known-content matching inside a scan: a re-encoded, cut copy of a banked video is found."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import pytest

from framescan import Scanner
from framescan.banks import BankStore
from framescan.samples import write_clip
from framescan.vpdq import hash_video

DATA = Path(__file__).parent / "data" / "vpdq"
CHAIR = DATA / "chair-19-sd-bar.mp4"


def reencode_cut(src: Path, dst: Path, cut: float, width: int, height: int, bit_rate: int) -> Path:
    """Drop the first ``cut`` seconds, rescale and re-encode at another bitrate."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        s = out.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.codec_context.bit_rate = bit_rate
        s.options = {"preset": "ultrafast"}
        n = 0
        for f in inp.decode(video=0):
            if f.time < cut:
                continue
            g = f.reformat(width=width, height=height, format="yuv420p")
            g.pts, g.time_base = n, Fraction(1, 30)
            n += 1
            for p in s.encode(g):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return dst


@pytest.fixture(scope="module")
def bank_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("banks") / "banks.sqlite"
    with BankStore(db) as store:
        store.create_bank("propaganda", "extremism", "block")
        store.add_video("propaganda", "chair", hash_video(CHAIR, seconds_per_hash=0.5), source=str(CHAIR))
    return db


def test_reencoded_cut_copy_matches_and_blocks(bank_db: Path, tmp_path: Path) -> None:
    copy = reencode_cut(CHAIR, tmp_path / "copy.mp4", cut=5.0, width=360, height=540, bit_rate=300_000)
    scanner = Scanner(threads=2, banks=bank_db)
    d = scanner.scan(copy).to_dict()
    kc = d["known_content"]
    assert kc["hashed_frames"] > 0 and kc["bank_hashes"] > 0
    [m] = kc["matches"]
    assert m["bank"] == "propaganda" and m["item"] == "chair" and m["video_match"]
    assert m["query_match_percent"] >= 80 and m["min_distance"] <= 31
    # the copy starts 5 s into the original: matched item times lead by about 5 s
    offsets = [f["item_time"] - f["query_time"] for f in m["frames"] if f["distance"] <= 16]
    assert offsets and sorted(offsets)[len(offsets) // 2] == pytest.approx(5.0, abs=0.6)
    assert d["decision"] == "block"
    assert d["categories"]["extremism"]["signals"] == ["bank:propaganda"]
    assert d["categories"]["extremism"]["decision"] == "block"
    assert any("known content" in r for r in d["reasons"])


def test_unrelated_clip_does_not_match(bank_db: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "other.mp4", width=360, height=640, seconds=3, fps=15)
    d = Scanner(threads=2, banks=bank_db).scan(clip).to_dict()
    assert d["known_content"]["matches"] == [] and d["decision"] == "allow"


def test_banks_off_and_absent(tmp_path: Path, short_flagged: Path) -> None:
    assert Scanner(threads=2, banks=False).scan(short_flagged).to_dict()["known_content"] is None
    assert Scanner(threads=2).scan(short_flagged).to_dict()["known_content"] is None  # no database yet


def test_cli_bank_add_then_scan(tmp_path: Path) -> None:
    db = tmp_path / "b.sqlite"
    copy = reencode_cut(CHAIR, tmp_path / "copy.mp4", cut=5.0, width=320, height=480, bit_rate=250_000)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "framescan", *args], capture_output=True, text=True, timeout=300)

    p = run("bank", "add", "terror", str(CHAIR), "--category", "extremism", "--action", "block", "--db", str(db))
    assert p.returncode == 0, p.stderr
    assert "terror" in run("bank", "list", "--db", str(db)).stdout
    p = run("scan", str(copy), "--banks", str(db), "--json", "-")
    assert p.returncode == 20, p.stderr
