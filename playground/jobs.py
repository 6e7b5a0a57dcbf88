"""The pure job function of a training and what it needs: limits, metric writer, stop check.

The job function :func:`execute_run` takes a run id and the location of the run store, and
nothing from the UI process: it reads the run's spec and settings from the store, checks the
limits from :mod:`playground.settings`, claims the run (recording where it runs: runner
backend, host, torch device), calls :func:`playground.train.train` with an ``emit`` that
appends metric records to the store and a ``should_stop`` that reads the run's stop flag, and
writes the final status, message and summary. The CLI calls it in-process; the runners of
:mod:`playground.runners` call it in local worker processes or as Ray tasks (Ray's guidance:
a task takes ids and locations, not live objects).

Liveness is kept in the store, not in process ids: :func:`execute_run` refreshes the run's
heartbeat every few seconds from a small thread (and with every batch of metrics), and
:meth:`playground.runs.RunStore.recover_interrupted` treats a run whose heartbeat is older than
``PLAYGROUND_HEARTBEAT_TIMEOUT_S`` as lost.

A process that is going away (a CLI training sent SIGTERM, a worker whose server died) calls
:func:`request_shutdown`; the running training stops at its next step with the status and
reason given.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playground.errors import PlaygroundError
from playground.runs import ACTIVE_STATUSES, STATUSES, RunStore
from playground.settings import get_settings
from playground.spec import NetworkSpec, spec_from_dict

JobFn = Callable[..., object]
"""``job_fn(run_id, store_location, *, runner=..., device=..., limits=...)``: the runners call
:func:`execute_run` or (tests) an injected top-level function with the same signature."""

FLUSH_EVERY_S = 0.25  # metric records reach the store about 4x a second
FLUSH_MAX_RECORDS = 20_000  # ...or sooner when a batch is this large
STOP_POLL_S = 0.25  # the stop flag is read from the store at most 4x a second


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
    runner's wall grace (``WALL_GRACE_S`` in :mod:`playground.runners.local` and ``.ray``).
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
                device: str | None = None, limits: Limits | None = None,
                runner: str | None = None) -> str:
    """Train the queued run ``run_id`` and record everything in the store; returns its status.

    ``store_path`` is the store's location (a path, or a URL once the store takes one).
    ``device`` overrides the run's device unless the run asked for the CPU (a GPU worker
    passes its own ``cuda:N``). ``runner`` names the backend calling ("local", "ray"; ``None``:
    the CLI in-process); the run record also gets this host's name and the torch device the
    run will use. Nothing raises out of here for a problem with the run: a bad spec, a cap,
    an exception in training all end as ``failed`` with a one-line message, and the metrics
    recorded until then are kept. A run that is no longer queued (cancelled, claimed
    elsewhere) is left alone. While it trains, a thread refreshes the run's heartbeat (see
    :class:`_Heartbeat`); after :func:`request_shutdown` it ends at the next step with the
    status and reason given there.
    """
    store = RunStore(store_path)
    run = store.find_run(run_id)
    if run is None:
        return "missing"
    if not store.mark_started(run_id, os.getpid(), runner=runner,
                              device=device_used(run.settings, device)):
        return run.status
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
                                                  writer, stop, store, run_id)
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
        if status == "stopped" and stop.reason not in ("wall", "shutdown"):
            message = _who_stopped(store, run_id, message)
        store.set_status(run_id, status, message, summary, only_if=("running",))
    return status


def _who_stopped(store: RunStore, run_id: int, message: str) -> str:
    """``message`` with who asked the run to stop ("... on request of Ada")."""
    with contextlib.suppress(Exception):  # the run's record itself is what matters
        who = store.get_run(run_id).stopped_by
        if who:
            if "on request" in message:
                return message.replace("on request", f"on request of {who}", 1)
            if message == "stopped before it started":
                return f"{message} by {who}"
            return f"{message} (asked by {who})"
    return message


def _settings_data(settings_data: dict[str, Any], device: str | None) -> dict[str, Any]:
    """The run's settings with the worker's ``device`` put in, unless the run asked for the
    CPU."""
    data = dict(settings_data)
    if device is not None and str(data.get("device", "auto")).lower() != "cpu":
        data["device"] = device
    return data


def device_used(settings_data: dict[str, Any], device: str | None = None) -> str | None:
    """The torch device a run with these settings trains on here ("cpu", "cuda:0"), resolved
    as the trainer resolves it; ``None`` when the settings are invalid (the run then fails
    with the trainer's own message)."""
    try:
        from playground import train as trainer

        dev = trainer.resolve_device(trainer.settings_from_dict(
            _settings_data(settings_data, device)).device)
        if dev.type == "cuda" and dev.index is None:
            import torch

            return f"cuda:{torch.cuda.current_device()}"
        return str(dev)
    except Exception:
        return None


def _train(spec_data: dict[str, Any], settings_data: dict[str, Any], device: str | None,
           limits: Limits, writer: _MetricWriter, stop: _StopCheck, store: RunStore,
           run_id: int) -> tuple[str, str, dict[str, Any]]:
    from playground import checkpoints
    from playground import train as trainer

    spec = spec_from_dict(spec_data)
    settings = trainer.settings_from_dict(_settings_data(settings_data, device))
    # with ``epochs`` set the trainer derives the step count from the data and checks it
    steps = int(settings.steps) if getattr(settings, "epochs", None) is None else 0
    num_params = check_limits(spec, steps, limits)
    t0 = time.monotonic()
    cap = checkpoints.max_bytes()
    result = trainer.train(spec, settings, emit=writer.emit, should_stop=stop,
                           keep_weights_bytes=cap)
    status = str(result.status)
    message = str(result.message or "")
    summary = dict(result.summary or {})
    nbytes = int(summary.get("weights_bytes") or 0)
    if nbytes > cap:
        store.set_meta(run_id, "weights_note", checkpoints.too_large_note(nbytes))
    elif result.weights:
        try:
            summary["checkpoints"] = checkpoints.save_weights(store, run_id, result.weights)
        except Exception as exc:  # the metrics are what matters; say why there are no weights
            store.set_meta(run_id, "weights_note",
                           f"the weights could not be saved ({describe_error(exc)})")
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
