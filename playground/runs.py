"""The run store: the single source of truth for trainings, in one database.

Worker processes (local or Ray) write a run's status and metric records here; the Streamlit
servers, the CLI and the compare page read them back. Pages never talk to a training
directly, so a reload, a second tab, another server or a restarted one see the same state.

The database is SQLite (one file, WAL: one writer and many readers across processes,
https://sqlite.org/wal.html) or PostgreSQL (shared by several servers and a Ray cluster),
named by one URL (:mod:`playground.store`, ``PLAYGROUND_DB_URL``). Queries are SQLAlchemy
Core against the tables of :mod:`playground.store.schema`; every write is one short
transaction (``BEGIN IMMEDIATE`` on SQLite), so a batch of metric records is stored whole or
not at all, and a claim (:meth:`RunStore.mark_started`, ``set_status(only_if=...)``) is one
conditional ``UPDATE`` that exactly one process can win on either engine.

Tables:

- ``runs``: one row per training (owner, title, spec and settings JSON, status, times,
  summary, library versions, worker pid and host, runner, device, stop flag, heartbeat).
- ``metrics``: one row per record ``(id, run_id, step, name, value, values_json)``; scalar
  records fill ``value``, per-layer vectors fill ``values_json`` (a JSON list, one entry per
  layer). A flush of records is one multi-row ``INSERT``. Indexed by ``(run_id, name, step)``
  for reading a few series and by ``(run_id, id)`` for polling: a page polling a live run asks
  only for the rows after the last id it has seen (:meth:`RunStore.poll_metrics`).
- ``run_meta``: small JSON values per run, e.g. the layer labels the per-layer vectors follow.

Owners are matched case-insensitively (ASCII letters, as SQLite's ``NOCASE`` did) through
``runs.owner_key`` on every engine. NaN is stored as NULL by SQLite and as NaN by PostgreSQL;
both read back as NaN.

Liveness: the process training a run writes ``heartbeat_at`` (Unix seconds) when it claims
the run, with every batch of metrics and every few seconds from a small thread
(:mod:`playground.jobs`). A ``running`` run whose heartbeat is older than
``PLAYGROUND_HEARTBEAT_TIMEOUT_S`` has lost its process, whatever became of it (killed, a
zombie nobody reaped, another machine): :meth:`RunStore.recover_interrupted` marks it
``interrupted``. Process ids are recorded for the reader but never probed: ``os.kill(pid, 0)``
succeeds on an unreaped zombie and on an unrelated process that reused the id.

Schema changes are Alembic revisions, applied when a store opens a database (files made
before Alembic are adopted, every row kept): :mod:`playground.store.migrate`.

Everything leaves this module as plain data (:class:`Run` dataclasses, dicts and lists).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from playground.access import Actor, check_owner
from playground.errors import PlaygroundError
from playground.settings import get_settings
from playground.store import DB_FILENAME, Database
from playground.store.schema import checkpoints, metrics, name_key, run_meta, runs

__all__ = [
    "ACTIVE_STATUSES", "DB_FILENAME", "DONE_STATUSES", "STATUSES", "Run", "RunStore",
    "clean_name", "default_db_path", "library_versions", "normalise_owner", "open_store",
]

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
METRICS_LOCK_CLASS = 0x6D65  # "me": pg_advisory_xact_lock(class, run_id) around a flush


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
    stopped_by: str | None = None  # who asked it to stop (an Actor's label)

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
    """``$PLAYGROUND_RUN_DIR/playground.sqlite`` (read from the environment now): the store
    when ``PLAYGROUND_DB_URL`` is empty (:func:`playground.store.default_url` names either)."""
    return get_settings().run_dir / DB_FILENAME


def normalise_owner(owner: str) -> str:
    """Collapse whitespace in a classroom name; refuse empty or over-long names.

    Owners are compared case-insensitively (ASCII letters, through
    :func:`playground.store.schema.name_key`), so "Ada" and "ada" are one person.
    """
    return clean_name(owner, MAX_OWNER_CHARS, "that name",
                      "enter your name first: runs and designs are kept under it")


def printable(text: object) -> str:
    """``text`` with whitespace runs collapsed to one space and unprintable characters
    dropped, as names and titles are kept."""
    return "".join(ch for ch in " ".join(str(text or "").split()) if ch.isprintable())


def clean_name(name: str, limit: int, what: str, when_empty: str) -> str:
    """Collapse whitespace and drop unprintable characters (:func:`printable`); refuse an
    empty name (with ``when_empty``) or one over ``limit`` characters (naming it ``what``)."""
    text = printable(name)
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
    """One line of at most ``limit`` characters; NUL dropped (PostgreSQL text cannot hold it)."""
    line = " ".join(str(text).replace("\x00", "").split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _series(rows: Iterable[tuple[Any, ...]]) -> dict[str, dict[str, list[Any]]]:
    """Group ``(name, step, value, values_json, ...)`` rows into per-name step/value lists
    (rows of one name together; names come out sorted, the same on every engine)."""
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
    return dict(sorted(out.items()))


# -- the store ---------------------------------------------------------------------------------
_RUN_COLUMNS = (
    runs.c.id, runs.c.owner, runs.c.title, runs.c.spec_json, runs.c.settings_json, runs.c.seed,
    runs.c.status, runs.c.message, runs.c.created_at, runs.c.started_at, runs.c.finished_at,
    runs.c.summary_json, runs.c.versions_json, runs.c.worker_pid, runs.c.worker_host,
    runs.c.stop_requested, runs.c.heartbeat_at, runs.c.runner, runs.c.device, runs.c.stopped_by,
)
# with a list of rows, one multi-row statement per flush ("insertmanyvalues", which SQLAlchemy
# uses for INSERT ... RETURNING on SQLite 3.35+ and PostgreSQL)
_INSERT_METRICS = sa.insert(metrics).returning(metrics.c.id)


def _run_from_row(row: tuple[Any, ...]) -> Run:
    (rid, owner, title, spec_json, settings_json, seed, status, message, created, started,
     finished, summary_json, versions_json, pid, host, stop, heartbeat, runner, device,
     stopped_by) = row
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
        stopped_by=stopped_by,
    )


def _beat(con: sa.Connection, run_id: int) -> int:
    """Set a running run's heartbeat to now (inside the caller's transaction)."""
    return con.execute(
        sa.update(runs).where(runs.c.id == run_id, runs.c.status == "running")
        .values(heartbeat_at=time.time())
    ).rowcount


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown run status {status!r}; expected one of {STATUSES}")


def _json(value: Any) -> str:
    """JSON text; NaN/inf are kept (Python's json reads them back)."""
    return json.dumps(value, separators=(",", ":"))


def upsert(con: sa.Connection, table: sa.Table, rows: list[dict[str, Any]],
           keys: Iterable[str]) -> None:
    """Insert ``rows`` in one statement, replacing the columns of a row whose ``keys`` (a
    unique index) match: ``INSERT ... ON CONFLICT (keys) DO UPDATE`` on SQLite (3.24+) and
    PostgreSQL alike."""
    if con.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    keys = list(keys)
    stmt = insert(table).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys,
        set_={c: stmt.excluded[c] for c in rows[0] if c not in keys},
    )
    con.execute(stmt)


