"""How many intra-op threads a local CPU worker's next run uses, from what else the machine did.

A CPU worker may use every core (``os.cpu_count() // workers`` threads), which is right when
it trains alone: on the 2-core development machine 100 steps of the starter CNN take 33 s on
two threads and 59 s on one. But when the web server is busy too (a class clicking), the
worker's OpenMP threads run at a lower priority than the server and every operation waits at
a barrier for the thread the server pushed off its core: the same run took 98 s on two
threads and 60 s on one beside one busy process (measured with ``os.nice(10)``, as workers
run). So before each run, :class:`ThreadPlanner` looks at how much CPU the *other* processes
used since the worker's previous run began (``/proc/stat`` less this process's own time, so
no sampling delay) and leaves them a core when they kept more than
:data:`BUSY_CORE_SHARE` of one busy.

Linux only (``/proc``); elsewhere the worker keeps its full thread count.
"""

from __future__ import annotations

import os
from pathlib import Path

BUSY_CORE_SHARE = 0.5  # others using more than half a core get one left to them


def cpu_snapshot() -> tuple[int, int, int] | None:
    """``(all jiffies, busy jiffies, this process's jiffies)`` now, or ``None`` off Linux.

    Busy = every field of ``/proc/stat``'s ``cpu`` line except idle and iowait; this
    process = ``utime + stime`` of ``/proc/self/stat`` (fields 14 and 15), the same clock.
    """
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return total, total - idle, int(own[11]) + int(own[12])


def others_busy_cores(before: tuple[int, int, int], after: tuple[int, int, int],
                      cpus: int) -> float:
    """Cores other processes kept busy on average between two snapshots."""
    total = after[0] - before[0]
    if total <= 0:
        return 0.0
    others = (after[1] - before[1]) - (after[2] - before[2])
    return max(0.0, others / total * cpus)


def threads_for(others: float, most: int) -> int:
    """``most`` threads, or one fewer (at least one) while others keep a core busy."""
    return max(1, most - 1) if others > BUSY_CORE_SHARE else most


class ThreadPlanner:
    """Per worker process: :meth:`next_run` gives the thread count for the run about to start,
    from the window since the previous call (the last run and the idle time after it)."""

    def __init__(self, most: int, cpus: int | None = None):
        self.most = max(1, most)
        self.cpus = cpus or os.cpu_count() or 1
        self._mark = cpu_snapshot()
        self.others = 0.0  # cores the other processes kept busy in the last window

    def next_run(self) -> int:
        now = cpu_snapshot()
        if now is None or self._mark is None:
            return self.most
        self.others = others_busy_cores(self._mark, now, self.cpus)
        self._mark = now
        return threads_for(self.others, self.most)
