"""The run store: round trips, vectors, incremental reads, concurrency and restart recovery.

Every test that takes ``store`` or ``db_url`` runs twice: on a SQLite file and on a real
PostgreSQL database (fixtures in conftest.py).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import sqlite3

import pytest
import sqlalchemy as sa

from playground.access import SYSTEM
from playground.errors import PlaygroundError
from playground.runs import STATUSES, RunStore, normalise_owner
from playground.store.schema import runs

SPEC = {"name": "tiny", "stages": [{"block": "linear", "depth": 1, "width": 4}]}
SETTINGS = {"dataset": "spirals", "steps": 30, "seed": 7, "device": "cpu"}


@pytest.fixture()
def store(db_url: str) -> RunStore:
    return RunStore(db_url)


def _records(steps: range, layers: int = 3) -> list[dict]:
    out: list[dict] = []
    for s in steps:
        out.append({"step": s, "name": "loss", "value": 1.0 / (s + 1)})
        out.append({"step": s, "name": "acc", "value": s / 100})
        out.append({"step": s, "name": "grad_norm_layer",
                    "values": [s + i / 10 for i in range(layers)]})
    return out


def test_create_get_list_round_trip(store: RunStore) -> None:
    rid = store.create_run("  Ada   Lovelace ", "first try", SPEC, SETTINGS)
    run = store.get_run(rid)
    assert run.id == rid
    assert run.owner == "Ada Lovelace"
    assert run.title == "first try"
    assert run.spec == SPEC and run.settings == SETTINGS
    assert run.seed == 7
    assert run.status == "queued" and run.is_active
    assert run.started_at is None and run.duration_s is None
    assert {"python", "torch", "torchvision", "playground"} <= set(run.versions)
    assert not run.stop_requested

    other = store.create_run("bob", "", SPEC, SETTINGS)
    # owners match case-insensitively; newest first
    assert [r.id for r in store.list_runs(owner="ada lovelace")] == [rid]
    assert [r.id for r in store.list_runs()] == [other, rid]
    assert store.list_runs(statuses=["finished"]) == []
    assert store.count_active("ADA LOVELACE") == 1

    assert store.mark_started(rid, pid=1234)
    assert not store.mark_started(rid, pid=1234)  # a second claim loses
    run = store.get_run(rid)
    assert run.status == "running" and run.worker_pid == 1234 and run.started_at is not None

    assert store.set_status(rid, "finished", "done\nin two lines", {"final_loss": 0.1})
    run = store.get_run(rid)
    assert run.status == "finished" and not run.is_active
    assert run.message == "done in two lines"
    assert run.summary == {"final_loss": 0.1}
    assert run.finished_at is not None and run.duration_s is not None
    assert [r.id for r in store.list_runs(statuses=["finished"])] == [rid]
    assert store.count_active("Ada Lovelace") == 0
    assert run.to_dict()["id"] == rid


def test_set_status_only_if_and_unknown_status(store: RunStore) -> None:
    rid = store.create_run("ada", "", SPEC, SETTINGS)
    assert not store.set_status(rid, "failed", "x", only_if=("running",))
    assert store.get_run(rid).status == "queued"
    assert store.set_status(rid, "stopped", "cancelled", only_if=("queued",))
    with pytest.raises(ValueError, match="unknown run status"):
        store.set_status(rid, "exploded")
    assert set(STATUSES) >= {"queued", "running", "finished", "diverged", "failed", "stopped",
                             "interrupted", "early_stopped"}


def test_missing_run_and_bad_owner(store: RunStore) -> None:
    with pytest.raises(PlaygroundError, match="no run #999"):
        store.get_run(999)
    assert store.find_run(999) is None
    with pytest.raises(PlaygroundError, match="enter your name"):
        store.create_run("   ", "", SPEC, SETTINGS)
    with pytest.raises(PlaygroundError, match="at most"):
        normalise_owner("x" * 500)


def test_metrics_round_trip_with_vectors_labels_and_nan(store: RunStore) -> None:
    rid = store.create_run("ada", "", SPEC, SETTINGS)
    labels = ["stage1.layer1.fc", "stage1.layer2.fc", "head.fc"]
    store.append_metrics(rid, [{"step": 0, "name": "layers", "labels": labels}])
    assert store.append_metrics(rid, _records(range(1, 6))) == 15
    store.append_metrics(rid, [{"step": 6, "name": "loss", "value": float("nan")},
                               {"step": 7, "name": "loss", "value": float("inf")}])
    assert store.layer_labels(rid) == labels
    m = store.get_metrics(rid)
    assert set(m) == {"loss", "acc", "grad_norm_layer"}  # labels are not a series
    assert m["loss"]["steps"] == [1, 2, 3, 4, 5, 6, 7]
    assert m["loss"]["values"][:5] == [1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 6]
    assert math.isnan(m["loss"]["values"][5]) and m["loss"]["values"][6] == math.inf
    assert m["grad_norm_layer"]["steps"] == [1, 2, 3, 4, 5]
    assert m["grad_norm_layer"]["values"][0] == pytest.approx([1.0, 1.1, 1.2])
    assert all(len(v) == len(labels) for v in m["grad_norm_layer"]["values"])

    only = store.get_metrics(rid, names=["acc"])
    assert list(only) == ["acc"] and only["acc"]["values"] == [0.01, 0.02, 0.03, 0.04, 0.05]
    assert store.get_metrics(rid, names=[]) == {}
    assert store.metric_names(rid) == ["acc", "grad_norm_layer", "loss"]
    assert store.last_step(rid) == 7
    assert store.layer_labels(12345) == [] and store.last_step(12345) == -1
    with pytest.raises(ValueError, match="no value"):
        store.append_metrics(rid, [{"step": 1, "name": "loss"}])


def test_get_metrics_since_step_is_incremental(store: RunStore) -> None:
    rid = store.create_run("ada", "", SPEC, SETTINGS)
    other = store.create_run("bob", "", SPEC, SETTINGS)
    store.append_metrics(rid, _records(range(0, 100)))
    store.append_metrics(other, _records(range(0, 100)))  # never mixed in
    seen = store.get_metrics(rid)
    last = max(seen["loss"]["steps"])
    assert store.get_metrics(rid, since_step=last) == {}
    store.append_metrics(rid, _records(range(100, 103)))
    new = store.get_metrics(rid, since_step=last)
    assert new["loss"]["steps"] == [100, 101, 102]
    assert new["grad_norm_layer"]["steps"] == [100, 101, 102]
    # a poller that passes the last step it has seen ends with exactly the full read
    polled: dict[str, list[int]] = {}
    cursor = -1
    for lo, hi in ((103, 110), (110, 111), (111, 140)):
        store.append_metrics(rid, _records(range(lo, hi)))
        for name, series in store.get_metrics(rid, since_step=cursor).items():
            polled.setdefault(name, []).extend(series["steps"])
        cursor = store.last_step(rid)
    full = store.get_metrics(rid)
    assert polled == {name: series["steps"] for name, series in full.items()}
    assert store.get_metrics(rid)["loss"]["steps"] == list(range(140))
    assert len(store.get_metrics(other)["loss"]["steps"]) == 100


def test_poll_metrics_sees_every_record_once_even_out_of_step_order(store: RunStore) -> None:
    rid = store.create_run("ada", "", SPEC, SETTINGS)
    other = store.create_run("bob", "", SPEC, SETTINGS)
    series, cursor = store.poll_metrics(rid)
    assert series == {} and cursor == 0
    polled: dict[str, list[int]] = {}

    def poll() -> None:
        nonlocal cursor
        new, cursor = store.poll_metrics(rid, cursor)
        for name, s in new.items():
            polled.setdefault(name, []).extend(s["steps"])

    store.append_metrics(rid, _records(range(1, 11)))
    poll()
    store.append_metrics(other, _records(range(0, 50)))
    # activation statistics of step 10 arrive with the records of steps 11..20
    store.append_metrics(rid, [*_records(range(11, 21)),
                               {"step": 10, "name": "act_mean", "values": [0.0, 1.0]}])
    poll()
    poll()  # nothing new: nothing twice
    assert polled["act_mean"] == [10]
    assert polled["loss"] == list(range(1, 21))
    full = store.get_metrics(rid)
    assert polled == {name: s["steps"] for name, s in full.items()}
    only, _ = store.poll_metrics(rid, 0, names=["act_mean"])
    assert only == {"act_mean": {"steps": [10], "values": [[0.0, 1.0]]}}
    assert store.poll_metrics(rid, cursor, names=[]) == ({}, cursor)


def test_stop_flag_and_delete(store: RunStore) -> None:
    rid = store.create_run("ada", "", SPEC, SETTINGS)
    assert not store.stop_requested(rid)
    store.request_stop(rid, by=SYSTEM)
    assert store.stop_requested(rid)
    store.append_metrics(rid, [*_records(range(3)), {"step": 0, "name": "layers",
                                                     "labels": ["a"]}])
    with pytest.raises(PlaygroundError, match="stop it before deleting"):
        store.delete_run(rid, by=SYSTEM)
    store.set_status(rid, "stopped")
    store.delete_run(rid, by=SYSTEM)
    assert store.find_run(rid) is None
    assert store.get_metrics(rid) == {} and store.layer_labels(rid) == []
    requeued = store.create_run("ada", "", SPEC, SETTINGS)
    store.request_stop(requeued, by=SYSTEM)
    store.set_status(requeued, "queued")  # re-queueing clears the flag
    assert not store.stop_requested(requeued)


def test_store_uses_wal_and_a_busy_timeout(tmp_path) -> None:
    store = RunStore(tmp_path / "playground.sqlite")
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    with store.database.reading() as own:
        assert own.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def _writer(path: str, run_id: int, offset: int, batches: int) -> None:
    store = RunStore(path)
    for b in range(batches):
        base = offset + b * 20
        store.append_metrics(run_id, _records(range(base, base + 20), layers=8))


def test_two_writer_processes_lose_no_rows(store: RunStore) -> None:
    rid = store.create_run("ada", "", SPEC, SETTINGS)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(store.url, rid, k * 100_000, 40))
             for k in range(2)]
    for p in procs:
        p.start()
    # the reader keeps reading while both write
    while any(p.is_alive() for p in procs):
        store.get_metrics(rid, names=["loss"])
    for p in procs:
        p.join()
        assert p.exitcode == 0
    m = store.get_metrics(rid)
    expected = 2 * 40 * 20
    assert len(m["loss"]["steps"]) == expected
    assert len(m["grad_norm_layer"]["values"]) == expected
    assert len(set(m["acc"]["steps"])) == expected


def _dead_pid() -> int:
    proc = mp.get_context("spawn").Process(target=os.getpid)
    proc.start()
    proc.join()
    return int(proc.pid)


def _age_heartbeat(url: str, run_id: int, seconds: float) -> None:
    """Make a run's last heartbeat ``seconds`` old, as a process that died then would leave it
    (through an engine of its own, as another process would)."""
    engine = sa.create_engine(url)
    with engine.begin() as con:
        con.execute(sa.update(runs).where(runs.c.id == run_id)
                    .values(heartbeat_at=runs.c.heartbeat_at - seconds))
    engine.dispose()


def test_restart_marks_orphaned_runs_interrupted_and_keeps_metrics(db_url: str) -> None:
    path = db_url
    old_server = RunStore(path)
    # liveness is the heartbeat, never the pid: a live pid with a silent run is gone, a
    # dead pid with a fresh heartbeat (another machine, a reused id) is alive
    dead = old_server.create_run("ada", "was training", SPEC, SETTINGS)
    old_server.mark_started(dead, pid=os.getpid())
    old_server.append_metrics(dead, _records(range(50)))
    _age_heartbeat(path, dead, 31.0)  # the default timeout is 30 s
    waiting = old_server.create_run("ada", "was queued", SPEC, SETTINGS)
    alive = old_server.create_run("bob", "training elsewhere", SPEC, SETTINGS)
    old_server.mark_started(alive, pid=_dead_pid())
    done = old_server.create_run("bob", "", SPEC, SETTINGS)
    old_server.set_status(done, "finished", "ok")
    old_server.close()

    new_server = RunStore(path)  # "restart"
    assert sorted(new_server.recover_interrupted()) == sorted([dead, waiting])
    run = new_server.get_run(dead)
    assert run.status == "interrupted" and "went away" in run.message
    assert new_server.get_run(waiting).status == "interrupted"
    assert new_server.get_run(alive).status == "running"  # its heartbeat is fresh
    assert new_server.get_run(done).status == "finished"
    assert new_server.get_metrics(dead)["loss"]["steps"] == list(range(50))
    assert new_server.recover_interrupted() == []


def test_heartbeats_keep_a_run_alive_and_stop_with_it(store: RunStore) -> None:
    rid = store.create_run("ada", "", SPEC, SETTINGS)
    assert not store.heartbeat(rid)  # queued: nothing to beat for
    assert store.get_run(rid).heartbeat_at is None
    store.mark_started(rid, pid=os.getpid())
    first = store.get_run(rid).heartbeat_at
    assert first is not None
    _age_heartbeat(store.url, rid, 10.0)
    assert store.heartbeat(rid)
    assert store.get_run(rid).heartbeat_at >= first  # back to now
    _age_heartbeat(store.url, rid, 10.0)
    store.append_metrics(rid, _records(range(3)))  # a batch of metrics beats too
    assert store.get_run(rid).heartbeat_at >= first
    _age_heartbeat(store.url, rid, 10.0)
    # a running server's sweep: queued runs and its own runs are left alone
    queued = store.create_run("ada", "", SPEC, SETTINGS)
    assert store.recover_interrupted(5.0, queued=False, skip=[rid]) == []
    assert store.recover_interrupted(5.0, queued=False) == [rid]
    assert store.get_run(queued).status == "queued"
    assert not store.heartbeat(rid)  # interrupted: the beats stop counting


# the runs table as earlier versions of the playground created it (before heartbeats)
OLD_RUNS_TABLE = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL COLLATE NOCASE,
    title TEXT NOT NULL DEFAULT '',
    spec_json TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    seed INTEGER,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    summary_json TEXT,
    versions_json TEXT,
    worker_pid INTEGER,
    worker_host TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE metrics (run_id INTEGER NOT NULL, step INTEGER NOT NULL, name TEXT NOT NULL,
                      value REAL, values_json TEXT);
"""


