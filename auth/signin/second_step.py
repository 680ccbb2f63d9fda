"""The sign-in's second step: a continuation token from the first step, and a factor.

Over HTTP: POST /api/v1/hook/mfa (and /api/v1/hook/mfa/webauthn/options); in-process:
SignIn.second_step and SignIn.webauthn_options (auth/signin/flow.py), which call these. The
factor is checked as on the /login/mfa page (auth/mfa/verify.py); what this adds is the
continuation: found live, failed attempts counted on it, spent once on success.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import Connection, bindparam, select

from auth import audit
from auth.activity import signin_risk
from auth.mfa import verify
from auth.mfa import webauthn as wa
from auth.models import Account, MfaFactor, table, utcnow
from auth.services import Services
from auth.signin import continuations
from auth.signin.answer import Answer
from auth.signin.rules import Decision, Reason, Verdict

_F = table(MfaFactor)
_KINDS = (
    select(_F.c.kind)
    .where(_F.c.account_id == bindparam("account"), _F.c.confirmed_at.is_not(None))
    .distinct()
)


def webauthn_options(
    services: Services, token: str, *, now: dt.datetime | None = None
) -> str | None:
    """Options for navigator.credentials.get(), or None when the token is not live or
    the account has no security key."""
    now = now or utcnow()
    db = services.db
    with db.connection() as conn:
        found = continuations.find(conn, token, now=now)
        kinds = (
            set(conn.execute(_KINDS, {"account": found.account_id}).scalars()) if found else set()
        )
    if found is None or "webauthn" not in kinds:
        return None
    with db.session() as session:
        account = session.get(Account, found.account_id)
        assert account is not None
        session.expunge(account)
    challenge_id, options = wa.begin_authentication(
        db, account=account, rp=wa.RelyingParty.from_settings(services.settings), now=now
    )
    with db.connection() as conn:
        continuations.attach_challenge(conn, found.id, challenge_id)
    return options


class _Expired(Exception):
    """The continuation could not be spent: another request did first, or the account
    was reset or locked meanwhile."""


EXPIRED = "This sign-in expired: start again."


def finish(
    services: Services,
    token: str,
    *,
    code: str | None = None,
    credential: dict[str, Any] | str | None = None,
    ip: str,
    via: str = "hook",
    now: dt.datetime | None = None,
) -> Answer:
    """allow or deny: the factor checked as on the /login/mfa page, on a live continuation.
    With a code, the continuation's look-up, the check, the spent continuation and the
    sign-in's audit event are one transaction."""
    now = now or utcnow()
    db, settings = services.db, services.settings
    started = functools.partial(_start, ip=ip, via=via, now=now)
    try:
        with db.connection() as conn:
            found = continuations.find(conn, token, now=now)
            if found is None:
                return _deny_step(EXPIRED)
            actor = audit.Actor.account(found.account_id)
            if code is not None:
                result = verify.check_code(
                    conn,
                    account_id=found.account_id,
                    code=code,
                    keys=services.keys,
                    settings=settings,
                    actor=actor,
                    now=now,
                )
                if result.ok:
                    started(conn, found, result.kind)
        if code is None:
            if credential is None or not found.challenge_id:
                return _deny_step("Ask for the WebAuthn options first.", found.account_id)
            result = verify.verify_webauthn(
                db,
                account_id=found.account_id,
                challenge_id=found.challenge_id,
                credential=credential,
                settings=settings,
                actor=actor,
                now=now,
            )
            if result.ok:
                with db.connection() as conn:
                    started(conn, found, result.kind)
    except _Expired:
        return _deny_step(EXPIRED, found.account_id if found else None)
    if not result.ok:
        if result.status is verify.CheckStatus.INVALID and code is not None:
            result = verify.count_failure(
                db, result, account_id=found.account_id, settings=settings, actor=actor, now=now
            )
        with db.connection() as conn:
            continuations.failed(conn, found.id, now=now)
        return _deny_step(result.message, found.account_id)
    verdict = Verdict(Decision.ALLOW, (Reason.MFA_ENROLLED,))
    return Answer(verdict, found.account_id, message=result.message)


def _start(
    conn: Connection,
    found: continuations.Continuation,
    method: str,
    *,
    ip: str,
    via: str,
    now: dt.datetime,
) -> None:
    """Spend the continuation and record the sign-in; _Expired when it cannot be spent."""
    if not continuations.spend(conn, found, now=now):
        raise _Expired
    actor = audit.Actor.account(found.account_id)
    details = {"method": method, "ip": ip, "via": via}
    target = f"account:{found.account_id}"
    audit.append(conn, [audit.Event(actor, audit.Action.SESSION_STARTED, target, details)], now=now)
    signin_risk.known_network(conn, found.account_id, ip, now)  # the sign-in completed


def _deny_step(message: str, account_id: int | None = None) -> Answer:
    return Answer(
        Verdict(Decision.DENY, (Reason.INVALID_CREDENTIALS,)), account_id, message=message
    )
