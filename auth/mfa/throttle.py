"""Second-factor throttling per account: after N failures within a window the second step
locks, for a delay that doubles with each further lock.

`next_state` is the rule, as a pure function; `record_failure` and friends apply it to the
account's row (kept in the database so every worker and instance sees the same count).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy import Connection, bindparam, select, text, update
from sqlalchemy.orm import Session

from auth import audit, metrics
from auth.models import MfaThrottle, table

MAX_LOCK = dt.timedelta(hours=24)


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int = 5
    window: dt.timedelta = dt.timedelta(minutes=15)
    first_lock: dt.timedelta = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class State:
    failures: int = 0
    window_start: dt.datetime | None = None
    locked_until: dt.datetime | None = None
    locks: int = 0

    def locked(self, now: dt.datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


def next_state(state: State, *, now: dt.datetime, policy: ThrottlePolicy) -> State:
    """The state after one more failure."""
    if state.window_start is None or now - state.window_start > policy.window:
        state = replace(state, failures=0, window_start=now)
    state = replace(state, failures=state.failures + 1)
    if state.failures >= policy.max_failures:
        delay = min(policy.first_lock * (2**state.locks), MAX_LOCK)
        state = State(
            failures=0, window_start=None, locked_until=now + delay, locks=state.locks + 1
        )
    return state


def _row(session: Session, account_id: int) -> MfaThrottle:
    # Take the row lock before reading, so concurrent failures are all counted.
    session.execute(
        text("UPDATE mfa_throttle SET failures = failures WHERE account_id = :a"), {"a": account_id}
    )
    row = session.get(MfaThrottle, account_id, populate_existing=True)
    if row is None:
        row = MfaThrottle(account_id=account_id, failures=0, locks=0)
        session.add(row)
        session.flush()
    return row


_T = table(MfaThrottle)
_STATE = select(_T.c.failures, _T.c.window_start, _T.c.locked_until, _T.c.locks).where(
    _T.c.account_id == bindparam("account")
)
_CLEAR = (
    update(_T)
    .where(_T.c.account_id == bindparam("account"))
    .values(failures=0, window_start=None, locks=0)
)


def state(conn: Session | Connection, account_id: int) -> State:
    """The account's throttle state; an account without a row has never failed."""
    row = conn.execute(_STATE, {"account": account_id}).first()
    return State() if row is None else State(*row)


def locked_until(session: Session, account_id: int, *, now: dt.datetime) -> dt.datetime | None:
    current = state(session, account_id)
    return current.locked_until if current.locked(now) else None


def record_failure(
    session: Session,
    *,
    account_id: int,
    kind: str,
    policy: ThrottlePolicy,
    actor: audit.Actor,
    now: dt.datetime,
) -> dt.datetime | None:
    """Count a failed second factor; returns the lock's end when this failure locked it."""
    row = _row(session, account_id)
    before = State(row.failures, row.window_start, row.locked_until, row.locks)
    after = next_state(before, now=now, policy=policy)
    row.failures, row.window_start = after.failures, after.window_start
    row.locked_until, row.locks = after.locked_until, after.locks
    events = [audit.Event(actor, audit.Action.MFA_FAILED, f"account:{account_id}", {"kind": kind})]
    newly_locked = after.locks > before.locks
    if newly_locked:
        events.append(
            audit.Event(
                actor,
                audit.Action.MFA_LOCKED,
                f"account:{account_id}",
                {"until": after.locked_until.isoformat() if after.locked_until else None},
            )
        )
    audit.append(session, events, now=now)
    metrics.mfa_failed(kind)
    return after.locked_until if newly_locked else None


def record_success(
    session: Session | Connection, *, account_id: int, known: State | None = None
) -> None:
    """A success clears the failure count and the growth of future locks.

    known: the state read earlier in this transaction; when it has nothing to clear (the
    common case) no statement is sent.
    """
    if known is not None and known.failures == 0 and known.locks == 0 and not known.window_start:
        return
    session.execute(_CLEAR, {"account": account_id})
