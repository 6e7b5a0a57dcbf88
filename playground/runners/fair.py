"""The fair queue in front of a runner's slots, and when a waiting run will start.

Both backends keep their own queue and hand a run to a slot only when one is free (a local
worker that is idle, a share of the Ray cluster), so the order runs start in is decided here
and not by first-come-first-served: one student's 12-run experiment suite must not hold back
29 classmates who pressed Start a moment later.

Order: round-robin over owners, the owner served longest ago first (an owner never served
counts as served before everyone; ties go to the owner whose oldest waiting run came first).
Within one owner runs start in the order they were submitted. With one slot, owner A
submitting six runs and then B and C one each, the runs start A1 B1 C1 A2 A3 A4 A5 A6: the
queue is the interleaving of the owners' queues, one run per owner per round.

The start estimate (:func:`estimate_start_s`) is list scheduling with mean durations: each
slot frees when its current run has had the mean duration of recent finished runs (at once
if idle), and the runs ahead take the earliest free slot in turn.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterable, Iterator

from playground.format import fmt_duration


def owner_key(owner: str) -> str:
    """One person, however they cased their name (the store compares owners ``NOCASE``)."""
    return owner.casefold()


class FairQueue:
    """Run ids waiting for a slot, handed out round-robin over owners (see the module doc).

    Not thread-safe: the runner holds its lock around every call.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, deque[tuple[int, int]]] = {}  # owner -> (arrival, run id)
        self._last_served: dict[str, int] = {}  # owner -> sequence number of their last pop
        self._before: dict[str, int] = {}  # owner -> their last_served before that pop
        self._arrivals = itertools.count()
        self._served = itertools.count()

    def push(self, owner: str, run_id: int) -> None:
        """Append ``run_id`` to ``owner``'s queue (a run already waiting is left where it is)."""
        if run_id in self:
            return
        self._waiting.setdefault(owner_key(owner), deque()).append(
            (next(self._arrivals), int(run_id)))

    def push_front(self, owner: str, run_id: int) -> None:
        """Put a popped run back at the front of its owner's queue, with the owner's turn as
        it was before the pop (the slot it went to went away)."""
        if run_id in self:
            return
        key = owner_key(owner)
        self._waiting.setdefault(key, deque()).appendleft((-next(self._arrivals) - 1,
                                                           int(run_id)))
        if key in self._before:
            self._last_served[key] = self._before.pop(key)

    def remove(self, run_id: int) -> bool:
        """Take ``run_id`` out of the queue; whether it was there."""
        for owner, runs in self._waiting.items():
            for item in runs:
                if item[1] == run_id:
                    runs.remove(item)
                    if not runs:
                        del self._waiting[owner]
                    return True
        return False

    def _owners(self) -> list[str]:
        """Owners with waiting runs, next to be served first."""
        return sorted(self._waiting,
                      key=lambda o: (self._last_served.get(o, -1), self._waiting[o][0][0]))

    def pop(self) -> int | None:
        """The run to start next (``None`` when nothing waits)."""
        owners = self._owners()
        if not owners:
            return None
        owner = owners[0]
        _, run_id = self._waiting[owner].popleft()
        if not self._waiting[owner]:
            del self._waiting[owner]
        self._before[owner] = self._last_served.get(owner, -1)
        self._last_served[owner] = next(self._served)
        return run_id

    def order(self) -> list[int]:
        """Every waiting run id in the order :meth:`pop` would hand them out."""
        queues = [[rid for _, rid in self._waiting[o]] for o in self._owners()]
        out: list[int] = []
        for rank in itertools.count():
            row = [q[rank] for q in queues if rank < len(q)]
            if not row:
                return out
            out.extend(row)
        return out  # pragma: no cover (the loop returns)

    def clear(self) -> list[int]:
        """Empty the queue; returns the run ids that were waiting, in queue order."""
        ids = self.order()
        self._waiting.clear()
        return ids

    def __len__(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def __contains__(self, run_id: object) -> bool:
        return any(rid == run_id for q in self._waiting.values() for _, rid in q)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order())


def estimate_start_s(position: int, slot_free_in: Iterable[float],
                     mean_run_s: float | None) -> float | None:
    """Seconds until the run ``position`` in line (1: next) starts, by list scheduling.

    ``slot_free_in`` holds, per slot, the seconds until it is free (0: idle now; a busy slot:
    the mean duration minus how long its run has been going, at least 0). Each of the
    ``position - 1`` runs ahead takes the slot that frees first and holds it for
    ``mean_run_s``; the run then gets the next free slot. ``None`` without a mean (no finished
    run yet) or without slots.
    """
    free = [max(0.0, float(t)) for t in slot_free_in]
    if mean_run_s is None or not free or position < 1:
        return None
    heapq.heapify(free)
    for _ in range(position - 1):
        heapq.heappush(free, heapq.heappop(free) + max(0.0, float(mean_run_s)))
    return free[0]


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 102nd."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe_position(position: int, eta_s: float | None) -> str:
    """"3rd in line, starts in about 40 s" (position 0: handed to a slot, starting now)."""
    if position < 1:
        return "starting now"
    text = f"{ordinal(position)} in line"
    if eta_s is None:
        return text
    if eta_s < 1.0:
        return f"{text}, starts in a moment"
    return f"{text}, starts in about {fmt_duration(eta_s)}"


RUNNING_POLL_S = 1.0  # a run that is training, handed to a slot, or next and due
QUEUED_PACES_S = (2.0, 5.0, 10.0)  # a waiting run's view: the shortest pace that fits


def poll_pace_s(position: int, eta_s: float | None) -> float:
    """Seconds between two looks at a run waiting in line (a page polling the store).

    A run handed to a slot (position 0), or next in line and due within a few seconds, is
    looked at every :data:`RUNNING_POLL_S` so its first point shows at once (next in line
    with no estimate yet counts as due). Otherwise the pace is about a fifth of the
    estimated wait at most, from the paces in :data:`QUEUED_PACES_S`
    (2 s up to 20 s ahead, 5 s up to a minute, then 10 s); without an estimate (no run has
    finished yet) the place in line decides: 2 s for the 2nd, 5 s up to the 5th, then 10 s.
    With 30 students and one worker, 29 views wait: at these paces they poll about four
    times a second in all, not fifteen (issue 12).
    """
    if position < 1 or (position == 1 and (eta_s is None or eta_s <= 3 * QUEUED_PACES_S[0])):
        return RUNNING_POLL_S
    near, mid, far = QUEUED_PACES_S
    if eta_s is None:
        return near if position <= 2 else mid if position <= 5 else far
    return near if eta_s <= 20.0 else mid if eta_s <= 60.0 else far
