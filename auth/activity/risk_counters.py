"""The sign-in risk counters: which accounts one wrong password was tried against, and each
network's attempts. In Redis when REDIS_URL is set (every instance shares them), in this
process's memory otherwise. Every entry expires with its window; nothing is written to the
database.

A wrong password is known here only by its keyed digest (HMAC-SHA256 under a key derived
from SECRET_KEY): without the key, a digest cannot be checked against a list of common
passwords. It is used as a key and never returned, logged or stored elsewhere.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections import deque
from typing import Any, Protocol

from auth.activity.risk import NetworkTally
from auth.models import iso_utc


class RiskCounters(Protocol):
    def spray(self, digest: str, account_id: int, *, now: dt.datetime) -> list[int]:
        """Count `account_id` as tried with the wrong password `digest`; the distinct
        accounts tried with it within the spray window (this one included)."""

    def spray_label(self, digest: str, *, now: dt.datetime) -> str:
        """A name for the spray of `digest` that never shows the digest: the time it was
        first seen crossing the line, kept as long as the spray goes on."""

    def network(self, network: str, who: str, *, failed: bool, now: dt.datetime) -> NetworkTally:
        """Count an attempt from `network` on the address keyed `who`; the network's tally
        within the stuffing window."""

    def forget_network(self, network: str) -> None:
        """Start the network's tally again (it has just been banned)."""


class MemoryCounters:
    """This process's counters: a person behind several workers without Redis is counted
    per worker, as the rate limits are."""

    SWEEP_EVERY = 1024  # insertions between two sweeps of every expired entry

    def __init__(self, *, spray_window: dt.timedelta, stuffing_window: dt.timedelta) -> None:
        self._spray_window = spray_window.total_seconds()
        self._stuffing_window = stuffing_window.total_seconds()
        self._lock = threading.Lock()
        self._sprays: dict[str, dict[int, float]] = {}
        self._labels: dict[str, tuple[str, float]] = {}  # digest -> (label, last seen)
        self._networks: dict[str, deque[tuple[float, str, bool]]] = {}
        self._inserted = 0

    def spray(self, digest: str, account_id: int, *, now: dt.datetime) -> list[int]:
        at = now.timestamp()
        with self._lock:
            tried = self._sprays.setdefault(digest, {})
            tried[account_id] = at
            for account, seen in list(tried.items()):
                if seen <= at - self._spray_window:
                    del tried[account]
            self._tick(at)
            return sorted(tried)

    def spray_label(self, digest: str, *, now: dt.datetime) -> str:
        at = now.timestamp()
        with self._lock:
            label, seen = self._labels.get(digest, (f"spray:{_stamp(now)}", at))
            if seen <= at - self._spray_window:
                label = f"spray:{_stamp(now)}"
            self._labels[digest] = (label, at)
            return label

    def network(self, network: str, who: str, *, failed: bool, now: dt.datetime) -> NetworkTally:
        at = now.timestamp()
        with self._lock:
            attempts = self._networks.setdefault(network, deque())
            attempts.append((at, who, failed))
            while attempts and attempts[0][0] <= at - self._stuffing_window:
                attempts.popleft()
            self._tick(at)
            return NetworkTally(
                accounts=len({w for _, w, _ in attempts}),
                attempts=len(attempts),
                failures=sum(1 for _, _, f in attempts if f),
            )

    def forget_network(self, network: str) -> None:
        with self._lock:
            self._networks.pop(network, None)

    def _tick(self, at: float) -> None:
        """Every so often, drop whatever expired, so memory follows the live windows."""
        self._inserted += 1
        if self._inserted % self.SWEEP_EVERY:
            return
        for digest, tried in list(self._sprays.items()):
            if max(tried.values(), default=0.0) <= at - self._spray_window:
                del self._sprays[digest]
        for digest, (_, seen) in list(self._labels.items()):
            if seen <= at - self._spray_window:
                del self._labels[digest]
        for network, attempts in list(self._networks.items()):
            if not attempts or attempts[-1][0] <= at - self._stuffing_window:
                del self._networks[network]


class RedisCounters:
    """Sliding windows in Redis sorted sets (score: the time), one round trip per count."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str,
        spray_window: dt.timedelta,
        stuffing_window: dt.timedelta,
    ) -> None:
        self._redis = client
        self._prefix = f"{prefix}:risk"
        self._spray_window = spray_window.total_seconds()
        self._stuffing_window = stuffing_window.total_seconds()

    def spray(self, digest: str, account_id: int, *, now: dt.datetime) -> list[int]:
        key, at = f"{self._prefix}:spray:{digest}", now.timestamp()
        pipe = self._redis.pipeline(transaction=True)
        pipe.zremrangebyscore(key, "-inf", at - self._spray_window)
        pipe.zadd(key, {str(account_id): at})
        pipe.zrange(key, 0, -1)
        pipe.expire(key, int(self._spray_window) + 1)
        members = pipe.execute()[2]
        return sorted(int(m) for m in members)

    def spray_label(self, digest: str, *, now: dt.datetime) -> str:
        key, ttl = f"{self._prefix}:spray-label:{digest}", int(self._spray_window) + 1
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(key, f"spray:{_stamp(now)}", nx=True, ex=ttl)
        pipe.get(key)
        pipe.expire(key, ttl)
        label = pipe.execute()[1]
        return label.decode() if isinstance(label, bytes) else str(label)

    def network(self, network: str, who: str, *, failed: bool, now: dt.datetime) -> NetworkTally:
        at, old = now.timestamp(), now.timestamp() - self._stuffing_window
        ttl = int(self._stuffing_window) + 1
        names, tries, fails = self._network_keys(network)
        attempt = f"{at:.6f}:{secrets.token_hex(4)}"  # one member per attempt
        pipe = self._redis.pipeline(transaction=True)
        for key in (names, tries, fails):
            pipe.zremrangebyscore(key, "-inf", old)
        pipe.zadd(names, {who: at})
        pipe.zadd(tries, {attempt: at})
        if failed:
            pipe.zadd(fails, {attempt: at})
        for key in (names, tries, fails):
            pipe.zcard(key)
            pipe.expire(key, ttl)
        counts = pipe.execute()[-6::2]
        return NetworkTally(accounts=counts[0], attempts=counts[1], failures=counts[2])

    def forget_network(self, network: str) -> None:
        self._redis.delete(*self._network_keys(network))

    def _network_keys(self, network: str) -> tuple[str, str, str]:
        base = f"{self._prefix}:net:{network}"
        return f"{base}:names", f"{base}:tries", f"{base}:fails"


def _stamp(now: dt.datetime) -> str:
    return iso_utc(now.replace(microsecond=0))
