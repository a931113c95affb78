"""The bank database file across framescan versions: a file written before the store moved to
``framescan._sqlite`` still opens and reads the same, a newer file is refused in one line, and
the archive's banks fingerprint (``banks_digest``) of a file stays what it was, whatever its path."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from framescan import banks
from framescan.config import banks_digest

#: Written by framescan at commit 561cde3 (``BankStore`` with its own schema code): bank
#: ``propaganda`` (extremism, block) with video item ``clip-1`` (3 hashes, qualities 80/90/100,
#: at 0, 1 and 2 s, frames 0/15/30, source ``clip-1.mp4``) and bank ``symbols`` (hate, review)
#: with image item ``flag`` (quality 75); hashes drawn by ``np.random.default_rng(5)``.
V1_DB = Path(__file__).parent / "data" / "banks" / "v1.sqlite"
#: ``banks_digest(V1_DB)`` as commit 561cde3 computed it (raw SQL on the file): the same file must
#: keep the same fingerprint, or every archive would rescan after an upgrade.
V1_DIGEST = {"items": 2, "digest": "482e50ff42363c44c1667d73d136ff7d"}
#: The same, after ``create_bank("empty", "bullying", "review")`` (a bank without items counts).
V1_WITH_EMPTY_BANK_DIGEST = {"items": 3, "digest": "8ad51d8394086ae18bc9c0505c8eaa83"}


@pytest.fixture
def v1_db(tmp_path: Path) -> Path:
    path = tmp_path / "banks.sqlite"
    shutil.copyfile(V1_DB, path)
    return path


def test_a_database_from_before_opens_and_reads_the_same(v1_db: Path) -> None:
    with banks.BankStore(v1_db, create=False) as store:
        assert [(b.name, b.category, b.action, b.item_count, b.hash_count) for b in store.list_banks()] == [
            ("propaganda", "extremism", "block", 1, 3),
            ("symbols", "hate", "review", 1, 1),
        ]
        [clip] = store.list_items("propaganda")
        assert (clip.name, clip.kind, clip.source, clip.hash_count) == ("clip-1", "video", "clip-1.mp4", 3)
        vh = store.item_hashes("propaganda", "clip-1")
        np.testing.assert_array_equal(vh.frame_numbers, [0, 15, 30])
        np.testing.assert_array_equal(vh.timestamps, [0.0, 1.0, 2.0])
        np.testing.assert_array_equal(vh.qualities, [80, 90, 100])
        expected = np.random.default_rng(5).integers(0, 2**63, size=(3, 4), dtype=np.uint64)
        np.testing.assert_array_equal(vh.hashes, expected)
    con = sqlite3.connect(v1_db)
    # opening it upgraded it to schema 2 (bank kinds, the symbols table): the old rows read the same
    assert con.execute("PRAGMA user_version").fetchone()[0] == banks.SCHEMA_VERSION == 2
    assert con.execute("SELECT name, kind, settings FROM banks ORDER BY name").fetchall() == [
        ("propaganda", "hash", None),
        ("symbols", "hash", None),
    ]
    con.close()


def test_a_newer_bank_database_is_one_clear_line(tmp_path: Path) -> None:
    db = tmp_path / "newer.sqlite"
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version=3")
    con.close()
    p = subprocess.run(
        [sys.executable, "-m", "framescan", "bank", "list", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 4, p.stderr
    assert p.stderr.splitlines() == [
        f"framescan: error [CONFIG_ERROR]: {db}: bank database has schema 3, newer than this framescan "
        "understands (2); upgrade framescan"
    ]
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0  # untouched
    con.close()


@pytest.mark.parametrize("folder", ["plain", "what?#%20 100%"])  # characters a file: URI gives a meaning
def test_banks_digest_of_a_database_is_what_it_was(tmp_path: Path, folder: str) -> None:
    path = tmp_path / folder / "banks.sqlite"
    path.parent.mkdir()
    shutil.copyfile(V1_DB, path)
    assert banks_digest(str(path)) == V1_DIGEST
    assert banks_digest(path) == V1_DIGEST
    with banks.BankStore(path) as store:
        store.create_bank("empty", "bullying", "review")
    assert banks_digest(path) == V1_WITH_EMPTY_BANK_DIGEST
