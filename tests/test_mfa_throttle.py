"""Second-factor throttle: 5 failures in 15 minutes lock the step, for a growing delay."""

import datetime as dt

from auth.mfa.throttle import State, ThrottlePolicy, next_state

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
POLICY = ThrottlePolicy()


def fail(state: State, times: int, at: dt.datetime) -> State:
    for _ in range(times):
        state = next_state(state, now=at, policy=POLICY)
    return state


def test_four_failures_do_not_lock_the_fifth_does() -> None:
    assert not fail(State(), 4, T0).locked(T0)
    locked = fail(State(), 5, T0)
    assert locked.locked(T0) and locked.locked_until == T0 + dt.timedelta(minutes=1)


def test_failures_older_than_the_window_are_forgotten() -> None:
    state = fail(State(), 4, T0)
    later = T0 + dt.timedelta(minutes=16)
    assert not fail(state, 1, later).locked(later)


def test_each_further_lock_doubles() -> None:
    first = fail(State(), 5, T0)
    after = first.locked_until or T0
    second = fail(first, 5, after)
    assert second.locked_until == after + dt.timedelta(minutes=2)
    third = fail(second, 5, second.locked_until or T0)
    assert third.locked_until == (second.locked_until or T0) + dt.timedelta(minutes=4)


def test_locks_are_capped_at_a_day() -> None:
    state = State(locks=30)
    state = fail(state, 5, T0)
    assert state.locked_until == T0 + dt.timedelta(hours=24)


def test_a_lock_ends_on_time() -> None:
    state = fail(State(), 5, T0)
    assert state.locked(T0 + dt.timedelta(seconds=59))
    assert not state.locked(T0 + dt.timedelta(seconds=60))
