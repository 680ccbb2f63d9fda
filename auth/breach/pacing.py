"""Pacing for HIBP: requests spaced to the plan's rate, and a budget so a cron run ends.

Pure logic over an injected clock and sleep, so tests run it without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from auth.errors import InvalidInput


@dataclass
class Pacer:
    """Spaces calls at least 60/rate seconds apart (start to start)."""

    rate_per_minute: int
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _last: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate_per_minute < 1:
            raise InvalidInput(
                f"HIBP_RATE_PER_MINUTE must be at least 1, got {self.rate_per_minute}"
            )

    @property
    def interval(self) -> float:
        return 60.0 / self.rate_per_minute

    def delay(self) -> float:
        """How long the next call must wait from now."""
        if self._last is None:
            return 0.0
        return max(0.0, self._last + self.interval - self.clock())

    def wait(self) -> float:
        """Wait for the next slot, mark it taken; returns how long it slept."""
        pause = self.delay()
        if pause > 0:
            self.sleep(pause)
        self._last = self.clock()
        return pause


@dataclass
class Budget:
    """How much one run may do: at most `max_items` calls and `max_seconds` of wall time
    (None: no limit). A call is not started when its wait would overrun the time."""

    max_items: int | None = None
    max_seconds: float | None = None
    clock: Callable[[], float] = time.monotonic
    used: int = field(default=0, init=False)
    _started: float | None = field(default=None, init=False)

    def start(self) -> None:
        self._started = self.clock()

    def elapsed(self) -> float:
        return 0.0 if self._started is None else self.clock() - self._started

    def allows(self, wait: float = 0.0) -> bool:
        if self.max_items is not None and self.used >= self.max_items:
            return False
        return self.max_seconds is None or self.elapsed() + wait <= self.max_seconds

    def spend(self) -> None:
        self.used += 1

    def take(self, pacer: Pacer) -> bool:
        """The next paced call, if the budget still allows it once its wait is counted:
        waits for its slot and spends it. False: the run stops here."""
        if not self.allows(pacer.delay()):
            return False
        pacer.wait()
        self.spend()
        return True
