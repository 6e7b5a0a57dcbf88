"""Timing helpers shared by the benchmark scripts (best-of-N wall time, in seconds)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], repeats: int,
            ignore: type[BaseException] | tuple[type[BaseException], ...] = ()) -> float:
    """The shortest of ``repeats`` timed calls of ``fn``; exceptions in ``ignore`` are part of
    the timed work (a refused input is timed until it is refused)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        with contextlib.suppress(*((ignore,) if isinstance(ignore, type) else ignore)):
            fn()
        best = min(best, time.perf_counter() - t0)
    return best
