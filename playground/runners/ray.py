"""The Ray backend: each run is one Ray task, on this machine or on a cluster.

A run is a task (``max_retries=0``: Ray must never silently train a run twice) asking for
``PLAYGROUND_CPUS_PER_RUN`` CPUs and, when the cluster has GPUs, ``PLAYGROUND_GPUS_PER_RUN``
of a GPU (0.25: four runs share one). The task calls the same pure job function as a local
worker, :func:`playground.jobs.execute_run`, with the store's location string (Ray's guidance:
tasks take ids and locations, not live objects): it claims the run, writes its metrics and
final status to the shared store itself and refreshes the heartbeat; the limits are the
server's, passed with the task. Task processes run at niceness 10 or more, like local workers.

Where Ray runs comes from ``PLAYGROUND_RAY_ADDRESS``: empty starts an embedded single-machine
Ray with the server, ``auto`` joins the cluster started on this machine with ``ray start
--head``, ``ray://host:10001`` connects to a remote one through Ray Client (its nodes need the
project's requirements; the ``playground`` package travels with the tasks as a ``py_modules``
runtime environment; on this machine the checkout goes on the workers' ``PYTHONPATH``).
``ray.init`` runs once per server process (the app keeps the runner in ``st.cache_resource``;
``ignore_reinit_error``); a process that already called it (a test session) is used as it is.

Fairness: the runner keeps its own fair queue (:mod:`playground.runners.fair`) and never hands
Ray more tasks than there are slots (slots = cluster resources / resources per run, re-read
every :data:`SLOTS_EVERY_S` seconds, so a node joining adds slots), because Ray starts what it
is given first-come-first-served.

Stopping: the run's stop flag in the store, which the trainer polls; a run still going
:data:`STOP_GRACE_S` later is cancelled with ``ray.cancel(force=True)`` (its process is
killed). A task whose worker process or node dies ends its run ``failed`` ("the Ray worker
died: ..."), with the metrics recorded until then kept.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import exceptions as ray_errors

from playground.access import SYSTEM
from playground.errors import ConfigError
from playground.jobs import JobFn, Limits, describe_error, execute_run, shutdown_requested
from playground.runners.base import (
    WORKER_NICENESS,
    QueueingRunner,
    StoreLike,
    lower_priority,
    run_job,
)
from playground.runs import ACTIVE_STATUSES
from playground.settings import get_settings

STOP_GRACE_S = 30.0  # a cancelled run still going after this long is cancelled by force
WALL_GRACE_S = 60.0  # a run this long past its wall limit is cancelled by force
SLOTS_EVERY_S = 5.0  # the cluster's resources are re-read this often
SWEEP_EVERY_S = 10.0  # runs whose process went silent are looked for this often
WAIT_S = 0.1  # the monitor's longest wait for a task to end
CONNECT_TIMEOUT_S = 60.0  # default of PLAYGROUND_RAY_CONNECT_TIMEOUT_S
ROOT = Path(__file__).resolve().parents[2]  # the directory holding the playground package

_DIED = (ray_errors.WorkerCrashedError, ray_errors.NodeDiedError, ray_errors.OwnerDiedError,
         ray_errors.ObjectLostError, ray_errors.LocalRayletDiedError)


def connect(address: str) -> str:
    """``ray.init`` for this process unless it was called already: ``"embedded"`` (this call
    started a Ray, which :meth:`RayRunner.shutdown` then stops), ``"joined"`` (this call
    connected to a cluster) or ``"existing"`` (the process was connected already)."""
    if ray.is_initialized():
        return "existing"
    quiet = {"ignore_reinit_error": True, "logging_level": logging.WARNING,
             "runtime_env": code_env(address)}
    try:
        if address:
            if address.startswith("ray://"):
                _use_token_if_any()
            _init_on_anchor_thread(address=address, **quiet)
            return "joined"
        # a Ray of our own (address="local"): with no address, ray.init would join a cluster
        # that `ray start` left running on this machine. Task processes at the local workers'
        # niceness (Ray's own default is 15).
        _init_on_anchor_thread(address="local", include_dashboard=False,
                               _system_config={"worker_niceness": WORKER_NICENESS}, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        hint = ""
        if address.startswith("ray://") and "connection timeout" in str(exc):
            hint = (" (a cluster that requires Ray's token needs it here too: "
                    "~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)")
        raise ConfigError(f"cannot reach Ray at PLAYGROUND_RAY_ADDRESS={address!r}: "
                          f"{describe_error(exc)}{hint}") from None
    return "embedded"


def _use_token_if_any() -> None:
    """Send Ray's authentication token through Ray Client when one is at hand.

    Ray (2.59 and later) turns token authentication on for a cluster started with ``ray
    start`` where a token exists (``~/.ray/auth_token``, ``RAY_AUTH_TOKEN`` or
    ``RAY_AUTH_TOKEN_PATH``), but a Ray Client driver only sends the token when
    ``RAY_AUTH_MODE=token`` is set, so ``ray://`` otherwise ends in "ray client connection
    timeout". Here, as Ray itself does for drivers that join a local cluster: with
    ``RAY_AUTH_MODE`` unset and a token available, token mode is turned on for this process;
    an explicit ``RAY_AUTH_MODE`` is left as it is. See
    https://docs.ray.io/en/latest/ray-security/token-auth.html.
    """
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    log = logging.getLogger(maybe_enable_token_auth_if_token_available.__module__)
    level = log.level
    log.setLevel(logging.ERROR)  # Ray's "token authentication is enabled" notice
    try:
        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    finally:
        log.setLevel(level)


_ANCHOR_RELEASE = threading.Event()


def _init_on_anchor_thread(**options: Any) -> None:
    """``ray.init(**options)`` on a thread that lives as long as this process uses Ray.

    Ray starts an embedded cluster's processes (GCS, raylet) with ``PR_SET_PDEATHSIG``, which
    the Linux kernel fires when the *thread* that started them ends, not the process
    (prctl(2)). Streamlit runs every script rerun on a new thread, so a ``ray.init`` made there
    loses its cluster a moment after the rerun ("Failed to connect to GCS within 60 seconds").
    The anchor thread makes the call and then waits until :func:`release_anchor`.
    """
    outcome: dict[str, BaseException] = {}
    started = threading.Event()
    _ANCHOR_RELEASE.clear()

    def anchor() -> None:
        try:
            ray.init(**options)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc
        finally:
            started.set()
        if "error" not in outcome:
            _ANCHOR_RELEASE.wait()

    threading.Thread(target=anchor, name="playground-ray-anchor", daemon=True).start()
    # ray.init keeps retrying an address nobody answers at; give up after CONNECT_TIMEOUT_S,
    # or at once when this process is asked to go away (SIGTERM to the CLI)
    limit = _connect_timeout_s()
    deadline = time.monotonic() + limit
    while not started.wait(0.2):
        if shutdown_requested() is not None:
            raise ConnectionError("the process was asked to stop while connecting")
        if time.monotonic() > deadline:
            raise ConnectionError(f"no answer within {limit:g} s "
                                  "(PLAYGROUND_RAY_CONNECT_TIMEOUT_S)")
    if "error" in outcome:
        raise outcome["error"]


def _connect_timeout_s() -> float:
    """How long ``ray.init`` may take (``PLAYGROUND_RAY_CONNECT_TIMEOUT_S``, default 60 s)."""
    try:
        value = float(os.environ.get("PLAYGROUND_RAY_CONNECT_TIMEOUT_S", "") or CONNECT_TIMEOUT_S)
    except ValueError:
        return CONNECT_TIMEOUT_S
    return value if value > 0 else CONNECT_TIMEOUT_S


def release_anchor() -> None:
    """Let the anchor thread of :func:`_init_on_anchor_thread` end (after ``ray.shutdown``)."""
    _ANCHOR_RELEASE.set()


def code_env(address: str) -> dict[str, Any]:
    """A runtime environment that lets Ray workers import this checkout: the ``playground``
    package itself for Ray Client (``ray://``), else this checkout on their ``PYTHONPATH``."""
    if address.startswith("ray://"):
        return {"py_modules": [str(ROOT / "playground")]}
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}}


