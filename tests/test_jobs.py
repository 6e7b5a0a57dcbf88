"""The job runner: real trainings in warm worker processes, cancel, crashes, limits, shutdown.

Two runners are shared by most tests (starting ``spawn`` workers costs a second or two each):
one with the real :func:`playground.jobs.execute_run`, one with :func:`job_by_title`, an
injected job function that misbehaves on purpose as the run's title says. Job functions live at
the top level of this module so ``spawn``-ed workers can import them.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from playground.access import SYSTEM
from playground.errors import PlaygroundError
from playground.jobs import Limits, check_limits, execute_run
from playground.presets import get_preset
from playground.runners.local import LocalRunner, plan_workers
from playground.runs import RunStore

pytestmark = pytest.mark.timeout(600)

# Every wait below is bounded only so that a broken runner fails instead of hanging; no test
# asserts a speed (benchmarks/first_metric.py measures that), and on a loaded machine a worker
# can take a minute to start.
LIVENESS_S = 120.0

MLP = get_preset("mlp_points").to_dict()


def _settings(steps: int = 30, **extra: object) -> dict:
    return {"dataset": "spirals", "steps": steps, "batch_size": 32, "eval_every": 10,
            "device": "cpu", "seed": 0, **extra}


def wait_for(pred: Callable[[], object], timeout: float = LIVENESS_S,
             every: float = 0.02) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {pred}")


def wait_done(store: RunStore, run_id: int, timeout: float = LIVENESS_S) -> str:
    wait_for(lambda: not store.get_run(run_id).is_active, timeout)
    return store.get_run(run_id).status


# -- injected job functions (top level: spawn pickles them by name) ----------------------------
def job_by_title(run_id: int, store_path: str, **_: object) -> None:
    store = RunStore(store_path)
    title = store.get_run(run_id).title
    if title == "raise":
        raise RuntimeError("boom: the injected job failed\nsecond line")
    store.mark_started(run_id, os.getpid())
    store.append_metrics(run_id, [{"step": s, "name": "loss", "value": 1.0} for s in range(5)])
    if title == "crash":
        os.kill(os.getpid(), signal.SIGKILL)  # as a segfault would end it: no cleanup at all
    if title == "quiet":
        return  # returns without recording a result
    if title == "hang":
        time.sleep(3600)  # never looks at the stop flag
    store.set_status(run_id, "finished", "done by the injected job")


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env() -> Iterator[None]:
    """Limits the spawned workers inherit: small params cap, room for long runs."""
    saved = {k: os.environ.get(k) for k in ("PLAYGROUND_MAX_PARAMS", "PLAYGROUND_MAX_STEPS",
                                            "PLAYGROUND_DEVICE")}
    os.environ["PLAYGROUND_MAX_PARAMS"] = "100000"
    os.environ["PLAYGROUND_MAX_STEPS"] = "1000000"
    os.environ["PLAYGROUND_DEVICE"] = "cpu"
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def runner(env, tmp_path_factory) -> Iterator[LocalRunner]:
    path = tmp_path_factory.mktemp("jobs") / "playground.sqlite"
    r = LocalRunner(path, workers=2, max_queued=2)
    assert r.wait_ready(LIVENESS_S), r.status()
    yield r
    r.shutdown()


@pytest.fixture(scope="module")
def fake_runner(env, tmp_path_factory) -> Iterator[LocalRunner]:
    path = tmp_path_factory.mktemp("fake") / "playground.sqlite"
    r = LocalRunner(path, workers=1, job_fn=job_by_title, max_queued=10)
    assert r.wait_ready(LIVENESS_S), r.status()
    yield r
    r.shutdown()


# -- real trainings ----------------------------------------------------------------------------
def test_submitted_run_finishes_with_metrics(runner: LocalRunner) -> None:
    store = runner.store
    rid = store.create_run("ada", "spirals", MLP, _settings(30))
    runner.submit(rid)
    assert wait_done(store, rid) == "finished", store.get_run(rid).message
    run = store.get_run(rid)
    assert run.message.startswith("finished 30 steps")
    assert run.summary["steps_done"] == 30 and run.summary["num_params"] == 626
    assert run.worker_pid in runner.status()["pids"]
    m = store.get_metrics(rid)
    assert m["loss"]["steps"] == list(range(1, 31))
    assert len(m["grad_norm_layer"]["values"][0]) == len(store.layer_labels(rid)) == 4
    assert m["val_acc"]["steps"][-1] == 30
    # how fast the first point comes is measured by benchmarks/first_metric.py, not here


def test_idle_workers_warm_up_and_runs_still_start_meanwhile(runner: LocalRunner) -> None:
    """Each real worker says "warm" once its warm-up is done, whether or not runs came in
    between (the runs above may have arrived during it)."""
    store = runner.store
    rid = store.create_run("ada", "during the warm-up", MLP, _settings(30))
    runner.submit(rid)
    assert wait_done(store, rid) == "finished", store.get_run(rid).message
    assert runner.wait_ready(LIVENESS_S, warm=True), runner.status()
    assert runner.status()["warm"] == 2


def test_cancel_running_run_stops_it_and_keeps_metrics(runner: LocalRunner) -> None:
    store = runner.store
    rid = store.create_run("ada", "long", MLP, _settings(200_000))
    runner.submit(rid)
    wait_for(lambda: store.last_step(rid) >= 20)
    assert store.get_run(rid).status == "running"
    assert rid in runner.status()["running"]
    runner.cancel(rid, by=SYSTEM)
    assert wait_done(store, rid) == "stopped"
    run = store.get_run(rid)
    assert "on request" in run.message
    steps = store.get_metrics(rid, names=["loss"])["loss"]["steps"]
    assert len(steps) >= 20 and steps == sorted(steps)
    wait_for(lambda: rid not in runner.status()["running"])


def test_killed_worker_fails_its_run_and_is_replaced(runner: LocalRunner) -> None:
    store = runner.store
    rid = store.create_run("bob", "to be killed", MLP, _settings(200_000))
    runner.submit(rid)
    wait_for(lambda: store.last_step(rid) >= 20)
    pid = store.get_run(rid).worker_pid
    assert pid in runner.status()["pids"]
    os.kill(pid, signal.SIGKILL)
    assert wait_done(store, rid) == "failed"
    run = store.get_run(rid)
    assert "the worker process crashed" in run.message and "SIGKILL" in run.message
    assert store.last_step(rid) >= 20  # what it recorded is kept
    # a replacement worker comes up and the next run completes
    wait_for(lambda: runner.status()["ready"] == 2 and pid not in runner.status()["pids"])
    nxt = store.create_run("bob", "after the crash", MLP, _settings(30))
    runner.submit(nxt)
    assert wait_done(store, nxt) == "finished", store.get_run(nxt).message


def test_max_queued_per_owner_and_cancel_of_a_queued_run(runner: LocalRunner) -> None:
    store = runner.store
    a = runner.start_run("Quota", "a", MLP, _settings(200_000))
    b = runner.start_run("quota ", "b", MLP, _settings(200_000))  # same person
    wait_for(lambda: set(runner.status()["running"]) == {a, b})
    before = len(store.list_runs(owner="quota"))
    with pytest.raises(PlaygroundError, match=r"limit is 2 \(PLAYGROUND_MAX_QUEUED\)"):
        runner.start_run("QUOTA", "c", MLP, _settings(30))
    assert len(store.list_runs(owner="quota")) == before  # refused before creating anything
    c = store.create_run("quota", "c", MLP, _settings(30))
    with pytest.raises(PlaygroundError, match="already has 2 runs"):
        runner.submit(c)
    assert store.get_run(c).status == "failed"
    assert store.get_run(c).message.startswith("not started")

    # both workers are busy, so another owner's run waits in the queue; cancel removes it
    q = runner.start_run("dora", "queued", MLP, _settings(30))
    assert runner.status()["queue"] == [q]
    assert runner.cancel(q, by=SYSTEM) == "stopped"
    assert store.get_run(q).message == "stopped before it started by the server"
    assert store.last_step(q) == -1 and runner.status()["queue"] == []
    for rid in (a, b):
        runner.cancel(rid, by=SYSTEM)
    for rid in (a, b):
        assert wait_done(store, rid) == "stopped"
    with pytest.raises(PlaygroundError, match="only a queued run"):
        runner.submit(a)


def test_too_big_model_is_refused_by_the_worker(runner: LocalRunner) -> None:
    store = runner.store
    big = get_preset("small_cnn").with_stage(1, width=512).to_dict()
    rid = store.create_run("erin", "too big", big, _settings(30, dataset="shapes"))
    runner.submit(rid)
    assert wait_done(store, rid) == "failed"
    msg = store.get_run(rid).message
    assert "PLAYGROUND_MAX_PARAMS" in msg and "100,000" in msg


# -- injected job functions --------------------------------------------------------------------
def test_job_that_raises_fails_with_its_message(fake_runner: LocalRunner) -> None:
    store = fake_runner.store
    rid = store.create_run("ada", "raise", MLP, _settings())
    fake_runner.submit(rid)
    assert wait_done(store, rid) == "failed"
    assert store.get_run(rid).message == "RuntimeError: boom: the injected job failed"


def test_job_that_kills_its_process_fails_its_run_only(fake_runner: LocalRunner) -> None:
    store = fake_runner.store
    crash = store.create_run("ada", "crash", MLP, _settings())
    after = store.create_run("ada", "ok", MLP, _settings())
    fake_runner.submit(crash)
    fake_runner.submit(after)  # waits in the queue behind the crash
    assert wait_done(store, crash) == "failed"
    assert "the worker process crashed (killed by SIGKILL)" in store.get_run(crash).message
    assert store.get_metrics(crash)["loss"]["steps"] == [0, 1, 2, 3, 4]
    assert wait_done(store, after) == "finished"


def test_job_that_returns_without_a_result_fails(fake_runner: LocalRunner) -> None:
    store = fake_runner.store
    rid = store.create_run("ada", "quiet", MLP, _settings())
    fake_runner.submit(rid)
    assert wait_done(store, rid) == "failed"
    assert "without recording a result" in store.get_run(rid).message


def test_run_ignoring_its_stop_flag_has_its_worker_replaced(fake_runner: LocalRunner,
                                                            monkeypatch) -> None:
    import playground.runners.local as local

    monkeypatch.setattr(local, "STOP_GRACE_S", 0.5)  # read by the monitor thread in this process
    store = fake_runner.store
    rid = store.create_run("ada", "hang", MLP, _settings())
    fake_runner.submit(rid)
    wait_for(lambda: store.get_run(rid).status == "running")
    pid = store.get_run(rid).worker_pid
    fake_runner.cancel(rid, by=SYSTEM)
    assert wait_done(store, rid) == "stopped"
    assert "did not respond to the stop request" in store.get_run(rid).message
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    nxt = store.create_run("ada", "ok", MLP, _settings())
    fake_runner.submit(nxt)
    assert wait_done(store, nxt) == "finished"


@pytest.mark.slow
def test_workers_that_cannot_start_make_the_runner_give_up(env, tmp_path) -> None:
    # a GPU that does not exist: each worker dies while warming up, before it is ready
    r = LocalRunner(tmp_path / "playground.sqlite", device="cuda:97")
    try:
        queued = r.store.create_run("ada", "", MLP, _settings())
        r.submit(queued)
        assert not r.wait_ready(LIVENESS_S)
        assert "cannot start" in r.status()["problem"]
        assert r.store.get_run(queued).status == "failed"
        assert "cannot start" in r.store.get_run(queued).message
        with pytest.raises(PlaygroundError, match="cannot start"):
            r.submit(r.store.create_run("ada", "", MLP, _settings()))
    finally:
        r.shutdown()


# -- the job function in-process (as the CLI uses it) ------------------------------------------
def test_execute_run_enforces_caps_in_process(tmp_path) -> None:
    store = RunStore(tmp_path / "playground.sqlite")
    limits = Limits(max_params=1_000, max_steps=50, max_wall_s=60)
    big = store.create_run("ada", "", get_preset("small_cnn").to_dict(), _settings(10))
    assert execute_run(big, store.path, limits=limits) == "failed"
    assert "limit of 1,000 parameters per run (PLAYGROUND_MAX_PARAMS)" in \
        store.get_run(big).message
    long = store.create_run("ada", "", MLP, _settings(51))
    assert execute_run(long, store.path, limits=limits) == "failed"
    assert "limit of 50 steps per run (PLAYGROUND_MAX_STEPS)" in store.get_run(long).message
    bad = store.create_run("ada", "", {"stages": [{"block": "linear", "width": -3}]},
                           _settings())
    assert execute_run(bad, store.path, limits=limits) == "failed"
    assert "stage 1" in store.get_run(bad).message
    with pytest.raises(PlaygroundError, match="PLAYGROUND_MAX_STEPS"):
        check_limits(get_preset("mlp_points"), 51, limits)


def test_execute_run_stops_at_the_wall_clock_limit(tmp_path) -> None:
    # robust by construction, however slow the machine: the limit is over before training
    # starts (setting up takes longer than 10 ms), the limit is checked from the second step
    # on, and 20,000 steps cannot finish in it
    store = RunStore(tmp_path / "playground.sqlite")
    rid = store.create_run("ada", "", MLP, _settings(20_000))
    limits = Limits(max_params=10**9, max_steps=10**9, max_wall_s=0.01)
    assert execute_run(rid, store.path, limits=limits) == "stopped"
    run = store.get_run(rid)
    done = run.summary["steps_done"]
    assert run.message.startswith(f"stopped at step {done}: ")
    assert "time limit of 0.01 s (PLAYGROUND_MAX_WALL_S)" in run.message
    assert 1 <= done < 20_000  # every run makes its first step, so it has a point to show
    assert store.get_metrics(rid, ["loss"])["loss"]["steps"] == list(range(1, done + 1))


def test_metric_writer_stores_the_first_loss_at_once(tmp_path, monkeypatch) -> None:
    """Records wait for the writer's next flush (about 4 a second), except the first batch
    and the first batch holding a loss, which the trainer sends right after step 1's forward
    pass: a live chart gets its first point without waiting for the cadence."""
    import playground.jobs as jobs

    monkeypatch.setattr(jobs, "FLUSH_EVERY_S", 3600.0)  # no flush falls due during the test
    store = RunStore(tmp_path / "playground.sqlite")
    rid = store.create_run("ada", "", MLP, _settings())
    writer = jobs._MetricWriter(store, rid)
    writer.emit([{"step": 0, "name": "layers", "labels": ["fc"]}])
    assert store.layer_labels(rid) == ["fc"]  # the first batch: at once
    writer.emit([{"step": 1, "name": "loss", "value": 2.3},
                 {"step": 1, "name": "acc", "value": 0.1}])
    assert store.get_metrics(rid, ["loss"])["loss"]["steps"] == [1]  # at once
    writer.emit([{"step": 1, "name": "lr", "value": 0.001},
                 {"step": 2, "name": "loss", "value": 2.2}])
    assert store.get_metrics(rid, ["loss"])["loss"]["steps"] == [1]  # waits for the cadence
    writer.flush()
    assert store.get_metrics(rid, ["loss", "lr"])["loss"]["steps"] == [1, 2]



def test_execute_run_leaves_cancelled_or_missing_runs_alone(tmp_path) -> None:
    store = RunStore(tmp_path / "playground.sqlite")
    rid = store.create_run("ada", "", MLP, _settings())
    store.set_status(rid, "stopped", "cancelled")
    assert execute_run(rid, store.path) == "stopped"
    assert store.get_run(rid).message == "cancelled"
    assert execute_run(4242, store.path) == "missing"
    flagged = store.create_run("ada", "", MLP, _settings())
    store.request_stop(flagged, by=SYSTEM)
    assert execute_run(flagged, store.path) == "stopped"
    assert store.get_run(flagged).message == "stopped before it started by the server"


# -- the warm-up -------------------------------------------------------------------------------
def test_warm_up_runs_tasks_in_order_while_idle_and_drops_failures() -> None:
    from playground.warmup import run_while_idle

    done: list[str] = []
    waiting: list[bool] = [False]  # whether a run is waiting for the worker

    def task(name: str) -> Callable[[], None]:
        def run() -> None:
            if name == "bad":
                raise RuntimeError("a task that fails")
            done.append(name)
            waiting[0] = name == "b"  # a run arrives while "b" is in progress

        return run

    tasks = iter([task("a"), task("bad"), task("b"), task("c")])
    assert run_while_idle(tasks, lambda: waiting[0]) is False  # stopped for the run
    assert done == ["a", "b"]  # "b" was finished, not abandoned; "bad" was dropped
    waiting[0] = False  # the run is over: the rest follows
    assert run_while_idle(tasks, lambda: waiting[0]) is True
    assert done == ["a", "b", "c"]
    assert run_while_idle(tasks, lambda: False) is True  # nothing left


def test_warm_up_loads_exactly_what_default_runs_of_the_presets_load(monkeypatch) -> None:
    """After the warm-up's data tasks, a default run of a preset of each data set and input
    finds its data in the loader's cache: nothing is built again."""
    from playground import data as data_mod
    from playground.presets import list_presets
    from playground.targets import fit_to_dataset
    from playground.train import TrainSettings, train
    from playground.warmup import warm_up_tasks

    built: list[str] = []

    class CountingCache(data_mod._TensorCache):
        def get(self, request, build):  # type: ignore[no-untyped-def]
            def counted(req):  # type: ignore[no-untyped-def]
                built.append(f"{req.name} {req.input_shape}")
                return build(req)

            return super().get(request, counted)

    monkeypatch.setattr(data_mod, "_CACHE", CountingCache(data_mod.CACHE_BYTES))
    *prefetches, _one_step = list(warm_up_tasks())
    for task in prefetches:
        task()
    warmed = sorted(built)
    assert len(warmed) == len(set(warmed)) == len(prefetches) >= 3
    assert "shapes (3, 32, 32)" in warmed  # the starter design's data

    firsts = {}
    for p in list_presets():  # the first preset of each data set and input shape
        spec, _ = fit_to_dataset(p.spec(), p.dataset)
        firsts.setdefault((p.dataset, spec.input.shape), (p, spec))
    assert len(firsts) == len(prefetches)
    for p, spec in firsts.values():
        result = train(spec, TrainSettings(dataset=p.dataset, eval_every=10**6),
                       emit=lambda records: None, should_stop=lambda: True)
        assert result.summary["steps_done"] == 0, p.name  # loaded the data, then stopped
    assert sorted(built) == warmed  # every load was a cache hit


