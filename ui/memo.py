"""Values computed once per live object: the layer table and charts of one analysis.

Analyses are cached by the spec's canonical JSON (``playground.targets``), so one design is
one ``Analysis`` object across reruns and sessions; what the Build page derives from it (an
Arrow table, Plotly figures) is kept here under the object's id and an extra key (the log
toggle, the labels) and built again only for a design not seen recently. Each entry holds the
object itself, so its id cannot be reused while the entry lives. Shared by every session's
script thread, hence the lock; values are never mutated by their users.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class PerObject:
    """A small LRU of ``make()`` results keyed by (the identity of ``obj``, ``key``)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[tuple[int, Hashable], tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, obj: Any, key: Hashable, make: Callable[[], T]) -> T:
        slot = (id(obj), key)
        with self._lock:
            hit = self._items.get(slot)
            if hit is not None and hit[0] is obj:
                self._items.move_to_end(slot)
                return hit[1]
        value = make()  # outside the lock: another session may build the same value meanwhile
        with self._lock:
            self._items[slot] = (obj, value)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value
