"""Process targets for tests/test_store.py: small, so a spawned child imports only the store
(not torch, which the test module's presets pull in)."""

from __future__ import annotations

import os
from typing import Any

from playground.runs import RunStore

SPEC = {"name": "tiny", "stages": [{"block": "linear", "depth": 1, "width": 4}]}
SETTINGS = {"dataset": "spirals", "steps": 30, "seed": 7, "device": "cpu"}


def open_and_create(url: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    store = RunStore(url)
    results.put(store.create_run("ada", "", SPEC, SETTINGS))


def claim(url: str, run_id: int, barrier: Any, results: Any) -> None:
    store = RunStore(url)
    barrier.wait()
    results.put((store.mark_started(run_id, node=f"worker-{os.getpid()}"),
                 store.set_status(run_id, "stopped", "first stop wins", only_if=("running",))))


def write_batches(url: str, run_id: int, offset: int, batches: int) -> None:
    store = RunStore(url)
    for b in range(batches):
        base = offset + b * 10
        store.append_metrics(run_id, [
            *({"step": s, "name": "loss", "value": s / 7} for s in range(base, base + 10)),
            *({"step": s, "name": "norms", "values": [s, -s]} for s in range(base, base + 10)),
        ])


def poll_until_done(url: str, run_id: int, done: Any, results: Any) -> None:
    """A page polling with its cursor until the writers are done, then once more."""
    store = RunStore(url)
    seen: list[tuple[str, int]] = []
    cursor = 0
    finished = False
    while not finished:
        finished = done.is_set()  # read before the poll: the last poll follows every commit
        series, cursor = store.poll_metrics(run_id, cursor)
        for name, s in series.items():
            seen.extend((name, step) for step in s["steps"])
    results.put((run_id, seen))
