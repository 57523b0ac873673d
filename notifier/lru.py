"""A small thread-safe cache with a fixed number of entries and a lifetime per entry.

For per-process caches keyed by what clients send (template slugs, ...): at
``maxsize`` entries the least recently used one goes, so no stream of distinct
keys can grow the process.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING = object()


class BoundedTTLCache(Generic[K, V]):
    def __init__(self, maxsize: int, ttl: float, *, clock: Callable[[], float] = time.monotonic):
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.ttl = ttl
        self.clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, default=None):
        """The value stored for ``key`` if it has not expired (it becomes the most recently used), else ``default``."""
        now = self.clock()
        with self._lock:
            entry = self._data.get(key, _MISSING)
            if entry is _MISSING:
                return default
            if entry[0] <= now:
                del self._data[key]
                return default
            self._data.move_to_end(key)
            return entry[1]

    def set(self, key: K, value: V) -> None:
        expires = self.clock() + self.ttl
        with self._lock:
            self._data[key] = (expires, value)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return self.get(key, _MISSING) is not _MISSING  # type: ignore[arg-type]
