"""The store's database layer: migrations, engines and concurrency, on SQLite and PostgreSQL.

Oracles: a file made with the previous store's exact ``CREATE`` statements and read with its
own queries before the upgrade; Alembic's ``compare_metadata`` between a migrated database
and ``playground.store.schema``; SQLAlchemy's ``before_cursor_execute`` event for the
statements really sent; several real processes for claims, openers, writers and readers.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from playground.designs import DesignStore
from playground.errors import ConfigError
from playground.presets import get_preset
from playground.runs import RunStore
from playground.store import Database, default_url, to_url
from playground.store.engine import get_engine, max_bind_params
from playground.store.migrate import head_revision, upgrade
from playground.store.schema import metadata
from tests.store_workers import claim, open_and_create, poll_until_done, write_batches

SPEC = {"name": "tiny", "stages": [{"block": "linear", "depth": 1, "width": 4}]}
SETTINGS = {"dataset": "spirals", "steps": 30, "seed": 7, "device": "cpu"}

# -- the previous store's schema, verbatim (playground/runs.py and designs.py before Alembic) --
OLD_RUNS_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
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
    stop_requested INTEGER NOT NULL DEFAULT 0,
    heartbeat_at REAL,
    runner TEXT,
    device TEXT
);
CREATE INDEX IF NOT EXISTS runs_owner_status ON runs (owner, status);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    values_json TEXT
);
CREATE INDEX IF NOT EXISTS metrics_run_name_step ON metrics (run_id, name, step);
CREATE TABLE IF NOT EXISTS run_meta (
    run_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value_json TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
"""
OLD_DESIGNS_SCHEMA = """
CREATE TABLE IF NOT EXISTS designs (
    owner TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE,
    spec_json TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (owner, name)
);
"""
ADDED_COLUMNS = ("    heartbeat_at REAL,\n", "    runner TEXT,\n", "    device TEXT\n")
OLD_SCHEMAS = {
    "current": OLD_RUNS_SCHEMA,
    # before runner/device: the file as the heartbeat release made it
    "heartbeats": OLD_RUNS_SCHEMA.replace(",\n" + ADDED_COLUMNS[1] + ADDED_COLUMNS[2], "\n"),
    # before heartbeats
    "first": OLD_RUNS_SCHEMA.replace(",\n" + "".join(ADDED_COLUMNS), "\n"),
}
RUN_FIELDS = ("id", "owner", "title", "spec_json", "settings_json", "seed", "status", "message",
              "created_at", "started_at", "finished_at", "summary_json", "versions_json",
              "worker_pid", "worker_host", "stop_requested", "heartbeat_at", "runner", "device")