def task_env(address: str, connected: str) -> dict[str, Any] | None:
    """The runtime environment each run task asks for: none when the job's own lets workers
    import this checkout (we called ``ray.init`` with :func:`code_env`, or the process runs in
    the checkout, whose working directory Ray puts on its workers' ``sys.path``); otherwise
    :func:`code_env` per task (Ray then keeps a worker pool for it)."""
    if connected != "existing" or Path.cwd().resolve() == ROOT:
        return None
    return code_env(address)


def plan_slots(resources: dict[str, float], cpus_per_run: float, gpus_per_run: float,
               limit: int | None = None) -> tuple[int, bool]:
    """``(slots, use_gpus)``: how many runs the cluster holds at once, and whether runs ask
    for GPUs (only when the cluster has some and ``gpus_per_run`` > 0)."""
    cpus, gpus = float(resources.get("CPU", 0.0)), float(resources.get("GPU", 0.0))
    use_gpus = gpus > 0 and gpus_per_run > 0
    counts = []
    if cpus_per_run > 0:
        counts.append(int(cpus / cpus_per_run + 1e-9))
    if use_gpus:
        counts.append(int(gpus / gpus_per_run + 1e-9))
    slots = min(counts) if counts else max(1, int(cpus))
    if limit is not None:
        slots = min(slots, int(limit))
    return max(0, slots), use_gpus


