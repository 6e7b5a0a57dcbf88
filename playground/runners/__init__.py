"""Where trainings run: one small interface, two backends, one fair queue.

A runner takes run ids of ``queued`` runs in the store and gets them trained by the pure job
function :func:`playground.jobs.execute_run`, which writes everything (status, metrics,
heartbeat, where it ran) to the store; pages only read the store, so they never wait on a
training. Backends (MLflow keeps its stores the same way, one module per engine):

- ``local`` (:mod:`playground.runners.local`): warm worker processes on this machine;
- ``ray`` (:mod:`playground.runners.ray`): one Ray task per run, on an embedded Ray or a
  cluster (``ray`` is imported only when this backend is chosen).

Both keep their own queue and hand runs to free slots in round-robin order over owners
(:mod:`playground.runners.fair`), report a waiting run's place in line with a start estimate,
enforce the per-owner ``PLAYGROUND_MAX_QUEUED`` limit (:mod:`playground.runners.base`), and
run trainings at a lower CPU priority (niceness at least 10) than the web server.
:func:`make_runner` picks the backend from ``PLAYGROUND_RUNNER``.
"""

from __future__ import annotations

from typing import Any, Protocol

from playground.access import Actor
from playground.errors import ConfigError
from playground.runners.base import StoreLike, lower_priority, store_location
from playground.runs import RunStore
from playground.settings import get_settings

__all__ = ["KINDS", "Runner", "lower_priority", "make_runner", "store_location"]

KINDS = ("local", "ray")


class Runner(Protocol):
    """What the app, the CLI and the experiments need from a runner backend."""

    kind: str  # "local" or "ray"
    store: RunStore
    max_queued: int  # queued or running runs one owner may have

    def start_run(self, owner: str | Actor, title: str, spec: dict[str, Any],
                  settings: dict[str, Any]) -> int:
        """Check the owner's queue limit, create the run and submit it; returns its id."""
        ...

    def submit(self, run_id: int) -> None:
        """Queue a ``queued`` run of the store."""
        ...

    def cancel(self, run_id: int, *, by: Actor) -> str:
        """Stop a queued or running run for ``by`` (its owner, the teacher or the system:
        anyone else is refused); returns its status after the call."""
        ...

    def status(self) -> dict[str, Any]:
        """Plain data: ``kind``, ``slots``, ``queue`` (run ids in start order), ``running``,
        ``max_queued``, ``closed``, ``problem`` and backend details."""
        ...

    def queue_position(self, run_id: int) -> tuple[int, float | None] | None:
        """``(position, eta_s)`` of a waiting run (see :meth:`base.QueueingRunner.
        queue_position`)."""
        ...

    def wait_ready(self, timeout: float = 60.0, warm: bool = False) -> bool:
        """Block until runs can start (``warm``: and the warm-up is done)."""
        ...

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop everything; queued and running runs end ``interrupted``, metrics kept."""
        ...


def make_runner(kind: str | None = None, store: StoreLike = None, **options: Any) -> Runner:
    """The runner backend ``kind`` (default ``PLAYGROUND_RUNNER``) over ``store`` (a
    :class:`~playground.runs.RunStore` or its location); ``options`` go to the backend."""
    kind = (kind or get_settings().runner).strip().lower()
    if kind == "local":
        from playground.runners.local import LocalRunner

        return LocalRunner(store, **options)
    if kind == "ray":
        try:
            from playground.runners.ray import RayRunner
        except ImportError as exc:
            if (exc.name or "").split(".")[0] != "ray":
                raise
            raise ConfigError("PLAYGROUND_RUNNER=ray needs Ray: pip install ray==2.60.0") \
                from None
        return RayRunner(store, **options)
    raise ConfigError(f"PLAYGROUND_RUNNER is {kind!r}; use one of {', '.join(KINDS)}")
