"""The in-process rate-limit storage (no Redis): counts as limits' own, sweeps once a
second, and forgets the keys it empties, so a flood from many addresses neither grows its
memory for good nor makes its sweep take the CPU."""

import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from auth.web.limit_storage import SCHEME, SweptMemoryStorage


def storage() -> SweptMemoryStorage:
    made = storage_from_string(f"{SCHEME}://")
    assert isinstance(made, SweptMemoryStorage)
    return made


def test_a_moving_window_still_refuses_over_the_limit() -> None:
    limiter = MovingWindowRateLimiter(storage())
    three = parse("3/minute")
    assert [limiter.hit(three, "ip:192.0.2.1") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(three, "ip:192.0.2.2")  # another address has its own budget


def test_a_fixed_window_still_refuses_over_the_limit() -> None:
    limiter = FixedWindowRateLimiter(storage())
    two = parse("2/minute")
    assert [limiter.hit(two, "k") for _ in range(3)] == [True, True, False]


def test_the_sweep_is_armed_once_a_second_not_every_10_ms() -> None:
    kept = storage()
    kept.timer.join()  # limits' own first sweep, armed at construction
    MovingWindowRateLimiter(kept).hit(parse("3/minute"), "k")
    assert kept.timer.interval == SweptMemoryStorage.SWEEP_SECONDS == 1.0


def test_the_sweep_forgets_expired_keys_and_keeps_live_ones() -> None:
    kept = storage()
    limiter = MovingWindowRateLimiter(kept)
    for n in range(50):
        limiter.hit(parse("5/second"), f"ip:198.51.100.{n}")
    limiter.hit(parse("5/minute"), "ip:203.0.113.9")
    time.sleep(1.1)
    kept.sweep()
    assert [key for key in kept.events if "203.0.113.9" in key] == list(kept.events)
    assert len(kept.events) == 1
    assert all(key in kept.locks for key in kept.events)
    fixed = FixedWindowRateLimiter(kept)
    fixed.hit(parse("1/second"), "fixed")
    time.sleep(1.1)
    kept.sweep()
    assert not kept.storage and not kept.expirations
