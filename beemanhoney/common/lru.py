"""A bounded, thread-safe least-recently-used cache of values that are costly to make."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class LruCache(Generic[V]):
    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        # Made outside the lock, so a slow make blocks no other key; two threads may both make
        # a new key, and the later one is kept.
        value = make()
        self.put(key, value)
        return value

    def get(self, key: Hashable) -> V | None:
        """The value of ``key``, now the most recently used, or None if it is not cached."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class ExpiringLruCache(Generic[V]):
    """An ``LruCache`` whose values are made again once older than ``max_age`` seconds: for
    what is read from the database and may change meanwhile."""

    def __init__(self, size: int, max_age: float) -> None:
        self._made: LruCache[tuple[float, V]] = LruCache(size)
        self._max_age = max_age

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        now = time.monotonic()
        made = self._made.get(key)
        if made is not None and now - made[0] < self._max_age:
            return made[1]
        value = make()
        self._made.put(key, (now, value))
        return value

    def clear(self) -> None:
        self._made.clear()
