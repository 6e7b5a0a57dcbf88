"""Start -> first point of the live chart, for every preset, on a freshly started server.

For each preset (fitted to its own data set, with the Train page's default settings) a new
:class:`~playground.jobs.LocalRunner` over a new store stands for a server that has just
started: the app creates its runner on its first page view (``app.py``), and the worker
imports torch, says ready, then warms up (:mod:`playground.warmup`: the presets' data sets, one
small step). Once the worker is warm, which is what a user finds who opens the app, picks a
network and presses Start, the run is submitted and the store is polled every 20 ms until its
first ``loss`` record is there: the first point the Train page can draw. Presets over
``PLAYGROUND_MAX_PARAMS`` are skipped (the worker would refuse them).

Baseline, in the same run: the starter network when Start comes at the very moment the workers
start, which is what every first run waited for before the app started its workers with the
server (they started with the first Start).

Goal: at most 3 s for every preset. Usage: ``python benchmarks/first_metric.py [--presets
small_cnn,lenet5]``; the load average is printed before and after (on a machine whose cores are
busy the two-thread worker slows down several times over).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playground.jobs import count_params
from playground.presets import list_presets
from playground.runners.local import LocalRunner
from playground.settings import get_settings
from playground.targets import fit_to_dataset
from playground.train import TrainSettings

GOAL_S = 3.0
POLL_S = 0.02


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def first_point(preset: str, dataset: str, spec: dict, wait_warm: bool) -> tuple[float, float,
                                                                                float]:
    """(Start -> first loss record, server start -> worker ready, -> worker warm) in seconds;
    the last two are NaN when the run was started before they happened."""
    path = Path(tempfile.mkdtemp(prefix="first-metric-")) / "playground.sqlite"
    t_server = time.perf_counter()
    runner = LocalRunner(path, workers=1)
    ready = warm = float("nan")
    try:
        if wait_warm:
            while runner.status()["ready"] < 1:
                time.sleep(POLL_S)
            ready = time.perf_counter() - t_server
            if not runner.wait_ready(600, warm=True):
                raise RuntimeError(f"the worker did not warm up: {runner.status()}")
            warm = time.perf_counter() - t_server
        settings = TrainSettings(dataset=dataset).model_dump(mode="json")
        t = time.perf_counter()
        run_id = runner.start_run("bench", preset, spec, settings)
        store = runner.store
        while True:
            series, _ = store.poll_metrics(run_id, 0, ["loss"])
            if series.get("loss", {}).get("steps"):
                break
            run = store.get_run(run_id)
            if not run.is_active:
                raise RuntimeError(f"{preset} ended without a point: {run.message}")
            time.sleep(POLL_S)
        return time.perf_counter() - t, ready, warm
    finally:
        runner.shutdown(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="", help="comma-separated names (default: all)")
    args = parser.parse_args()
    wanted = {n.strip() for n in args.presets.split(",") if n.strip()}
    limit = get_settings().max_params
    print(f"{os.cpu_count()} cores; load average {load()} at the start; one CPU worker per "
          f"fresh runner, {max(1, (os.cpu_count() or 1))} torch threads\n")
    print(f"| preset | data | params | Start -> first point | <= {GOAL_S:g} s | worker ready / "
          "warm after the server start |")
    print("|---|---|---|---|---|---|")

    rows = [p for p in list_presets() if not wanted or p.name in wanted]
    met = tried = 0
    for p in rows:
        spec, _ = fit_to_dataset(p.spec(), p.dataset)
        n = count_params(spec)
        if n > limit:
            print(f"| {p.name} | {p.dataset} | {n:,} | skipped: over the {limit:,} parameter "
                  f"limit | | |", flush=True)
            continue
        sec, ready, warm = first_point(p.name, p.dataset, spec.to_dict(), wait_warm=True)
        tried += 1
        met += sec <= GOAL_S
        print(f"| {p.name} | {p.dataset} | {n:,} | {sec:.2f} s | "
              f"{'yes' if sec <= GOAL_S else 'NO'} | {ready:.1f} s / {warm:.1f} s |", flush=True)

    base = next(p for p in list_presets() if p.name == "small_cnn")
    spec, _ = fit_to_dataset(base.spec(), base.dataset)
    sec, _, _ = first_point(base.name, base.dataset, spec.to_dict(), wait_warm=False)
    print(f"| baseline: small_cnn, Start as the workers start (as when the first Start started "
          f"them) | {base.dataset} | {count_params(spec):,} | {sec:.2f} s | "
          f"{'yes' if sec <= GOAL_S else 'NO'} | |")
    print(f"\nload average {load()} at the end; goal met by {met} of {tried} presets trained")


if __name__ == "__main__":
    main()
