"""framescan._sqlite: one way to open a database and bring its schema up to date with ordered
migrations, in one transaction; the archive's result store uses it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from framescan import _sqlite
from framescan.archive.store import STORE_SCHEMA_VERSION
from framescan.errors import ConfigError

#: Version 1 of a small schema (a ';' inside a literal must not split a statement).
V1 = "CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1); CREATE TABLE note (s TEXT); INSERT INTO note VALUES ('x;y')"
V3 = "CREATE TABLE t (a INTEGER, b INTEGER, c INTEGER); CREATE TABLE note (s TEXT)"


def _double(con: sqlite3.Connection) -> None:
    """Version 2 -> 3: needs the column version 1 -> 2 added."""
    con.execute("ALTER TABLE t ADD COLUMN c INTEGER")
    con.execute("UPDATE t SET c = a * 2, b = a + 10")


def _schema(migrations: tuple[_sqlite.Migration, ...]) -> _sqlite.Schema:
    return _sqlite.Schema(
        V3, migrations, stamp=lambda con: con.execute("INSERT INTO note VALUES (?)", (f"v{len(migrations) + 1}",))
    )


def _open(path: Path) -> sqlite3.Connection:
    return _sqlite.connect(path, name=f"test database {path}")


def _at_version_1(path: Path) -> None:
    con = _open(path)
    con.executescript(V1)
    _sqlite.set_user_version(con, 1)
    con.close()


def test_connect_sets_wal_the_pragmas_and_autocommit(tmp_path: Path) -> None:
    con = _sqlite.connect(tmp_path / "a.sqlite", name="a", threads=True, pragmas=("foreign_keys=ON",))
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert con.isolation_level is None and not con.in_transaction
    finally:
        con.close()
    legacy = _sqlite.connect(tmp_path / "a.sqlite", name="a", autocommit=False)
    try:
        legacy.execute("CREATE TABLE x (a)")
        legacy.execute("INSERT INTO x VALUES (1)")
        assert legacy.in_transaction  # implicit transactions, as sqlite3 opens them by default
    finally:
        legacy.close()


def test_new_file_gets_the_latest_schema_at_once(tmp_path: Path) -> None:
    con = _open(tmp_path / "new.sqlite")
    schema = _schema(("ALTER TABLE t ADD COLUMN b INTEGER", _double))
    assert _sqlite.upgrade(con, schema, name="new") == 0
    assert _sqlite.user_version(con) == schema.version == 3
    assert [r[1] for r in con.execute("PRAGMA table_info(t)")] == ["a", "b", "c"]
    assert con.execute("SELECT s FROM note").fetchall() == [("v3",)]
    assert _sqlite.upgrade(con, schema, name="new") == 3  # up to date: nothing runs again
    assert con.execute("SELECT s FROM note").fetchall() == [("v3",)]
    con.close()


def test_older_file_runs_each_migration_in_order(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _at_version_1(path)
    con = _open(path)
    assert _sqlite.upgrade(con, _schema(("ALTER TABLE t ADD COLUMN b INTEGER", _double)), name="old") == 1
    assert _sqlite.user_version(con) == 3
    assert con.execute("SELECT a, b, c FROM t").fetchall() == [(1, 11, 2)]
    assert con.execute("SELECT s FROM note ORDER BY rowid").fetchall() == [("x;y",), ("v3",)]
    con.close()


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _at_version_1(path)

    def broken(con: sqlite3.Connection) -> None:
        con.execute("UPDATE t SET a = 99")
        raise sqlite3.OperationalError("disk I/O error")

    con = _open(path)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        _sqlite.upgrade(con, _schema(("ALTER TABLE t ADD COLUMN b INTEGER", broken)), name="old")
    assert not con.in_transaction
    assert _sqlite.user_version(con) == 1
    assert [r[1] for r in con.execute("PRAGMA table_info(t)")] == ["a"]
    assert con.execute("SELECT a FROM t").fetchall() == [(1,)]
    con.close()


def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite"
    _at_version_1(path)
    con = _open(path)
    _sqlite.set_user_version(con, 7)
    with pytest.raises(ConfigError) as info:
        _sqlite.upgrade(con, _schema(()), name="the test database")
    assert info.value.message == (
        "the test database has schema 7, newer than this framescan understands (1); upgrade framescan"
    )
    assert _sqlite.user_version(con) == 7 and not con.in_transaction
    con.close()


@pytest.mark.integration
def test_newer_result_store_is_one_clear_line(tmp_path: Path) -> None:
    """``framescan export`` and ``framescan archive`` on a store from a newer framescan: exit 4
    (configuration), one line that says to upgrade, the store untouched."""
    db = tmp_path / "newer.sqlite"
    con = sqlite3.connect(db)
    newer = STORE_SCHEMA_VERSION + 1
    con.execute(f"PRAGMA user_version={newer}")
    con.close()
    src = tmp_path / "src"
    src.mkdir()
    for args in (["export", "--db", str(db)], ["archive", str(src), "--db", str(db), "-q"]):
        r = subprocess.run([sys.executable, "-m", "framescan", *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 4, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr
        assert lines[0].endswith(
            f"result store {db} has schema {newer}, newer than this framescan understands "
            f"({STORE_SCHEMA_VERSION}); upgrade framescan"
        )
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == newer
    assert con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    con.close()