# -- plumbing ----------------------------------------------------------------------------------
def test_plan_workers_per_gpu_share_else_cpu_count() -> None:
    one = {"gpus_per_run": 1.0}
    assert plan_workers("auto", 3, cuda_count=0, **one) == [None, None, None]
    assert plan_workers("auto", 3, cuda_count=2, **one) == ["cuda:0", "cuda:1"]
    assert plan_workers("cuda", 1, cuda_count=4, **one) == ["cuda:0", "cuda:1", "cuda:2",
                                                             "cuda:3"]
    assert plan_workers("cuda:1", 3, cuda_count=2, **one) == ["cuda:1"]
    assert plan_workers("cpu", 2, cuda_count=2, **one) == [None, None]
    assert plan_workers("mps", 0, cuda_count=0, **one) == [None]
    # several runs per GPU: floor(1 / share) workers each, spread over the GPUs in turn
    assert plan_workers("auto", 3, cuda_count=2, gpus_per_run=0.25) == \
        ["cuda:0", "cuda:1"] * 4
    assert plan_workers("cuda:1", 3, cuda_count=2, gpus_per_run=0.3) == ["cuda:1"] * 3
    assert plan_workers("cuda", 1, cuda_count=1, gpus_per_run=0.0) == ["cuda:0"]
    assert plan_workers("cpu", 2, cuda_count=2, gpus_per_run=0.25) == [None, None]


