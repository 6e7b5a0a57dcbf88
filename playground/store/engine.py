"""Engines: one SQLAlchemy engine per database URL and per process.

Conventions
-----------
- A *location* is what callers pass around: a filesystem path (a SQLite file) or a URL string
  containing ``://``. :func:`to_url` turns either into a full URL string (absolute path for
  SQLite, ``postgresql+psycopg://`` for a bare ``postgresql://``), which is what a worker
  process or a Ray task receives and hands back to ``RunStore(url)``.
- Engines never cross a ``fork`` or a ``spawn``: :func:`get_engine` keys its cache by
  ``(url, os.getpid())``, so a forked child builds its own engine and never touches the
  connections it inherited (they stay referenced, so they are not closed under the parent's
  feet: SQLAlchemy, "Using Connection Pools with Multiprocessing or os.fork()").
- SQLite (pysqlite): WAL, ``synchronous = NORMAL`` and a busy timeout on every new connection.
  Python's ``sqlite3`` (3.11) issues its own ``BEGIN`` only before DML, so the driver's
  transaction control is switched off and the engine emits ``BEGIN IMMEDIATE`` itself when a
  transaction starts (SQLAlchemy docs, SQLite dialect, "Enabling Non-Legacy SQLite
  Transactional Modes": ``isolation_level = None`` in a ``connect`` hook, ``BEGIN`` in a
  ``begin`` hook). A write therefore takes the database's write lock before its first
  statement and waits for it (busy timeout) instead of failing half-way through a read lock
  upgrade. Reads (:data:`READ`) emit no ``BEGIN``: each SELECT is its own snapshot.
- PostgreSQL: the psycopg 3 driver, a small pool with ``pool_pre_ping``; writes run in
  ``READ COMMITTED`` transactions, reads in autocommit (one round trip each).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from playground.errors import ConfigError

BUSY_TIMEOUT_MS = 15_000
SQLITE_POOL = {"pool_size": 5, "max_overflow": 20}
POSTGRES_POOL = {"pool_size": 4, "max_overflow": 8, "pool_recycle": 1800}

# execution option that marks a connection as a reader (no BEGIN on SQLite, autocommit on PG)
READ = "playground_read"

_ENGINES: dict[tuple[str, int], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _reset_lock_in_child() -> None:
    global _ENGINES_LOCK
    _ENGINES_LOCK = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_reset_lock_in_child)


def to_url(location: str | os.PathLike[str]) -> str:
    """The full URL string for a path (SQLite file) or a URL (``"…://…"``).

    Only SQLite and PostgreSQL are supported; ``postgresql://`` and ``postgres://`` use the
    psycopg 3 driver. A relative SQLite path becomes absolute, so the URL means the same file
    in a process with another working directory.
    """
    text = os.fspath(location)
    if "://" not in text:
        path = Path(text).expanduser().absolute()
        return URL.create("sqlite", database=str(path)).render_as_string(hide_password=False)
    try:
        url = make_url(text)
    except sa.exc.ArgumentError:
        raise ConfigError("the database URL is not valid; use sqlite:///PATH or "
                          "postgresql+psycopg://USER@HOST/DB") from None
    backend = url.get_backend_name()
    if backend == "postgres" or (backend == "postgresql" and url.get_driver_name() in
                                 ("psycopg2", "psycopg")):
        url = url.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ConfigError("an in-memory SQLite database cannot be shared between "
                              "processes; give a file: sqlite:///PATH")
        path = Path(url.database).expanduser().absolute()
        url = url.set(drivername="sqlite", database=str(path))
    else:
        raise ConfigError(f"database {backend!r} is not supported; use sqlite:///PATH or "
                          f"postgresql+psycopg://USER@HOST/DB")
    return url.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    """``url`` with any password masked, for messages and ``repr``."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; ``None`` for other databases."""
    parsed = make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" else None


def get_engine(url: str) -> Engine:
    """This process' engine for ``url`` (a full URL from :func:`to_url`), made on first use."""
    key = (url, os.getpid())
    engine = _ENGINES.get(key)
    if engine is not None:
        return engine
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = _make_engine(url)
        return engine


def dispose_engine(url: str | None = None) -> None:
    """Close the pooled connections this process holds to ``url`` (``None``: to every
    database), e.g. before a test drops its database; the next call opens new ones."""
    full = None if url is None else to_url(url)
    with _ENGINES_LOCK:
        mine = [k for k in _ENGINES if k[1] == os.getpid() and full in (None, k[0])]
        for key in mine:
            _ENGINES.pop(key).dispose()


def _make_engine(url: str) -> Engine:
    # Multi-row INSERTs ("insertmanyvalues", used by INSERT ... RETURNING with a list of rows)
    # are split only where one statement would carry more bound parameters than the database
    # takes, never at SQLAlchemy's default page of 1,000 rows.
    options: dict[str, Any] = {"insertmanyvalues_page_size": 1_000_000}
    if make_url(url).get_backend_name() == "sqlite":
        path = sqlite_path(url)
        assert path is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000},
                                  **SQLITE_POOL, **options)
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True, **POSTGRES_POOL, **options)
    engine.dialect.insertmanyvalues_max_parameters = max_bind_params(engine.dialect.name)
    return engine


def _sqlite_connect(dbapi_con: sqlite3.Connection, _record: Any) -> None:
    dbapi_con.isolation_level = None  # the driver emits no BEGIN; _sqlite_begin does
    dbapi_con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    for _ in range(50):  # switching to WAL needs a moment of exclusive access
        try:
            dbapi_con.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError:
            time.sleep(0.05)
    dbapi_con.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe in WAL


def _sqlite_begin(conn: sa.Connection) -> None:
    if not conn.get_execution_options().get(READ):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def max_bind_params(dialect: str) -> int:
    """How many bound parameters one statement may carry.

    SQLite: ``SQLITE_LIMIT_VARIABLE_NUMBER`` of the linked library (999 before 3.32, 32,766
    after, often raised by distributions); PostgreSQL: 65,535 (the wire protocol's 16-bit
    count of parameters).
    """
    if dialect != "sqlite":
        return 65_535
    con = sqlite3.connect(":memory:")
    try:
        getlimit = getattr(con, "getlimit", None)  # Python 3.11+
        return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)) if getlimit else 999
    finally:
        con.close()
