"""No run is left ``running`` when the process training it goes away: real processes, real signals.

- a CLI ``train`` sent SIGTERM or SIGHUP stops its run (``stopped``, the signal named) with its
  metrics and exits with 128 + the signal number;
- a server-like process owning a :class:`LocalRunner` killed with SIGKILL takes its worker with
  it: the worker ends its run ``interrupted`` (metrics kept) and exits, and the next server's
  :meth:`RunStore.recover_interrupted` marks the run it left queued;
- a training process killed with SIGKILL and left as an unreaped zombie (``os.kill(pid, 0)``
  still succeeds on it) is found by its stale heartbeat, while a live training is left alone;
- a running server's monitor sweeps for runs whose heartbeat stopped.

Runs are small (``mlp_points`` on ``spirals``) and long enough to be interrupted; every wait is
bounded, no timing is asserted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from playground.presets import get_preset
from playground.runs import RunStore

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

ROOT = Path(__file__).resolve().parents[1]
MLP = get_preset("mlp_points").to_dict()
LONG = {"dataset": "spirals", "steps": 200_000, "batch_size": 32, "eval_every": 50,
        "device": "cpu", "seed": 0}


def wait_for(pred: Callable[[], object], timeout: float = 120.0, every: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {pred}")


def child_env(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PLAYGROUND_HOME": str(home),
            "PLAYGROUND_MAX_STEPS": "1000000", "PLAYGROUND_DEVICE": "cpu",
            "PLAYGROUND_WORKERS": "1", "OMP_NUM_THREADS": "1", **extra}


def proc_state(pid: int) -> str | None:
    """The process's state letter from ``/proc`` (``Z``: a zombie); ``None`` once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]  # the name in parentheses may hold spaces


def not_running(pid: int) -> bool:
    return proc_state(pid) in (None, "Z", "X")


@contextlib.contextmanager
def reaped(*procs: subprocess.Popen) -> Iterator[None]:
    """Kill (by pid) and reap the given child processes whatever the test's outcome."""
    try:
        yield
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            with contextlib.suppress(Exception):
                p.wait(timeout=30)


