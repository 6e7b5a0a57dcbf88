"""A real ``streamlit run app.py`` server for the browser tests and the classroom benchmark.

:func:`serve_app` starts the app exactly as the README does (headless, no file watcher, no
usage statistics) on a free loopback port with its own ``PLAYGROUND_HOME``, waits until
``/_stcore/health`` answers, and stops the whole process group by PID afterwards (SIGTERM,
then SIGKILL after 15 s). The server's output goes to ``<home>/server.log``, whose last 2,000
characters are in the :class:`AppServerError` raised when it exits or does not answer in time.

``tests/browser/conftest.py`` (its ``_serve`` fixture helper) and ``benchmarks/classroom.py``
import this module, as ``benchmarks/store.py`` imports :mod:`tests.postgres`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


class AppServerError(RuntimeError):
    """The server exited, or did not answer its health check in time; the message ends with
    the tail of its log."""


@dataclass(frozen=True)
class AppServer:
    """A running server: ``address`` is ``host:port`` (for ``ws://`` URLs too)."""

    address: str
    log_path: Path
    pid: int = 0  # the server process (its training workers are processes of their own)

    @property
    def url(self) -> str:
        return f"http://{self.address}"


def free_port() -> int:
    """A loopback port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait_healthy(proc: subprocess.Popen[bytes], server: AppServer, timeout_s: float) -> None:
    """Poll ``/_stcore/health`` every 0.3 s until it answers 200."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise AppServerError(f"streamlit exited: {server.log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AppServerError(f"streamlit did not start in {timeout_s:g} s: "
                                 f"{server.log_path.read_text()[-2000:]}")
        time.sleep(0.3)


@contextlib.contextmanager
def serve_app(home: Path, *extra_args: str, env: dict[str, str] | None = None,
              root: Path = ROOT, timeout_s: float = 90.0,
              port: int | None = None) -> Iterator[AppServer]:
    """Run ``streamlit run app.py`` from ``root`` with ``PLAYGROUND_HOME=home`` (an existing
    directory) until the block ends. ``extra_args`` are further ``streamlit run`` options
    (``--theme.base``, ``dark``); ``env`` adds environment variables (``PLAYGROUND_RUNNER``...).
    ``port`` is a port chosen beforehand (:func:`free_port`: a login's ``redirect_uri`` names
    it), else a free one. Raises :class:`AppServerError` if it is not healthy within
    ``timeout_s`` seconds."""
    port = port or free_port()
    env = {**os.environ, "PLAYGROUND_HOME": str(home), "PYTHONUNBUFFERED": "1", **(env or {})}
    server = AppServer(f"{HOST}:{port}", home / "server.log")
    with open(server.log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
             "--server.address", HOST, "--server.port", str(port), *extra_args],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        server = dataclasses.replace(server, pid=proc.pid)
        try:
            _wait_healthy(proc, server, timeout_s)
            yield server
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
