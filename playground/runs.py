"""The run store: one SQLite file that is the single source of truth for trainings.

Worker processes write a run's status and metric records here; the Streamlit server, the CLI
and the compare page read them back. Pages never talk to a training directly, so a reload, a
second tab or a restarted server see the same state.

SQLite in WAL mode lets one writer and many readers work at once across processes
(https://sqlite.org/wal.html); ``busy_timeout`` makes a second writer wait for the lock instead
of failing. Every thread of every process gets its own connection (SQLite connections must not
cross threads or a ``fork``), and every write is one ``BEGIN IMMEDIATE`` transaction, so a
batch of metric records is stored whole or not at all.

Tables:

- ``runs``: one row per training (owner, title, spec and settings JSON, status, times,
  summary, library versions, worker pid, stop flag, heartbeat).
- ``metrics``: one row per record ``(run_id, step, name, value, values_json)``; scalar records
  fill ``value``, per-layer vectors fill ``values_json`` (a JSON list, one entry per layer).
  Indexed by ``(run_id, name, step)``, so reading a few series stays cheap while a run grows;
  a page polling a live run asks only for the rows after the last one it has seen
  (:meth:`RunStore.poll_metrics`).
- ``run_meta``: small JSON values per run, e.g. the layer labels the per-layer vectors follow.

Liveness: the process training a run writes ``heartbeat_at`` (Unix seconds) when it claims
the run, with every batch of metrics and every few seconds from a small thread
(:mod:`playground.jobs`). A ``running`` run whose heartbeat is older than
``PLAYGROUND_HEARTBEAT_TIMEOUT_S`` has lost its process, whatever became of it (killed, a
zombie nobody reaped, another machine): :meth:`RunStore.recover_interrupted` marks it
``interrupted``. Process ids are recorded for the reader but never probed: ``os.kill(pid, 0)``
succeeds on an unreaped zombie and on an unrelated process that reused the id.

Schema changes to an existing file are applied when a store opens it (:data:`_MIGRATIONS`:
columns added if missing, every row kept), so files made by earlier versions keep working.

Everything leaves this module as plain data (:class:`Run` dataclasses, dicts and lists).
"""

from __future__ import annotations

import json
import math
import os
import platform
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from playground.errors import PlaygroundError
from playground.settings import get_settings

DB_FILENAME = "playground.sqlite"

STATUSES = (
    "queued",  # waiting for a worker
    "running",  # a worker is training it
    "finished",  # reached its last step
    "early_stopped",  # the trainer stopped it on purpose (e.g. early stopping)
    "diverged",  # the loss became NaN/inf or grew far beyond its starting value
    "failed",  # an error: the message says which
    "stopped",  # stopped by its owner, or by the wall-clock limit
    "interrupted",  # the server went away while it was queued or running
)
ACTIVE_STATUSES = ("queued", "running")
DONE_STATUSES = tuple(s for s in STATUSES if s not in ACTIVE_STATUSES)

MAX_OWNER_CHARS = 64
MAX_TITLE_CHARS = 200
BUSY_TIMEOUT_MS = 15_000

