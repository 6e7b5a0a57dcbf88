"""Local worker processes against an embedded Ray, at equal parallelism (2 slots each).

For each backend, over a new store, once its slots are warm (workers imported torch and the
playground) and one untimed run went through each slot:

- overhead: 10 runs one after another, each submitted alone; the time from ``start_run`` to
  the run's first ``loss`` record in the store (what a user waits for before the live chart
  shows a point), p50 and p95;
- throughput: 40 short runs (``mlp_points`` on ``spirals``, 30 steps) from 4 owners submitted
  at once; runs per second from the first submit to the last run's end as the store records
  it (``finished_at``), watched with one query every 50 ms.

Goals: Ray's per-run overhead at most 1 s (p50) and its throughput at least 0.8x the local
runner's. For the overhead, the store is polled every 10 ms. Usage:
``python benchmarks/runners.py [--runs 40]``; the load average is printed before and after
(on a busy machine both backends slow down).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playground.presets import get_preset
from playground.runners import Runner, make_runner
from playground.runs import ACTIVE_STATUSES

SLOTS = 2
POLL_S = 0.01
THROUGHPUT_POLL_S = 0.05
OVERHEAD_RUNS = 10
GOAL_OVERHEAD_S = 1.0
GOAL_THROUGHPUT = 0.8
SPEC = get_preset("mlp_points").to_dict()
SETTINGS = {"dataset": "spirals", "steps": 30, "batch_size": 32, "eval_every": 10,
            "device": "cpu", "seed": 0}


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def first_metric_s(runner: Runner, owner: str) -> float:
    """Submit one run and wait for its first loss record; wait for its end too."""
    store = runner.store
    t0 = time.perf_counter()
    rid = runner.start_run(owner, "overhead", SPEC, SETTINGS)
    while not store.poll_metrics(rid, 0, ["loss"])[0]:
        if not store.get_run(rid).is_active:
            raise RuntimeError(f"run {rid} ended without a point: {store.get_run(rid).message}")
        time.sleep(POLL_S)
    elapsed = time.perf_counter() - t0
    while store.get_run(rid).is_active:
        time.sleep(POLL_S)
    return elapsed


def throughput(runner: Runner, runs: int) -> float:
    """Runs per second for ``runs`` runs from 4 owners submitted at once: from the first
    submit to the last run's ``finished_at`` in the store (one cheap query per poll, so the
    watching takes little of the CPU the runs share)."""
    store = runner.store
    t0 = time.time()
    ids = [runner.start_run(f"owner{i % 4}", "throughput", SPEC, SETTINGS) for i in range(runs)]
    while store.list_runs(statuses=ACTIVE_STATUSES, limit=1):
        time.sleep(THROUGHPUT_POLL_S)
    done = [store.get_run(rid) for rid in ids]
    failed = [r.message for r in done if r.status != "finished"]
    if failed:
        raise RuntimeError(f"{len(failed)} runs did not finish: {failed[0]}")
    return runs / (max(r.finished_at or t0 for r in done) - t0)


def measure(kind: str, runs: int) -> dict[str, float]:
    path = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-")) / "playground.sqlite"
    t0 = time.perf_counter()
    if kind == "ray":
        runner = make_runner("ray", path, slots=SLOTS, cpus_per_run=1, gpus_per_run=0,
                             max_queued=10_000)
    else:
        runner = make_runner("local", path, workers=SLOTS, device="cpu", max_queued=10_000)
    try:
        if not runner.wait_ready(600, warm=True):
            raise RuntimeError(f"the {kind} runner did not get ready: {runner.status()}")
        start_s = time.perf_counter() - t0
        for _ in range(SLOTS):  # one untimed run through each slot
            first_metric_s(runner, "warm-up")
        overhead = [first_metric_s(runner, "overhead") for _ in range(OVERHEAD_RUNS)]
        rate = throughput(runner, runs)
    finally:
        runner.shutdown(timeout=10)
    return {"start_s": start_s, "p50": statistics.median(overhead),
            "p95": percentile(overhead, 0.95), "rate": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    os.environ.setdefault("PLAYGROUND_DEVICE", "cpu")
    print(f"load average before: {load()}")
    import ray

    from playground.runners.ray import connect

    t0 = time.perf_counter()
    connect("")  # the embedded Ray exactly as the runner starts it (runs are capped at 2 slots)
    print(f"embedded Ray started in {time.perf_counter() - t0:.1f} s "
          f"({ray.cluster_resources().get('CPU', 0):g} CPUs)")
    try:
        results = {kind: measure(kind, args.runs) for kind in ("local", "ray")}
    finally:
        ray.shutdown()
    print(f"load average after: {load()}\n")
    loc, ray_ = results["local"], results["ray"]
    print(f"| backend ({SLOTS} slots) | start -> warm (s) | submit -> first metric p50 (s) | "
          f"p95 (s) | throughput ({args.runs} runs/s) |")
    print("|---|---|---|---|---|")
    for kind, r in results.items():
        print(f"| {kind} | {r['start_s']:.1f} | {r['p50']:.3f} | {r['p95']:.3f} | "
              f"{r['rate']:.2f} |")
    print(f"| ray / local | | {ray_['p50'] / loc['p50']:.2f}x | {ray_['p95'] / loc['p95']:.2f}x "
          f"| {ray_['rate'] / loc['rate']:.2f}x |")
    ok_overhead = ray_["p50"] <= GOAL_OVERHEAD_S
    ok_rate = ray_["rate"] >= GOAL_THROUGHPUT * loc["rate"]
    verdict = {True: "met", False: "MISSED"}
    print(f"\nGoals: Ray overhead p50 <= {GOAL_OVERHEAD_S:g} s: {verdict[ok_overhead]}; "
          f"Ray throughput >= {GOAL_THROUGHPUT:g}x local: {verdict[ok_rate]}")


if __name__ == "__main__":
    main()