def _run_task(job_fn: JobFn, run_id: int, location: str, limits: Limits,
              threads: int) -> None:
    """The body of a run's Ray task (a worker process Ray may reuse for later tasks)."""
    lower_priority()
    import torch

    torch.set_num_threads(max(1, threads))
    run_job(job_fn, run_id, location, runner="ray", limits=limits)


def _warm_task(location: str | None = None) -> dict[str, Any]:
    """Prepare a Ray worker for trainings; returns its pid, how many warm-up steps it ran and
    whether ``torch._dynamo`` is loaded.

    Always imports what a training needs. With the store's ``location`` (the runner's job is
    :func:`~playground.jobs.execute_run`), it also runs the local workers' warm-up
    (:mod:`playground.warmup`), one small training step first: a process's first optimiser
    imports ``torch._dynamo`` (about 3.5 s on the 2-core development machine), which the first
    run landing on this worker would otherwise pay; measured by ``benchmarks/runners.py``,
    that one run held Ray's throughput at 0.62x the local runner's. The data sets follow while
    no run is queued in the store, so a run queued meanwhile waits for one warm-up step at
    most.
    """
    lower_priority()
    import playground.build
    import playground.train  # noqa: F401

    steps = 0
    if location is not None:
        from playground.runs import RunStore
        from playground.warmup import run_while_idle, warm_up_tasks

        store = RunStore(location)

        def counted() -> Iterator[Callable[[], object]]:
            nonlocal steps
            for task in warm_up_tasks(None, step_first=True):
                yield task
                steps += 1

        run_while_idle(counted(), lambda: bool(store.list_runs(statuses=("queued",), limit=1)))
    return {"pid": os.getpid(), "steps": steps, "dynamo": "torch._dynamo" in sys.modules}


@dataclass
class _Held:
    """A task handed to Ray: a run (``run_id``) or a warm-up (``None``)."""

    run_id: int | None
    started: float  # monotonic time it was handed over
    stop_asked: float | None = None
    cancel_status: str = ""  # set when the runner cancels the task by force
    cancel_message: str = ""