_SCHEMA = """
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

_MIGRATIONS: tuple[tuple[str, str, str], ...] = (
    # (table, column, its definition): added to files made before the column existed
    ("runs", "heartbeat_at", "REAL"),
    ("runs", "runner", "TEXT"),
    ("runs", "device", "TEXT"),
)


# -- plain data --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One training run as stored. Times are Unix seconds (``time.time()``)."""

    id: int
    owner: str
    title: str
    spec: dict[str, Any]
    settings: dict[str, Any]
    seed: int | None
    status: str
    message: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    summary: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    worker_pid: int | None = None
    worker_host: str | None = None
    stop_requested: bool = False
    heartbeat_at: float | None = None  # last sign of life of the process training it
    runner: str | None = None  # the runner backend that ran it ("local", "ray")
    device: str | None = None  # the torch device it trained on ("cpu", "cuda:0")

    @property
    def is_active(self) -> bool:
        """Queued or running: a page keeps polling while one of these is shown."""
        return self.status in ACTIVE_STATUSES

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to finish (to now while running); ``None`` if never started."""
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else time.time()
        return max(0.0, end - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- helpers shared with playground.designs ----------------------------------------------------
def default_db_path() -> Path:
    """``$PLAYGROUND_RUN_DIR/playground.sqlite`` (read from the environment now)."""
    return get_settings().run_dir / DB_FILENAME


def normalise_owner(owner: str) -> str:
    """Collapse whitespace in a classroom name; refuse empty or over-long names.

    Owners are compared case-insensitively by the database (``COLLATE NOCASE``), so "Ada" and
    "ada" are one person.
    """
    return clean_name(owner, MAX_OWNER_CHARS, "that name",
                      "enter your name first: runs and designs are kept under it")


def clean_name(name: str, limit: int, what: str, when_empty: str) -> str:
    """Collapse whitespace and drop unprintable characters; refuse an empty name (with
    ``when_empty``) or one over ``limit`` characters (naming it ``what``)."""
    text = "".join(ch for ch in " ".join(str(name or "").split()) if ch.isprintable())
    if not text:
        raise PlaygroundError(when_empty)
    if len(text) > limit:
        raise PlaygroundError(f"{what} is {len(text)} characters long; use at most {limit}")
    return text


def library_versions() -> dict[str, str]:
    """Python and library versions, recorded with each run (read from package metadata)."""
    from playground import __version__

    versions = {"python": platform.python_version(), "playground": __version__}
    for dist in ("torch", "torchvision"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class SQLiteFile:
    """One SQLite file; hands each thread (and each process) its own connection.

    Connections run in autocommit mode; :meth:`write` wraps a block in ``BEGIN IMMEDIATE`` ...
    ``COMMIT`` so writers queue on the lock at the start (honouring ``busy_timeout``) rather
    than failing half-way when upgrading a read lock.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, schema: str = "",
                 migrations: Iterable[tuple[str, str, str]] = ()):
        self.path = Path(path) if path is not None else default_db_path()
        self._schema = schema
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if schema:
            con = self.connection()
            try:
                con.executescript("BEGIN IMMEDIATE;" + schema)  # left open for the migrations
                _add_missing_columns(con, migrations)
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise

    def __getstate__(self) -> dict[str, Any]:
        # Only the location travels to another process; connections never do.
        return {"path": self.path, "_schema": ""}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self._schema = ""
        self._local = threading.local()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (and again after a fork)."""
        con = getattr(self._local, "con", None)
        if con is not None and getattr(self._local, "pid", None) == os.getpid():
            return con
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        for _ in range(50):  # switching to WAL needs a moment of exclusive access
            try:
                con.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError:
                time.sleep(0.05)
        con.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe in WAL mode
        self._local.con = con
        self._local.pid = os.getpid()
        return con

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed at the end of the block, rolled back on error."""
        con = self.connection()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        con = getattr(self._local, "con", None)
        if con is not None and getattr(self._local, "pid", None) == os.getpid():
            con.close()
        self._local.con = None