def _make_old_file(path: Path, variant: str) -> None:
    """A store file as the previous code made and filled it (its statements, its NULL-for-NaN)."""
    con = sqlite3.connect(path, isolation_level=None)
    con.executescript(OLD_SCHEMAS[variant] + OLD_DESIGNS_SCHEMA)
    have = {r[1] for r in con.execute("PRAGMA table_info(runs)")}
    con.execute("BEGIN")
    owners = ["Ada", "ada", "Élodie", "élodie", "Bob"]  # NOCASE folds ASCII letters only
    for i, owner in enumerate(owners):
        row = {"owner": owner, "title": f"run {i}", "spec_json": json.dumps(SPEC),
               "settings_json": json.dumps({**SETTINGS, "seed": i}), "seed": i,
               "status": ("finished", "running", "queued", "failed", "stopped")[i],
               "message": f"message {i}", "created_at": 1000.0 + i, "started_at": 1001.0 + i,
               "finished_at": 1002.0 + i if i in (0, 3, 4) else None,
               "summary_json": json.dumps({"final_loss": i / 10}),
               "versions_json": json.dumps({"torch": "2.x"}), "worker_pid": 100 + i,
               "worker_host": "old-host", "stop_requested": i % 2, "heartbeat_at": 1003.0 + i,
               "runner": "local", "device": "cpu"}
        row = {k: v for k, v in row.items() if k in have}
        con.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                    tuple(row.values()))
    # metrics of runs 1..3 interleaved, as concurrent trainings leave them; NaN is stored NULL
    for step in range(60):
        for rid in (1, 2, 3):
            value = [1.0 / (step + 1), math.nan, math.inf][step % 3]
            con.execute("INSERT INTO metrics (run_id, step, name, value, values_json) "
                        "VALUES (?, ?, 'loss', ?, NULL)", (rid, step, value))
            con.execute("INSERT INTO metrics (run_id, step, name, value, values_json) "
                        "VALUES (?, ?, 'grad_norm_layer', NULL, ?)",
                        (rid, step, json.dumps([step, step + 0.5, float("nan")])))
    con.execute("DELETE FROM metrics WHERE run_id = 3 AND step >= 50")  # gaps in the rowids
    con.execute("INSERT OR REPLACE INTO run_meta VALUES (1, 'labels:layers', ?)",
                (json.dumps(["a.fc", "b.fc", "head"]),))
    con.execute("INSERT OR REPLACE INTO run_meta VALUES (2, 'experiment', ?)",
                (json.dumps({"suite": "depth", "index": 2}),))
    for owner, name, preset in (("Ada", "My Net", "mlp_points"), ("Élodie", "net", "small_cnn"),
                                ("élodie", "net", "lenet5")):
        con.execute("INSERT OR REPLACE INTO designs VALUES (?, ?, ?, ?, ?)",
                    (owner, name, get_preset(preset).to_json(indent=None), 50.0, 60.0))
    con.execute("COMMIT")
    con.close()


def _old_reads(path: Path) -> dict[str, Any]:
    """What the previous code's own queries return from the old file (the oracle)."""
    con = sqlite3.connect(path)
    have = [r[1] for r in con.execute("PRAGMA table_info(runs)")]
    runs = {}
    for row in con.execute(f"SELECT {', '.join(have)} FROM runs"):
        full = dict.fromkeys(RUN_FIELDS)
        full.update(zip(have, row, strict=True))
        runs[full["id"]] = full
    owners = {who: [r[0] for r in con.execute(
        "SELECT id FROM runs WHERE owner = ? ORDER BY id DESC", (who,))]
        for who in ("ADA", "Élodie", "élodie", "bob", "nobody")}
    polls = {}
    for rid in (1, 2, 3):
        rows = con.execute("SELECT name, step, value, values_json, rowid FROM metrics "
                           "WHERE run_id = ? AND rowid > ? ORDER BY rowid", (rid, 0)).fetchall()
        polls[rid] = rows
    designs = {(o, n): s for o, n, s in con.execute("SELECT owner, name, spec_json FROM designs")}
    con.close()
    return {"runs": runs, "owners": owners, "polls": polls, "designs": designs}


def _plain(values: list[Any]) -> str:
    """NaN-aware comparison: JSON text with NaN spelled out."""
    return json.dumps(values)


def _affinity(declared: str) -> str:
    """SQLite's column affinity of a declared type (https://sqlite.org/datatype3.html, 3.1)."""
    text = declared.upper()
    if "INT" in text:
        return "INTEGER"
    if any(word in text for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if any(word in text for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC" if text else "BLOB"


def _schema_diff(url: str, *, adopted: bool = False) -> list[Any]:
    """Alembic's differences between the database and ``playground.store.schema``.

    An ``adopted`` SQLite file keeps its original declarations (``REAL`` for ``DOUBLE``,
    ``INTEGER`` for ``BIGINT``, a rowid primary key not declared ``NOT NULL``): these are
    compared by SQLite's own rule, the column's affinity, which decides what it stores.
    """
    opts: dict[str, Any] = {}
    if adopted:
        def same_affinity(context, inspected, metadata_column, inspected_type, metadata_type):
            dialect = context.dialect
            return _affinity(inspected_type.compile(dialect)) != _affinity(
                metadata_type.compile(dialect))
        opts["compare_type"] = same_affinity
    with get_engine(url).connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts=opts), metadata)
    flat = [d for group in diffs for d in (group if isinstance(group, list) else [group])]
    if adopted:
        flat = [d for d in flat if not (d[0] == "modify_nullable" and d[3] == "id")]
    return flat


