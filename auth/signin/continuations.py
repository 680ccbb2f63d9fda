"""Continuation tokens: what the login hook hands out with `mfa_required`, to be presented
with the second factor. Opaque, short-lived, single-use; only their SHA-256 is stored, in
the database, so any instance can finish a sign-in another one began.

A token is bound to the account's session epoch: a forced reset between the two steps
(which bumps the epoch) voids it. It is spent by the step that succeeds, or burnt after
MAX_FAILURES wrong second factors.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    delete,
    exists,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session

from auth.models import Account, AccountStatus, LoginContinuation, UTCDateTime, table

MAX_FAILURES = 5
_C, _A = table(LoginContinuation), table(Account)
_Conn = Session | Connection


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# The account must still be signing-in-able under the same epoch, checked in the statement
# itself: a reset committed between the steps can never be raced past.
_STANDING = exists().where(
    _A.c.id == _C.c.account_id,
    _A.c.session_epoch == _C.c.session_epoch,
    _A.c.status == AccountStatus.ACTIVE.value,
)
_ISSUE = (
    insert(_C)
    .from_select(
        ["id", "account_id", "session_epoch", "ip", "created_at", "expires_at", "failures"],
        select(
            bindparam("id"),
            _A.c.id,
            _A.c.session_epoch,
            bindparam("ip"),
            bindparam("now", type_=UTCDateTime),
            bindparam("expires", type_=UTCDateTime),
            literal(0),
        ).where(
            _A.c.id == bindparam("account"),
            _A.c.session_epoch == bindparam("epoch"),
            _A.c.status == AccountStatus.ACTIVE.value,
        ),
    )
    .returning(_C.c.id)
)  # (rowcount is not reliable for INSERT .. SELECT on every driver)


# A shared lock on the account row: a reset in flight (it holds the row) is waited for,
# and the next statement's snapshot sees it. Without it, on PostgreSQL's READ COMMITTED an
# EXISTS over the account reads the row as it was before that reset committed.
_HOLD_ACCOUNT = select(_A.c.id).where(_A.c.id == bindparam("account")).with_for_update(read=True)


def issue(
    conn: _Conn, *, account_id: int, epoch: int, ip: str, now: dt.datetime, ttl: dt.timedelta
) -> str | None:
    """A new token, or None when the account changed (reset, lock) since it was read."""
    conn.execute(_HOLD_ACCOUNT, {"account": account_id})
    token = secrets.token_urlsafe(32)
    issued = conn.execute(
        _ISSUE,
        {
            "id": digest(token),
            "account": account_id,
            "epoch": epoch,
            "ip": ip[:45],
            "now": now,
            "expires": now + ttl,
        },
    ).first()
    return token if issued is not None else None


@dataclass(frozen=True)
class Continuation:
    id: str
    account_id: int
    challenge_id: str | None
    expires_at: dt.datetime


_LIVE = and_(
    _C.c.id == bindparam("token_id"),
    _C.c.used_at.is_(None),
    _C.c.expires_at > bindparam("now", type_=UTCDateTime),
    _STANDING,
)
_FIND = select(_C.c.id, _C.c.account_id, _C.c.challenge_id, _C.c.expires_at).where(_LIVE)


def find(conn: _Conn, token: str, *, now: dt.datetime) -> Continuation | None:
    """The live continuation behind `token`, or None (unknown, spent, expired, voided)."""
    if not token or len(token) > 200:
        return None
    row = conn.execute(_FIND, {"token_id": digest(token), "now": now}).first()
    return None if row is None else Continuation(*row)


_SPEND = update(_C).where(_LIVE).values(used_at=bindparam("now", type_=UTCDateTime))


def spend(conn: _Conn, continuation: Continuation, *, now: dt.datetime) -> bool:
    """Use it up; False when another request did first or the account changed meanwhile."""
    conn.execute(_HOLD_ACCOUNT, {"account": continuation.account_id})
    continuation_id = continuation.id
    result = conn.execute(_SPEND, {"token_id": continuation_id, "now": now})
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def failed(conn: _Conn, continuation_id: str, *, now: dt.datetime) -> None:
    """Count a wrong second factor; the token is burnt after MAX_FAILURES."""
    conn.execute(
        update(_C)
        .where(_C.c.id == continuation_id, _C.c.used_at.is_(None))
        .values(
            failures=_C.c.failures + 1,
            used_at=case(
                (_C.c.failures + 1 >= MAX_FAILURES, literal(now, UTCDateTime)), else_=None
            ),
        )
    )


def attach_challenge(conn: _Conn, continuation_id: str, challenge_id: str) -> None:
    """Remember the WebAuthn challenge issued for this sign-in (any instance may verify)."""
    conn.execute(update(_C).where(_C.c.id == continuation_id).values(challenge_id=challenge_id))


def purge(conn: _Conn, *, now: dt.datetime) -> int:
    """Delete tokens that expired over an hour ago."""
    result = conn.execute(delete(_C).where(_C.c.expires_at < now - dt.timedelta(hours=1)))
    return int(result.rowcount)  # type: ignore[attr-defined]
