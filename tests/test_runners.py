"""The runner backends behind one interface, with real parts: worker processes and a real Ray.

The suite runs once per backend (``local``: one worker process; ``ray``: one slot of an
embedded Ray started once for the session with two CPUs), each over its own store, with
:func:`tests.runner_jobs.job_for_tests` as the job function: real trainings through
:func:`playground.jobs.execute_run`, and gated runs that hold their slot until the test lets
them go. Pure unit tests cover the fair queue's order, the start estimate and the slot count.

With ``CI`` or ``PLAYGROUND_REQUIRE_RAY`` set, a missing ``ray`` fails the Ray tests instead of
skipping them. Every wait is a liveness bound, never a speed assertion (``benchmarks/runners.py``
measures speed).
"""

from __future__ import annotations

import logging
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from playground.access import SYSTEM
from playground.errors import ConfigError
from playground.presets import get_preset
from playground.runners import Runner, make_runner
from playground.runners.fair import (
    FairQueue,
    describe_position,
    estimate_start_s,
    ordinal,
    poll_pace_s,
)
from playground.runs import RunStore
from tests.helpers import key_for
from tests.runner_jobs import job_for_tests

pytestmark = pytest.mark.timeout(900)

LIVENESS_S = 120.0
ROOT = Path(__file__).resolve().parents[1]
MLP = get_preset("mlp_points").to_dict()
REQUIRE_RAY = bool(os.environ.get("CI") or os.environ.get("PLAYGROUND_REQUIRE_RAY"))


def _settings(steps: int = 30) -> dict:
    return {"dataset": "spirals", "steps": steps, "batch_size": 32, "eval_every": 10,
            "device": "cpu", "seed": 0}


def wait_for(pred: Callable[[], object], timeout: float = LIVENESS_S) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {pred}")


def wait_done(store: RunStore, run_id: int) -> str:
    wait_for(lambda: not store.get_run(run_id).is_active)
    return store.get_run(run_id).status


