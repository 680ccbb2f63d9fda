"""Checking a second factor at sign-in: a code (TOTP or recovery) or a security key's
assertion, each throttled per account (auth/mfa/throttle.py).

A code is checked inside a transaction (check_code), so that what follows a right code
(recording the sign-in, spending the hook's continuation) commits with it; a wrong code is
counted afterwards, in a transaction of its own (count_failure). verify_code does both for
the /login/mfa page; the hook's second step (auth/signin/second_step.py) reads its
continuation in the same transaction, so it calls the two itself.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from auth import audit
from auth.config import Settings
from auth.db import Database
from auth.mfa import factors, recovery, throttle, totp
from auth.mfa import webauthn as wa
from auth.mfa.crypto import KeyRing
from auth.models import Account


class CheckStatus(enum.StrEnum):
    OK = "ok"
    INVALID = "invalid"
    REPLAYED = "replayed"  # a right code, already used: not counted as a failure
    LOCKED = "locked"


@dataclass(frozen=True)
class FactorCheck:
    status: CheckStatus
    kind: str = ""  # "totp", "recovery" or "webauthn"
    message: str = ""
    recovery_left: int | None = None
    locked_until: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.status is CheckStatus.OK


def throttle_policy(settings: Settings) -> throttle.ThrottlePolicy:
    return throttle.ThrottlePolicy(
        max_failures=settings.mfa_max_failures,
        window=dt.timedelta(seconds=settings.mfa_failure_window),
        first_lock=dt.timedelta(seconds=settings.mfa_lock_seconds),
    )


def _locked(until: dt.datetime) -> FactorCheck:
    return FactorCheck(
        CheckStatus.LOCKED,
        message=f"Too many failed attempts: try again after {until:%H:%M} UTC.",
        locked_until=until,
    )


def kind_of(code: str) -> str:
    """A 6-digit code is a TOTP code; anything else is taken as a recovery code."""
    digits = "".join(code.split())
    return "totp" if digits.isdigit() and len(digits) == totp.DIGITS else "recovery"


def check_code(
    conn: Connection,
    *,
    account_id: int,
    code: str,
    keys: KeyRing,
    settings: Settings,
    actor: audit.Actor,
    now: dt.datetime,
) -> FactorCheck:
    """A 6-digit code is tried as TOTP, anything longer as a recovery code, in the
    caller's transaction. INVALID is only reported: count_failure() counts it."""
    kind = kind_of(code)
    current = throttle.state(conn, account_id)
    if current.locked(now) and current.locked_until is not None:
        return _locked(current.locked_until)
    if kind == "totp":
        result, _ = factors.verify_totp(
            conn,
            account_id=account_id,
            code="".join(code.split()),
            keys=keys,
            window=settings.totp_window,
            now=now,
        )
        if result.status is totp.TotpStatus.REPLAYED:
            message = "This code was already used: wait for the next one in your app."
            return FactorCheck(CheckStatus.REPLAYED, kind, message)
        accepted = result.status is totp.TotpStatus.OK
        checked = FactorCheck(CheckStatus.OK, kind)
    else:
        left = recovery.use(conn, account_id=account_id, code=code, actor=actor, now=now)
        accepted = left is not None
        message = f"Recovery code accepted. {left} recovery code(s) left."
        checked = FactorCheck(CheckStatus.OK, kind, message, recovery_left=left)
    if not accepted:
        return FactorCheck(CheckStatus.INVALID, kind, "That code is not right.")
    throttle.record_success(conn, account_id=account_id, known=current)
    return checked


def verify_code(
    db: Database,
    *,
    account_id: int,
    code: str,
    keys: KeyRing,
    settings: Settings,
    actor: audit.Actor,
    now: dt.datetime,
    then: Callable[[Connection], object] | None = None,
) -> FactorCheck:
    """check_code in a transaction of its own, `then` (e.g. recording the sign-in) in the
    same transaction when the code is right, count_failure when it is wrong."""
    with db.connection() as conn:
        result = check_code(
            conn,
            account_id=account_id,
            code=code,
            keys=keys,
            settings=settings,
            actor=actor,
            now=now,
        )
        if result.ok and then is not None:
            then(conn)
    if result.status is CheckStatus.INVALID:
        return count_failure(
            db, result, account_id=account_id, settings=settings, actor=actor, now=now
        )
    return result


def count_failure(
    db: Database,
    check: FactorCheck,
    *,
    account_id: int,
    settings: Settings,
    actor: audit.Actor,
    now: dt.datetime,
) -> FactorCheck:
    """Count a wrong factor against the account (audited); the check as the person
    should hear it: LOCKED when this failure locked the step."""
    with db.session() as session:
        until = throttle.record_failure(
            session,
            account_id=account_id,
            kind=check.kind,
            policy=throttle_policy(settings),
            actor=actor,
            now=now,
        )
    return _locked(until) if until is not None else check


def verify_webauthn(
    db: Database,
    *,
    account_id: int,
    challenge_id: str,
    credential: str | dict[str, Any],
    settings: Settings,
    actor: audit.Actor,
    now: dt.datetime,
) -> FactorCheck:
    """A security key or passkey assertion for the account being signed in."""
    with db.session() as session:
        until = throttle.locked_until(session, account_id, now=now)
        account = session.get(Account, account_id)
    if until is not None:
        return _locked(until)
    if account is None:
        return FactorCheck(CheckStatus.INVALID, "webauthn", "Unknown account.")
    try:
        wa.finish_authentication(
            db,
            challenge_id=challenge_id,
            credential=credential,
            rp=wa.RelyingParty.from_settings(settings),
            now=now,
            actor=actor,
            account=account,
        )
    except wa.WebauthnError as exc:
        refused = FactorCheck(CheckStatus.INVALID, "webauthn", str(exc))
        return count_failure(
            db, refused, account_id=account_id, settings=settings, actor=actor, now=now
        )
    with db.session() as session:
        throttle.record_success(session, account_id=account_id)
    return FactorCheck(CheckStatus.OK, "webauthn")
