"""Latency from "Start" to the first stored metric, through the real job runner.

Starts a ``LocalRunner`` (warm spawn workers, as the app keeps in ``st.cache_resource``), then
for each case submits a run and polls the store until its first ``loss`` record appears. The
baseline row is the time the same process needs to import nothing and poll an empty store
(the floor of the measurement). Goal: the first metric within about 3 s.

Usage: ``python benchmarks/first_metric.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = [
    ("small_cnn", "shapes", 64),
    ("mlp_points", "spirals", 64),
    ("resnet20_cifar", "shapes", 64),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from playground.jobs import LocalRunner
    from playground.presets import get_preset
    from playground.targets import fit_to_dataset
    from playground.train import TrainSettings

    path = Path(tempfile.mkdtemp()) / "playground.sqlite"
    t = time.perf_counter()
    runner = LocalRunner(path, workers=1)
    assert runner.wait_ready(120), runner.status()
    warm_s = time.perf_counter() - t
    store = runner.store

    floor = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        store.poll_metrics(0, 0, ["loss"])
        floor.append(time.perf_counter() - t)

    rows = [("empty poll (baseline)", "", statistics.median(floor))]
    for preset, dataset, batch in CASES:
        times = []
        for rep in range(args.repeats):
            spec, _ = fit_to_dataset(get_preset(preset), dataset)
            settings = TrainSettings(dataset=dataset, steps=2000, batch_size=batch, seed=rep)
            t = time.perf_counter()
            run_id = runner.start_run("bench", preset, spec.to_dict(),
                                      settings.model_dump(mode="json"))
            while True:
                series, _ = store.poll_metrics(run_id, 0, ["loss"])
                if series.get("loss", {}).get("steps"):
                    break
                time.sleep(0.02)
            times.append(time.perf_counter() - t)
            runner.cancel(run_id)
            while store.get_run(run_id).status in ("queued", "running"):
                time.sleep(0.05)
        rows.append((preset, dataset, statistics.median(times)))
    runner.shutdown()

    print(f"Start -> first stored loss record, {args.repeats} repeats, 1 warm CPU worker "
          f"(workers warmed in {warm_s:.1f} s at server start)")
    print(f"{'case':24s} {'data':10s} {'median s':>9s} {'goal':>6s}")
    for name, data, sec in rows:
        print(f"{name:24s} {data:10s} {sec:9.3f} {'<= 3' if data else '':>6s}")


if __name__ == "__main__":
    main()