class RayRunner(QueueingRunner):
    """Runs as Ray tasks, at most one per slot, started in fair order.

    ``store`` is a :class:`~playground.runs.RunStore` or its location; ``address`` defaults
    to ``PLAYGROUND_RAY_ADDRESS``, ``cpus_per_run``/``gpus_per_run`` to their settings;
    ``slots`` caps the slots below what the cluster holds (tests). ``job_fn`` must be a
    top-level function importable by the Ray workers.
    """

    kind = "ray"

    def __init__(self, store: StoreLike = None, *, address: str | None = None,
                 job_fn: JobFn = execute_run, max_queued: int | None = None,
                 cpus_per_run: float | None = None, gpus_per_run: float | None = None,
                 slots: int | None = None, warm_up: bool = True):
        super().__init__(store, max_queued)
        settings = get_settings()
        self.address = settings.ray_address if address is None else address.strip()
        self.job_fn = job_fn
        self.cpus_per_run = settings.cpus_per_run if cpus_per_run is None else cpus_per_run
        self.gpus_per_run = settings.gpus_per_run if gpus_per_run is None else gpus_per_run
        self.max_slots = slots
        connected = connect(self.address)
        self._owns_ray = connected == "embedded"
        self._env = task_env(self.address, connected)
        self._task = ray.remote(_run_task)
        self._held: dict[Any, _Held] = {}  # ObjectRef -> what it is
        self._slots, self._use_gpus = 0, False
        self._resources: dict[str, float] = {}
        self._slots_read = float("-inf")
        self._last_sweep = float("-inf")
        self._event = threading.Event()
        with self._lock:
            self._refresh_slots(force=True)
            if warm_up:
                warm = ray.remote(_warm_task)
                location = self.location if job_fn is execute_run else None
                for _ in range(self._slots):
                    ref = warm.options(**self._options(), name="playground-warm-up").remote(
                        location)
                    self._held[ref] = _Held(None, time.monotonic())
        self._monitor = threading.Thread(target=self._watch, name="playground-ray-runner",
                                         daemon=True)
        self._monitor.start()
        atexit.register(self.shutdown)

    # -- public interface --------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Plain data about the runner: slots, cluster resources, queued (in start order) and
        running run ids."""
        with self._lock:
            return {
                "kind": "ray",
                "address": self.address or "embedded",
                "slots": self._slots,
                "resources": dict(self._resources),
                "gpus": self._use_gpus,
                "queue": self._queue.order(),
                "running": [h.run_id for h in self._held.values() if h.run_id is not None],
                "warming": sum(1 for h in self._held.values() if h.run_id is None),
                "max_queued": self.max_queued,
                "closed": self._closed,
                "problem": self._broken,
            }

    def wait_ready(self, timeout: float = 60.0, warm: bool = False) -> bool:
        """Block until the cluster offers a slot or, with ``warm``, the warm-up tasks (one
        per slot, importing torch and the playground) are done."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._broken or self._closed:
                    return False
                warming = any(h.run_id is None for h in self._held.values())
                if self._slots > 0 and not (warm and warming):
                    return True
            time.sleep(0.05)
        return False

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop handing out runs; queued runs become ``interrupted``; running ones are asked
        to stop, given ``timeout`` seconds, then cancelled by force; either way they end
        ``interrupted`` (unless their owner stopped them), metrics kept. Stops the embedded
        Ray if this runner started it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._interrupt_queued("the server stopped before this run started")
            held = dict(self._held)
        with contextlib.suppress(Exception):
            atexit.unregister(self.shutdown)
        self._event.set()
        if self._monitor.is_alive() and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=5.0)
        runs = {ref: h for ref, h in held.items() if h.run_id is not None}
        for h in runs.values():
            with contextlib.suppress(Exception):
                self.store.request_stop(h.run_id, by=SYSTEM)
        with contextlib.suppress(Exception):
            if held:
                ray.wait(list(held), num_returns=len(held), timeout=timeout)
        cancelled = []
        for ref in held:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
                cancelled.append(ref)
        with contextlib.suppress(Exception):  # let the cancellations settle before shutdown:
            if cancelled:  # a task reply arriving in a stopping core worker crashes it
                ray.wait(cancelled, num_returns=len(cancelled), timeout=5.0)
        for h in runs.values():
            if h.stop_asked is None:
                with contextlib.suppress(Exception):
                    self.store.set_status(h.run_id, "interrupted",
                                          "the server shut down while this run was training",
                                          only_if=("queued", "running", "stopped"))
        self._held.clear()
        if self._owns_ray:
            with contextlib.suppress(Exception):
                ray.shutdown()
            release_anchor()

    def __enter__(self) -> RayRunner:
        return self

    # -- internals ---------------------------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        options = {"num_cpus": self.cpus_per_run,
                   "num_gpus": self.gpus_per_run if self._use_gpus else 0, "max_retries": 0}
        return options if self._env is None else {**options, "runtime_env": self._env}

    def _holds(self, run_id: int) -> bool:
        return any(h.run_id == run_id for h in self._held.values())

    def _slot_free_in(self, mean_s: float) -> list[float]:
        now = time.monotonic()
        busy = [max(0.0, mean_s - (now - h.started)) for h in self._held.values()]
        return busy + [0.0] * max(0, self._slots - len(busy))

    def _stop_held(self, run_id: int) -> None:
        for h in self._held.values():
            if h.run_id == run_id and h.stop_asked is None:
                h.stop_asked = time.monotonic()

    def _wake(self) -> None:
        self._event.set()

    def _refresh_slots(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._slots_read < SLOTS_EVERY_S:
            return
        self._slots_read = now
        try:
            self._resources = {k: float(v) for k, v in ray.cluster_resources().items()
                               if k in ("CPU", "GPU", "memory")}
        except Exception as exc:  # Ray went away: keep the last count, say so
            self._broken = f"the Ray cluster is not reachable: {describe_error(exc)}"
            return
        self._broken = ""
        self._slots, self._use_gpus = plan_slots(self._resources, self.cpus_per_run,
                                                 self.gpus_per_run, self.max_slots)

    def _dispatch(self) -> None:
        """Hand queued runs to Ray while there are free slots (lock held)."""
        if self._closed:
            return
        limits = Limits.from_settings()  # the server's limits apply wherever a run trains
        threads = max(1, int(self.cpus_per_run))
        while self._queue and len(self._held) < self._slots:
            rid = self._queue.pop()
            ref = self._task.options(**self._options(), name=f"playground-run-{rid}").remote(
                self.job_fn, rid, self.location, limits, threads)
            self._held[ref] = _Held(rid, time.monotonic())

    def _watch(self) -> None:
        """The monitor thread: collect ended tasks, enforce stop and wall grace, re-read the
        slots, sweep silent runs, hand out runs."""
        while not self._closed:
            with self._lock:
                refs = list(self._held)
            try:
                if refs:
                    ready, _ = ray.wait(refs, num_returns=1, timeout=WAIT_S, fetch_local=False)
                    if ready:  # pick up every other task that ended meanwhile
                        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0,
                                            fetch_local=False)
                else:
                    self._event.wait(0.5)
                    ready = []
                self._event.clear()
                with self._lock:
                    if self._closed:
                        return
                    for ref in ready:
                        self._collect(ref)
                    self._enforce_graces()
                    self._refresh_slots()
                    self._sweep()
                    self._dispatch()
            except Exception:  # never let the monitor die: log and go on
                traceback.print_exc()
                time.sleep(0.5)

    def _collect(self, ref: Any) -> None:
        """A task ended: make sure its run has a final status."""
        held = self._held.pop(ref, None)
        if held is None or held.run_id is None:
            return
        rid = held.run_id
        try:
            ray.get(ref, timeout=10)
        except ray_errors.TaskCancelledError:
            status = held.cancel_status or "interrupted"
            message = held.cancel_message or "the Ray task was cancelled"
            self.store.set_status(rid, status, message, only_if=ACTIVE_STATUSES)
        except _DIED as exc:
            first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
            self.store.set_status(
                rid, "failed", f"the Ray worker died: {first or type(exc).__name__}; the "
                f"metrics recorded until then are kept", only_if=ACTIVE_STATUSES)
        except ray_errors.RayTaskError as exc:  # the task itself raised (e.g. an import)
            cause = getattr(exc, "cause", None) or exc
            self.store.set_status(rid, "failed", f"the Ray task failed: "
                                  f"{describe_error(cause)}", only_if=ACTIVE_STATUSES)
        except Exception as exc:
            self.store.set_status(rid, "failed", f"the Ray task failed: {describe_error(exc)}",
                                  only_if=ACTIVE_STATUSES)
        else:
            self.store.set_status(rid, "failed", "the Ray task ended without recording a "
                                  "result", only_if=ACTIVE_STATUSES)

    def _enforce_graces(self) -> None:
        now = time.monotonic()
        for ref, h in self._held.items():
            if h.run_id is None or h.cancel_status:
                continue
            if now - h.started > self.max_wall_s + WALL_GRACE_S:
                h.cancel_status = "failed"
                h.cancel_message = (f"the run did not stop at the wall-clock limit of "
                                    f"{self.max_wall_s:g} s, so its Ray task was cancelled")
            elif h.stop_asked is not None and now - h.stop_asked > STOP_GRACE_S:
                h.cancel_status = "stopped"
                h.cancel_message = ("stopped (the Ray task did not respond to the stop request "
                                    "and was cancelled)")
            else:
                continue
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)

    def _sweep(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < SWEEP_EVERY_S:
            return
        self._last_sweep = now
        # runs whose process went silent: another server's, or a task Ray lost
        self.store.recover_interrupted(
            queued=False, skip=[h.run_id for h in self._held.values() if h.run_id is not None])