class StoreBase:
    """A store over one :class:`~playground.store.Database` (a path, a URL or the settings').

    Cheap to create (opening checks the schema revision) and safe to pickle: only the URL
    travels, and every process and thread takes connections from its own engine.
    """

    def __init__(self, location: str | os.PathLike[str] | None = None):
        self._db = Database(location)

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self._db.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._db = Database(state["url"], migrate=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._db!r})"

    @property
    def url(self) -> str:
        """The database URL: ``RunStore(store.url)`` opens this store in any process."""
        return self._db.url

    @property
    def path(self) -> Path:
        """The SQLite file; :class:`PlaygroundError` on PostgreSQL (pass :attr:`url`)."""
        path = self._db.path
        if path is None:
            raise PlaygroundError("this store is a PostgreSQL database, not a file; "
                                  "pass store.url to open it elsewhere")
        return path

    @property
    def database(self) -> Database:
        """The database (engine, transactions) under this store."""
        return self._db

    def close(self) -> None:
        """Nothing to close: connections return to the process' pool after every call."""

    def _read(self, statement: sa.Executable) -> list[sa.Row[Any]]:
        return self._db.read(statement)


class RunStore(StoreBase):
    """Runs and their metrics in one database (see :class:`StoreBase`).

    ``RunStore(location)``: ``location`` is a filesystem path (a SQLite file), a URL string
    (``sqlite:///...``, ``postgresql+psycopg://...``) or ``None`` for the settings'
    (``PLAYGROUND_DB_URL``, else ``$PLAYGROUND_RUN_DIR/playground.sqlite``).
    """

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
            result = con.execute(sa.insert(runs).values(
                owner=owner, owner_key=name_key(owner), title=title, spec_json=_json(spec),
                settings_json=_json(settings),
                seed=int(seed) if isinstance(seed, int) else None, status="queued",
                created_at=time.time(), versions_json=_json(library_versions()),
            ))
            return int(result.inserted_primary_key[0])

    def get_run(self, run_id: int, by: Actor | None = None) -> Run:
        """The run ``run_id``; :class:`PlaygroundError` if there is none. With ``by``, only if
        that actor may read it (:class:`~playground.access.AccessDenied` otherwise)."""
        run = self.find_run(run_id, by)
        if run is None:
            raise PlaygroundError(f"there is no run #{run_id} (it may have been deleted)")
        return run

    def find_run(self, run_id: int, by: Actor | None = None) -> Run | None:
        """Like :meth:`get_run` but ``None`` when the run does not exist."""
        rows = self._read(sa.select(*_RUN_COLUMNS).where(runs.c.id == int(run_id)))
        run = _run_from_row(rows[0]) if rows else None
        if run is not None and by is not None:
            check_owner(by, run.owner, f"run #{run.id}")
        return run

    def list_runs(self, owner: str | None = None, statuses: Iterable[str] | None = None,
                  limit: int = 200) -> list[Run]:
        """Runs, newest first, optionally of one owner and/or in some statuses."""
        query = sa.select(*_RUN_COLUMNS)
        if owner is not None:
            query = query.where(runs.c.owner_key == name_key(normalise_owner(owner)))
        if statuses is not None:
            wanted = list(statuses)
            for s in wanted:
                _check_status(s)
            if not wanted:
                return []
            query = query.where(runs.c.status.in_(wanted))
        query = query.order_by(runs.c.id.desc()).limit(int(limit))
        return [_run_from_row(r) for r in self._read(query)]

    def count_active(self, owner: str) -> int:
        """How many of ``owner``'s runs are queued or running."""
        rows = self._read(
            sa.select(sa.func.count()).select_from(runs).where(
                runs.c.owner_key == name_key(normalise_owner(owner)),
                runs.c.status.in_(ACTIVE_STATUSES),
            )
        )
        return int(rows[0][0])

    def set_status(self, run_id: int, status: str, message: str = "",
                   summary: dict[str, Any] | None = None,
                   only_if: Iterable[str] | None = None) -> bool:
        """Set a run's status (and message, summary); ``finished_at`` is set for final statuses.

        With ``only_if`` the change happens only while the run is in one of those statuses
        (checked in the same statement, so two processes cannot both win: SQLite runs one
        writer at a time, PostgreSQL re-checks the condition on the row it locked). Returns
        whether the run changed.
        """
        _check_status(status)
        values: dict[str, Any] = {"status": status, "message": _one_line(message)}
        if summary is not None:
            values["summary_json"] = _json(summary)
        if status in DONE_STATUSES:
            values["finished_at"] = time.time()
        elif status == "queued":
            values.update(started_at=None, finished_at=None, stop_requested=0, stopped_by=None)
        stmt = sa.update(runs).where(runs.c.id == int(run_id)).values(**values)
        if only_if is not None:
            allowed = list(only_if)
            for s in allowed:
                _check_status(s)
            stmt = stmt.where(runs.c.status.in_(allowed))
        with self._db.write() as con:
            return con.execute(stmt).rowcount == 1

    def mark_started(self, run_id: int, pid: int | None = None, *, runner: str | None = None,
                     device: str | None = None, node: str | None = None) -> bool:
        """Claim a queued run for the worker ``pid``: status ``running``, start time, versions,
        first heartbeat, and where it runs (``runner`` backend, ``node``: host name, default
        this machine's; ``device``).

        Atomic: returns ``False`` (and changes nothing) if the run is no longer queued, e.g.
        cancelled a moment earlier or claimed by another worker.
        """
        now = time.time()
        stmt = (
            sa.update(runs).where(runs.c.id == int(run_id), runs.c.status == "queued")
            .values(status="running", started_at=now, heartbeat_at=now,
                    worker_pid=os.getpid() if pid is None else int(pid),
                    worker_host=node or platform.node(), versions_json=_json(library_versions()),
                    message="", runner=runner, device=device)
        )
        with self._db.write() as con:
            return con.execute(stmt).rowcount == 1

    def heartbeat(self, run_id: int) -> bool:
        """Record that the process training ``run_id`` is alive; ``False`` once the run is no
        longer ``running`` (stopped, recovered as interrupted, deleted)."""
        with self._db.write() as con:
            return _beat(con, int(run_id)) == 1

    def request_stop(self, run_id: int, *, by: Actor) -> None:
        """Raise the stop flag for ``by`` (its owner, the teacher or the system; anyone else
        gets :class:`~playground.access.AccessDenied`) and record who asked. The worker's
        ``should_stop`` sees the flag within a fraction of a second."""
        self.get_run(run_id, by)
        with self._db.write() as con:
            con.execute(sa.update(runs).where(runs.c.id == int(run_id))
                        .values(stop_requested=1,  # the first to ask is recorded
                                stopped_by=sa.func.coalesce(runs.c.stopped_by, by.label)))

    def stop_requested(self, run_id: int) -> bool:
        rows = self._read(sa.select(runs.c.stop_requested).where(runs.c.id == int(run_id)))
        return bool(rows and rows[0][0])

    def delete_run(self, run_id: int, *, by: Actor) -> None:
        """Delete a finished run with its metrics and weights, for its owner or the teacher;
        refuses while it is queued or running."""
        run = self.get_run(run_id, by)
        if run.is_active:
            raise PlaygroundError(f"run #{run_id} is {run.status}; stop it before deleting it")
        rid = int(run_id)
        with self._db.write() as con:
            con.execute(sa.delete(metrics).where(metrics.c.run_id == rid))
            con.execute(sa.delete(run_meta).where(run_meta.c.run_id == rid))
            con.execute(sa.delete(checkpoints).where(checkpoints.c.run_id == rid))
            con.execute(sa.delete(runs).where(runs.c.id == rid))

    def recover_interrupted(self, stale_after_s: float | None = None, *,
                            queued: bool = True, skip: Iterable[int] = ()) -> list[int]:
        """Mark runs whose process is gone ``interrupted``; returns the ids changed.

        A ``running`` run is gone when its heartbeat (its start, for a run stored before
        heartbeats existed) is more than ``stale_after_s`` seconds old (default
        ``PLAYGROUND_HEARTBEAT_TIMEOUT_S``); a live training, e.g. a CLI run or another
        server's, keeps beating and is left alone. With ``queued`` (a server starting: no queue
        survives its server) every ``queued`` run is marked too; a running server sweeps with
        ``queued=False`` and ``skip`` = the runs its own workers hold. Metrics are kept.
        Each change re-checks the status it saw, so a run that started or finished meanwhile
        (another server, on PostgreSQL) is left alone.
        """
        if stale_after_s is None:
            stale_after_s = float(get_settings().heartbeat_timeout_s)
        skipped = {int(r) for r in skip}
        now = time.time()
        changed: list[int] = []
        with self._db.write() as con:
            rows = con.execute(
                sa.select(runs.c.id, runs.c.status, runs.c.heartbeat_at,
                          sa.func.coalesce(runs.c.started_at, runs.c.created_at))
                .where(runs.c.status.in_(ACTIVE_STATUSES))
            ).all()
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
                done = con.execute(
                    sa.update(runs).where(runs.c.id == rid, runs.c.status == status,
                                          _same(runs.c.heartbeat_at, beat))
                    .values(status="interrupted", message=message, finished_at=now)
                ).rowcount
                if done == 1:
                    changed.append(int(rid))
        return changed

    # -- metrics -----------------------------------------------------------------------------
    def append_metrics(self, run_id: int, records: list[dict[str, Any]]) -> int:
        """Store a batch of metric records in one transaction; returns rows written.

        Records are ``{"step", "name", "value"}`` (scalar), ``{"step", "name", "values"}``
        (a per-layer vector) or ``{"step", "name", "labels"}`` (the labels a vector series
        follows; stored once per run under ``name``, see :meth:`layer_labels`). NaN and inf
        values are kept. The same transaction refreshes a running run's heartbeat.

        The rows go in as one multi-row ``INSERT ... VALUES (...), (...) RETURNING id``
        (SQLAlchemy's "insertmanyvalues": the statement is compiled once and spliced per row
        count, far cheaper than compiling ``insert().values(rows)``), split only where one
        statement would carry more bound parameters than the database takes
        (:func:`playground.store.engine.max_bind_params`). On PostgreSQL the flush first takes
        a per-run advisory lock, so ids are drawn in commit order for any one run and a
        poller's cursor never skips a batch that committed late.
        """
        rows: list[dict[str, Any]] = []
        meta: list[dict[str, Any]] = []
        rid = int(run_id)
        for rec in records:
            name = str(rec["name"])
            step = int(rec.get("step", 0))
            if "labels" in rec:
                meta.append({"run_id": rid, "key": f"labels:{name}",
                             "value_json": _json([str(x) for x in rec["labels"]])})
            elif "values" in rec:
                rows.append({"run_id": rid, "step": step, "name": name, "value": None,
                             "values_json": _json([float(v) for v in rec["values"]])})
            elif "value" in rec:
                rows.append({"run_id": rid, "step": step, "name": name,
                             "value": float(rec["value"]), "values_json": None})
            else:
                raise ValueError(f"metric record {rec!r} has no value, values or labels")
        if not rows and not meta:
            return 0
        with self._db.write() as con:
            if con.dialect.name == "postgresql":
                con.execute(sa.select(sa.func.pg_advisory_xact_lock(METRICS_LOCK_CLASS, rid)))
            _beat(con, rid)  # writing its metrics is a sign of life of the run's process
            if rows:
                con.execute(_INSERT_METRICS, rows)
            if meta:
                upsert(con, run_meta, meta, keys=("run_id", "key"))
        return len(rows)

    def get_metrics(self, run_id: int, names: Iterable[str] | None = None,
                    since_step: int = -1) -> dict[str, dict[str, list[Any]]]:
        """``{name: {"steps": [...], "values": [...]}}`` for records with ``step > since_step``.

        Scalar series give floats (NaN where a value was NaN); vector series give one list per
        step. Each series is in step order. For live polling prefer :meth:`poll_metrics`: the
        trainer labels activation statistics with the step *before* the update that measured
        them, so such a record can arrive after later steps were stored.
        """
        query = (
            sa.select(metrics.c.name, metrics.c.step, metrics.c.value, metrics.c.values_json)
            .where(metrics.c.run_id == int(run_id), metrics.c.step > int(since_step))
        )
        if names is not None:
            wanted = list(dict.fromkeys(names))
            if not wanted:
                return {}
            query = query.where(metrics.c.name.in_(wanted))
        query = query.order_by(metrics.c.name, metrics.c.step, metrics.c.id)
        return _series(self._read(query))

    def poll_metrics(self, run_id: int, cursor: int = 0, names: Iterable[str] | None = None
                     ) -> tuple[dict[str, dict[str, list[Any]]], int]:
        """Records stored after ``cursor`` (``0``: all) and the cursor to pass next time.

        The cursor is a metric row id: a run's rows are numbered in commit order, so a page
        that polls with the cursor it was last given sees every record exactly once, whatever
        step it carries. One indexed range read on ``(run_id, id)``.
        """
        query = (
            sa.select(metrics.c.name, metrics.c.step, metrics.c.value, metrics.c.values_json,
                      metrics.c.id)
            .where(metrics.c.run_id == int(run_id), metrics.c.id > int(cursor))
        )
        if names is not None:
            wanted = list(dict.fromkeys(names))
            if not wanted:
                return {}, int(cursor)
            query = query.where(metrics.c.name.in_(wanted))
        rows = self._read(query.order_by(metrics.c.id))
        return _series(rows), (int(rows[-1][4]) if rows else int(cursor))

    def count_metrics(self, run_ids: Iterable[int]) -> dict[int, int]:
        """Metric records stored per run, for many runs in one query (absent: none)."""
        ids = sorted({int(r) for r in run_ids})
        if not ids:
            return {}
        rows = self._read(sa.select(metrics.c.run_id, sa.func.count())
                          .where(metrics.c.run_id.in_(ids)).group_by(metrics.c.run_id))
        return {int(rid): int(n) for rid, n in rows}

    def metric_names(self, run_id: int) -> list[str]:
        """Names of the series a run has recorded, sorted (by code point, on every engine)."""
        rows = self._read(sa.select(metrics.c.name).distinct()
                          .where(metrics.c.run_id == int(run_id)))
        return sorted(r[0] for r in rows)

    def last_step(self, run_id: int) -> int:
        """The highest step recorded for a run, ``-1`` before the first record."""
        rows = self._read(sa.select(sa.func.max(metrics.c.step))
                          .where(metrics.c.run_id == int(run_id)))
        return -1 if rows[0][0] is None else int(rows[0][0])

    def layer_labels(self, run_id: int, name: str = "layers") -> list[str]:
        """The layer names per-layer vectors are ordered by (from the ``layers`` record)."""
        return self.get_meta(run_id, f"labels:{name}", [])

    # -- run_meta ----------------------------------------------------------------------------
    def set_meta(self, run_id: int, key: str, value: Any) -> None:
        """Attach a small JSON value to a run (overwrites the same key)."""
        with self._db.write() as con:
            upsert(con, run_meta, [{"run_id": int(run_id), "key": key,
                                    "value_json": _json(value)}], keys=("run_id", "key"))

    def get_meta(self, run_id: int, key: str, default: Any = None) -> Any:
        rows = self._read(sa.select(run_meta.c.value_json)
                          .where(run_meta.c.run_id == int(run_id), run_meta.c.key == key))
        return json.loads(rows[0][0]) if rows else default

    def get_meta_many(self, run_ids: Iterable[int], key: str) -> dict[int, Any]:
        """The value under ``key`` of each run that has one, for many runs in one query (a list
        of runs read each run's tag one query at a time before)."""
        ids = sorted({int(r) for r in run_ids})
        if not ids:
            return {}
        rows = self._read(sa.select(run_meta.c.run_id, run_meta.c.value_json)
                          .where(run_meta.c.run_id.in_(ids), run_meta.c.key == key))
        return {int(rid): json.loads(value) for rid, value in rows}


def _same(column: sa.ColumnElement[Any], value: Any) -> sa.ColumnElement[bool]:
    """``column`` equals ``value``, NULL matching NULL (``IS NULL`` rather than ``= NULL``)."""
    return column.is_(None) if value is None else column == value


def open_store(location: str | os.PathLike[str] | None = None) -> RunStore:
    """A :class:`RunStore` at ``location`` (path or URL) or at the settings' database."""
    return RunStore(location)
