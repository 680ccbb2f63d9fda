"""The rate limiter's budgets, and its in-process storage for an instance without Redis.

Without Redis every process counts on its own, so a budget enforced whole by each of N
gunicorn workers would let N times as much through: Budgets gives each process its share.

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
import math
import threading
import time
from dataclasses import dataclass

import limits
from flask_limiter import RequestLimit
from limits.storage import MemoryStorage

from auth.config import Settings

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


def share(limit: str, processes: int) -> str:
    """One process's part of `limit` when `processes` count it apart: the amount divided,
    or, where that would fall below one, one per a window stretched to the same rate. The
    sum over the processes never exceeds the limit."""
    if processes <= 1:
        return limit
    parts = []
    for item in limits.parse_many(limit):
        if item.amount >= processes:
            parts.append(f"{item.amount // processes} per {item.multiples} {item.GRANULARITY.name}")
        else:
            seconds = math.ceil(item.get_expiry() * processes / item.amount)
            parts.append(f"1 per {seconds} second")
    return "; ".join(parts)


@dataclass(frozen=True)
class Budgets:
    """The configured rate limits, as one process enforces them."""

    api: str
    secret: str
    hook: str
    login: str
    mfa_ip: str
    forgot: str

    @classmethod
    def per_process(cls, settings: Settings, *, processes: int) -> Budgets:
        def part(limit: str) -> str:
            return share(limit, processes)

        return cls(
            api=part(settings.api_rate_limit),
            secret=part(settings.secret_rate_limit),
            hook=part(settings.hook_rate_limit),
            login=part(settings.login_rate_limit),
            mfa_ip=part(settings.mfa_ip_rate_limit),
            forgot=part(settings.forgot_rate_limit),
        )


def seconds_to_wait(limit: RequestLimit | None) -> int:
    """Whole seconds until the limit that refused a request lets one through again, rounded
    as Flask-Limiter's own Retry-After header rounds them."""
    if limit is None:
        return 1
    return max(1, int(limit.reset_at - time.time()))