def kill_pid(pid: int) -> None:
    """Kill a process that is not our child (an orphaned worker), if it is still there."""
    if pid and not not_running(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# -- 11: the CLI -------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_cli_train_ended_by_a_signal_stops_its_run(tmp_path, sig: signal.Signals) -> None:
    cmd = [sys.executable, "-m", "playground", "train", "mlp_points", "--dataset", "spirals",
           "--steps", "200000", "--batch-size", "32", "--device", "cpu", "--owner", "cli"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(tmp_path), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with reaped(proc):
        db = tmp_path / "runs" / "playground.sqlite"
        wait_for(db.exists)
        store = RunStore(db)
        wait_for(lambda: store.list_runs() and store.last_step(store.list_runs()[0].id) >= 20)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig.value, err[-2000:]
    [run] = store.list_runs()
    assert run.status == "stopped"
    assert run.message.startswith("stopped at step ")
    assert f"the process received {sig.name}" in run.message
    steps = store.get_metrics(run.id, ["loss"])["loss"]["steps"]
    assert len(steps) >= 20 and steps == list(range(1, len(steps) + 1))  # nothing lost
    assert run.summary["steps_done"] == steps[-1]
    assert run.summary["final_val_acc"] is not None  # stopped cleanly: a last evaluation
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"stopped: the process received {sig.name}"
    assert f"run {run.id}: {run.message}" in out


# -- 12: workers die with their server ---------------------------------------------------------
SERVER = """
import sys, time
from playground.runners.local import LocalRunner
from playground.presets import get_preset

runner = LocalRunner(sys.argv[1], workers=1)
spec = get_preset("mlp_points").to_dict()
settings = {"dataset": "spirals", "steps": 200000, "batch_size": 32, "device": "cpu"}
training = runner.start_run("srv", "training", spec, settings)
waiting = runner.start_run("srv", "waiting", spec, settings)  # one worker: this one queues
print(training, waiting, runner.status()["pids"][0], flush=True)
while True:
    time.sleep(1)
"""


def test_workers_die_with_a_killed_server_and_end_their_runs(tmp_path) -> None:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    db = tmp_path / "playground.sqlite"
    server = subprocess.Popen([sys.executable, str(script), str(db)], cwd=tmp_path,
                              env=child_env(tmp_path), text=True, stdout=subprocess.PIPE)
    worker = 0
    with reaped(server):
        try:
            line = server.stdout.readline()
            assert line, "the server printed nothing"
            training, waiting, worker = (int(v) for v in line.split())
            store = RunStore(db)
            wait_for(lambda: store.last_step(training) >= 20)
            assert store.get_run(training).status == "running"
            server.send_signal(signal.SIGKILL)  # no atexit, no shutdown(): nothing runs
            server.wait(timeout=30)

            # the orphaned worker notices, ends its run and exits
            wait_for(lambda: store.get_run(training).status != "running")
            run = store.get_run(training)
            assert run.status == "interrupted", run.message
            assert "the server process went away" in run.message
            steps = store.get_metrics(training, ["loss"])["loss"]["steps"]
            assert len(steps) >= 20 and steps == list(range(1, len(steps) + 1))
            assert run.summary["steps_done"] == steps[-1]
            wait_for(lambda: not_running(worker))
        finally:
            kill_pid(worker)  # only if the worker outlived its server (the bug)

    # the queued run had no process at all: the next server marks it at start
    new_server = RunStore(db)
    assert store.get_run(waiting).status == "queued"
    assert new_server.recover_interrupted() == [waiting]
    assert new_server.get_run(waiting).status == "interrupted"
    assert new_server.get_run(training).status == "interrupted"  # untouched


# -- the app starts its workers with the server ------------------------------------------------
def _children(pid: int) -> list[int]:
    """Pids of the live child processes of ``pid``, from ``/proc``."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                kids.append(int(stat.parent.name))
    return kids


def _is_worker(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes in /proc")
def test_the_app_starts_its_workers_on_the_first_page_view(tmp_path) -> None:
    """A fresh ``streamlit run app.py`` has no worker process; the first page view, with no
    run started, gives it one (it warms up while the user looks around), and the worker ends
    with the server."""
    import shutil
    import socket
    import urllib.request

    chromium = os.environ.get("PLAYGROUND_CHROMIUM", "/usr/bin/chromium")
    must = bool(os.environ.get("PLAYGROUND_REQUIRE_BROWSER") or os.environ.get("CI"))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not (Path(chromium).exists() or shutil.which("chromium")):
        (pytest.fail if must else pytest.skip)("needs Playwright and Chromium to open a page")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
         "--server.address", "127.0.0.1", "--server.port", str(port)],
        cwd=ROOT, env=child_env(tmp_path), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    workers: list[int] = []
    with reaped(server):
        try:
            def healthy() -> bool:
                with contextlib.suppress(OSError), \
                        urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as r:
                    return r.status == 200
                return False

            wait_for(healthy)
            assert not [p for p in _children(server.pid) if _is_worker(p)]  # no page yet
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=chromium, headless=True,
                    args=["--headless", "--no-sandbox", "--disable-gpu"])
                try:
                    page = browser.new_page()
                    page.set_default_timeout(120_000)
                    page.goto(url)
                    page.wait_for_selector('[data-testid="stApp"]')
                    workers = wait_for(lambda: [p for p in _children(server.pid)
                                                if _is_worker(p)])
                finally:
                    browser.close()
            db = tmp_path / "runs" / "playground.sqlite"
            assert db.exists() and RunStore(db).list_runs() == []  # nothing was started
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
            for pid in workers:
                wait_for(lambda pid=pid: not_running(pid))
        finally:
            for pid in workers:
                kill_pid(pid)


# -- 13: heartbeats, not pid probes ------------------------------------------------------------
TRAIN_ONE = "import sys; from playground.jobs import execute_run; execute_run(int(sys.argv[1]))"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states in /proc")
def test_recovery_finds_a_zombie_by_its_stale_heartbeat_and_spares_a_live_run(tmp_path) -> None:
    db = tmp_path / "runs" / "playground.sqlite"
    store = RunStore(db)
    doomed = store.create_run("ada", "doomed", MLP, LONG)
    alive = store.create_run("ada", "alive", MLP, LONG)
    env = child_env(tmp_path, PLAYGROUND_HEARTBEAT_TIMEOUT_S="1")  # beats every ~0.17 s
    procs = [subprocess.Popen([sys.executable, "-c", TRAIN_ONE, str(rid)], cwd=tmp_path,
                              env=env) for rid in (doomed, alive)]
    with reaped(*procs):
        for rid in (doomed, alive):
            wait_for(lambda rid=rid: store.last_step(rid) >= 10)
        os.kill(procs[0].pid, signal.SIGKILL)
        wait_for(lambda: proc_state(procs[0].pid) == "Z")  # dead, and nobody has reaped it
        os.kill(procs[0].pid, 0)  # what fooled the pid probe: this still succeeds
        last_beat = store.get_run(doomed).heartbeat_at
        assert last_beat is not None

        # a generous timeout against the live run's beats 6x a second; the dead run is found
        # once its last heartbeat is that old
        found = wait_for(lambda: store.recover_interrupted(stale_after_s=5.0))
        assert found == [doomed]
        assert procs[1].poll() is None and store.get_run(alive).status == "running"
        assert proc_state(procs[0].pid) == "Z"  # found while still a zombie
    run = store.get_run(doomed)
    assert run.status == "interrupted" and "went away" in run.message
    assert run.heartbeat_at == last_beat
    assert store.last_step(doomed) >= 10  # metrics kept


def test_a_running_server_sweeps_runs_whose_heartbeat_stopped(tmp_path, monkeypatch) -> None:
    import playground.runners.local as local

    monkeypatch.setenv("PLAYGROUND_HEARTBEAT_TIMEOUT_S", "1")
    monkeypatch.setenv("PLAYGROUND_DEVICE", "cpu")
    monkeypatch.setattr(local, "SWEEP_EVERY_S", 0.2)  # read by the monitor thread here
    store = RunStore(tmp_path / "playground.sqlite")
    # a run another process claimed and then abandoned without a word (it beat once, at start)
    lost = store.create_run("ada", "lost", MLP, LONG)
    assert store.mark_started(lost, pid=os.getpid())
    with local.LocalRunner(store.path, workers=1) as runner:
        assert runner.wait_ready(90), runner.status()
        mine = runner.start_run("bob", "mine", MLP, {**LONG, "steps": 30})
        wait_for(lambda: store.get_run(lost).status == "interrupted")
        wait_for(lambda: not store.get_run(mine).is_active)
    assert "went away" in store.get_run(lost).message
    assert store.get_run(mine).status == "finished", store.get_run(mine).message
