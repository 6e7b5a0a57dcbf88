"""The database under the run store and the saved designs: SQLAlchemy 2 Core and Alembic.

One URL names the database (``PLAYGROUND_DB_URL``): empty means the SQLite file
``$PLAYGROUND_RUN_DIR/playground.sqlite`` (WAL, one machine); ``postgresql+psycopg://user@host/db``
is one database shared by every app server and every Ray worker. :class:`Database` opens it
at the schema head (upgrading it through Alembic if needed, :mod:`.migrate`) and hands out
short transactions; :mod:`playground.runs` and :mod:`playground.designs` write their queries
against the tables of :mod:`.schema`.

Layout (after MLflow's ``store/tracking``: tables in one module, migrations beside them):

- :mod:`.engine`: one engine per URL and process, SQLite pragmas and ``BEGIN IMMEDIATE``;
- :mod:`.schema`: the tables at the head revision;
- :mod:`.migrate` and ``migrations/``: the revisions and the locked upgrade.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from playground.settings import get_settings
from playground.store.engine import READ, get_engine, safe_url, sqlite_path, to_url
from playground.store.migrate import upgrade

__all__ = ["DB_FILENAME", "Database", "default_url", "open_database", "to_url"]

DB_FILENAME = "playground.sqlite"


def default_url() -> str:
    """``PLAYGROUND_DB_URL``, or the SQLite file in ``PLAYGROUND_RUN_DIR`` (read now)."""
    settings = get_settings()
    return to_url(settings.db_url or settings.run_dir / DB_FILENAME)


class Database:
    """One database at the schema head; cheap to create, pickles as its URL.

    ``location`` is a path (a SQLite file), a URL string, or ``None`` for :func:`default_url`.
    Opening checks the schema revision (one small read) and upgrades when behind.
    Connections come from this process' engine (:func:`.engine.get_engine`) and go back to
    its pool after every call, so a thread, a forked child or a spawned worker never shares
    one.
    """

    def __init__(self, location: str | os.PathLike[str] | None = None, *, migrate: bool = True):
        self.url = default_url() if location is None else to_url(location)
        if migrate:
            upgrade(self.url)

    def __repr__(self) -> str:
        return f"Database({safe_url(self.url)!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.url = state["url"]

    @property
    def engine(self) -> sa.Engine:
        return get_engine(self.url)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @property
    def path(self) -> Path | None:
        """The SQLite file; ``None`` for PostgreSQL."""
        return sqlite_path(self.url)

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """One write transaction: committed at the end of the block, rolled back on error.

        SQLite: ``BEGIN IMMEDIATE`` (waits up to the busy timeout for the write lock);
        PostgreSQL: a ``READ COMMITTED`` transaction.
        """
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A connection for reads: every statement is its own snapshot (no transaction)."""
        options: dict[str, Any] = {READ: True}
        if self.dialect != "sqlite":
            options["isolation_level"] = "AUTOCOMMIT"
        with self.engine.connect().execution_options(**options) as conn:
            yield conn

    def read(self, statement: sa.Executable,
             params: Mapping[str, Any] | None = None) -> list[sa.Row[Any]]:
        """All rows of one query."""
        with self.reading() as conn:
            return list(conn.execute(statement, params or {}).all())


def open_database(location: str | os.PathLike[str] | None = None) -> Database:
    """The database at ``location`` (path or URL; ``None``: the settings'), at the head."""
    return Database(location)
