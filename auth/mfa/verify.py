"""The second step of a sign-in: one function per kind of proof, each throttled per account.

Used by the /login/mfa page and the JSON ceremonies; the login hook will use the same.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from auth import audit
from auth.config import Settings
from auth.db import Database
from auth.mfa import factors, recovery, throttle, totp
from auth.mfa import webauthn as wa
from auth.mfa.crypto import KeyRing
from auth.models import Account


class Outcome(enum.StrEnum):
    OK = "ok"
    INVALID = "invalid"
    REPLAYED = "replayed"
    LOCKED = "locked"


@dataclass(frozen=True)
class StepResult:
    outcome: Outcome
    kind: str = ""
    message: str = ""
    recovery_left: int | None = None
    locked_until: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


def policy(settings: Settings) -> throttle.ThrottlePolicy:
    return throttle.ThrottlePolicy(
        max_failures=settings.mfa_max_failures,
        window=dt.timedelta(seconds=settings.mfa_failure_window),
        first_lock=dt.timedelta(seconds=settings.mfa_lock_seconds),
    )


def _locked(until: dt.datetime) -> StepResult:
    return StepResult(
        Outcome.LOCKED,
        message=f"Too many failed attempts: try again after {until:%H:%M} UTC.",
        locked_until=until,
    )


def kind_of(code: str) -> str:
    """A 6-digit code is a TOTP code; anything else is taken as a recovery code."""
    digits = "".join(code.split())
    return "totp" if digits.isdigit() and len(digits) == totp.DIGITS else "recovery"


def verify_code(
    db: Database,
    *,
    account_id: int,
    code: str,
    keys: KeyRing,
    settings: Settings,
    actor: audit.Actor,
    now: dt.datetime,
    on_success: audit.Event | None = None,
) -> StepResult:
    """A 6-digit code is tried as TOTP, anything longer as a recovery code.

    on_success: an audit event to append in the same transaction when the code is right.
    """
    digits = "".join(code.split())
    kind = kind_of(code)
    if kind == "totp":
        # The common case, on every sign-in: one Core transaction, three statements.
        with db.connection() as conn:
            current = throttle.state(conn, account_id)
            if current.locked(now) and current.locked_until is not None:
                return _locked(current.locked_until)
            result, _ = factors.verify_totp(
                conn,
                account_id=account_id,
                code=digits,
                keys=keys,
                window=settings.totp_window,
                now=now,
            )
            if result.outcome is totp.Outcome.OK:
                throttle.record_success(conn, account_id=account_id, known=current)
                if on_success is not None:
                    audit.append(conn, [on_success], now=now)
                return StepResult(Outcome.OK, kind)
            if result.outcome is totp.Outcome.REPLAYED:
                # Not counted as a failure: the person typed a right code twice.
                return StepResult(
                    Outcome.REPLAYED,
                    kind,
                    "This code was already used: wait for the next one in your app.",
                )
    else:
        with db.session() as session:
            current = throttle.state(session, account_id)
            if current.locked(now) and current.locked_until is not None:
                return _locked(current.locked_until)
            left = recovery.use(session, account_id=account_id, code=code, actor=actor, now=now)
            if left is not None:
                throttle.record_success(session, account_id=account_id)
                if on_success is not None:
                    audit.append(session, [on_success], now=now)
                return StepResult(
                    Outcome.OK,
                    kind,
                    f"Recovery code accepted. {left} recovery code(s) left.",
                    recovery_left=left,
                )
    return _failed(db, account_id=account_id, kind=kind, settings=settings, actor=actor, now=now)


def _failed(
    db: Database,
    *,
    account_id: int,
    kind: str,
    settings: Settings,
    actor: audit.Actor,
    now: dt.datetime,
    message: str = "That code is not right.",
) -> StepResult:
    with db.session() as session:
        until = throttle.record_failure(
            session, account_id=account_id, kind=kind, policy=policy(settings), actor=actor, now=now
        )
    if until is not None:
        return _locked(until)
    return StepResult(Outcome.INVALID, kind, message)


def verify_webauthn(
    db: Database,
    *,
    account_id: int,
    challenge_id: str,
    credential: str | dict[str, Any],
    settings: Settings,
    actor: audit.Actor,
    now: dt.datetime,
) -> StepResult:
    """A security key or passkey assertion for the account being signed in."""
    with db.session() as session:
        until = throttle.locked_until(session, account_id, now=now)
        account = session.get(Account, account_id)
    if until is not None:
        return _locked(until)
    if account is None:
        return StepResult(Outcome.INVALID, "webauthn", "Unknown account.")
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
        return _failed(
            db,
            account_id=account_id,
            kind="webauthn",
            settings=settings,
            actor=actor,
            now=now,
            message=str(exc),
        )
    with db.session() as session:
        throttle.record_success(session, account_id=account_id)
    return StepResult(Outcome.OK, "webauthn")