def _sqlite_dump(path: Path) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    rows = con.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    rows += [(t, con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0])
             for t in ("runs", "metrics", "run_meta", "designs", "alembic_version")]
    con.close()
    return rows


@pytest.mark.parametrize("variant", list(OLD_SCHEMAS))
def test_an_old_sqlite_file_is_adopted_and_keeps_everything(tmp_path, variant: str) -> None:
    path = tmp_path / "playground.sqlite"
    _make_old_file(path, variant)
    old = _old_reads(path)

    store = RunStore(path)  # adopts the file: baseline, stamp, upgrade to head
    con = sqlite3.connect(path)
    assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [
        (head_revision(),)]
    con.close()
    assert _schema_diff(store.url, adopted=True) == []

    for rid, want in old["runs"].items():
        got = store.get_run(rid)
        assert (got.owner, got.title, got.seed, got.status, got.message) == (
            want["owner"], want["title"], want["seed"], want["status"], want["message"])
        assert got.spec == json.loads(want["spec_json"])
        assert got.settings == json.loads(want["settings_json"])
        assert got.summary == json.loads(want["summary_json"])
        assert got.versions == json.loads(want["versions_json"])
        assert (got.created_at, got.started_at, got.finished_at, got.heartbeat_at) == (
            want["created_at"], want["started_at"], want["finished_at"], want["heartbeat_at"])
        assert (got.worker_pid, got.worker_host, got.stop_requested) == (
            want["worker_pid"], want["worker_host"], bool(want["stop_requested"]))
        assert (got.runner, got.device) == (want["runner"], want["device"])
    # owners match as NOCASE matched them: "ADA" is Ada and ada, É and é stay two people
    for who, ids in old["owners"].items():
        assert [r.id for r in store.list_runs(owner=who)] == ids

    # every metric row, with its rowid as its cursor position
    for rid, rows in old["polls"].items():
        series, cursor = store.poll_metrics(rid, 0)
        assert cursor == rows[-1][4]
        for name in ("loss", "grad_norm_layer"):
            mine = [r for r in rows if r[0] == name]
            assert series[name]["steps"] == [r[1] for r in mine]
            want_values = [json.loads(r[3]) if r[3] is not None else
                           (math.nan if r[2] is None else r[2]) for r in mine]
            assert _plain(series[name]["values"]) == _plain(want_values)
        middle = rows[len(rows) // 2][4]  # a page that polled half-way goes on from there
        later, _ = store.poll_metrics(rid, middle)
        assert sum(len(s["steps"]) for s in later.values()) == len(
            [r for r in rows if r[4] > middle])
    assert store.layer_labels(1) == ["a.fc", "b.fc", "head"]
    assert store.get_meta(2, "experiment") == {"suite": "depth", "index": 2}

    designs = DesignStore(path)
    for (owner, name), spec_json in old["designs"].items():
        assert designs.load_design(owner, name).to_json(indent=None) == spec_json
    assert [d.name for d in designs.list_designs("ADA")] == ["My Net"]
    assert designs.load_design("ada", "my net").name == "mlp_points"
    assert designs.load_design("élodie", "NET").name == "lenet5"  # not Élodie's

    # opening again changes nothing
    before = _sqlite_dump(path)
    assert upgrade(store.url) is False
    RunStore(path)
    assert _sqlite_dump(path) == before

    # and the store goes on: new ids after the old ones, cursors keep growing
    rid = store.create_run("Ada", "new", SPEC, SETTINGS)
    assert rid > max(old["runs"])
    assert store.list_runs(owner="ada")[0].id == rid
    store.append_metrics(1, [{"step": 100, "name": "loss", "value": 0.5}])
    new, cursor = store.poll_metrics(1, old["polls"][1][-1][4])
    assert new == {"loss": {"steps": [100], "values": [0.5]}}
    assert cursor > max(r[4] for rows in old["polls"].values() for r in rows)


def test_a_file_with_designs_only_is_adopted(tmp_path) -> None:
    path = tmp_path / "playground.sqlite"
    con = sqlite3.connect(path)
    con.executescript(OLD_DESIGNS_SCHEMA)
    with con:
        con.execute("INSERT INTO designs VALUES ('Ada', 'net', ?, 1.0, 2.0)",
                    (get_preset("mlp_points").to_json(indent=None),))
    con.close()
    designs = DesignStore(path)
    assert designs.load_design("ADA", "Net").name == "mlp_points"
    assert RunStore(path).list_runs() == []
    assert _schema_diff(designs.url, adopted=True) == []


def test_a_fresh_database_is_at_head_and_matches_the_schema_module(db_url: str) -> None:
    store = RunStore(db_url)
    with store.database.reading() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
    assert _schema_diff(db_url) == []
    assert upgrade(db_url) is False


def test_a_newer_database_is_refused_untouched(db_url: str) -> None:
    Database(db_url)
    with get_engine(db_url).begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(ConfigError, match="newer version"):
        RunStore(db_url)


def test_processes_opening_a_fresh_database_at_once_all_succeed(db_url: str) -> None:
    ctx = mp.get_context("spawn")
    n = 4
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=open_and_create, args=(db_url, barrier, results))
             for _ in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    ids = sorted(results.get(timeout=10) for _ in range(n))
    store = RunStore(db_url)
    assert sorted(r.id for r in store.list_runs()) == ids
    with store.database.reading() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert versions == [(head_revision(),)]
    assert _schema_diff(db_url) == []


