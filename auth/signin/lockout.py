"""Consecutive wrong passwords per account, kept on the account row so every worker and
instance sees the same count: a backoff delay after a few (auth/signin/rules.py decides), a lock
after more. A reset or an admin unlocks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, case, select, update
from sqlalchemy.orm import Session

from auth import audit
from auth.errors import NotFound
from auth.models import Account, AccountStatus, table

_A = table(Account)
_FAIL = (
    update(_A)
    .where(_A.c.id == bindparam("account"))
    .values(
        failed_logins=_A.c.failed_logins + 1,
        last_failed_login_at=bindparam("now"),
        status=case(
            (
                (_A.c.failed_logins + 1 >= bindparam("lock_after"))
                & (_A.c.status == AccountStatus.ACTIVE.value),
                AccountStatus.LOCKED.value,
            ),
            else_=_A.c.status,
        ),
    )
    .returning(_A.c.failed_logins, _A.c.status)
)


@dataclass(frozen=True)
class Failure:
    failures: int
    locked_now: bool


def record_failure(
    conn: Session | Connection,
    *,
    account_id: int,
    status_before: str,
    lock_after: int,
    now: dt.datetime,
) -> Failure:
    """Count one wrong password (atomically: concurrent failures all count)."""
    row = conn.execute(_FAIL, {"account": account_id, "now": now, "lock_after": lock_after}).one()
    locked_now = row.status == AccountStatus.LOCKED and status_before != AccountStatus.LOCKED
    return Failure(row.failed_logins, locked_now)


_CLEAR = (
    update(_A)
    .where(_A.c.id == bindparam("account"), _A.c.failed_logins != 0)
    .values(failed_logins=0, last_failed_login_at=None)
)


def clear(conn: Session | Connection, account_id: int) -> None:
    """A right password ends the run of failures."""
    conn.execute(_CLEAR, {"account": account_id})


def unlock(session: Session, *, email: str, actor: audit.Actor, now: dt.datetime) -> Account:
    """Lift a lock set by wrong passwords (an admin's decision; a reset does it too)."""
    account = session.execute(select(Account).where(Account.email == email)).scalar_one_or_none()
    if account is None:
        raise NotFound(f"no account with e-mail {email}")
    was = account.status
    if account.status == AccountStatus.LOCKED:
        account.status = AccountStatus.ACTIVE
    account.failed_logins, account.last_failed_login_at = 0, None
    account.updated_at = now
    audit.append(
        session,
        [audit.Event(actor, audit.Action.ACCOUNT_UNLOCKED, f"account:{account.id}", {"was": was})],
        now=now,
    )
    return account
