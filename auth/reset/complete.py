"""Asking for a reset link (/forgot) and setting a new password with one (/reset/<token>).

`check_new_password` is the pure rule set; `request_reset` and `complete_reset` do the
database work inside the caller's transaction. Completing a reset makes every way back in
that the old password gave die with it: other reset links, open sessions (the session
epoch), and the findings that were about that password.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from auth import audit
from auth.breach.hashing import normalise_email
from auth.errors import BreachguardError, InvalidInput
from auth.i18n import N_
from auth.models import (
    Account,
    AccountStatus,
    Finding,
    FindingKind,
    FindingStatus,
    Notice,
    NoticeStatus,
    Reset,
    ResetToken,
)
from auth.reset import tokens

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; this bounds the work one request can ask for

# Only these accounts can ask for, or use, a reset link: a disabled account stays so; a
# locked one (too many wrong passwords) is unlocked by the reset.
RESETTABLE = (AccountStatus.ACTIVE, AccountStatus.RESET_REQUIRED, AccountStatus.LOCKED)
# Findings about the password die with it; an e-mail address found in a breach stays found.
PASSWORD_FINDINGS = (FindingKind.VALID_CREDENTIAL, FindingKind.PASSWORD_IN_BREACH)

NOTICE_KIND = "reset_requested"


class PasswordRefused(InvalidInput):
    """The new password cannot be accepted; `problem` says why, for the person."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class TokenInvalid(BreachguardError):
    """The reset link is unknown, used, revoked or expired (deliberately not told apart)."""

    def __init__(self) -> None:
        super().__init__("this reset link no longer works")


class _Verified(Protocol):
    @property
    def ok(self) -> bool: ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, stored: str | None, password: str) -> _Verified: ...


class _Check(Protocol):
    @property
    def count(self) -> int: ...

    @property
    def refused_by_policy(self) -> bool: ...


class PasswordChecker(Protocol):
    def check_password(self, password: str) -> _Check: ...


@dataclass(frozen=True)
class Problem:
    """Why a new password is refused, for the person: `message` is the English text and
    the gettext msgid (pages show it translated), `%(count)s` in it stands for `count`."""

    message: str
    count: int = 0

    def __str__(self) -> str:
        return self.message % {"count": f"{self.count:,}"}


MISMATCH = Problem(N_("The two passwords are not the same: type the new password twice."))
TOO_SHORT = Problem(
    N_("This password is too short: use at least %(count)s characters."), MIN_LENGTH
)
TOO_LONG = Problem(N_("This password is too long: use at most %(count)s characters."), MAX_LENGTH)
OLD = Problem(N_("This is your old password: choose a new one."))
UNCHECKED = Problem(N_("We could not check this password right now, try again in a few minutes."))


def _seen(count: int) -> Problem:
    # English and French agree on the one count that takes the singular here (1; never 0).
    if count == 1:
        return Problem(N_("This password appears once in known data breaches: choose another."))
    message = N_("This password appears %(count)s times in known data breaches: choose another.")
    return Problem(message, count)


def check_new_password(
    new: str,
    repeat: str,
    *,
    old_hash: str | None,
    hasher: PasswordHasher,
    checker: PasswordChecker,
) -> Problem | None:
    """The first problem with a new password; None when it can be used."""
    if new != repeat:
        return MISMATCH
    if len(new) < MIN_LENGTH:
        return TOO_SHORT
    if len(new) > MAX_LENGTH:
        return TOO_LONG
    if old_hash is not None and hasher.verify(old_hash, new).ok:
        return OLD
    check = checker.check_password(new)
    if check.count > 0:
        return _seen(check.count)
    if check.refused_by_policy:
        return UNCHECKED
    return None


def _resettable_account(session: Session, email: str) -> Account | None:
    try:
        normalised = normalise_email(email)
    except InvalidInput:
        return None
    return session.execute(
        select(Account).where(Account.email == normalised, Account.status.in_(RESETTABLE))
    ).scalar_one_or_none()


