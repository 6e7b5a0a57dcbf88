"""A throwaway local PostgreSQL server for the tests and benchmarks (no mocks: the real one).

:class:`LocalPostgres` runs Debian's binaries (``/usr/lib/postgresql/<version>/bin``, or
``PLAYGROUND_PG_BIN``) on a free port in a temporary directory: ``initdb`` (trust
authentication, superuser ``playground``), ``pg_ctl start``, one ``CREATE DATABASE`` per
caller (about 0.1 s), ``pg_ctl stop -m fast`` and the directory removed. PostgreSQL refuses
to run as root, so as root the directory is given to the ``postgres`` user and the binaries
run through ``runuser -u postgres``.

The test fixtures live in ``tests/conftest.py``; ``benchmarks/store.py`` imports this module.
Without the binaries :func:`find_bin_dir` returns ``None``; the fixtures then skip, except
when ``CI=true`` or ``PLAYGROUND_REQUIRE_POSTGRES=1``, where a missing server is a failure.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "playground"


def postgres_required() -> bool:
    """Whether a missing PostgreSQL must fail the tests (CI) rather than skip them."""
    return (os.environ.get("CI", "").lower() == "true"
            or os.environ.get("PLAYGROUND_REQUIRE_POSTGRES", "") not in ("", "0"))


def find_bin_dir() -> Path | None:
    """``PLAYGROUND_PG_BIN``, else the newest ``/usr/lib/postgresql/*/bin`` with ``initdb``."""
    explicit = os.environ.get("PLAYGROUND_PG_BIN", "")
    if explicit:
        return Path(explicit) if (Path(explicit) / "initdb").exists() else None
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        return None
    newest = max(found, key=lambda p: int(Path(p).parent.parent.name) if
                 Path(p).parent.parent.name.isdigit() else 0)
    return Path(newest).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPostgres:
    """One PostgreSQL server in a temporary directory; ``with LocalPostgres() as pg: ...``.

    ``settings`` are extra ``-c name=value`` server options (e.g. ``fsync=off`` for tests).
    """

    def __init__(self, bin_dir: Path | None = None, settings: dict[str, str] | None = None):
        found = bin_dir or find_bin_dir()
        if found is None:
            raise FileNotFoundError("PostgreSQL's initdb was not found "
                                    "(apt-get install postgresql, or set PLAYGROUND_PG_BIN)")
        self.bin_dir = found
        self.settings = dict(settings or {})
        self.port = 0
        self.dir: Path | None = None
        self._names = itertools.count(1)

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            log = self.dir / "server.log" if self.dir else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}):\n"
                               f"{proc.stdout}{proc.stderr}{tail}")

    def start(self) -> LocalPostgres:
        self.dir = Path(tempfile.mkdtemp(prefix="playground-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.dir / "data"), "-A", "trust",
                  "-U", USER, "--encoding=UTF8", "--locale=C.UTF-8")
        self.port = _free_port()
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        for name, value in self.settings.items():
            options += f" -c {name}={value}"
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.dir / "data"), "-l",
                  str(self.dir / "server.log"), "-o", options, "-w", "start")
        return self

    def stop(self) -> None:
        if self.dir is None:
            return
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast",
                      "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(f"postgresql://{USER}@127.0.0.1:{self.port}/postgres",
                             autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
