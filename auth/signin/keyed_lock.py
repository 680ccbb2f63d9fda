"""A lock per key, made on first use and dropped when nobody holds or waits for it.

The sign-in flow takes one per e-mail address, so that within a process the attempts on one
account run one after the other: each reads the failures its predecessors counted, and a
flood cannot hash more guesses at once than there are processes (auth/signin/flow.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class KeyedLock:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, list[int]]] = {}  # key: (lock, [users])

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Wait for the other holders of `key` in this process, then hold it."""
        with self._guard:
            lock, users = self._locks.setdefault(key, (threading.Lock(), [0]))
            users[0] += 1
        try:
            with lock:
                yield
        finally:
            with self._guard:
                users[0] -= 1
                if not users[0]:
                    del self._locks[key]

    def __len__(self) -> int:
        """Keys held or waited for now (the map does not grow with the addresses seen)."""
        with self._guard:
            return len(self._locks)
