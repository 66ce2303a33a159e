"""A small in-memory cache with a time-to-live and a size bound, safe across threads.

Vendor rate limits are Switchboard's ceiling: a record that changes rarely (a Zendesk user or
organization) is worth reusing for a few minutes rather than read for every event. Entries expire
``ttl`` seconds after they were stored; beyond ``maxsize`` entries the least recently used one is
dropped. A cached ``None`` is a valid value (e.g. "Zendesk has no such user"), told apart from a
miss by :meth:`TtlCache.lookup`.
"""

from __future__ import annotations

__all__ = ["TtlCache"]

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """``ttl`` seconds per entry (0 caches nothing), at most ``maxsize`` entries.

    ``clock`` (monotonic seconds) is injectable for tests. Raises ``ValueError`` for a negative
    ``ttl`` or a ``maxsize`` below 1.
    """

    def __init__(self, ttl: float, maxsize: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if ttl < 0:
            raise ValueError("ttl must not be negative")
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.ttl = ttl
        self.maxsize = maxsize
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def lookup(self, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` for a live entry, ``(False, None)`` for a miss or an expired one."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            expires, value = entry
            if self._clock() >= expires:
                del self._entries[key]
                return False, None
            self._entries.move_to_end(key)
            return True, value

    def put(self, key: K, value: V) -> None:
        """Store ``value`` for ``ttl`` seconds (nothing is stored when ``ttl`` is 0)."""
        if self.ttl == 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
