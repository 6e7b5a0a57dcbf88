"""A throwaway Ray cluster head for tests: ``ray start --head --block`` in a temporary directory,
on free ports, with token authentication and Ray Client's server on, stopped by signal.

Never ``ray stop``: it stops every Ray on the machine, the test session's embedded one too.
The head runs in its own process group (``--block`` keeps it in the foreground and its
processes die with it); what is left after SIGTERM gets SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RayHead:
    client_address: str  # ray://127.0.0.1:PORT
    token_path: Path  # the token the cluster checks (RAY_AUTH_TOKEN_PATH)
    log: Path  # the head's own output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_cli() -> list[str]:
    script = Path(sys.executable).with_name("ray")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]


@contextlib.contextmanager
def ray_head(num_cpus: int = 1, ready_timeout_s: float = 180.0) -> Iterator[RayHead]:
    """Start a one-node Ray cluster that requires a token (``RAY_AUTH_MODE=token``) and serves
    Ray Client on a free port; yield where to reach it; stop it and remove its files."""
    # short: Ray's Unix sockets live under the temp dir (sun_path holds 107 bytes)
    root = Path(tempfile.mkdtemp(prefix="rayh", dir="/tmp"))
    token = root / "token"
    token.write_text(secrets.token_hex(32))
    log = root / "head.log"
    client_port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RAY_") or k in ("RAY_TMPDIR",)}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), OMP_NUM_THREADS="1")
    argv = [*_ray_cli(), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
            f"--port={_free_port()}", f"--ray-client-server-port={client_port}",
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--dashboard-agent-grpc-port={_free_port()}",
            f"--runtime-env-agent-port={_free_port()}",
            f"--metrics-export-port={_free_port()}", "--include-dashboard=false",
            f"--num-cpus={num_cpus}", "--num-gpus=0", f"--temp-dir={root / 'ray'}",
            "--disable-usage-stats"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=root, start_new_session=True)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {proc.returncode}:\n"
                                   f"{log.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", client_port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"Ray Client did not listen within {ready_timeout_s:g} s:\n"
                                   f"{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield RayHead(f"ray://127.0.0.1:{client_port}", token, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything of its group left behind
        proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
