"""The local backend: warm worker processes on this machine, fed from the fair queue.

:class:`LocalRunner` keeps the queue of run ids in the server process (round-robin over
owners, :mod:`playground.runners.fair`) and hands one run at a time to each idle worker, which
calls the pure job function :func:`playground.jobs.execute_run`:

- workers are started with the ``spawn`` method (``fork`` after importing torch is unsafe, see
  https://pytorch.org/docs/stable/notes/multiprocessing.html) when the runner is created, and
  import torch and the playground before they report ready, so a submitted run starts in well
  under a second; while idle they then prepare the presets' data sets and run one small step
  (:mod:`playground.warmup`), so that even the first run after a server start shows its first
  point within seconds (the app creates its runner on its first page view, not on the first
  Start);
- ``floor(1 / PLAYGROUND_GPUS_PER_RUN)`` workers per GPU when CUDA is used (each pinned to its
  device; 0.25: four runs share a GPU), ``PLAYGROUND_WORKERS`` on CPU (each with an equal
  share of the CPU threads, one fewer for a run while other processes such as a busy web
  server kept a core busy: :mod:`playground.runners.contention`);
- workers run at a lower CPU priority than the web server (niceness at least 10,
  :func:`playground.runners.base.lower_priority`), so pages stay responsive while they train;
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

The monitor also sweeps the store for ``running`` runs whose heartbeat stopped
(:meth:`playground.runs.RunStore.recover_interrupted`) every :data:`SWEEP_EVERY_S` seconds, so
runs of a server that died moments before this one started are found too.
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
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import connection as mp_connection
from multiprocessing import get_context
from multiprocessing.process import BaseProcess
from typing import Any

from playground.access import SYSTEM
from playground.jobs import _SHUTDOWN, JobFn, execute_run, request_shutdown
from playground.runners.base import QueueingRunner, StoreLike, lower_priority, run_job
from playground.runners.contention import ThreadPlanner
from playground.runs import ACTIVE_STATUSES, RunStore
from playground.settings import get_settings

WALL_GRACE_S = 60.0  # a run still going this long after its wall limit has its worker killed
STOP_GRACE_S = 30.0  # a cancelled run still going after this long has its worker killed
MAX_START_FAILURES = 3  # workers dying before they are ready this often in a row: give up
PARENT_POLL_S = 0.5  # a worker checks this often whether its server is still there
PARENT_GRACE_S = 20.0  # ...and gives a run this long to stop after the server went away
SWEEP_EVERY_S = 10.0  # the monitor looks for runs whose process went silent this often
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def plan_workers(device: str, cpu_workers: int, cuda_count: int | None = None,
                 gpus_per_run: float | None = None) -> list[str | None]:
    """The device each worker is pinned to: ``floor(1 / gpus_per_run)`` workers per GPU
    (``cuda:0, cuda:1, cuda:0, cuda:1, ...``: idle workers are taken in this order, so runs
    spread over the GPUs), else ``cpu_workers`` Nones.

    ``device`` is ``PLAYGROUND_DEVICE``: ``auto``/``cuda`` use every visible GPU, ``cuda:1``
    one, ``cpu``/``mps`` (or no GPU) the CPU worker count. ``None`` leaves the run's own device.
    ``gpus_per_run`` defaults to ``PLAYGROUND_GPUS_PER_RUN``; 0 (or 1 and more) means one
    worker per GPU.
    """
    share = get_settings().gpus_per_run if gpus_per_run is None else float(gpus_per_run)
    per_gpu = max(1, int(1.0 / share + 1e-9)) if 0 < share < 1 else 1
    dev = (device or "auto").strip().lower()
    if dev.startswith("cuda:"):
        return [dev] * per_gpu
    if dev in ("auto", "cuda"):
        if cuda_count is None:
            try:
                import torch

                cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            except Exception:
                cuda_count = 0
        if cuda_count > 0:
            return [f"cuda:{i}" for _ in range(per_gpu) for i in range(cuda_count)]
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
    lower_priority()  # before torch starts its threads: they inherit it
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
    on_cpu = device is None or not device.startswith("cuda")
    planner = ThreadPlanner(threads) if on_cpu and threads > 1 else None
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
        if planner is not None:  # a CPU worker leaves a core to a busy server
            torch.set_num_threads(planner.next_run())
        options: dict[str, Any] = {"runner": "local"}
        if device is not None:
            options["device"] = device
        run_job(job_fn, int(run_id), store_path, **options)
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


class LocalRunner(QueueingRunner):
    """Warm worker processes on this machine, each taking one run at a time from the fair
    queue (a slot is an idle worker).

    ``store`` is a :class:`~playground.runs.RunStore` or its location. ``job_fn`` must be a
    top-level function (it is pickled into ``spawn``-ed processes).
    """

    kind = "local"

    def __init__(self, store: StoreLike = None, workers: int | None = None,
                 job_fn: JobFn = execute_run, *, device: str | None = None,
                 max_queued: int | None = None, gpus_per_run: float | None = None):
        super().__init__(store, max_queued)
        settings = get_settings()
        self.job_fn = job_fn
        self.devices = plan_workers(device or settings.device, workers or settings.workers,
                                    gpus_per_run=gpus_per_run)
        self._threads = max(1, (os.cpu_count() or 1) // len(self.devices))
        self._ctx = get_context("spawn")
        self._workers: list[_Worker] = []
        self._uids = itertools.count(1)
        self._start_failures = 0
        self._last_sweep = float("-inf")
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
    def status(self) -> dict[str, Any]:
        """Plain data about the runner: workers, devices, queued (in start order) and running
        run ids."""
        with self._lock:
            return {
                "kind": "local",
                "workers": len(self._workers),
                "slots": len(self._workers),
                "alive": sum(1 for w in self._workers if w.process.is_alive()),
                "ready": sum(1 for w in self._workers if w.ready),
                "warm": sum(1 for w in self._workers if w.warm),
                "devices": [w.device or "cpu" for w in self._workers],
                "pids": [w.process.pid for w in self._workers],
                "queue": self._queue.order(),
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
            self._interrupt_queued("the server stopped before this run started")
            self._stop_workers(timeout)
        for c in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                c.close()

    def __enter__(self) -> LocalRunner:
        return self

    # -- internals ---------------------------------------------------------------------------
    def _holds(self, run_id: int) -> bool:
        return any(w.run_id == run_id for w in self._workers)

    def _slot_free_in(self, mean_s: float) -> list[float]:
        now = time.monotonic()
        return [0.0 if w.run_id is None else max(0.0, mean_s - (now - w.started))
                for w in self._workers if w.process.is_alive()]

    def _stop_held(self, run_id: int) -> None:
        for w in self._workers:
            if w.run_id == run_id and w.stop_asked is None:
                w.stop_asked = time.monotonic()

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
        for rid in self._queue.clear():
            self.store.set_status(rid, "failed", message, only_if=("queued",))

    def _dispatch(self) -> None:
        for w in self._workers:
            if not self._queue:
                return
            if not w.ready or w.run_id is not None or not w.process.is_alive():
                continue
            rid = self._queue.pop()
            try:
                w.conn.send(rid)
            except OSError:
                # the worker is going away: the run goes back to the front of its owner's queue
                # (the monitor replaces the worker and dispatches again)
                if (run := self.store.find_run(rid)) is not None:
                    self._queue.push_front(run.owner, rid)
                continue
            w.run_id, w.started, w.stop_asked = rid, time.monotonic(), None
            w.kill_status = w.kill_message = ""

    def _stop_workers(self, timeout: float) -> None:
        busy = [w.run_id for w in self._workers if w.run_id is not None]
        # runs their owners cancelled keep "stopped"; the others end "interrupted"
        shut = [w.run_id for w in self._workers if w.run_id is not None and w.stop_asked is None]
        for rid in busy:
            with contextlib.suppress(Exception):
                self.store.request_stop(rid, by=SYSTEM)
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

