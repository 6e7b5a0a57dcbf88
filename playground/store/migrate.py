"""Schema versions: Alembic, configured in code, run when a store opens a database.

:func:`upgrade` brings a database to the head revision of ``migrations/versions/``. It first
reads the current revision without locking (the common case: already at head, nothing to do);
otherwise it takes the database's migration lock and lets Alembic upgrade inside that one
transaction:

- SQLite: ``BEGIN IMMEDIATE`` (the write lock; SQLite's DDL is transactional), with a long
  busy timeout so a second opener waits for a slow upgrade rather than failing.
- PostgreSQL: ``pg_advisory_xact_lock`` as the transaction's first statement (PostgreSQL's DDL
  is transactional too; the lock is released at commit).

A second opener that waited then finds the database at head and changes nothing, so servers
and workers starting together do not race. A file made before Alembic (tables, no
``alembic_version``) starts from "no revision": the baseline adopts it (see
``0001_baseline.py``). A database whose revision this code does not know was made by a newer
playground: :class:`~playground.errors.ConfigError`, nothing touched.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from playground.errors import ConfigError
from playground.store.engine import BUSY_TIMEOUT_MS, READ, get_engine, safe_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATION_BUSY_TIMEOUT_MS = 600_000  # a second opener waits this long for an upgrade
ADVISORY_LOCK_KEY = 0x706C_6179_6772_6E64  # "playgrnd": the store's migration lock


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic :class:`Config` for the store's scripts (no ini file needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this code knows."""
    head = _scripts().get_current_head()
    assert head is not None
    return head


def current_revision(conn: sa.Connection) -> str | None:
    """The database's revision (``None``: empty, or made before Alembic)."""
    return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def locked_transaction(url: str) -> Iterator[sa.Connection]:
    """A write transaction holding the database's migration lock (see the module docstring)."""
    engine = get_engine(url)
    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:  # before BEGIN IMMEDIATE, which waits this long for the lock
            conn.connection.driver_connection.execute(
                f"PRAGMA busy_timeout = {MIGRATION_BUSY_TIMEOUT_MS}")
        try:
            with conn.begin():
                if not sqlite:
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                                 {"key": ADVISORY_LOCK_KEY})
                yield conn
        finally:
            if sqlite:
                conn.connection.driver_connection.execute(
                    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def upgrade(url: str) -> bool:
    """Bring the database at ``url`` to the head revision; returns whether anything changed."""
    engine = get_engine(url)
    head = head_revision()
    options = {READ: True}
    if engine.dialect.name != "sqlite":
        options["isolation_level"] = "AUTOCOMMIT"
    with engine.connect().execution_options(**options) as conn:
        current = current_revision(conn)
    if current == head:
        return False
    _check_known(current, url)
    with locked_transaction(url) as conn:
        current = current_revision(conn)  # another process may have upgraded meanwhile
        if current == head:
            return False
        _check_known(current, url)
        command.upgrade(alembic_config(conn), "head")
    return True


def _check_known(revision: str | None, url: str) -> None:
    if revision is None:
        return
    try:
        _scripts().get_revision(revision)
    except Exception:  # alembic raises several kinds for an unknown id
        raise ConfigError(
            f"the database {safe_url(url)} has schema revision {revision!r}, which this "
            f"version of the playground does not know (a newer version made it); upgrade the "
            f"playground"
        ) from None
