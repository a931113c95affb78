"""framescan's SQLite databases: open one (WAL and the other pragmas), read its schema version
(``user_version``) and bring it up to date with ordered migrations, in one transaction."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .errors import ConfigError

#: A schema step: SQL statements, or a function that runs them on the connection.
Migration = str | Callable[[sqlite3.Connection], None]


@dataclass(frozen=True)
class Schema:
    """A database's tables (``create``: the latest version, for a new file) and the way up from
    each older version: ``migrations[i]`` takes version ``i + 1`` to ``i + 2``. ``stamp`` runs
    last in the transaction that created or upgraded the file (e.g. to write a meta row)."""

    create: str
    migrations: tuple[Migration, ...] = ()
    stamp: Callable[[sqlite3.Connection], None] | None = None

    @property
    def version(self) -> int:
        return len(self.migrations) + 1


def connect(
    path: str | os.PathLike[str],
    *,
    timeout: float = 30.0,
    autocommit: bool = True,
    threads: bool = False,
    pragmas: tuple[str, ...] = (),
    wal: bool = True,
    name: str,
    error: Callable[[str], Exception] = ConfigError,
) -> sqlite3.Connection:
    """A connection that waits ``timeout`` s for another writer's lock. ``autocommit``: no implicit
    transactions (use ``transaction``); ``threads``: usable from other threads (the caller locks);
    ``pragmas``: run as ``PRAGMA x`` after WAL mode. With ``wal``, a file that cannot use WAL mode
    raises ``error("{name}: cannot use WAL mode ...")``. The connection is closed on any error."""
    con = sqlite3.connect(
        path, timeout=timeout, check_same_thread=not threads, **({"isolation_level": None} if autocommit else {})
    )
    try:
        if wal:
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise error(f"{name}: cannot use WAL mode (got {mode!r})")
        for pragma in pragmas:
            con.execute(f"PRAGMA {pragma}")
    except BaseException:
        con.close()
        raise
    return con


def user_version(con: sqlite3.Connection) -> int:
    """The schema version the file says it has (0: a new file)."""
    return int(con.execute("PRAGMA user_version").fetchone()[0])


def set_user_version(con: sqlite3.Connection, version: int) -> None:
    con.execute(f"PRAGMA user_version={int(version)}")


@contextlib.contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` (the write lock at once) ... ``COMMIT``, or ``ROLLBACK`` on any error."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def upgrade(
    con: sqlite3.Connection, schema: Schema, *, name: str, error: Callable[[str], Exception] = ConfigError
) -> int:
    """Bring the file to ``schema.version`` in one transaction: a new file (version 0) gets
    ``schema.create``, an older one each migration from its version on. The version is read
    again inside the transaction (another process may have upgraded the file meanwhile). A file
    newer than the code raises ``error("{name} has schema N, newer than ...")``. Returns the
    version the file had."""
    found = user_version(con)
    if found == schema.version:
        return found
    _refuse_newer(found, schema, name, error)
    with transaction(con):
        version = user_version(con)
        _refuse_newer(version, schema, name, error)
        if version < schema.version:
            steps = [schema.create] if version == 0 else schema.migrations[version - 1 :]
            for step in steps:
                if callable(step):
                    step(con)
                else:
                    for statement in _statements(step):
                        con.execute(statement)
            set_user_version(con, schema.version)
            if schema.stamp is not None:
                schema.stamp(con)
    return found


def _refuse_newer(version: int, schema: Schema, name: str, error: Callable[[str], Exception]) -> None:
    if version > schema.version:
        raise error(
            f"{name} has schema {version}, newer than this framescan understands ({schema.version}); upgrade framescan"
        )


def _statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, one at a time (``executescript`` would commit first)."""
    statement = ""
    for part in script.split(";"):
        statement += part + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip("; \t\r\n"):
                yield statement
            statement = ""
    if statement.strip("; \t\r\n"):
        yield statement
