"""Where trainings run: a pure job function and a local runner of warm worker processes.

The job function :func:`execute_run` takes a run id and the location of the run store, and
nothing from the UI process: it reads the run's spec and settings from the store, checks the
limits from :mod:`playground.settings`, claims the run, calls :func:`playground.train.train`
with an ``emit`` that appends metric records to the store and a ``should_stop`` that reads the
run's stop flag, and writes the final status, message and summary. The CLI calls it in-process;
:class:`LocalRunner` calls it in worker processes; a cluster runner (e.g. Ray tasks with
``num_gpus=1``) could call the same function elsewhere.

A runner has four methods: ``submit(run_id)``, ``cancel(run_id)``, ``status()`` and
``shutdown()``. :class:`LocalRunner` keeps the queue of run ids in the server process and hands
one run at a time to each idle worker:

- workers are started with the ``spawn`` method (``fork`` after importing torch is unsafe, see
  https://pytorch.org/docs/stable/notes/multiprocessing.html) when the runner is created, and
  import torch and the playground before they report ready, so a submitted run starts in well
  under a second; while idle they then prepare the presets' data sets and run one small step
  (:mod:`playground.warmup`), so that even the first run after a server start shows its first
  point within seconds (the app creates its runner on its first page view, not on the first
  Start);
- one worker per GPU when CUDA is used (each pinned to its device), ``PLAYGROUND_WORKERS`` on
  CPU (each with an equal share of the CPU threads);
- a monitor thread watches every worker's pipe and process sentinel: a worker that dies
  (killed, segfault, out of memory) has its run marked ``failed`` ("the worker process
  crashed") and is replaced; a run that ignores its stop flag past the wall-clock limit has its
  worker killed and replaced;
- ``shutdown`` (also registered with :mod:`atexit`) stops the workers and joins them, so no
  process is left behind;
- workers die with their server, even one killed with SIGKILL: each worker watches its parent
  (on Linux the kernel sends it ``SIGUSR1`` when the parent goes, ``prctl(PR_SET_PDEATHSIG)``;
  everywhere a thread compares ``os.getppid()`` with the parent's pid twice a second). A
  worker whose server is gone stops its run at the next step as ``interrupted``, metrics kept,
  and exits; one that cannot stop within :data:`PARENT_GRACE_S` marks the run and exits anyway.

Liveness is kept in the store, not in process ids: :func:`execute_run` refreshes the run's
heartbeat every few seconds from a small thread (and with every batch of metrics), and
:meth:`playground.runs.RunStore.recover_interrupted` treats a run whose heartbeat is older than
``PLAYGROUND_HEARTBEAT_TIMEOUT_S`` as lost. The monitor thread sweeps for such runs every
:data:`SWEEP_EVERY_S` seconds, so runs of a server that died moments before this one started
are found too.

A process that is going away (a CLI training sent SIGTERM, a worker whose server died) calls
:func:`request_shutdown`; the running training stops at its next step with the status and
reason given.

Nothing here imports streamlit; the app keeps one runner per server (``st.cache_resource``) and
calls :meth:`playground.runs.RunStore.recover_interrupted` once at start-up.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import os
import signal
import sys
import threading
import time
import traceback
import types
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing import connection as mp_connection
from multiprocessing import get_context
from multiprocessing.process import BaseProcess
from typing import Any

from playground.errors import PlaygroundError
from playground.runs import ACTIVE_STATUSES, STATUSES, RunStore, normalise_owner
from playground.settings import get_settings
from playground.spec import NetworkSpec, spec_from_dict

JobFn = Callable[..., object]
"""``job_fn(run_id, store_path)`` (plus ``device=`` for a worker pinned to a GPU)."""

FLUSH_EVERY_S = 0.25  # metric records reach the store about 4x a second
FLUSH_MAX_RECORDS = 20_000  # ...or sooner when a batch is this large
STOP_POLL_S = 0.25  # the stop flag is read from the store at most 4x a second
WALL_GRACE_S = 60.0  # a run still going this long after its wall limit has its worker killed
STOP_GRACE_S = 30.0  # a cancelled run still going after this long has its worker killed
MAX_START_FAILURES = 3  # workers dying before they are ready this often in a row: give up
PARENT_POLL_S = 0.5  # a worker checks this often whether its server is still there
PARENT_GRACE_S = 20.0  # ...and gives a run this long to stop after the server went away
SWEEP_EVERY_S = 10.0  # the monitor looks for runs whose process went silent this often
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


# -- going away --------------------------------------------------------------------------------
@dataclass
class _Shutdown:
    """Why this process is going away; set once by :func:`request_shutdown`."""

    event: threading.Event
    status: str = ""
    reason: str = ""


_SHUTDOWN = _Shutdown(threading.Event())


def request_shutdown(status: str, reason: str) -> None:
    """Stop the training running in this process at its next step, ending it with ``status``
    (``stopped`` or ``interrupted``) and ``reason`` (e.g. "the process received SIGTERM").

    One per process and final: the process is expected to exit afterwards. Safe to call from
    a signal handler or another thread; the first call's status and reason are kept.
    """
    if status not in STATUSES or status in ACTIVE_STATUSES:
        raise ValueError(f"a run cannot end as {status!r}")
    if not _SHUTDOWN.event.is_set():
        _SHUTDOWN.status, _SHUTDOWN.reason = status, reason
        _SHUTDOWN.event.set()


def shutdown_requested() -> tuple[str, str] | None:
    """``(status, reason)`` once :func:`request_shutdown` was called in this process."""
    return (_SHUTDOWN.status, _SHUTDOWN.reason) if _SHUTDOWN.event.is_set() else None


# -- limits ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """The caps a training run must respect (defaults from :func:`get_settings`)."""

    max_params: int
    max_steps: int
    max_wall_s: float

    @classmethod
    def from_settings(cls) -> Limits:
        s = get_settings()
        return cls(max_params=s.max_params, max_steps=s.max_steps, max_wall_s=float(s.max_wall_s))


def count_params(spec: NetworkSpec) -> int:
    """Parameters of the built model, ``sum(p.numel())`` of a meta-device build (no memory)."""
    from playground.build import build_model

    model = build_model(spec, device="meta")
    return int(sum(p.numel() for p in model.parameters()))


def check_limits(spec: NetworkSpec, steps: int, limits: Limits | None = None) -> int:
    """Raise :class:`PlaygroundError` naming the cap a run would break; returns the params.

    Pages can call this before creating a run; :func:`execute_run` always calls it.
    """
    limits = limits or Limits.from_settings()
    if steps > limits.max_steps:
        raise PlaygroundError(
            f"{steps:,} training steps is more than the limit of {limits.max_steps:,} steps "
            f"per run (PLAYGROUND_MAX_STEPS); lower the number of steps"
        )
    num_params = count_params(spec)
    if num_params > limits.max_params:
        raise PlaygroundError(
            f"the model has {num_params:,} parameters, more than the limit of "
            f"{limits.max_params:,} parameters per run (PLAYGROUND_MAX_PARAMS); make it "
            f"narrower or shallower"
        )
    return num_params


# -- the job function --------------------------------------------------------------------------
def describe_error(exc: BaseException) -> str:
    """One plain line for an exception escaping a training."""
    if isinstance(exc, PlaygroundError):
        return " ".join(str(exc).split())
    name = type(exc).__name__
    if name == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        return "out of GPU memory: use a smaller batch size or a smaller model"
    if isinstance(exc, MemoryError):
        return "out of memory: use a smaller batch size or a smaller model"
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    return f"{name}: {first}"[:500] if first else name


class _MetricWriter:
    """Buffers emitted records and appends them to the store about 4x a second.

    Each flush is one transaction holding whole ``emit`` batches; the final flush runs in a
    ``finally`` so a failing run keeps everything it recorded. The first batch (the labels of
    step 0) and the first batch holding a training loss (the trainer flushes after step 1) are
    written at once, so a live chart shows its first point as soon as there is one.
    """

    def __init__(self, store: RunStore, run_id: int):
        self.store = store
        self.run_id = run_id
        self.buffer: list[dict[str, Any]] = []
        self.last_flush = float("-inf")  # the first batch is written at once
        self.written = 0
        self.live = False  # whether a loss record was written yet

    def emit(self, records: list[dict[str, Any]]) -> None:
        self.buffer.extend(records)
        if len(self.buffer) >= FLUSH_MAX_RECORDS:
            self.flush()
        elif not self.live and any(r.get("name") == "loss" for r in records):
            self.live = True
            self.flush()
        else:
            self.flush_if_due()

    def flush_if_due(self) -> None:
        """Flush when the last flush is 0.25 s old (also called once per step, so records
        never wait for the next batch of a slow model)."""
        if self.buffer and time.monotonic() - self.last_flush >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if self.buffer:
            batch, self.buffer = self.buffer, []
            self.written += self.store.append_metrics(self.run_id, batch)


class _StopCheck:
    """``should_stop`` for the trainer: the stop flag (read at most every 0.25 s), the wall
    clock or :func:`request_shutdown`; ``reason`` (``request``, ``wall``, ``shutdown``) says
    which fired. Also flushes the metric writer when it is due.

    The trainer calls it before every step. The wall clock counts from this object's creation
    but is checked only from the second call on: every run makes its first step (and so has a
    point to show) however long its setup took; a first step that never ends is caught by the
    runner's :data:`WALL_GRACE_S`.
    """

    def __init__(self, store: RunStore, run_id: int, max_wall_s: float,
                 writer: _MetricWriter | None = None):
        self.store = store
        self.run_id = run_id
        self.writer = writer
        self.max_wall_s = max_wall_s
        self.t0 = time.monotonic()
        self.last_poll = float("-inf")
        self.flag = False
        self.reason = ""
        self.first = True  # before the first step: the wall clock is not checked yet

    def __call__(self) -> bool:
        if self.writer is not None:
            self.writer.flush_if_due()
        if _SHUTDOWN.event.is_set():
            self.reason = self.reason or "shutdown"
            return True
        now = time.monotonic()
        if self.first:
            self.first = False
        elif now - self.t0 > self.max_wall_s:
            self.reason = self.reason or "wall"
            return True
        if not self.flag and now - self.last_poll >= STOP_POLL_S:
            self.last_poll = now
            self.flag = self.store.stop_requested(self.run_id)
            if self.flag:
                self.reason = "request"
        return self.flag


class _Heartbeat:
    """A daemon thread refreshing a running run's heartbeat in the store every ``every`` s.

    It ends when stopped or when the run is no longer ``running``; a failed write (the store
    busy for longer than its timeout) is simply retried at the next beat.
    """

    def __init__(self, store: RunStore, run_id: int, every: float):
        self.store, self.run_id, self.every = store, run_id, every
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"playground-heartbeat-{run_id}",
                                        daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5.0)

    def _beat(self) -> None:
        try:
            while not self._done.wait(self.every):
                try:
                    if not self.store.heartbeat(self.run_id):
                        return
                except Exception:
                    continue
        finally:
            self.store.close()  # this thread's connection


def heartbeat_every_s() -> float:
    """Seconds between heartbeats: six per ``PLAYGROUND_HEARTBEAT_TIMEOUT_S``, at most 5 s."""
    return min(5.0, max(0.1, get_settings().heartbeat_timeout_s / 6))


def execute_run(run_id: int, store_path: str | os.PathLike[str] | None = None, *,
                device: str | None = None, limits: Limits | None = None) -> str:
    """Train the queued run ``run_id`` and record everything in the store; returns its status.

    ``device`` overrides the run's device unless the run asked for the CPU (a GPU worker
    passes its own ``cuda:N``). Nothing raises out of here for a problem with the run: a bad
    spec, a cap, an exception in training all end as ``failed`` with a one-line message, and
    the metrics recorded until then are kept. A run that is no longer queued (cancelled,
    claimed elsewhere) is left alone. While it trains, a thread refreshes the run's heartbeat
    (see :class:`_Heartbeat`); after :func:`request_shutdown` it ends at the next step with the
    status and reason given there.
    """
    store = RunStore(store_path)
    run = store.find_run(run_id)
    if run is None or not store.mark_started(run_id, os.getpid()):
        return run.status if run is not None else "missing"
    limits = limits or Limits.from_settings()
    writer = _MetricWriter(store, run_id)
    stop = _StopCheck(store, run_id, limits.max_wall_s, writer)
    status, message, summary = "failed", "", None
    beat = _Heartbeat(store, run_id, heartbeat_every_s())
    try:
        if store.stop_requested(run_id):
            status, message = "stopped", "stopped before it started"
        elif _SHUTDOWN.event.is_set():
            status, message = _SHUTDOWN.status, f"{_SHUTDOWN.status}: {_SHUTDOWN.reason}"
        else:
            with beat:
                status, message, summary = _train(run.spec, run.settings, device, limits,
                                                  writer, stop)
    except Exception as exc:
        status, message = "failed", describe_error(exc)
        if not isinstance(exc, PlaygroundError):
            summary = {"error": traceback.format_exc(limit=20)[-4000:]}
    except BaseException:  # interpreter shutting down, KeyboardInterrupt in the CLI
        status, message = "interrupted", "the training process was shut down during the run"
        raise
    finally:
        try:
            writer.flush()
        except Exception as exc:  # the store itself failed; say so rather than hide it
            message = f"{message}; the last metrics could not be saved ({describe_error(exc)})"
            status = "failed" if status in ("finished", "early_stopped") else status
        store.set_status(run_id, status, message, summary, only_if=("running",))
    return status


def _train(spec_data: dict[str, Any], settings_data: dict[str, Any], device: str | None,
           limits: Limits, writer: _MetricWriter,
           stop: _StopCheck) -> tuple[str, str, dict[str, Any]]:
    from playground import train as trainer

    spec = spec_from_dict(spec_data)
    data = dict(settings_data)
    if device is not None and str(data.get("device", "auto")).lower() != "cpu":
        data["device"] = device
    settings = trainer.settings_from_dict(data)
    # with ``epochs`` set the trainer derives the step count from the data and checks it
    steps = int(settings.steps) if getattr(settings, "epochs", None) is None else 0
    num_params = check_limits(spec, steps, limits)
    t0 = time.monotonic()
    result = trainer.train(spec, settings, emit=writer.emit, should_stop=stop)
    status = str(result.status)
    message = str(result.message or "")
    summary = dict(result.summary or {})
    summary.setdefault("num_params", num_params)
    summary.setdefault("wall_s", round(time.monotonic() - t0, 3))
    if status not in STATUSES or status in ACTIVE_STATUSES:
        return "failed", f"the trainer returned an unknown status {status!r}", summary
    if status == "stopped" and stop.reason == "wall":
        done = summary.get("steps_done")
        message = (f"stopped{f' at step {done}' if done is not None else ''}: the run reached "
                   f"the time limit of {limits.max_wall_s:g} s (PLAYGROUND_MAX_WALL_S)")
    elif status == "stopped" and stop.reason == "shutdown":
        done = summary.get("steps_done")
        status = _SHUTDOWN.status
        message = (f"{status}{f' at step {done}' if done is not None else ''}: "
                   f"{_SHUTDOWN.reason}; the metrics recorded until then are kept")
    elif status == "stopped" and not message:
        message = "stopped on request"
    return status, message, summary


# -- worker processes --------------------------------------------------------------------------
def plan_workers(device: str, cpu_workers: int, cuda_count: int | None = None) -> list[str | None]:
    """The device each worker is pinned to: one ``cuda:N`` per GPU, else ``cpu_workers`` Nones.

    ``device`` is ``PLAYGROUND_DEVICE``: ``auto``/``cuda`` use every visible GPU, ``cuda:1``
    one, ``cpu``/``mps`` (or no GPU) the CPU worker count. ``None`` leaves the run's own device.
    """
    dev = (device or "auto").strip().lower()
    if dev.startswith("cuda:"):
        return [dev]
    if dev in ("auto", "cuda"):
        if cuda_count is None:
            try:
                import torch

                cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            except Exception:
                cuda_count = 0
        if cuda_count > 0:
            return [f"cuda:{i}" for i in range(cuda_count)]
    return [None] * max(1, int(cpu_workers))


@dataclass
class _WorkerState:
    """What a worker's parent watch needs to know about the worker's main thread."""

    store_path: str
    parent_pid: int
    run_id: int | None = None  # the run being trained now


def _parent_gone(state: _WorkerState) -> bool:
    """Whether the server that started this worker has gone (we were handed to another
    parent: init, or a subreaper)."""
    if os.getppid() == state.parent_pid:
        return False
    request_shutdown("interrupted", "the server process went away")
    return True


def _watch_parent(state: _WorkerState) -> None:
    """Make this worker end with its server, even a server killed with SIGKILL.

    On Linux ``prctl(PR_SET_PDEATHSIG)`` has the kernel send ``SIGUSR1`` when the parent
    *thread* that started us ends; a server thread can end while the server lives on (a
    Streamlit script run), so the handler checks ``os.getppid()`` before believing it.
    Everywhere a daemon thread polls ``os.getppid()`` as well. Once the parent is gone the
    training stops at its next step (:func:`request_shutdown`) and the main loop exits; a run
    still going after :data:`PARENT_GRACE_S` is marked ``interrupted`` here and the process
    exits.
    """
    if sys.platform.startswith("linux") and hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, lambda signum, frame: _parent_gone(state))
        with contextlib.suppress(Exception):  # no libc, no prctl: the thread still watches
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGUSR1), 0, 0, 0)

    def watch() -> None:
        while not _SHUTDOWN.event.wait(PARENT_POLL_S):
            if _parent_gone(state):
                break
        time.sleep(PARENT_GRACE_S)  # the main thread normally exits well before this
        rid = state.run_id
        if rid is not None:  # the training did not stop in time (a very long step, a hang)
            with contextlib.suppress(Exception):
                RunStore(state.store_path).set_status(
                    rid, _SHUTDOWN.status or "interrupted",
                    f"{_SHUTDOWN.reason or 'the worker was shut down'}; the run did not stop "
                    f"within {PARENT_GRACE_S:g} s; the metrics recorded until then are kept",
                    only_if=("running",))
        os._exit(1)

    threading.Thread(target=watch, name="playground-parent-watch", daemon=True).start()
    _parent_gone(state)  # the parent may have died before the watch was set up


def _worker_main(conn: mp_connection.Connection, store_path: str, job_fn: JobFn,
                 device: str | None, threads: int, parent_pid: int | None = None) -> None:
    """A worker process: watch the parent, import what a training needs, say ``ready``, then
    run one job per run id received until told to stop or the server goes away.

    While no run id is waiting, a worker running :func:`execute_run` prepares what the first
    runs need (:mod:`playground.warmup`: the presets' data sets, one small training step) and
    says ``warm`` when that is done; a run that arrives meanwhile starts after the task in
    progress, and the rest of the warm-up waits until the worker is idle again.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the runner, which stops us
    state = _WorkerState(store_path, os.getppid() if parent_pid is None else parent_pid)
    _watch_parent(state)
    t0 = time.monotonic()
    import torch

    torch.set_num_threads(max(1, threads))
    if device is not None and device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    import playground.build  # warm the imports a training needs

    with contextlib.suppress(ImportError):
        import playground.train  # noqa: F401
    conn.send(("ready", os.getpid(), round(time.monotonic() - t0, 3)))
    from playground.warmup import run_while_idle, warm_up_tasks

    # injected job functions (tests) need no warm-up
    warm = warm_up_tasks(device) if job_fn is execute_run else iter(())
    warming = True
    while not _SHUTDOWN.event.is_set():
        if warming and run_while_idle(warm, conn.poll):
            warming = False
            with contextlib.suppress(OSError):
                conn.send(("warm", os.getpid(), round(time.monotonic() - t0, 3)))
        try:
            run_id = conn.recv()
        except (EOFError, OSError):  # the runner is gone
            break
        if run_id is None:
            break
        state.run_id = int(run_id)
        _run_one(job_fn, int(run_id), store_path, device)
        state.run_id = None
        if _SHUTDOWN.event.is_set():
            break
        try:
            conn.send(("done", run_id))
        except OSError:
            break
    # Every result is committed; skip the interpreter's slow teardown of torch (seconds on a
    # busy machine) so shutdown is quick.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _run_one(job_fn: JobFn, run_id: int, store_path: str, device: str | None) -> None:
    """Call the job function; whatever it leaves undone, the run still ends with a status."""
    kwargs: dict[str, Any] = {"device": device} if device is not None else {}
    store = RunStore(store_path)
    try:
        job_fn(run_id, store_path, **kwargs)
    except Exception as exc:
        store.set_status(run_id, "failed", describe_error(exc), only_if=ACTIVE_STATUSES)
    else:
        store.set_status(run_id, "failed", "the job ended without recording a result",
                         only_if=("running",))


_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _hidden_main(keep: bool = False) -> Iterator[None]:
    """Start a ``spawn`` child without re-running the parent's ``__main__`` in it.

    ``spawn`` re-executes the parent's main script in every child so that functions defined
    there can be unpickled. Under ``streamlit run`` that script is the *page*, which would
    draw widgets and start another runner inside the worker. Workers need only importable
    ``playground`` code, so the main module is swapped for an empty one while the child's
    start-up data is taken (``keep=True`` when the job function itself lives in ``__main__``).
    """
    if keep:
        yield
        return
    with _MAIN_LOCK:
        main = sys.modules.get("__main__")
        stub = types.ModuleType("__main__")  # no __file__ and no __spec__: nothing to re-run
        sys.modules["__main__"] = stub
        try:
            yield
        finally:
            # put it back unless someone (Streamlit's next script run) replaced it meanwhile
            if sys.modules.get("__main__") is stub and main is not None:
                sys.modules["__main__"] = main


@dataclass
class _Worker:
    uid: int
    process: BaseProcess
    conn: mp_connection.Connection
    device: str | None
    ready: bool = False
    warm: bool = False  # its warm-up is done (see _worker_main)
    run_id: int | None = None
    started: float = 0.0  # monotonic time the current run was handed over
    stop_asked: float | None = None  # monotonic time its run was cancelled
    kill_status: str = ""  # set when the monitor kills the worker on purpose
    kill_message: str = ""


def _exit_text(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class LocalRunner:
    """Warm worker processes on this machine reading run ids from an in-memory queue.

    ``job_fn`` must be a top-level function (it is pickled into ``spawn``-ed processes).
    """

    def __init__(self, store_path: str | os.PathLike[str] | None = None,
                 workers: int | None = None, job_fn: JobFn = execute_run, *,
                 device: str | None = None, max_queued: int | None = None):
        settings = get_settings()
        self.store = RunStore(store_path)
        self.store_path = str(self.store.path)
        self.job_fn = job_fn
        self.max_queued = settings.max_queued if max_queued is None else int(max_queued)
        self.max_wall_s = float(settings.max_wall_s)
        self.devices = plan_workers(device or settings.device, workers or settings.workers)
        cpu_workers = sum(1 for d in self.devices if d is None) or 1
        self._threads = max(1, (os.cpu_count() or 1) // cpu_workers)
        self._ctx = get_context("spawn")
        self._lock = threading.RLock()
        self._pending: deque[int] = deque()
        self._workers: list[_Worker] = []
        self._uids = itertools.count(1)
        self._start_failures = 0
        self._last_sweep = float("-inf")
        self._broken = ""
        self._closed = False
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        try:
            for dev in self.devices:
                self._workers.append(self._spawn(dev))
        except BaseException:
            self._closed = True
            self._stop_workers(timeout=2.0)
            raise
        self._monitor = threading.Thread(target=self._watch, name="playground-runner",
                                         daemon=True)
        self._monitor.start()
        atexit.register(self.shutdown)

    # -- public interface --------------------------------------------------------------------
    def start_run(self, owner: str, title: str, spec: dict[str, Any],
                  settings: dict[str, Any]) -> int:
        """Check the owner's queue limit, create the run in the store and submit it."""
        owner = normalise_owner(owner)
        with self._lock:
            self._check_open()
            self._check_quota(owner, self.store.count_active(owner))
            run_id = self.store.create_run(owner, title, spec, settings)
            self.submit(run_id)
        return run_id

    def submit(self, run_id: int) -> None:
        """Queue a ``queued`` run. Over the owner's ``max_queued`` the run is marked failed and
        :class:`PlaygroundError` says why."""
        run = self.store.get_run(run_id)
        with self._lock:
            self._check_open()
            # the store's status decides: a worker may not have reported a finished run yet
            if run.status != "queued":
                raise PlaygroundError(
                    f"run #{run_id} is {run.status}; only a queued run can be started"
                )
            if run_id in self._pending or any(w.run_id == run_id for w in self._workers):
                return
            active = self.store.count_active(run.owner)  # includes this run
            try:
                self._check_quota(run.owner, active - 1)
            except PlaygroundError as exc:
                self.store.set_status(run_id, "failed", f"not started: {exc}",
                                      only_if=("queued",))
                raise
            self._pending.append(run_id)
        self._wake()

    def cancel(self, run_id: int) -> str:
        """Stop a run: a queued one leaves the queue (``stopped``), a running one gets its stop
        flag. Returns the run's status after the call."""
        with self._lock:
            if run_id in self._pending:
                self._pending.remove(run_id)
            self.store.request_stop(run_id)
            self.store.set_status(run_id, "stopped", "stopped before it started",
                                  only_if=("queued",))
            for w in self._workers:
                if w.run_id == run_id and w.stop_asked is None:
                    w.stop_asked = time.monotonic()
        return self.store.get_run(run_id).status

    def status(self) -> dict[str, Any]:
        """Plain data about the runner: workers, devices, queued and running run ids."""
        with self._lock:
            return {
                "kind": "local",
                "workers": len(self._workers),
                "alive": sum(1 for w in self._workers if w.process.is_alive()),
                "ready": sum(1 for w in self._workers if w.ready),
                "warm": sum(1 for w in self._workers if w.warm),
                "devices": [w.device or "cpu" for w in self._workers],
                "pids": [w.process.pid for w in self._workers],
                "queue": list(self._pending),
                "running": [w.run_id for w in self._workers if w.run_id is not None],
                "max_queued": self.max_queued,
                "closed": self._closed,
                "problem": self._broken,
            }

    def wait_ready(self, timeout: float = 60.0, warm: bool = False) -> bool:
        """Block until every worker is ready to take a run or, with ``warm``, has also done
        its warm-up (tests and benchmarks use this)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._broken or self._closed:
                    return False
                if all(w.warm if warm else w.ready for w in self._workers):
                    return True
            time.sleep(0.05)
        return False

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the monitor and the workers, and join them: no process is left behind.

        Runs still queued become ``interrupted``; running ones are asked to stop, given
        ``timeout`` seconds, then their workers are terminated; either way they end
        ``interrupted`` with their metrics kept.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.shutdown)
        self._wake()
        if self._monitor.is_alive() and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=5.0)
        with self._lock:
            for rid in self._pending:
                self.store.set_status(rid, "interrupted",
                                      "the server stopped before this run started",
                                      only_if=("queued",))
            self._pending.clear()
            self._stop_workers(timeout)
        for c in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                c.close()

    def __enter__(self) -> LocalRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- internals ---------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise PlaygroundError("the training runner has shut down; restart the app")
        if self._broken:
            raise PlaygroundError(self._broken)

    def _check_quota(self, owner: str, others: int) -> None:
        if others >= self.max_queued:
            raise PlaygroundError(
                f"{owner} already has {others} runs queued or running and the limit is "
                f"{self.max_queued} (PLAYGROUND_MAX_QUEUED); wait for one to finish or stop one"
            )

    def _spawn(self, device: str | None) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        uid = next(self._uids)
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, self.store_path, self.job_fn, device, self._threads, os.getpid()),
            name=f"playground-worker-{uid}",
            daemon=False,  # a daemonic worker could not start DataLoader processes
        )
        with _hidden_main(keep=getattr(self.job_fn, "__module__", "") == "__main__"):
            proc.start()
        child.close()  # the worker holds the only other end: EOF tells us when it is gone
        return _Worker(uid, proc, parent, device)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(None)

    def _watch(self) -> None:
        """The monitor thread: read worker messages, replace dead workers, hand out runs."""
        while True:
            with self._lock:
                if self._closed:
                    return
                waitables: list[Any] = [self._wake_r]
                for w in self._workers:
                    waitables += [w.conn, w.process.sentinel]
            try:
                mp_connection.wait(waitables, timeout=0.5)
            except OSError:
                time.sleep(0.05)
            with self._lock:
                if self._closed:
                    return
                try:
                    self._step()
                except Exception:  # never let the monitor die: log and go on
                    traceback.print_exc()

    def _step(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            while self._wake_r.poll():
                self._wake_r.recv()
        now = time.monotonic()
        for w in list(self._workers):
            self._read_messages(w)
            if w.run_id is not None and w.process.is_alive():
                if now - w.started > self.max_wall_s + WALL_GRACE_S:
                    self._kill(w, "failed", f"the run did not stop at the wall-clock limit of "
                               f"{self.max_wall_s:g} s, so its worker process was restarted")
                elif w.stop_asked is not None and now - w.stop_asked > STOP_GRACE_S:
                    self._kill(w, "stopped", "stopped (the worker process did not respond to "
                               "the stop request and was restarted)")
            if not w.process.is_alive():
                self._replace(w)
        if now - self._last_sweep >= SWEEP_EVERY_S:
            self._last_sweep = now
            # runs whose process went silent: another server's, or a dead one's
            self.store.recover_interrupted(
                queued=False, skip=[w.run_id for w in self._workers if w.run_id is not None])
        self._dispatch()

    def _read_messages(self, w: _Worker) -> None:
        try:
            while w.conn.poll():
                msg = w.conn.recv()
                if msg[0] == "ready":
                    w.ready = True
                    self._start_failures = 0
                elif msg[0] == "warm":
                    w.warm = True
                elif msg[0] == "done" and w.run_id == msg[1]:
                    w.run_id, w.stop_asked = None, None
        except (EOFError, OSError):
            w.process.join(timeout=1.0)  # the pipe closed: the process is exiting

    def _kill(self, w: _Worker, status: str, message: str) -> None:
        w.kill_status, w.kill_message = status, message
        with contextlib.suppress(Exception):
            w.process.kill()
        w.process.join(timeout=5.0)

    def _replace(self, w: _Worker) -> None:
        w.process.join(timeout=1.0)
        code = w.process.exitcode
        if w.run_id is not None:
            status = w.kill_status or "failed"
            message = w.kill_message or (
                f"the worker process crashed ({_exit_text(code)}); the metrics recorded until "
                f"then are kept")
            self.store.set_status(w.run_id, status, message, only_if=ACTIVE_STATUSES)
        with contextlib.suppress(OSError):
            w.conn.close()
        self._workers.remove(w)
        if not w.ready:
            self._start_failures += 1
            if self._start_failures >= MAX_START_FAILURES:
                self._give_up(f"the training workers cannot start ({_exit_text(code)}); "
                              f"see the server log")
                return
        self._workers.append(self._spawn(w.device))

    def _give_up(self, message: str) -> None:
        self._broken = message
        for rid in self._pending:
            self.store.set_status(rid, "failed", message, only_if=("queued",))
        self._pending.clear()

    def _dispatch(self) -> None:
        for w in self._workers:
            if not self._pending:
                return
            if not w.ready or w.run_id is not None or not w.process.is_alive():
                continue
            rid = self._pending.popleft()
            try:
                w.conn.send(rid)
            except OSError:
                self._pending.appendleft(rid)
                continue
            w.run_id, w.started, w.stop_asked = rid, time.monotonic(), None
            w.kill_status = w.kill_message = ""

    def _stop_workers(self, timeout: float) -> None:
        busy = [w.run_id for w in self._workers if w.run_id is not None]
        # runs their owners cancelled keep "stopped"; the others end "interrupted"
        shut = [w.run_id for w in self._workers if w.run_id is not None and w.stop_asked is None]
        for rid in busy:
            with contextlib.suppress(Exception):
                self.store.request_stop(rid)
        for w in self._workers:
            with contextlib.suppress(OSError):
                w.conn.send(None)
        deadline = time.monotonic() + timeout
        for w in self._workers:
            w.process.join(timeout=max(0.0, deadline - time.monotonic()))
        for w in self._workers:
            if w.process.is_alive():
                w.process.terminate()
                w.process.join(timeout=3.0)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(timeout=3.0)
            with contextlib.suppress(OSError):
                w.conn.close()
            with contextlib.suppress(ValueError):
                w.process.close()
        for rid in shut:
            with contextlib.suppress(Exception):
                self.store.set_status(rid, "interrupted",
                                      "the server shut down while this run was training",
                                      only_if=("queued", "running", "stopped"))
        self._workers.clear()

