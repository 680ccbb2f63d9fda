"""WebAuthn challenges, stored server-side and spent once.

Challenges live in the database (`webauthn_challenges`) so that any instance can finish a
ceremony another one began, and each is spent by one conditional UPDATE committed before the
response is verified: a challenge is single-use even when verification then fails
(https://www.w3.org/TR/webauthn-3/#sctn-cryptographic-challenges).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, Final, cast

from sqlalchemy import Connection, CursorResult, Result, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from auth.db import Database
from auth.mfa.webauthn.errors import ChallengeError
from auth.models import WebauthnChallenge, table

REGISTER: Final = "register"
AUTHENTICATE: Final = "authenticate"
# Used and expired challenges are kept this long, so a late retry is told "already used" or
# "expired" rather than "unknown"; then purge_expired_challenges deletes them.
CHALLENGE_GRACE = dt.timedelta(hours=1)


def new_challenge(challenge: bytes | None) -> bytes:
    """64 random bytes unless given (tests); the spec asks for at least 16."""
    if challenge is None:
        return secrets.token_bytes(64)
    if not 16 <= len(challenge) <= 64:
        raise ValueError(f"a challenge must be 16 to 64 bytes, got {len(challenge)}")
    return challenge


def store_challenge(
    session: Session,
    *,
    account_id: int | None,
    purpose: str,
    challenge: bytes,
    expires_at: dt.datetime,
) -> str:
    challenge_id = secrets.token_urlsafe(24)  # 32 characters
    session.add(
        WebauthnChallenge(
            id=challenge_id,
            account_id=account_id,
            purpose=purpose,
            challenge=challenge,
            expires_at=expires_at,
        )
    )
    return challenge_id


_CH = table(WebauthnChallenge)
_SPEND = (
    update(_CH)
    .where(
        _CH.c.id == bindparam("challenge_id"),
        _CH.c.used_at.is_(None),
        _CH.c.expires_at > bindparam("at"),
        _CH.c.purpose == bindparam("for_purpose"),
    )
    .values(used_at=bindparam("at"))
    .returning(_CH.c.challenge)
)
_SPEND_ANONYMOUS = _SPEND.where(_CH.c.account_id.is_(None))
_SPEND_FOR_ACCOUNT = _SPEND.where(_CH.c.account_id == bindparam("account"))
_CHALLENGE_STATE = select(_CH.c.purpose, _CH.c.account_id, _CH.c.used_at, _CH.c.expires_at).where(
    _CH.c.id == bindparam("challenge_id")
)


def _rowcount(result: Result[Any]) -> int:
    return cast(CursorResult[Any], result).rowcount


def _why_refused(row: Any, *, account_id: int | None, purpose: str, now: dt.datetime) -> str:
    """Name the reason a challenge could not be spent (the UPDATE only says it could not).

    row: the challenge's purpose, account_id, used_at and expires_at, or None if unknown."""
    if row is None:
        return "this sign-in attempt is unknown; please start again"
    if row.purpose != purpose:
        return f"this challenge was issued to {row.purpose}, not to {purpose}; please start again"
    if row.account_id != account_id:
        return "this challenge was issued for another account; please start again"
    if row.used_at is not None:
        return "this challenge was already used; please start again"
    if row.expires_at <= now:
        return f"this challenge expired at {row.expires_at:%H:%M:%S} UTC; please start again"
    return "this challenge cannot be used; please start again"


def spend(
    conn: Connection, *, challenge_id: str, account_id: int | None, purpose: str, now: dt.datetime
) -> bytes | ChallengeError:
    """Spend a challenge in the caller's transaction: its bytes, or why it cannot be spent.

    One conditional UPDATE does the check and the spending, so two requests racing with one
    challenge cannot both proceed. The caller commits it whatever comes next, so a failed
    attempt burns the challenge too.
    """
    statement = _SPEND_ANONYMOUS if account_id is None else _SPEND_FOR_ACCOUNT
    spent = conn.execute(
        statement,
        {"challenge_id": challenge_id, "at": now, "for_purpose": purpose, "account": account_id},
    ).first()
    if spent is not None:
        return bytes(spent.challenge)
    row = conn.execute(_CHALLENGE_STATE, {"challenge_id": challenge_id}).first()  # say why
    return ChallengeError(_why_refused(row, account_id=account_id, purpose=purpose, now=now))


def consume_challenge(
    db: Database, *, challenge_id: str, account_id: int | None, purpose: str, now: dt.datetime
) -> bytes:
    """Spend a challenge in its own committed transaction and return its bytes."""
    with db.connection() as conn:
        spent = spend(
            conn, challenge_id=challenge_id, account_id=account_id, purpose=purpose, now=now
        )
    if isinstance(spent, ChallengeError):
        raise spent
    return spent


def purge_expired_challenges(db: Database, *, now: dt.datetime) -> int:
    """Delete challenges that expired, or were used, more than CHALLENGE_GRACE ago."""
    cutoff = now - CHALLENGE_GRACE
    with db.session() as session:
        result = session.execute(
            delete(WebauthnChallenge)
            .where(or_(WebauthnChallenge.expires_at < cutoff, WebauthnChallenge.used_at < cutoff))
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)