def niceness(pid: int) -> int:
    """The nice value of a process's main thread, field 19 of ``/proc/PID/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])  # the name in parentheses may hold spaces


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ray_session() -> Iterator[object]:
    """One embedded Ray for the whole session (about 7 s to start), shut down at the end."""
    try:
        import ray
    except ImportError:
        (pytest.fail if REQUIRE_RAY else pytest.skip)("the Ray tests need ray (pip install "
                                                      "ray==2.60.0)")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def env() -> Iterator[None]:
    """Limits the runners read (room for long runs); spawned workers inherit them."""
    saved = {k: os.environ.get(k) for k in ("PLAYGROUND_MAX_STEPS", "PLAYGROUND_DEVICE")}
    os.environ["PLAYGROUND_MAX_STEPS"] = "1000000"
    os.environ["PLAYGROUND_DEVICE"] = "cpu"
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module", params=["local", "ray"])
def runner(request, env, tmp_path_factory) -> Iterator[Runner]:
    """A runner with exactly one slot, so tests can line runs up."""
    path = tmp_path_factory.mktemp(request.param) / "playground.sqlite"
    if request.param == "ray":
        request.getfixturevalue("ray_session")
        r = make_runner("ray", path, job_fn=job_for_tests, slots=1, max_queued=10)
    else:
        r = make_runner("local", path, workers=1, job_fn=job_for_tests, max_queued=10)
    assert r.wait_ready(LIVENESS_S), r.status()
    yield r
    r.shutdown()


def _crash_text(kind: str) -> str:
    return "the Ray worker died" if kind == "ray" else "the worker process crashed"


# -- the suite, once per backend ---------------------------------------------------------------
def test_run_finishes_with_metrics_and_records_where_it_ran(runner: Runner) -> None:
    store = runner.store
    rid = runner.start_run("ada", "spirals", MLP, _settings(30))
    assert wait_done(store, rid) == "finished", store.get_run(rid).message
    run = store.get_run(rid)
    assert (run.runner, run.worker_host, run.device) == (runner.kind, platform.node(), "cpu")
    assert run.worker_pid not in (None, os.getpid())
    assert store.get_metrics(rid, ["loss"])["loss"]["steps"] == list(range(1, 31))
    assert run.summary["steps_done"] == 30


def test_trainings_run_at_a_lower_cpu_priority(runner: Runner) -> None:
    store = runner.store
    rid = runner.start_run("ada", "long", MLP, _settings(200_000))
    wait_for(lambda: store.last_step(rid) >= 5)
    pid = store.get_run(rid).worker_pid
    assert niceness(pid) >= 10 > niceness(os.getpid())
    runner.cancel(rid, by=SYSTEM)
    assert wait_done(store, rid) == "stopped"


def test_cancel_of_a_running_run_stops_it_and_keeps_its_metrics(runner: Runner) -> None:
    store = runner.store
    rid = runner.start_run("ada", "long", MLP, _settings(200_000))
    wait_for(lambda: store.last_step(rid) >= 20)
    assert store.get_run(rid).status == "running" and rid in runner.status()["running"]
    assert runner.cancel(rid, by=SYSTEM) in ("running", "stopped")
    assert wait_done(store, rid) == "stopped"
    assert "on request" in store.get_run(rid).message
    steps = store.get_metrics(rid, ["loss"])["loss"]["steps"]
    assert len(steps) >= 20 and steps == list(range(1, len(steps) + 1))
    wait_for(lambda: rid not in runner.status()["running"])


def test_cancel_of_a_queued_run_takes_it_out_of_the_queue(runner: Runner) -> None:
    store = runner.store
    busy = runner.start_run("ada", "long", MLP, _settings(200_000))
    wait_for(lambda: store.get_run(busy).status == "running")
    waiting = runner.start_run("dora", "waiting", MLP, _settings(30))
    assert runner.status()["queue"] == [waiting]
    position, _ = runner.queue_position(waiting)
    assert position == 1 and runner.queue_position(busy) == (0, 0.0)
    assert runner.cancel(waiting, by=SYSTEM) == "stopped"
    assert store.get_run(waiting).message == "stopped before it started by the server"
    assert runner.status()["queue"] == [] and runner.queue_position(waiting) is None
    runner.cancel(busy, by=SYSTEM)
    assert wait_done(store, busy) == "stopped"
    assert store.last_step(waiting) == -1 and store.get_run(waiting).started_at is None


def test_killed_worker_fails_its_run_keeps_metrics_and_is_not_rerun(runner: Runner) -> None:
    store = runner.store
    rid = runner.start_run("bob", "to be killed", MLP, _settings(200_000))
    wait_for(lambda: store.last_step(rid) >= 20)
    before = store.get_run(rid)
    os.kill(before.worker_pid, signal.SIGKILL)
    assert wait_done(store, rid) == "failed"
    run = store.get_run(rid)
    assert _crash_text(runner.kind) in run.message, run.message
    assert store.last_step(rid) >= 20  # what it recorded is kept
    # the next run gets the slot and finishes; the killed one was never started again
    nxt = runner.start_run("bob", "after the crash", MLP, _settings(30))
    assert wait_done(store, nxt) == "finished", store.get_run(nxt).message
    after = store.get_run(rid)
    assert (after.status, after.started_at, after.worker_pid) == \
        ("failed", before.started_at, before.worker_pid)


def test_runs_start_round_robin_over_owners(runner: Runner) -> None:
    """Owner A queues six runs, then B and C one each, with one slot: B and C start right
    after A's first, then A's others follow."""
    store = runner.store
    a = [runner.start_run("A", f"gate a{i}", MLP, _settings()) for i in range(1, 7)]
    wait_for(lambda: store.get_run(a[0]).status == "running")
    b = runner.start_run("B", "gate b", MLP, _settings())
    c = runner.start_run("C", "gate c", MLP, _settings())
    assert runner.status()["queue"] == [b, c, *a[1:]]
    assert [runner.queue_position(r)[0] for r in (b, c, a[1], a[5])] == [1, 2, 3, 7]
    for rid in (*a, b, c):
        store.set_meta(rid, "go", True)
    for rid in (*a, b, c):
        assert wait_done(store, rid) == "finished", store.get_run(rid).message
    started = sorted((*a, b, c), key=lambda r: store.get_run(r).started_at)
    assert started == [a[0], b, c, *a[1:]]
    assert {store.get_run(r).runner for r in started} == {runner.kind}


# -- pure parts --------------------------------------------------------------------------------
def test_fair_queue_interleaves_owners_least_recently_served_first() -> None:
    q = FairQueue()
    for i in range(1, 4):
        q.push("A", 10 + i)
    assert q.pop() == 11  # A is served; B and C arrive after
    q.push("b", 21)
    q.push("C", 31)
    q.push("C", 32)
    q.push("a", 14)  # same person as "A"
    assert q.order() == [21, 31, 12, 32, 13, 14]
    assert len(q) == 6 and 31 in q and 11 not in q
    assert q.remove(31) and not q.remove(31)
    assert q.order() == [21, 32, 12, 13, 14]
    assert q.pop() == 21
    q.push_front("B", 21)  # its slot went away: back to the front of B's queue
    assert q.order()[0] == 21
    assert [q.pop() for _ in range(len(q))] == [21, 32, 12, 13, 14]
    assert q.pop() is None and q.order() == []
    q.push("D", 41)
    q.push("D", 41)  # already waiting: not twice
    assert q.clear() == [41] and len(q) == 0


def test_start_estimate_is_list_scheduling_with_the_mean_duration() -> None:
    # two slots, free in 10 s and 30 s; runs last 40 s on average
    free = [30.0, 10.0]
    assert [estimate_start_s(p, free, 40.0) for p in range(1, 6)] == [10, 30, 50, 70, 90]
    assert estimate_start_s(1, [0.0, 0.0], 40.0) == 0.0  # an idle slot
    assert estimate_start_s(3, [-5.0], 20.0) == 40.0  # overdue runs count as ending now
    assert estimate_start_s(2, free, None) is None  # nothing finished yet: no estimate
    assert estimate_start_s(1, [], 40.0) is None  # no slots


def test_queue_position_text() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 102, 111)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "102nd", "111th"]
    assert describe_position(3, 40.0) == "3rd in line, starts in about 40 s"
    assert describe_position(1, 125.0) == "1st in line, starts in about 2 min 05 s"
    assert describe_position(2, None) == "2nd in line"
    assert describe_position(1, 0.2) == "1st in line, starts in a moment"
    assert describe_position(0, 0.0) == "starting now"


def test_a_waiting_runs_view_polls_slower_the_longer_its_wait() -> None:
    # handed to a slot, or next and due within 6 s (or with no estimate): the running pace
    assert poll_pace_s(0, None) == poll_pace_s(0, 0.0) == 1.0
    assert poll_pace_s(1, 6.0) == poll_pace_s(1, None) == 1.0
    # by the estimate: 2 s up to 20 s ahead, 5 s up to a minute, then 10 s
    assert [poll_pace_s(1, eta) for eta in (7.0, 20.0, 21.0, 60.0, 61.0, 600.0)] == \
        [2.0, 2.0, 5.0, 5.0, 10.0, 10.0]
    assert poll_pace_s(12, 15.0) == 2.0  # the estimate decides, not the place
    # no estimate yet (nothing has finished): the place in line decides
    assert [poll_pace_s(n, None) for n in (2, 3, 5, 6, 29)] == [2.0, 5.0, 5.0, 10.0, 10.0]


def test_ray_slots_follow_the_cluster_resources() -> None:
    if not REQUIRE_RAY:
        pytest.importorskip("ray")
    from playground.runners.ray import plan_slots

    assert plan_slots({"CPU": 8.0}, 1.0, 0.25) == (8, False)  # no GPU: CPUs decide
    assert plan_slots({"CPU": 8.0, "GPU": 1.0}, 1.0, 0.25) == (4, True)  # 4 runs per GPU
    assert plan_slots({"CPU": 2.0, "GPU": 2.0}, 1.0, 0.25) == (2, True)  # CPUs run out first
    assert plan_slots({"CPU": 16.0, "GPU": 2.0}, 1.0, 0.3) == (6, True)  # floor(2 / 0.3)
    assert plan_slots({"CPU": 8.0, "GPU": 1.0}, 1.0, 0.0) == (8, False)  # GPUs not asked for
    assert plan_slots({"CPU": 8.0}, 1.0, 0.25, limit=1) == (1, False)


def test_ray_warm_up_loads_what_a_first_run_pays_for_unless_runs_wait(ray_session,
                                                                       tmp_path) -> None:
    """A fresh Ray worker's warm-up (what RayRunner hands each slot at start) runs the
    training step that imports ``torch._dynamo`` (3.5 s in a first run otherwise) and every
    data-set prefetch; with a run queued in the store it stops before its first step."""
    from playground.runners.ray import _warm_task
    from playground.warmup import warm_up_tasks

    ray = ray_session
    store = RunStore(tmp_path / "playground.sqlite")
    planned = len(list(warm_up_tasks(None, step_first=True)))  # plans; runs nothing
    warm = ray.remote(_warm_task)

    def fresh_worker(tag: str) -> dict[str, object]:
        # a runtime environment of its own: Ray starts a new worker process for it
        env = {"env_vars": {"PLAYGROUND_TEST_WORKER": f"{tag}-{time.time_ns()}"}}
        return ray.get(warm.options(runtime_env=env).remote(store.url), timeout=LIVENESS_S)

    idle = fresh_worker("idle")
    assert idle["steps"] == planned and idle["dynamo"] is True
    store.create_run("ada", "waiting", MLP, {"dataset": "spirals", "steps": 5})
    busy = fresh_worker("busy")
    assert busy["pid"] != idle["pid"]
    assert busy["steps"] == 0 and busy["dynamo"] is False


def test_lower_priority_raises_niceness_to_ten_and_never_lowers_it() -> None:
    code = ("import os; from playground.runners import lower_priority as lp; "
            "os.nice({start}); print(lp(), lp())")
    for start, expected in ((0, "10 10"), (12, "12 12")):
        out = subprocess.run([sys.executable, "-c", code.format(start=start)], cwd=ROOT,
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert out.stdout.split() == expected.split(), out.stderr[-2000:]


def test_make_runner_refuses_an_unknown_backend(tmp_path) -> None:
    with pytest.raises(ConfigError, match="PLAYGROUND_RUNNER is 'slurm'; use one of local, ray"):
        make_runner("slurm", tmp_path / "playground.sqlite")


# -- the Train page ----------------------------------------------------------------------------
def test_train_page_shows_a_queued_runs_place_in_line(env, monkeypatch, tmp_path) -> None:
    """The page asks the server's runner (started as the app starts it, ``ui.jobs``) where a
    queued run stands, and shows it under the progress bar."""
    from streamlit.testing.v1 import AppTest

    from tests.helpers import shown
    from ui import jobs as ui_jobs

    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PLAYGROUND_WORKERS", "1")
    monkeypatch.setenv("PLAYGROUND_RUNNER", "local")
    runner = ui_jobs.get_runner()
    try:
        store = runner.store
        busy = runner.start_run("Ada", "long", MLP, _settings(200_000))
        wait_for(lambda: store.get_run(busy).status == "running")
        waiting = runner.start_run("Ada", "waiting", MLP, _settings(30))
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.query_params["user"] = "Ada"
        at.query_params["key"] = key_for("Ada")
        at.query_params["run"] = str(waiting)
        at.run()
        at.switch_page("pages/train.py").run()
        assert not at.exception, at.exception
        assert "1st in line" in " ".join(shown(c.value) for c in at.caption)
        runner.cancel(waiting, by=SYSTEM)
        runner.cancel(busy, by=SYSTEM)
        assert wait_done(store, busy) == "stopped"
    finally:
        runner.shutdown()
        ui_jobs._runner.clear()
        ui_jobs._STARTED.clear()


EMBEDDED_FROM_A_SHORT_THREAD = """
import sys, threading, time
from playground.presets import get_preset
from playground.runners.ray import RayRunner
from playground.runs import RunStore