def request_reset(
    session: Session,
    *,
    email: str,
    secret_key: str,
    now: dt.datetime,
    ip: str | None = None,
) -> None:
    """Queue a reset link for the account using `email`, if there is one; otherwise nothing.

    The caller answers the same either way. A new link revokes the account's older ones,
    so only the latest e-mail works. The link itself is derived when the notice is sent.
    """
    account = _resettable_account(session, email)
    if account is None:
        return
    token_id = tokens.issue(session, [account.id], secret_key=secret_key, now=now)[account.id]
    session.add(
        Notice(
            account_id=account.id,
            kind=NOTICE_KIND,
            idempotency_key=f"forgot:{token_id}",
            token_id=token_id,
            status=NoticeStatus.QUEUED,
            next_attempt_at=now,
            created_at=now,
        )
    )
    audit.append(
        session,
        [
            audit.Event(
                audit.Actor("anonymous", "forgot"),
                audit.Action.PASSWORD_RESET_REQUESTED,
                f"account:{account.id}",
                {"token_id": token_id, "ip": ip},
            )
        ],
        now=now,
    )


def live_token(session: Session, token: str, *, now: dt.datetime) -> tuple[ResetToken, Account]:
    """The live token row and its account, or TokenInvalid; the account must be resettable."""
    row = tokens.find_valid(session, token, now=now)
    if row is None:
        raise TokenInvalid()
    account = session.get(Account, row.account_id)
    if account is None or account.status not in RESETTABLE:
        raise TokenInvalid()
    return row, account


def complete_reset(
    session: Session,
    *,
    token: str,
    new_password: str,
    repeat: str,
    hasher: PasswordHasher,
    checker: PasswordChecker,
    now: dt.datetime,
    actor: audit.Actor | None = None,
) -> Account:
    """Set a new password with a reset link; raises TokenInvalid or PasswordRefused.

    `actor` defaults to the account itself (the person holding the link).
    """
    row, account = live_token(session, token, now=now)
    problem = check_new_password(
        new_password, repeat, old_hash=account.password_hash, hasher=hasher, checker=checker
    )
    if problem:
        raise PasswordRefused(problem)
    # Claim the token with one conditional UPDATE: of two requests racing with one link,
    # only one changes the password; the other is told the link no longer works.
    claimed = session.execute(
        update(ResetToken)
        .where(
            ResetToken.id == row.id,
            ResetToken.used_at.is_(None),
            ResetToken.revoked_at.is_(None),
            ResetToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], claimed).rowcount != 1:
        raise TokenInvalid()
    tokens.revoke_open(session, [account.id], now=now)
    set_password(
        session,
        account,
        new_password,
        hasher=hasher,
        now=now,
        actor=actor or audit.Actor.account(account.id),
        via="reset",
    )
    return account


def set_password(
    session: Session,
    account: Account,
    new_password: str,
    *,
    hasher: PasswordHasher,
    now: dt.datetime,
    actor: audit.Actor,
    via: str,
) -> None:
    """Store a new password already checked by `check_new_password`, in the caller's
    transaction, and make every way back in that the old one gave die with it: a pending
    reset, the run of wrong passwords (and a lock), open sessions (the epoch moves on) and
    the findings about the old password. `via` says where it was changed (reset, account)."""
    account.password_hash = hasher.hash(new_password)
    account.status = AccountStatus.ACTIVE
    account.reset_reason_code, account.reset_reason = None, None
    account.failed_logins, account.last_failed_login_at = 0, None  # and unlocked
    account.session_epoch = account.session_epoch + 1  # every open session ends
    account.updated_at = now
    session.execute(
        update(Reset)
        .where(Reset.account_id == account.id, Reset.completed_at.is_(None))
        .values(completed_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Finding)
        .where(
            Finding.account_id == account.id,
            Finding.status == FindingStatus.OPEN,
            Finding.kind.in_(PASSWORD_FINDINGS),
        )
        .values(status=FindingStatus.RESOLVED)
        .execution_options(synchronize_session=False)
    )
    audit.append(
        session,
        [
            audit.Event(
                actor,
                audit.Action.PASSWORD_CHANGED,
                f"account:{account.id}",
                {"via": via},
            )
        ],
        now=now,
    )
    session.flush()
