"""What both runner backends share: the fair queue in front of their slots, the per-owner
queue limit, queue positions with a start estimate, running one job, and lowering a worker's
CPU priority.

A backend subclasses :class:`QueueingRunner` and fills in where its slots are: which runs it
holds (handed to a slot, not yet finished), how soon each slot frees, how to hand the next
runs to free slots (``_dispatch``, called with the lock held), and how to stop a run it holds.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from playground.access import Actor
from playground.classroom import ClassStore, enforce
from playground.errors import PlaygroundError
from playground.jobs import JobFn, describe_error
from playground.runners.fair import FairQueue, estimate_start_s
from playground.runs import ACTIVE_STATUSES, RunStore, normalise_owner
from playground.settings import get_settings

WORKER_NICENESS = 10  # worker processes run at least this "nice" (the web server stays at 0)
RECENT_RUNS = 20  # the start estimate uses the mean duration of this many recent runs
MEAN_CACHE_S = 5.0  # ...re-read from the store at most this often

StoreLike = RunStore | str | os.PathLike[str] | None


def store_location(store: RunStore) -> str:
    """Where a worker elsewhere finds the store: its URL (``RunStore(url)`` opens it)."""
    return store.url


def open_store(store: StoreLike) -> RunStore:
    """``store`` itself, or a :class:`RunStore` at that location (``None``: the default)."""
    return store if isinstance(store, RunStore) else RunStore(store)


def lower_priority(niceness: int = WORKER_NICENESS) -> int:
    """Make this process at least ``niceness`` nice (never less nice than it is); returns it.

    On Linux a nice value belongs to each thread, so every thread of the process is raised
    (the ones started later inherit it); elsewhere the process. Ray reuses its worker
    processes, so this is ``max(current, niceness)``, never ``current + niceness``.
    """
    if not hasattr(os, "setpriority"):
        return 0
    tasks = Path("/proc/self/task")
    ids = [int(p.name) for p in tasks.iterdir()] if tasks.is_dir() else [0]
    for tid in ids:
        with contextlib.suppress(OSError):
            if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
    return os.getpriority(os.PRIO_PROCESS, 0)


def run_job(job_fn: JobFn, run_id: int, location: str, **options: Any) -> None:
    """Call the job function; whatever it leaves undone, the run still ends with a status."""
    store = RunStore(location)
    try:
        job_fn(run_id, location, **options)
    except Exception as exc:
        store.set_status(run_id, "failed", describe_error(exc), only_if=ACTIVE_STATUSES)
    else:
        store.set_status(run_id, "failed", "the job ended without recording a result",
                         only_if=("running",))
    finally:
        store.close()


class QueueingRunner:
    """The queue-keeping half of a runner (see the module docstring)."""

    kind = ""

    def __init__(self, store: StoreLike = None, max_queued: int | None = None):
        settings = get_settings()
        self.store = open_store(store)
        self.location = store_location(self.store)
        self.max_queued = settings.max_queued if max_queued is None else int(max_queued)
        self.max_wall_s = float(settings.max_wall_s)
        self._lock = threading.RLock()
        self._queue = FairQueue()
        self._closed = False
        self._broken = ""
        self._mean: tuple[float, float | None] = (float("-inf"), None)  # (read at, mean s)
        self._class = ClassStore(self.store.url)  # the teacher's settings, read per start

    @property
    def store_path(self) -> str:
        """The store's location (kept under its old name for callers of the local runner)."""
        return self.location

    # -- the interface -----------------------------------------------------------------------
    def start_run(self, owner: str | Actor, title: str, spec: dict[str, Any],
                  settings: dict[str, Any]) -> int:
        """Check the class settings and the owner's queue limit, create the run in the store
        and submit it.

        ``owner`` is the :class:`~playground.access.Actor` starting the run (a plain name is a
        student of that name): the class settings (:mod:`playground.classroom`) bind students,
        not the teacher or the system.
        """
        actor = owner if isinstance(owner, Actor) else Actor(normalise_owner(owner))
        name = normalise_owner(actor.name) if actor.name else ""
        if not name:
            raise PlaygroundError("a run needs an owner: enter your name first")
        rules = self._class.get()  # read per start: the teacher may change it any time
        enforce(settings, spec, rules, actor)
        limit = None if actor.is_staff else rules.queue_limit
        with self._lock:
            self._check_open()
            self._check_quota(name, self.store.count_active(name), limit)
            run_id = self.store.create_run(name, title, spec, settings)
            self.submit(run_id)
        return run_id

    def submit(self, run_id: int) -> None:
        """Queue a ``queued`` run (it starts in fair order as slots free). Over the owner's
        ``max_queued`` the run is marked failed and :class:`PlaygroundError` says why."""
        run = self.store.get_run(run_id)
        with self._lock:
            self._check_open()
            # the store's status decides: a worker may not have reported a finished run yet
            if run.status != "queued":
                raise PlaygroundError(
                    f"run #{run_id} is {run.status}; only a queued run can be started"
                )
            if run_id in self._queue or self._holds(run_id):
                return
            active = self.store.count_active(run.owner)  # includes this run
            try:
                self._check_quota(run.owner, active - 1)
            except PlaygroundError as exc:
                self.store.set_status(run_id, "failed", f"not started: {exc}",
                                      only_if=("queued",))
                raise
            self._queue.push(run.owner, run_id)
            self._dispatch()
        self._wake()

    def cancel(self, run_id: int, *, by: Actor) -> str:
        """Stop a run for ``by`` (its owner, the teacher or the system; anyone else gets
        :class:`~playground.access.AccessDenied` and nothing changes): a queued one leaves the
        queue (``stopped``), a running one gets its stop flag (and is ended by force if it
        ignores it). Returns the run's status after the call."""
        self.store.get_run(run_id, by)  # the owner check, before anything changes
        with self._lock:
            self._queue.remove(run_id)
            self.store.request_stop(run_id, by=by)
            self.store.set_status(run_id, "stopped", f"stopped before it started by {by.label}",
                                  only_if=("queued",))
            self._stop_held(run_id)
        return self.store.get_run(run_id).status

    def queue_position(self, run_id: int) -> tuple[int, float | None] | None:
        """``(position, eta_s)`` of a run waiting in this runner's queue (1: next to start);
        ``(0, 0.0)`` for a run handed to a slot that has not started yet; ``None`` for a run
        this runner does not hold.

        ``eta_s`` estimates when it starts: slots free after the mean duration of the last
        :data:`RECENT_RUNS` runs that ran to their end (finished or early-stopped, read from
        the store, any owner), less how long each slot's run has been going, and the runs
        ahead take the earliest free slot in turn (:func:`fair.estimate_start_s`). ``None``
        before any run has finished.
        """
        mean = self.mean_run_s()
        with self._lock:
            order = self._queue.order()
            if run_id not in order:
                return (0, 0.0) if self._holds(run_id) else None
            position = order.index(run_id) + 1
            free = self._slot_free_in(mean or 0.0)
        return position, estimate_start_s(position, free, mean)

    def mean_run_s(self) -> float | None:
        """Mean seconds from start to end of recent complete runs (cached a few seconds)."""
        read_at, mean = self._mean
        now = time.monotonic()
        if now - read_at < MEAN_CACHE_S:
            return mean
        runs = self.store.list_runs(statuses=("finished", "early_stopped"), limit=RECENT_RUNS)
        durations = [r.duration_s for r in runs if r.duration_s is not None]
        mean = sum(durations) / len(durations) if durations else None
        self._mean = (now, mean)
        return mean

    def __enter__(self) -> QueueingRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()  # type: ignore[attr-defined]

    # -- for the backends --------------------------------------------------------------------
    def _holds(self, run_id: int) -> bool:
        """Whether ``run_id`` is in one of this runner's slots."""
        raise NotImplementedError

    def _slot_free_in(self, mean_s: float) -> list[float]:
        """Per slot, seconds until it is free, assuming runs last ``mean_s``."""
        raise NotImplementedError

    def _dispatch(self) -> None:
        """Hand queued runs to free slots (lock held)."""
        raise NotImplementedError

    def _stop_held(self, run_id: int) -> None:
        """Note that a held run was asked to stop (lock held); its stop flag is already up."""
        raise NotImplementedError

    def _wake(self) -> None:
        """Wake the backend's monitor thread (no-op by default)."""

    def _check_open(self) -> None:
        if self._closed:
            raise PlaygroundError("the training runner has shut down; restart the app")
        if self._broken:
            raise PlaygroundError(self._broken)

    def _check_quota(self, owner: str, others: int, class_limit: int | None = None) -> None:
        limit, source = self.max_queued, "PLAYGROUND_MAX_QUEUED"
        if class_limit is not None and class_limit < limit:
            limit, source = class_limit, "the class settings"
        if others >= limit:
            raise PlaygroundError(
                f"{owner} already has {others} runs queued or running and the limit is "
                f"{limit} ({source}); wait for one to finish or stop one"
            )

    def _interrupt_queued(self, message: str) -> None:
        """Empty the queue, marking its runs ``interrupted`` (lock held)."""
        for rid in self._queue.clear():
            self.store.set_status(rid, "interrupted", message, only_if=("queued",))