def _statements(engine: sa.Engine) -> list[tuple[str, bool]]:
    seen: list[tuple[str, bool]] = []

    def record(_conn, _cursor, statement, _params, _context, executemany) -> None:
        seen.append((" ".join(statement.split()), executemany))

    sa.event.listen(engine, "before_cursor_execute", record)
    return seen


def test_a_metric_flush_is_one_insert_statement(db_url: str) -> None:
    store = RunStore(db_url)
    rid = store.create_run("ada", "", SPEC, SETTINGS)
    store.mark_started(rid)
    batch = [{"step": s, "name": "loss", "value": 1.0 / (s + 1)} for s in range(30)]
    batch += [{"step": s, "name": "grad_norm_layer", "values": [s, s / 2]} for s in range(10)]
    batch.append({"step": 0, "name": "layers", "labels": ["a", "b"]})
    seen = _statements(store.database.engine)
    assert store.append_metrics(rid, batch) == 40
    inserts = [s for s, _ in seen if s.startswith("INSERT INTO metrics")]
    assert len(inserts) == 1  # one statement carrying all 40 rows
    placeholder = "(?, ?, ?, ?, ?)" if store.database.dialect == "sqlite" else "(%(run_id"
    assert inserts[0].count(placeholder) == 40
    assert len([s for s, _ in seen if s.startswith("INSERT INTO run_meta")]) == 1
    assert store.get_metrics(rid)["loss"]["steps"] == list(range(30))

    # a batch over the database's bound-parameter limit is split, and only then
    per_insert = max_bind_params(store.database.dialect) // 5  # 5 columns a row
    seen.clear()
    big = [{"step": s, "name": "x", "value": float(s)} for s in range(per_insert + 1)]
    assert store.append_metrics(rid, big) == per_insert + 1
    assert len([s for s, _ in seen if s.startswith("INSERT INTO metrics")]) == 2
    assert store.last_step(rid) == per_insert


def test_sqlite_writes_begin_immediate_and_reads_begin_nothing(tmp_path) -> None:
    store = RunStore(tmp_path / "playground.sqlite")
    seen = _statements(store.database.engine)
    rid = store.create_run("ada", "", SPEC, SETTINGS)
    assert seen[0][0] == "BEGIN IMMEDIATE" and seen[1][0].startswith("INSERT INTO runs")
    seen.clear()
    store.get_run(rid)
    assert [s for s, _ in seen if s.startswith("BEGIN")] == []


