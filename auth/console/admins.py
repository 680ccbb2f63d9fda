"""Who may open the security console: the `admin` flag on an account, set and audited.

The flag alone opens nothing: /admin also wants a session opened with a second factor
(auth/console/views.py), so a leaked admin password is not enough.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth import audit
from auth.breach.hashing import normalise_email
from auth.errors import NotFound
from auth.models import Account


def set_admin(
    session: Session, *, email: str, admin: bool, actor: audit.Actor, now: dt.datetime
) -> tuple[Account, bool]:
    """Grant (or revoke) the console; returns the account and whether anything changed.
    Running it twice records one change."""
    address = normalise_email(email)
    account = session.execute(select(Account).where(Account.email == address)).scalar_one_or_none()
    if account is None:
        raise NotFound(f"no account with e-mail {address}")
    if account.admin == admin:
        return account, False
    account.admin = admin
    account.updated_at = now
    audit.append(
        session,
        [
            audit.Event(
                actor, audit.Action.ACCOUNT_UPDATED, f"account:{account.id}", {"admin": admin}
            )
        ],
        now=now,
    )
    return account, True
