"""Recovery codes: ten single-use codes, shown once, stored as SHA-256.

Each code carries 80 random bits, so a fast hash is enough (guessing is hopeless, and
attempts are throttled anyway); a slow KDF would make ten look-ups cost seconds.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.orm import Session

from auth import audit
from auth.models import RecoveryCode

COUNT = 10


def _digest(code: str) -> str:
    return hashlib.sha256(normalise(code).encode("ascii", "ignore")).hexdigest()


def normalise(code: str) -> str:
    """Forgive case, spaces and dashes: people copy these by hand."""
    return "".join(ch for ch in code.lower() if ch.isalnum())


def new_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()  # 16 chars
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def generate(
    session: Session, *, account_id: int, actor: audit.Actor, now: dt.datetime
) -> list[str]:
    """Replace the account's codes with ten new ones; returns them (the only time they exist)."""
    codes = [new_code() for _ in range(COUNT)]
    session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
    session.add_all(
        RecoveryCode(account_id=account_id, code_sha256=_digest(c), created_at=now) for c in codes
    )
    audit.append(
        session,
        [
            audit.Event(
                actor, audit.Action.RECOVERY_GENERATED, f"account:{account_id}", {"count": COUNT}
            )
        ],
        now=now,
    )
    return codes


def remaining(session: Session | Connection, account_id: int) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None))
        ).scalar_one()
    )


def use(
    session: Session | Connection,
    *,
    account_id: int,
    code: str,
    actor: audit.Actor,
    now: dt.datetime,
) -> int | None:
    """Spend a code; returns how many remain, or None when the code is not valid (any more).

    The UPDATE's condition makes spending atomic: two requests racing with one code cannot
    both succeed.
    """
    if len(normalise(code)) != 16:
        return None
    spent = session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.account_id == account_id,
            RecoveryCode.code_sha256 == _digest(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        return None
    left = remaining(session, account_id)
    audit.append(
        session,
        [
            audit.Event(
                actor, audit.Action.RECOVERY_USED, f"account:{account_id}", {"remaining": left}
            )
        ],
        now=now,
    )
    return left