def test_claims_are_atomic_across_processes(db_url: str) -> None:
    store = RunStore(db_url)
    rid = store.create_run("ada", "", SPEC, SETTINGS)
    ctx = mp.get_context("spawn")
    n = 4
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=claim, args=(db_url, rid, barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    outcomes = [results.get(timeout=10) for _ in range(n)]
    assert sum(claimed for claimed, _ in outcomes) == 1
    assert sum(stopped for _, stopped in outcomes) == 1
    run = store.get_run(rid)
    assert run.status == "stopped" and run.worker_host.startswith("worker-")


def test_concurrent_writers_and_polling_readers_lose_nothing(db_url: str) -> None:
    store = RunStore(db_url)
    one, two = (store.create_run(who, "", SPEC, SETTINGS) for who in ("ada", "bob"))
    ctx = mp.get_context("spawn")
    done, results = ctx.Event(), ctx.Queue()
    batches = 25
    # three processes write into run one at once (the cursor's hard case), one into run two
    writers = [ctx.Process(target=write_batches, args=(db_url, rid, k * 100_000, batches))
               for k, rid in enumerate((one, one, one, two))]
    readers = [ctx.Process(target=poll_until_done, args=(db_url, rid, done, results))
               for rid in (one, two, one)]
    for p in readers + writers:
        p.start()
    for p in writers:
        p.join(300)
        assert p.exitcode == 0
    done.set()
    polled = [results.get(timeout=120) for _ in readers]
    for p in readers:
        p.join(60)
        assert p.exitcode == 0
    expected = {one: 3 * batches * 20, two: batches * 20}
    for rid, seen in polled:
        assert len(seen) == expected[rid]  # every row ...
        assert len(set(seen)) == len(seen)  # ... exactly once
        full = store.get_metrics(rid)
        assert sorted(seen) == sorted((n, s) for n, v in full.items() for s in v["steps"])


def _use_inherited_store(store: RunStore, n: int) -> None:
    for i in range(n):
        store.create_run("child", f"{i}", SPEC, SETTINGS)


def test_a_forked_child_opens_its_own_connections(db_url: str) -> None:
    store = RunStore(db_url)
    store.create_run("parent", "", SPEC, SETTINGS)  # the parent's pool holds a connection now
    parent_engine = store.database.engine
    proc = mp.get_context("fork").Process(target=_use_inherited_store, args=(store, 20))
    proc.start()
    for i in range(20):  # the parent keeps using its own connections meanwhile
        store.create_run("parent", f"{i}", SPEC, SETTINGS)
        store.list_runs(owner="child")
    proc.join(120)
    assert proc.exitcode == 0
    assert store.database.engine is parent_engine
    assert store.count_active("child") == 20 and store.count_active("parent") == 21


def test_locations_and_urls(tmp_path, monkeypatch) -> None:
    relative = to_url("runs/playground.sqlite")
    assert relative == f"sqlite:///{Path.cwd() / 'runs' / 'playground.sqlite'}"
    assert to_url(tmp_path / "a.sqlite") == to_url(f"sqlite:///{tmp_path / 'a.sqlite'}")
    assert to_url("postgresql://u:pw@h/db") == "postgresql+psycopg://u:pw@h/db"
    assert to_url("postgres://u@h:5433/db") == "postgresql+psycopg://u@h:5433/db"
    for bad, match in (("mysql://u@h/db", "not supported"), ("sqlite://", "in-memory"),
                       ("sqlite:///:memory:", "in-memory")):
        with pytest.raises(ConfigError, match=match):
            to_url(bad)
    assert "pw" not in repr(Database("postgresql://u:pw@h/db", migrate=False))

    monkeypatch.setenv("PLAYGROUND_RUN_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("PLAYGROUND_DB_URL", raising=False)
    assert default_url() == to_url(tmp_path / "runs" / "playground.sqlite")
    assert RunStore().path == tmp_path / "runs" / "playground.sqlite"
    monkeypatch.setenv("PLAYGROUND_DB_URL", f"sqlite:///{tmp_path / 'other.sqlite'}")
    assert RunStore().path == tmp_path / "other.sqlite"
