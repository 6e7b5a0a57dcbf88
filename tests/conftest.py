"""Fixtures shared by the test modules: the store's databases on SQLite and PostgreSQL.

- ``postgres_server`` (session): one real PostgreSQL server (:class:`tests.postgres.LocalPostgres`)
  for the whole run, started on first use (about 1.5 s). Without the binaries the tests that
  use it skip, unless ``CI=true`` or ``PLAYGROUND_REQUIRE_POSTGRES=1``: then they fail.
- ``postgres_url``: a fresh, empty database on that server (its URL), one per test.
- ``db_url``: parametrised over both engines: a fresh SQLite file's URL, then a fresh
  PostgreSQL database's URL. Store tests take it (or a store built on it) to run twice.

The test server trades durability for speed (``fsync=off``); benchmarks/store.py runs its
own with the durability settings it states.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from playground.store.engine import dispose_engine
from tests.postgres import LocalPostgres, find_bin_dir, postgres_required

TEST_SERVER_SETTINGS = {"fsync": "off", "synchronous_commit": "off",
                        "full_page_writes": "off", "max_connections": "300"}


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A PostgreSQL server for this test session (skips, or fails in CI, without one)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        message = ("PostgreSQL binaries not found (/usr/lib/postgresql/*/bin/initdb); "
                   "apt-get install postgresql, or set PLAYGROUND_PG_BIN")
        if postgres_required():
            pytest.fail(message + " (required: CI / PLAYGROUND_REQUIRE_POSTGRES)")
        pytest.skip(message)
    server = LocalPostgres(bin_dir, settings=TEST_SERVER_SETTINGS).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def postgres_url(postgres_server: LocalPostgres) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database (``postgresql+psycopg://...``)."""
    url = postgres_server.create_database()
    yield url
    dispose_engine(url)  # give the server its connections back


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A fresh database's URL: a new SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'playground.sqlite'}"
        yield url
        dispose_engine(url)
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture(autouse=True)
def _stop_app_runners() -> Iterator[None]:
    """Shut down the training runners an AppTest made in this process (``ui.jobs`` keeps one
    per store URL in ``st.cache_resource``, as a server does, and each test has its own store):
    left running, every test's worker would keep warming up in the background and a later
    test's training would wait for the CPU."""
    yield
    import sys

    jobs = sys.modules.get("ui.jobs")
    started = getattr(jobs, "_STARTED", None)
    if not started:
        return
    import streamlit as st

    for runner in list(started.values()):
        runner.shutdown(timeout=10)
    started.clear()
    st.cache_resource.clear()
