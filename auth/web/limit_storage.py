"""The rate limiter's in-process storage, for one instance without Redis.

limits' MemoryStorage re-arms a 10 ms timer on every hit that walks every key it has ever
seen, and keeps an empty list for each. Under a flood from many addresses that walk grows
with the addresses and competes with the requests for the GIL: in-process, a refused
sign-in cost 5.7 ms of CPU after 2,000 addresses and 6.7 ms after 3,000. Counting does
not depend on the walk (a moving window reads its entries' times; a fixed window checks
its expiry on read), so here the walk runs at most once a second and forgets the keys it
empties.
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

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the 10 ms re-arm
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