PAGE_SCRIPT = """
import sys, time
from playground.runners.local import LocalRunner
from playground.presets import get_preset

# no `if __name__ == "__main__"` guard, as in a Streamlit page: spawn must not re-run this
runner = LocalRunner(sys.argv[1], workers=1)
rid = runner.start_run("page", "", get_preset("mlp_points").to_dict(),
                       {"dataset": "spirals", "steps": 20, "batch_size": 32, "device": "cpu"})
while runner.store.get_run(rid).is_active:
    time.sleep(0.05)
print("STATUS", runner.store.get_run(rid).status)
"""


def test_runner_started_from_an_unguarded_main_script(tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "page.py"
    script.write_text(PAGE_SCRIPT)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "db.sqlite")], env=env,
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "STATUS finished" in out.stdout
    assert "bootstrapping phase" not in out.stderr


def test_shutdown_interrupts_work_and_leaves_no_processes(env, tmp_path) -> None:
    r = LocalRunner(tmp_path / "playground.sqlite", workers=1, max_queued=5)
    store = r.store
    running = r.start_run("ada", "", MLP, _settings(200_000))
    waiting = r.start_run("ada", "", MLP, _settings(30))
    wait_for(lambda: store.last_step(running) >= 10)
    pids = r.status()["pids"]
    r.shutdown(timeout=10)
    r.shutdown()  # idempotent
    assert store.get_run(running).status == "interrupted"
    assert store.last_step(running) >= 10
    assert store.get_run(waiting).status == "interrupted"
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # gone and reaped: no zombie
    assert not [p for p in mp.active_children() if p.name.startswith("playground-worker")
                and p.pid in pids]
    with pytest.raises(PlaygroundError, match="shut down"):
        r.submit(store.create_run("ada", "", MLP, _settings()))
