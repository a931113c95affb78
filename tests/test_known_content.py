"""Known-content matching inside a scan: a re-encoded, cut copy of a banked video is found, a
video matches its own hash file whatever the sampling rates, and the report says why."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import pytest

from framescan import Scanner
from framescan.banks import BankStore
from framescan.vpdq import hash_video

DATA = Path(__file__).parent / "data" / "vpdq"
CHAIR = DATA / "chair-19-sd-bar.mp4"
README = Path(__file__).resolve().parents[1] / "README.md"
CLI_TIMEOUT_S = 300


def framescan_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "framescan", *args], capture_output=True, text=True, timeout=CLI_TIMEOUT_S, **kw
    )


def readme_blocks(section: str, lang: str) -> list[str]:
    """The fenced blocks (```lang) of a README section."""
    body = README.read_text(encoding="utf-8").split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks, current, fence = [], [], None
    for line in body.splitlines():
        if line.startswith("```"):
            if fence is None:
                fence, current = line[3:].strip(), []
            else:
                if fence == lang:
                    blocks.append("\n".join(current))
                fence = None
        elif fence is not None:
            current.append(line)
    return blocks


def readme_commands(section: str) -> list[list[str]]:
    """The command lines of a section's first bash block, split as a shell would."""
    return [shlex.split(line, comments=True) for line in readme_blocks(section, "bash")[0].splitlines() if line.strip()]


def reencode_cut(src: Path, dst: Path, cut: float, width: int, height: int, bit_rate: int) -> Path:
    """Drop the first ``cut`` seconds, rescale and re-encode at another bitrate (a re-upload of
    ``src``'s own frames, which ``write_clip`` cannot make)."""
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


def test_unrelated_clip_does_not_match(bank_db: Path, make_clip: Callable[..., Path]) -> None:
    clip = make_clip(width=360, height=640, seconds=3, fps=15)
    d = Scanner(threads=2, banks=bank_db).scan(clip).to_dict()
    assert d["known_content"]["matches"] == [] and d["decision"] == "allow"


def test_banks_off_and_absent(short_flagged: Path, scanner_for: Callable[..., Scanner]) -> None:
    assert scanner_for(threads=2, banks=False).scan(short_flagged).to_dict()["known_content"] is None
    # a new Scanner: it opens the default database (there is none yet) when it is made
    assert Scanner(threads=2).scan(short_flagged).to_dict()["known_content"] is None


def test_cli_bank_add_then_scan(tmp_path: Path) -> None:
    db = tmp_path / "b.sqlite"
    copy = reencode_cut(CHAIR, tmp_path / "copy.mp4", cut=5.0, width=320, height=480, bit_rate=250_000)
    run = framescan_cli
    p = run("bank", "add", "terror", str(CHAIR), "--category", "extremism", "--action", "block", "--db", str(db))
    assert p.returncode == 0, p.stderr
    assert "terror" in run("bank", "list", "--db", str(db)).stdout
    p = run("scan", str(copy), "--banks", str(db), "--json", "-")
    assert p.returncode == 20, p.stderr


@pytest.mark.integration
def test_readme_known_content_example_blocks_the_clip(flagged_clip: Path, tmp_path: Path) -> None:
    """The README's known-content commands, run verbatim in the Quick start clip's folder."""
    # flagged_clip is what the Quick start's sample command writes (same defaults)
    assert ["framescan", "sample", "clip.mp4", "--flagged", "6", "8"] in readme_commands("Quick start")
    shutil.copy(flagged_clip, tmp_path / "clip.mp4")
    env = {**os.environ, "FRAMESCAN_HOME": str(tmp_path / "home")}
    *setup, scan = readme_commands("Known content (hash banks)")
    for argv in setup:
        assert argv[0] == "framescan"
        p = framescan_cli(*argv[1:], cwd=tmp_path, env=env)
        assert p.returncode == 0, (argv, p.stderr)
    assert scan == ["framescan", "scan", "clip.mp4"]
    p = framescan_cli(*scan[1:], cwd=tmp_path, env=env)
    assert p.returncode == 20, p.stderr
    extremism = [line for line in p.stdout.splitlines() if line.lstrip().startswith("extremism")]
    assert extremism == [
        "  extremism  -     block  known content: bank 'sparse' item 'c1' 100% of the clip, 0.0-15.0 s"
    ]
    assert readme_blocks("Known content (hash banks)", "") == extremism  # the README shows the line the scan prints


@pytest.fixture(scope="module")
def moving_clip(make_clip: Callable[..., Path]) -> Path:
    """6 s of photographs on a moving background: frames 0.5 s apart are 48+ bits apart."""
    return make_clip(width=360, height=640, seconds=6, fps=10)


@pytest.fixture(scope="module")
def sparse_banks(moving_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clip hashed at 1 fps (as ``framescan hash`` does) in a block bank, and its first 3 s in
    another block bank."""
    db = tmp_path_factory.mktemp("banks") / "banks.sqlite"
    one_fps = hash_video(moving_clip, seconds_per_hash=1.0)
    with BankStore(db) as store:
        store.create_bank("sparse", "extremism", "block")
        store.add_video("sparse", "c1", one_fps)
        store.create_bank("part", "hate", "block")
        store.add_video("part", "first3", one_fps.select(one_fps.timestamps < 3.0))
    return db


@pytest.mark.parametrize("sampling", [{}, {"all_frames": True}], ids=["2fps", "all"])
def test_a_bank_decision_says_bank_item_share_and_times(moving_clip: Path, sparse_banks: Path, sampling) -> None:
    d = Scanner(threads=2, banks=sparse_banks, **sampling).scan(moving_clip).to_dict()
    full, part = d["known_content"]["matches"]
    assert (full["bank"], full["item"], full["video_match"], full["decision"]) == ("sparse", "c1", True, "block")
    assert full["query_match_percent"] == 100.0 and full["segments"] == [{"start": 0.0, "end": 6.0}]
    assert full["matched_seconds"] == full["query_seconds"] == 6.0
    # a query only half made of the item: the share is the half, a frame match (review)
    assert (part["bank"], part["item"], part["video_match"], part["decision"]) == ("part", "first3", False, "review")
    assert part["query_match_percent"] == 50.0 and part["segments"] == [{"start": 0.0, "end": 3.0}]
    assert part["item_match_percent"] == 100.0
    assert d["decision"] == "block"
    extremism, hate = d["categories"]["extremism"], d["categories"]["hate"]
    assert extremism["decision"] == "block" and hate["decision"] == "review"
    assert extremism["known_content"] == [
        {k: full[k] for k in ("bank", "item", "kind", "action", "decision", "video_match", "query_match_percent")}
        | {"segments": [{"start": 0.0, "end": 6.0}]}
    ]
    assert [m["item"] for m in hate["known_content"]] == ["first3"]
    assert (
        "extremism: known content: bank 'sparse' item 'c1' 100% of the clip, 0.0-6.0 s; closest 0 bits; "
        "bank action block -> block" in d["reasons"]
    )
    assert (
        "hate: known content: bank 'part' item 'first3' 50% of the clip, 0.0-3.0 s (frame matches only: a video "
        "match covers 80%); closest 0 bits; bank action block -> review" in d["reasons"]
    )


@pytest.mark.integration
def test_a_mistyped_banks_path_is_a_configuration_error(short_flagged: Path, tmp_path: Path) -> None:
    p = framescan_cli("scan", str(short_flagged), "--banks", "nob.sqlite", cwd=tmp_path)
    assert p.returncode == 4
    assert p.stderr.strip().splitlines() == [
        "framescan: error [CONFIG_ERROR]: bank database nob.sqlite does not exist: check the path, or create it "
        "with 'framescan bank add NAME FILE... --category C --action A --db nob.sqlite'"
    ]
    assert not (tmp_path / "nob.sqlite").exists()
