"""The rate limiter's in-process storage, for one instance without Redis.

limits' MemoryStorage re-arms a short timer on every hit that walks every key it has ever
seen, and keeps an empty list for each: under a flood from many addresses every request
pays for a walk that grows with the addresses, so the flood makes each sign-in slower
than the last. Counting does not depend on the walk (a moving window reads its entries'
times; a fixed window checks its expiry on read), so here the walk runs at most once a
second and forgets the keys it empties. It overrides a private method of limits, whose
version is pinned (constraints.txt); tests/test_limit_storage.py checks the override.
"""

from __future__ import annotations

import bisect
import threading
import time

from limits.storage import MemoryStorage

SCHEME = "breachguard-memory"


class SweptMemoryStorage(MemoryStorage):
    """MemoryStorage with a sweep once a second that drops emptied keys."""

    STORAGE_SCHEME = [SCHEME]  # noqa: RUF012 (as limits declares it)
    SWEEP_SECONDS = 1.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the re-arm on every hit
        if not self.timer.is_alive():
            self.timer = threading.Timer(self.SWEEP_SECONDS, self.sweep)
            self.timer.daemon = True
            self.timer.start()

    def sweep(self) -> None:
        now = time.time()
        for key in list(self.events):
            with self.locks[key]:
                events = self.events.get(key)
                if events:  # newest first: the expired ones are a tail
                    del events[bisect.bisect_left(events, -now, key=lambda e: -e.expiry) :]
                if not events:
                    self.events.pop(key, None)
                    self.locks.pop(key, None)
        for key in list(self.expirations):
            if self.expirations[key] <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                self.locks.pop(key, None)
