"""Job functions for the runner tests, at the top level of an importable module: local workers
are ``spawn``-ed and Ray workers import the function by name (the Ray runner puts this
checkout on its workers' ``PYTHONPATH``)."""

from __future__ import annotations

import os
import time
from typing import Any

from playground.jobs import execute_run
from playground.runs import RunStore

GATE_S = 120.0  # a gated run gives up waiting after this long (liveness only)


def job_for_tests(run_id: int, location: str, **options: Any) -> None:
    """A run titled ``gate...`` claims its slot and waits until the test sets its ``go`` meta
    key, then finishes (so a test can line runs up behind it); any other run trains for real
    through :func:`playground.jobs.execute_run`."""
    store = RunStore(location)
    if not store.get_run(run_id).title.startswith("gate"):
        execute_run(run_id, location, **options)
        return
    if not store.mark_started(run_id, os.getpid(), runner=options.get("runner"), device="cpu"):
        return
    deadline = time.monotonic() + GATE_S
    while not store.get_meta(run_id, "go") and time.monotonic() < deadline:
        time.sleep(0.02)
    store.set_status(run_id, "finished", "released by the test", only_if=("running",))
