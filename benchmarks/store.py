"""The run store under a classroom's load: SQLite against PostgreSQL, measured in one run.

Writers: ``--writers`` processes (default 8), each a training that flushes batches of metric
records into its own run through :meth:`RunStore.append_metrics` (``--records`` per flush,
default 40: 30 scalars and 10 per-layer vectors of 16 values), either paced at ``--rate``
flushes a second (default 4, the trainer's ceiling) or as fast as they can (``--rate 0``).
Readers: ``--readers`` pages (default 30, as threads in 3 processes, the way Streamlit serves
sessions from one server process) that each follow one run with
:meth:`RunStore.poll_metrics` (the cursor read), with a think time drawn uniformly from 0.5x
to 1.5x ``--poll-interval`` (seeded, Locust-style).

Reported per engine and mode: rows written per second (all writers), p50/p95 of one flush and
of one poll (milliseconds), the polls made, and the check: every reader's final count of rows
equals the rows the writers stored in its run (counted in the database) and the writers'
own count; "lost" is the sum of the differences and must be 0. Ratios are against SQLite in
the same run.

PostgreSQL is a throwaway local server (``tests/postgres.py``) run with
``synchronous_commit=off`` by default: the durability of SQLite in WAL mode with
``synchronous=NORMAL`` (a commit is not waited to disk; a crash keeps the database
consistent and may lose the last moments). ``--pg-synchronous-commit on`` measures
PostgreSQL's default. Both engines share the machine with their clients: on a 2-core machine
the numbers say more about contention than about either database.

Run from the repository root: ``python benchmarks/store.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playground.runs import RunStore
from playground.store.engine import dispose_engine
from tests.postgres import LocalPostgres

SPEC = {"name": "bench", "stages": [{"block": "linear", "depth": 1, "width": 4}]}
SETTINGS = {"dataset": "spirals", "steps": 1000, "seed": 0, "device": "cpu"}
READER_PROCESSES = 3


def _batch(step: int, records: int) -> list[dict[str, Any]]:
    """``records`` metric records: three quarters scalars, one quarter 16-layer vectors."""
    vectors = records // 4
    out: list[dict[str, Any]] = []
    for i in range(records - vectors):
        out.append({"step": step + i // 3, "name": f"scalar{i % 3}", "value": 1.0 / (i + 1)})
    for i in range(vectors):
        out.append({"step": step + i, "name": "grad_norm_layer",
                    "values": [0.1 * k for k in range(16)]})
    return out


def _writer(url: str, run_id: int, records: int, rate: float, start: Any, seconds: float,
            results: Any) -> None:
    store = RunStore(url)
    start.wait()  # every process is up and has opened the store
    began = time.perf_counter()
    written, step, flushes = 0, 0, []
    next_flush = began
    while time.perf_counter() - began < seconds:
        t0 = time.perf_counter()
        written += store.append_metrics(run_id, _batch(step, records))
        flushes.append(time.perf_counter() - t0)
        step += records
        if rate > 0:
            next_flush += 1.0 / rate
            time.sleep(max(0.0, next_flush - time.perf_counter()))
    results.put(("writer", run_id, written, time.perf_counter() - began, flushes))


def _reader_process(url: str, run_ids: list[int], seed: int, interval: float, start: Any,
                    done: Any, results: Any) -> None:
    store = RunStore(url)
    out: list[tuple[int, int, list[float]]] = []
    lock = threading.Lock()

    def follow(run_id: int, rng: random.Random) -> None:
        cursor, seen, latencies = 0, 0, []
        finished = False
        while not finished:
            finished = done.is_set()  # read before the poll: the last poll follows all commits
            t0 = time.perf_counter()
            series, cursor = store.poll_metrics(run_id, cursor)
            latencies.append(time.perf_counter() - t0)
            seen += sum(len(s["steps"]) for s in series.values())
            if not finished:
                time.sleep(rng.uniform(0.5 * interval, 1.5 * interval))
        with lock:
            out.append((run_id, seen, latencies))

    threads = [threading.Thread(target=follow, args=(rid, random.Random(seed * 1000 + i)))
               for i, rid in enumerate(run_ids)]
    start.wait()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put(("readers", out))


def measure(url: str, args: argparse.Namespace, rate: float) -> dict[str, Any]:
    """One phase: writers and readers on ``url`` for ``args.seconds``; returns the numbers."""
    store = RunStore(url)
    run_ids = []
    for w in range(args.writers):
        rid = store.create_run(f"writer {w}", "bench", SPEC, SETTINGS)
        store.mark_started(rid, runner="bench")
        run_ids.append(rid)
    ctx = mp.get_context("spawn")
    results, done = ctx.Queue(), ctx.Event()
    start = ctx.Barrier(len(run_ids) + READER_PROCESSES)
    writers = [ctx.Process(target=_writer, args=(url, rid, args.records, rate, start,
                                                 args.seconds, results)) for rid in run_ids]
    follow = [run_ids[i % len(run_ids)] for i in range(args.readers)]
    readers = [ctx.Process(target=_reader_process,
                           args=(url, follow[p::READER_PROCESSES], args.seed + p,
                                 args.poll_interval, start, done, results))
               for p in range(READER_PROCESSES)]
    for p in writers + readers:
        p.start()
    written: dict[int, int] = {}
    rates: list[float] = []
    flushes: list[float] = []
    for _ in writers:
        _, rid, rows, elapsed, times = results.get(timeout=args.seconds + 600)
        written[rid] = rows
        rates.append(rows / elapsed)
        flushes += times
    done.set()
    seen: list[tuple[int, int, list[float]]] = []
    for _ in readers:
        seen += results.get(timeout=300)[1]
    for p in writers + readers:
        p.join(60)
    stored = {rid: sum(len(s["steps"]) for s in store.get_metrics(rid).values())
              for rid in run_ids}
    lost = sum(abs(stored[rid] - written[rid]) for rid in run_ids)
    lost += sum(abs(stored[rid] - count) for rid, count, _ in seen)
    polls = [t for _, _, times in seen for t in times]
    return {
        "rows_per_s": sum(rates),  # the writers ran side by side
        "flush_p50": _pct(flushes, 50), "flush_p95": _pct(flushes, 95),
        "poll_p50": _pct(polls, 50), "poll_p95": _pct(polls, 95),
        "polls": len(polls), "lost": lost, "rows": sum(stored.values()),
    }


def _pct(values: list[float], q: int) -> float:
    """The ``q``-th percentile in milliseconds (inclusive method)."""
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--readers", type=int, default=30)
    parser.add_argument("--records", type=int, default=40, help="records per flush")
    parser.add_argument("--rate", type=float, default=4.0,
                        help="flushes a second per writer in the paced mode")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    parser.add_argument("--poll-interval", type=float, default=0.5,
                        help="mean think time between two polls of one reader (s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pg-synchronous-commit", choices=("on", "off"), default="off")
    args = parser.parse_args()

    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    rows: list[tuple[str, str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp, LocalPostgres(
        settings={"synchronous_commit": args.pg_synchronous_commit, "max_connections": "300"}
    ) as pg:
        for mode, rate in ((f"paced {args.rate:g}/s", args.rate), ("flat out", 0.0)):
            for engine in ("sqlite", "postgresql"):
                if engine == "sqlite":
                    url = f"sqlite:///{Path(tmp) / f'{mode[:5]}.sqlite'}"
                else:
                    url = pg.create_database("bench")
                rows.append((engine, mode, measure(url, args, rate)))
                dispose_engine(url)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"\n{args.writers} writers x {args.records} records a flush, {args.readers} readers "
          f"polling every ~{args.poll_interval:g} s, {args.seconds:g} s a phase; PostgreSQL "
          f"synchronous_commit={args.pg_synchronous_commit}\n")
    print("| engine | mode | rows/s written | vs SQLite | flush p50 ms | flush p95 ms "
          "| poll p50 ms | poll p95 ms | poll p50 vs SQLite | polls | rows stored | lost |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    base = {mode: r for engine, mode, r in rows if engine == "sqlite"}
    for engine, mode, r in rows:
        b = base[mode]
        print(f"| {engine} | {mode} | {r['rows_per_s']:,.0f} | "
              f"{r['rows_per_s'] / b['rows_per_s']:.2f} | {r['flush_p50']:.1f} | "
              f"{r['flush_p95']:.1f} | {r['poll_p50']:.2f} | {r['poll_p95']:.2f} | "
              f"{r['poll_p50'] / b['poll_p50']:.2f} | {r['polls']:,} | {r['rows']:,} | "
              f"{r['lost']} |")
    if any(r["lost"] for _, _, r in rows):
        raise SystemExit("rows were lost")


if __name__ == "__main__":
    main()