def _add_missing_columns(con: sqlite3.Connection,
                         migrations: Iterable[tuple[str, str, str]]) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for each ``(table, column, definition)`` not there yet.

    Runs inside the opening ``BEGIN IMMEDIATE``, so two processes opening an old file at once
    cannot both add a column. SQLite adds a column without rewriting the rows; existing rows
    read the column's default (``NULL`` here).
    """
    for table, column, definition in migrations:
        have = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


def _series(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, list[Any]]]:
    """Group ``(name, step, value, values_json, ...)`` rows into per-name step/value lists."""
    out: dict[str, dict[str, list[Any]]] = {}
    loads = json.loads
    nan = math.nan
    current = None
    steps: list[int] = []
    values: list[Any] = []
    for row in rows:
        name, step, value, values_json = row[:4]
        if name != current:
            series = out.setdefault(name, {"steps": [], "values": []})
            steps, values, current = series["steps"], series["values"], name
        steps.append(step)
        if values_json is not None:
            values.append(loads(values_json))
        else:
            values.append(nan if value is None else value)  # SQLite stores NaN as NULL
    return out


# -- the store ---------------------------------------------------------------------------------
_RUN_COLUMNS = (
    "id, owner, title, spec_json, settings_json, seed, status, message, created_at, started_at, "
    "finished_at, summary_json, versions_json, worker_pid, worker_host, stop_requested, "
    "heartbeat_at, runner, device"
)


def _run_from_row(row: tuple[Any, ...]) -> Run:
    (rid, owner, title, spec_json, settings_json, seed, status, message, created, started,
     finished, summary_json, versions_json, pid, host, stop, heartbeat, runner, device) = row
    return Run(
        id=int(rid),
        owner=owner,
        title=title,
        spec=json.loads(spec_json),
        settings=json.loads(settings_json),
        seed=seed,
        status=status,
        message=message,
        created_at=created,
        started_at=started,
        finished_at=finished,
        summary=json.loads(summary_json) if summary_json else {},
        versions=json.loads(versions_json) if versions_json else {},
        worker_pid=pid,
        worker_host=host,
        stop_requested=bool(stop),
        heartbeat_at=heartbeat,
        runner=runner,
        device=device,
    )


def _beat(con: sqlite3.Connection, run_id: int) -> int:
    """Set a running run's heartbeat to now (inside the caller's transaction)."""
    return con.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
                       (time.time(), run_id)).rowcount


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown run status {status!r}; expected one of {STATUSES}")


def _json(value: Any) -> str:
    """JSON text; NaN/inf are kept (Python's json reads them back)."""
    return json.dumps(value, separators=(",", ":"))


class SQLiteStore:
    """A store over one :class:`SQLiteFile` whose tables ``SCHEMA`` creates (if missing).

    Cheap to create and safe to pickle (only the path travels); each thread and process opens
    its own connection on first use. ``path`` defaults to :func:`default_db_path`.
    """

    SCHEMA = ""
    MIGRATIONS: tuple[tuple[str, str, str], ...] = ()

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self._db = SQLiteFile(path, self.SCHEMA, self.MIGRATIONS)

    @property
    def path(self) -> Path:
        return self._db.path

    def close(self) -> None:
        self._db.close()

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.connection().execute(sql, tuple(args)).fetchall()


class RunStore(SQLiteStore):
    """Runs and their metrics in one SQLite file (see :class:`SQLiteStore`)."""

    SCHEMA = _SCHEMA
    MIGRATIONS = _MIGRATIONS

    # -- runs --------------------------------------------------------------------------------
    def create_run(self, owner: str, title: str, spec: dict[str, Any],
                   settings: dict[str, Any]) -> int:
        """Store a new run as ``queued`` and return its id.

        ``spec`` and ``settings`` are plain JSON-able dicts (``NetworkSpec.to_dict()``,
        ``TrainSettings.model_dump(mode="json")``); the seed is read from ``settings["seed"]``.
        """
        owner = normalise_owner(owner)
        title = _one_line(title or "", MAX_TITLE_CHARS)
        seed = settings.get("seed")
        with self._db.write() as con:
            cur = con.execute(
                "INSERT INTO runs (owner, title, spec_json, settings_json, seed, status, "
                "created_at, versions_json) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
                (owner, title, _json(spec), _json(settings),
                 int(seed) if isinstance(seed, int) else None, time.time(),
                 _json(library_versions())),
            )
            return int(cur.lastrowid)  # type: ignore[arg-type]

    def get_run(self, run_id: int) -> Run:
        """The run ``run_id``; :class:`PlaygroundError` if there is none."""
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (int(run_id),))
        if not rows:
            raise PlaygroundError(f"there is no run #{run_id} (it may have been deleted)")
        return _run_from_row(rows[0])

    def find_run(self, run_id: int) -> Run | None:
        """Like :meth:`get_run` but ``None`` when the run does not exist."""
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (int(run_id),))
        return _run_from_row(rows[0]) if rows else None

    def list_runs(self, owner: str | None = None, statuses: Iterable[str] | None = None,
                  limit: int = 200) -> list[Run]:
        """Runs, newest first, optionally of one owner and/or in some statuses."""
        where: list[str] = []
        args: list[Any] = []
        if owner is not None:
            where.append("owner = ?")
            args.append(normalise_owner(owner))
        if statuses is not None:
            wanted = list(statuses)
            for s in wanted:
                _check_status(s)
            if not wanted:
                return []
            where.append(f"status IN ({','.join('?' * len(wanted))})")
            args.extend(wanted)
        sql = f"SELECT {_RUN_COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(int(limit))
        return [_run_from_row(r) for r in self._read(sql, args)]

    def count_active(self, owner: str) -> int:
        """How many of ``owner``'s runs are queued or running."""
        rows = self._read(
            "SELECT COUNT(*) FROM runs WHERE owner = ? AND status IN ('queued', 'running')",
            (normalise_owner(owner),),
        )
        return int(rows[0][0])

    def set_status(self, run_id: int, status: str, message: str = "",
                   summary: dict[str, Any] | None = None,
                   only_if: Iterable[str] | None = None) -> bool:
        """Set a run's status (and message, summary); ``finished_at`` is set for final statuses.

        With ``only_if`` the change happens only while the run is in one of those statuses
        (checked in the same statement, so two processes cannot both win). Returns whether the
        run changed.
        """
        _check_status(status)
        sets = ["status = ?", "message = ?"]
        args: list[Any] = [status, _one_line(message)]
        if summary is not None:
            sets.append("summary_json = ?")
            args.append(_json(summary))
        if status in DONE_STATUSES:
            sets.append("finished_at = ?")
            args.append(time.time())
        elif status == "queued":
            sets += ["started_at = NULL", "finished_at = NULL", "stop_requested = 0"]
        sql = f"UPDATE runs SET {', '.join(sets)} WHERE id = ?"
        args.append(int(run_id))
        if only_if is not None:
            allowed = list(only_if)
            for s in allowed:
                _check_status(s)
            sql += f" AND status IN ({','.join('?' * len(allowed))})"
            args.extend(allowed)
        with self._db.write() as con:
            return con.execute(sql, args).rowcount == 1

    def mark_started(self, run_id: int, pid: int | None = None, *, runner: str | None = None,
                     device: str | None = None, node: str | None = None) -> bool:
        """Claim a queued run for the worker ``pid``: status ``running``, start time, versions,
        first heartbeat, and where it runs (``runner`` backend, ``node``: host name, default
        this machine's; ``device``).

        Atomic: returns ``False`` (and changes nothing) if the run is no longer queued, e.g.
        cancelled a moment earlier or claimed by another worker.
        """
        now = time.time()
        with self._db.write() as con:
            cur = con.execute(
                "UPDATE runs SET status = 'running', started_at = ?, heartbeat_at = ?, "
                "worker_pid = ?, worker_host = ?, versions_json = ?, message = '', "
                "runner = ?, device = ? WHERE id = ? AND status = 'queued'",
                (now, now, os.getpid() if pid is None else int(pid), node or platform.node(),
                 _json(library_versions()), runner, device, int(run_id)),
            )
            return cur.rowcount == 1

    def heartbeat(self, run_id: int) -> bool:
        """Record that the process training ``run_id`` is alive; ``False`` once the run is no
        longer ``running`` (stopped, recovered as interrupted, deleted)."""
        with self._db.write() as con:
            return _beat(con, int(run_id)) == 1

    def request_stop(self, run_id: int) -> None:
        """Raise the stop flag; the worker's ``should_stop`` sees it within a fraction of a s."""
        with self._db.write() as con:
            con.execute("UPDATE runs SET stop_requested = 1 WHERE id = ?", (int(run_id),))

    def stop_requested(self, run_id: int) -> bool:
        rows = self._read("SELECT stop_requested FROM runs WHERE id = ?", (int(run_id),))
        return bool(rows and rows[0][0])

    def delete_run(self, run_id: int) -> None:
        """Delete a finished run with its metrics; refuses while it is queued or running."""
        run = self.get_run(run_id)
        if run.is_active:
            raise PlaygroundError(f"run #{run_id} is {run.status}; stop it before deleting it")
        with self._db.write() as con:
            con.execute("DELETE FROM metrics WHERE run_id = ?", (int(run_id),))
            con.execute("DELETE FROM run_meta WHERE run_id = ?", (int(run_id),))
            con.execute("DELETE FROM runs WHERE id = ?", (int(run_id),))

    def recover_interrupted(self, stale_after_s: float | None = None, *,
                            queued: bool = True, skip: Iterable[int] = ()) -> list[int]:
        """Mark runs whose process is gone ``interrupted``; returns the ids changed.

        A ``running`` run is gone when its heartbeat (its start, for a run stored before
        heartbeats existed) is more than ``stale_after_s`` seconds old (default
        ``PLAYGROUND_HEARTBEAT_TIMEOUT_S``); a live training, e.g. a CLI run or another
        server's, keeps beating and is left alone. With ``queued`` (a server starting: no queue
        survives its server) every ``queued`` run is marked too; a running server sweeps with
        ``queued=False`` and ``skip`` = the runs its own workers hold. Metrics are kept.
        """
        if stale_after_s is None:
            stale_after_s = float(get_settings().heartbeat_timeout_s)
        skipped = {int(r) for r in skip}
        now = time.time()
        changed: list[int] = []
        with self._db.write() as con:
            rows = con.execute(
                "SELECT id, status, heartbeat_at, COALESCE(started_at, created_at) FROM runs "
                "WHERE status IN ('queued', 'running')"
            ).fetchall()
            for rid, status, beat, started in rows:
                if int(rid) in skipped:
                    continue
                if status == "queued":
                    if not queued:
                        continue
                    message = "the server restarted before this run started"
                elif beat is None and now - float(started) > stale_after_s:  # an old run
                    message = "the server restarted while this run was training"
                elif beat is not None and now - float(beat) > stale_after_s:
                    message = (f"the process training this run went away (no heartbeat for "
                               f"{now - float(beat):.0f} s); the metrics recorded until then "
                               f"are kept")
                else:
                    continue
                con.execute(
                    "UPDATE runs SET status = 'interrupted', message = ?, finished_at = ? "
                    "WHERE id = ? AND status = ?",
                    (message, now, rid, status),
                )
                changed.append(int(rid))
        return changed

    # -- metrics -----------------------------------------------------------------------------
    def append_metrics(self, run_id: int, records: list[dict[str, Any]]) -> int:
        """Store a batch of metric records in one transaction; returns rows written.

        Records are ``{"step", "name", "value"}`` (scalar), ``{"step", "name", "values"}``
        (a per-layer vector) or ``{"step", "name", "labels"}`` (the labels a vector series
        follows; stored once per run under ``name``, see :meth:`layer_labels`). NaN and inf
        values are kept. The same transaction refreshes a running run's heartbeat.
        """
        rows: list[tuple[Any, ...]] = []
        meta: list[tuple[Any, ...]] = []
        rid = int(run_id)
        for rec in records:
            name = str(rec["name"])
            step = int(rec.get("step", 0))
            if "labels" in rec:
                meta.append((rid, f"labels:{name}", _json([str(x) for x in rec["labels"]])))
            elif "values" in rec:
                rows.append((rid, step, name, None, _json([float(v) for v in rec["values"]])))
            elif "value" in rec:
                rows.append((rid, step, name, float(rec["value"]), None))
            else:
                raise ValueError(f"metric record {rec!r} has no value, values or labels")
        if not rows and not meta:
            return 0
        with self._db.write() as con:
            _beat(con, rid)  # writing its metrics is a sign of life of the run's process
            if rows:
                con.executemany(
                    "INSERT INTO metrics (run_id, step, name, value, values_json) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            if meta:
                con.executemany(
                    "INSERT OR REPLACE INTO run_meta (run_id, key, value_json) VALUES (?, ?, ?)",
                    meta,
                )
        return len(rows)

    def get_metrics(self, run_id: int, names: Iterable[str] | None = None,
                    since_step: int = -1) -> dict[str, dict[str, list[Any]]]:
        """``{name: {"steps": [...], "values": [...]}}`` for records with ``step > since_step``.

        Scalar series give floats (NaN where a value was NaN); vector series give one list per
        step. Each series is in step order. For live polling prefer :meth:`poll_metrics`: the
        trainer labels activation statistics with the step *before* the update that measured
        them, so such a record can arrive after later steps were stored.
        """
        sql = "SELECT name, step, value, values_json FROM metrics WHERE run_id = ? AND step > ?"
        args: list[Any] = [int(run_id), int(since_step)]
        if names is not None:
            wanted = list(dict.fromkeys(names))
            if not wanted:
                return {}
            sql += f" AND name IN ({','.join('?' * len(wanted))})"
            args.extend(wanted)
        sql += " ORDER BY name, step"
        return _series(self._read(sql, args))

    def poll_metrics(self, run_id: int, cursor: int = 0, names: Iterable[str] | None = None
                     ) -> tuple[dict[str, dict[str, list[Any]]], int]:
        """Records stored after ``cursor`` (``0``: all) and the cursor to pass next time.

        The cursor is a row id: rows are numbered in commit order, so a page that polls with
        the cursor it was last given sees every record exactly once, whatever step it carries.
        Costs about a millisecond for a run of 5,000 steps when nothing is new.
        """
        sql = ("SELECT name, step, value, values_json, rowid FROM metrics "
               "WHERE run_id = ? AND rowid > ?")
        args: list[Any] = [int(run_id), int(cursor)]
        if names is not None:
            wanted = list(dict.fromkeys(names))
            if not wanted:
                return {}, int(cursor)
            sql += f" AND name IN ({','.join('?' * len(wanted))})"
            args.extend(wanted)
        sql += " ORDER BY rowid"
        rows = self._read(sql, args)
        return _series(rows), (int(rows[-1][4]) if rows else int(cursor))

    def metric_names(self, run_id: int) -> list[str]:
        """Names of the series a run has recorded, sorted."""
        rows = self._read("SELECT DISTINCT name FROM metrics WHERE run_id = ? ORDER BY name",
                          (int(run_id),))
        return [r[0] for r in rows]

    def last_step(self, run_id: int) -> int:
        """The highest step recorded for a run, ``-1`` before the first record."""
        rows = self._read("SELECT MAX(step) FROM metrics WHERE run_id = ?", (int(run_id),))
        return -1 if rows[0][0] is None else int(rows[0][0])

    def layer_labels(self, run_id: int, name: str = "layers") -> list[str]:
        """The layer names per-layer vectors are ordered by (from the ``layers`` record)."""
        rows = self._read("SELECT value_json FROM run_meta WHERE run_id = ? AND key = ?",
                          (int(run_id), f"labels:{name}"))
        return json.loads(rows[0][0]) if rows else []

    # -- run_meta ----------------------------------------------------------------------------
    def set_meta(self, run_id: int, key: str, value: Any) -> None:
        """Attach a small JSON value to a run (overwrites the same key)."""
        with self._db.write() as con:
            con.execute(
                "INSERT OR REPLACE INTO run_meta (run_id, key, value_json) VALUES (?, ?, ?)",
                (int(run_id), key, _json(value)),
            )

    def get_meta(self, run_id: int, key: str, default: Any = None) -> Any:
        rows = self._read("SELECT value_json FROM run_meta WHERE run_id = ? AND key = ?",
                          (int(run_id), key))
        return json.loads(rows[0][0]) if rows else default


def open_store(path: str | os.PathLike[str] | None = None) -> RunStore:
    """A :class:`RunStore` at ``path`` or at :func:`default_db_path`."""
    return RunStore(path)
