"""Process-wide objects shared by every session of the process (circuit breakers, rate
limiters), one per provider key. Pure but for a lock: no trio, no I/O."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["SharedRegistry"]

T = TypeVar("T")


class SharedRegistry(Generic[T]):
    """Objects by key; ``get`` creates one with ``make`` the first time, so the first
    caller's settings win."""

    def __init__(self) -> None:
        self._items: dict[str, T] = {}
        self._lock = threading.Lock()

    def get(self, key: str, make: Callable[[], T]) -> T:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                item = self._items[key] = make()
            return item

    def clear(self) -> None:
        """Forget every object (tests)."""
        with self._lock:
            self._items.clear()