def test_a_store_file_from_before_heartbeats_is_upgraded_in_place(tmp_path) -> None:
    path = tmp_path / "playground.sqlite"
    con = sqlite3.connect(path)
    con.executescript(OLD_RUNS_TABLE)
    with con:
        for i, status in enumerate(("finished", "running", "queued")):
            con.execute(
                "INSERT INTO runs (owner, title, spec_json, settings_json, seed, status, "
                "created_at, started_at, summary_json) VALUES (?, ?, ?, ?, 7, ?, ?, ?, ?)",
                ("ada", f"old {status}", '{"name": "tiny"}', '{"steps": 30}', status,
                 1000.0 + i, 1001.0 + i, '{"final_loss": 0.5}'),
            )
        con.executemany("INSERT INTO metrics VALUES (2, ?, 'loss', ?, NULL)",
                        [(s, 1.0 / (s + 1)) for s in range(10)])
    con.close()

    store = RunStore(path)
    store = RunStore(path)  # opening it again changes nothing
    columns = [r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(runs)")]
    assert columns.count("heartbeat_at") == 1
    # added, in order, after the columns the file had
    assert columns[16:19] == ["heartbeat_at", "runner", "device"]
    finished, running, queued = sorted(store.list_runs(), key=lambda r: r.id)
    assert finished.title == "old finished" and finished.summary == {"final_loss": 0.5}
    assert finished.seed == 7 and running.heartbeat_at is None
    assert store.get_metrics(running.id)["loss"]["steps"] == list(range(10))
    # an old running run has no heartbeat: its start time, long ago, counts instead
    assert sorted(store.recover_interrupted()) == [running.id, queued.id]
    assert store.get_run(running.id).message == "the server restarted while this run was training"
    rid = store.create_run("bob", "new", SPEC, SETTINGS)
    assert store.mark_started(rid) and store.get_run(rid).heartbeat_at is not None
    assert len(store.list_runs()) == 4


def test_store_pickles_as_its_url(store: RunStore) -> None:
    import pickle

    rid = store.create_run("ada", "", SPEC, SETTINGS)
    copy = pickle.loads(pickle.dumps(store))
    assert copy.url == store.url and copy.get_run(rid).id == rid
    assert RunStore(store.url).get_run(rid).id == rid  # what a worker does with the URL
    if store.url.startswith("sqlite"):
        assert copy.path == store.path and RunStore(store.path).get_run(rid).id == rid
    else:
        with pytest.raises(PlaygroundError, match="not a file"):
            _ = store.path


def test_meta_values_of_many_runs_in_one_read_match_reading_each(store: RunStore) -> None:
    ids = [store.create_run("Ada", f"r{i}", SPEC, SETTINGS) for i in range(5)]
    values = {ids[0]: {"batch": "b1", "index": 0}, ids[2]: [1, 2.5, "x"], ids[4]: "plain"}
    for rid, value in values.items():
        store.set_meta(rid, "experiment", value)
    store.set_meta(ids[1], "other key", {"batch": "not this one"})
    many = store.get_meta_many([*ids, ids[0], 10_000], "experiment")
    assert many == values  # runs without the key (or unknown) are absent, duplicates harmless
    assert many == {r: store.get_meta(r, "experiment") for r in ids
                    if store.get_meta(r, "experiment") is not None}
    assert store.get_meta_many([], "experiment") == {}
