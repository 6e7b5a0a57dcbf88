"""playground/runners/contention.py: a CPU worker leaves a core to busy neighbours.

The oracle for the measurement is a real busy process (one Python loop keeps one core busy)
against the same window with nothing else running; the decision rule is checked by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from playground.runners.contention import (
    BUSY_CORE_SHARE,
    ThreadPlanner,
    cpu_snapshot,
    others_busy_cores,
    threads_for,
)

pytestmark = pytest.mark.skipif(cpu_snapshot() is None, reason="needs Linux's /proc")


def test_the_rule_leaves_a_core_only_to_busy_neighbours() -> None:
    assert threads_for(0.0, 2) == 2 and threads_for(BUSY_CORE_SHARE, 2) == 2
    assert threads_for(0.6, 2) == 1 and threads_for(1.7, 8) == 7
    assert threads_for(3.0, 1) == 1  # never below one
    # two snapshots: 400 jiffies in all, 250 busy of which 50 are this process's
    assert others_busy_cores((1000, 300, 10), (1400, 550, 60), cpus=2) == pytest.approx(1.0)
    assert others_busy_cores((1000, 300, 10), (1000, 300, 10), cpus=2) == 0.0


def test_a_busy_process_beside_the_worker_is_seen_and_left_a_core() -> None:
    planner = ThreadPlanner(2, cpus=2)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.5)
        assert planner.next_run() == 1
        assert planner.others >= 0.7, planner.others  # about one core
    finally:
        busy.kill()
        busy.wait()



def test_the_snapshot_counts_this_process_apart() -> None:
    """Its own-time field is this process's CPU time (oracle: time.process_time), which
    others_busy_cores subtracts from the machine's busy time."""
    tick = os.sysconf("SC_CLK_TCK")
    before, cpu0 = cpu_snapshot(), time.process_time()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        pass
    after, cpu1 = cpu_snapshot(), time.process_time()
    assert (after[2] - before[2]) / tick == pytest.approx(cpu1 - cpu0, abs=0.05)
    assert after[1] - before[1] >= after[2] - before[2] - 2  # busy includes it (tick rounding)