store = RunStore(sys.argv[1])
made = []
# as in a Streamlit server: the runner is created on a script thread that then ends
thread = threading.Thread(target=lambda: made.append(RayRunner(store, slots=1, warm_up=False)))
thread.start()
thread.join()
time.sleep(3)
settings = {"dataset": "spirals", "steps": 5, "batch_size": 16, "n_train": 64, "n_val": 32,
            "eval_every": 5, "device": "cpu", "seed": 0}
rid = made[0].start_run("ada", "after the thread ended",
                        get_preset("mlp_points").to_dict(), settings)
deadline = time.monotonic() + 120
while store.get_run(rid).is_active and time.monotonic() < deadline:
    time.sleep(0.2)
print(store.get_run(rid).status)
made[0].shutdown()
"""


def _run_script(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """``script`` in a Python process of its own (its own embedded Ray), with this checkout
    on its path and a store in ``tmp_path`` as ``sys.argv[1]``."""
    return subprocess.run([sys.executable, "-c", script, str(tmp_path / "playground.sqlite")],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                          capture_output=True, text=True, timeout=300)


def test_embedded_ray_outlives_the_thread_that_started_it(tmp_path) -> None:
    """Ray's embedded processes die with the *thread* that called ``ray.init``
    (PR_SET_PDEATHSIG); the runner starts them from a thread of its own, so a runner made on
    a script thread that ends (every Streamlit rerun) keeps working."""
    if not REQUIRE_RAY:
        pytest.importorskip("ray")
    out = _run_script(EMBEDDED_FROM_A_SHORT_THREAD, tmp_path, OMP_NUM_THREADS="1")
    assert out.stdout.strip().splitlines()[-1:] == ["finished"], out.stderr[-3000:]


SHUT_DOWN_WHILE_WARMING = """
import sys, time
from playground.runners.ray import RayRunner
runner = RayRunner(sys.argv[1], slots=2, cpus_per_run=1, gpus_per_run=0)
time.sleep(3.0)  # the warm-up tasks are importing torch or training their first step
assert runner.status()["warming"] == 2, runner.status()
runner.shutdown(timeout=0.5)  # they are cancelled by force, then Ray stops
print("clean")
"""


def test_a_server_stopping_while_ray_warms_up_exits_cleanly(tmp_path) -> None:
    """The embedded Ray is stopped only once the warm-up tasks it cancelled have settled
    (a task's reply reaching a core worker that is shutting down aborts the process)."""
    if not REQUIRE_RAY:
        pytest.importorskip("ray")
    out = _run_script(SHUT_DOWN_WHILE_WARMING, tmp_path, PLAYGROUND_DEVICE="cpu")
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == ["clean"], \
        out.stderr[-3000:]
