"""``python -m playground runs`` and ``train --runner``: real subprocesses over a real store
(SQLite here; the same commands on PostgreSQL are covered by ``PLAYGROUND_DB_URL`` in
tests/test_store.py's engine tests), and a real embedded Ray for ``--runner ray``."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from playground.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(600)


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PLAYGROUND_DB_URL", "PLAYGROUND_RUNNER")}
    return {**env, "PYTHONPATH": str(ROOT), "PLAYGROUND_HOME": str(home),
            "PLAYGROUND_DEVICE": "cpu", "OMP_NUM_THREADS": "1", **extra}


def _cli(home: Path, *argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "playground", *argv], cwd=ROOT,
                          env=_env(home, **extra), capture_output=True, text=True,
                          timeout=540)


def _store(home: Path) -> RunStore:
    return RunStore(home / "runs" / "playground.sqlite")


def test_train_locally_then_list_runs_as_table_and_json(tmp_path: Path) -> None:
    out = _cli(tmp_path, "train", "mlp_points", "--steps", "12", "--owner", "Ada",
               "--title", "first <b>try</b>")
    assert out.returncode == 0, out.stderr
    assert "runner local" in out.stderr
    assert "local, " + platform.node() + ", cpu" in out.stdout
    # a second person's run, made directly in the store, still queued
    store = _store(tmp_path)
    other = store.create_run("bob", "waiting", {"name": "x"}, {"steps": 5})

    listed = _cli(tmp_path, "runs", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [other, other - 1]  # newest first
    mine = rows[1]
    run = store.get_run(mine["id"])
    assert mine["owner"] == "Ada" and mine["title"] == "first <b>try</b>"
    assert mine["status"] == "finished" and mine["steps_done"] == 12
    assert mine["final_val_acc"] == pytest.approx(run.summary["final_val_acc"])
    assert (mine["runner"], mine["node"], mine["device"]) == ("local", platform.node(), "cpu")
    # oracle for the record count: the rows themselves
    names = store.metric_names(mine["id"])
    series = store.get_metrics(mine["id"], names)
    assert mine["records"] == sum(len(s["steps"]) for s in series.values()) > 12
    assert rows[0]["status"] == "queued" and rows[0]["runner"] is None

    only = json.loads(_cli(tmp_path, "runs", "--owner", "ADA", "--format", "json").stdout)
    assert [r["id"] for r in only] == [mine["id"]]  # owners compare case-insensitively
    table = _cli(tmp_path, "runs").stdout.splitlines()
    assert table[0].split()[:4] == ["id", "owner", "title", "status"]
    assert any(line.split()[0] == str(mine["id"]) and "finished" in line for line in table)


@pytest.mark.parametrize(("argv", "message"), [
    (["runs", "--status", "sleeping"], "unknown status 'sleeping'"),
    (["runs", "--limit", "0"], "--limit must be at least 1"),
])
def test_runs_bad_input_is_one_line_exit_2(tmp_path: Path, argv: list[str], message: str
                                           ) -> None:
    out = _cli(tmp_path, *argv)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"error: {out.stderr.strip()[7:]}"]
    assert message in out.stderr and "Traceback" not in out.stderr


def test_unknown_runner_in_the_environment_is_one_line(tmp_path: Path) -> None:
    out = _cli(tmp_path, "train", "mlp_points", "--steps", "3", PLAYGROUND_RUNNER="slurm")
    assert out.returncode == 2 and "unknown runner 'slurm'" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert _store(tmp_path).list_runs() == []  # nothing was created


def test_train_through_an_embedded_ray_records_where_it_ran(tmp_path: Path) -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        must = os.environ.get("CI") or os.environ.get("PLAYGROUND_REQUIRE_RAY")
        (pytest.fail if must else pytest.skip)("needs ray (pip install -r requirements.txt)")
    out = _cli(tmp_path, "train", "mlp_points", "--steps", "15", "--runner", "ray",
               "--owner", "ada", PLAYGROUND_RAY_ADDRESS="", PLAYGROUND_CPUS_PER_RUN="1")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "runner ray" in out.stderr
    (run,) = _store(tmp_path).list_runs()
    assert run.status == "finished" and run.summary["steps_done"] == 15
    assert (run.runner, run.worker_host, run.device) == ("ray", platform.node(), "cpu")
    assert run.worker_pid != os.getpid()
    rows = json.loads(_cli(tmp_path, "runs", "--format", "json").stdout)
    assert rows[0]["runner"] == "ray" and rows[0]["steps_done"] == 15


def test_train_through_ray_client_on_a_cluster_that_wants_a_token(tmp_path: Path) -> None:
    """``PLAYGROUND_RAY_ADDRESS=ray://...``: a real cluster head (``ray start --head``) that
    requires Ray's token; the command has the token file but not ``RAY_AUTH_MODE``, so it must
    turn token mode on itself (without it Ray Client times out). The ``playground`` package
    travels to the cluster as a ``py_modules`` runtime environment; the task writes to the
    store itself."""
    try:
        import ray  # noqa: F401
    except ImportError:
        must = os.environ.get("CI") or os.environ.get("PLAYGROUND_REQUIRE_RAY")
        (pytest.fail if must else pytest.skip)("needs ray (pip install -r requirements.txt)")
    from tests.ray_cluster import ray_head

    with ray_head() as head:
        env = {"PLAYGROUND_RAY_ADDRESS": head.client_address,
               "RAY_AUTH_TOKEN_PATH": str(head.token_path),
               "PLAYGROUND_RAY_CONNECT_TIMEOUT_S": "240", "PLAYGROUND_CPUS_PER_RUN": "1"}
        out = subprocess.run(
            [sys.executable, "-m", "playground", "train", "mlp_points", "--steps", "12",
             "--runner", "ray", "--owner", "ada"], cwd=ROOT, capture_output=True, text=True,
            timeout=540, env={k: v for k, v in _env(tmp_path, **env).items()
                              if k != "RAY_AUTH_MODE"})
        assert out.returncode == 0, out.stderr[-3000:] + head.log.read_text()[-2000:]
    (run,) = _store(tmp_path).list_runs()
    assert run.status == "finished" and run.summary["steps_done"] == 12
    assert (run.runner, run.worker_host, run.device) == ("ray", platform.node(), "cpu")
    assert run.worker_pid != os.getpid()
    names = _store(tmp_path).metric_names(run.id)
    assert len(_store(tmp_path).get_metrics(run.id, ["loss"])["loss"]["steps"]) == 12
    assert "grad_norm" in names


def test_train_through_an_unreachable_ray_fails_its_run_in_one_line(tmp_path: Path) -> None:
    """Nobody answers at the address: the command gives up after the connect timeout with one
    error line and exit 2, and the run it created is failed with the reason, never left
    queued for ever."""
    out = _cli(tmp_path, "train", "mlp_points", "--steps", "3", "--runner", "ray",
               PLAYGROUND_RAY_ADDRESS="127.0.0.1:1", PLAYGROUND_RAY_CONNECT_TIMEOUT_S="5")
    assert out.returncode == 2, out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot reach Ray at PLAYGROUND_RAY_ADDRESS" in errors[0]
    (run,) = _store(tmp_path).list_runs()
    assert run.status == "failed"
    assert run.message.startswith("not started: the ray runner could not take it")


def test_inspect_prints_the_confusion_matrix_of_the_stored_weights(tmp_path: Path) -> None:
    """``inspect`` rebuilds the model from the stored weights: its accuracy equals the one the
    run recorded, the confusion matrix sums to the validation size and its diagonal is the
    accuracy; bad input is one line with exit 2."""
    out = _cli(tmp_path, "train", "mlp_points", "--steps", "20", "--owner", "Ada")
    assert out.returncode == 0, out.stderr[-2000:]
    (run,) = _store(tmp_path).list_runs()
    for kind in ("final", "best"):
        got = _cli(tmp_path, "inspect", str(run.id), "--checkpoint", kind, "--format", "json")
        assert got.returncode == 0, got.stderr[-2000:]
        data = json.loads(got.stdout)
        assert {"accuracy", "per_class", "confusion", "classes", "checkpoint"} <= set(data)
        assert data["checkpoint"] == kind
        want = run.summary["final_val_acc" if kind == "final" else "best_val_acc"]
        assert data["accuracy"] == data["stored_val_acc"] == want
        confusion = data["confusion"]
        total = sum(map(sum, confusion))
        assert total == data["n"] > 0
        assert sum(confusion[i][i] for i in range(len(confusion))) / total == data["accuracy"]
        for i, name in enumerate(data["classes"]):
            assert data["per_class"][name] == confusion[i][i] / sum(confusion[i])
    table = _cli(tmp_path, "inspect", str(run.id))
    assert table.returncode == 0
    assert f"validation accuracy {run.summary['final_val_acc']:.2%}" in table.stdout
    assert "confusion matrix (rows: true class, columns: predicted)" in table.stdout
    for argv, message in ((["inspect", "99"], "there is no run #99"),
                          (["inspect", "0"], "RUN_ID is a run number"),
                          (["inspect", str(run.id), "--checkpoint", "last"], "invalid choice")):
        bad = _cli(tmp_path, *argv)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
        assert len([ln for ln in bad.stderr.splitlines() if "error" in ln]) == 1


def test_inspect_of_a_run_without_weights_says_why(tmp_path: Path) -> None:
    out = _cli(tmp_path, "train", "mlp_points", "--steps", "5",
               PLAYGROUND_MAX_CHECKPOINT_MB="0")
    assert out.returncode == 0, out.stderr[-2000:]
    (run,) = _store(tmp_path).list_runs()
    got = _cli(tmp_path, "inspect", str(run.id))
    assert got.returncode == 2
    assert got.stderr.strip() == (f"error: run #{run.id} has no final weights: no weights are "
                                  "kept on this server (PLAYGROUND_MAX_CHECKPOINT_MB is 0)")
