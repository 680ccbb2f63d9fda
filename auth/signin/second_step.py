"""The sign-in's second step: a continuation token from the first step, and a factor.

Over HTTP: POST /api/v1/hook/mfa (and /api/v1/hook/mfa/webauthn/options); in-process:
SignIn.second_step and SignIn.webauthn_options (auth/signin/flow.py), which call these. The
factor is checked as on the /login/mfa page (auth/mfa/verify.py); what this adds is the
continuation: found live, failed attempts counted on it, spent once on success.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, select

from auth import audit
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
    """allow or deny: the factor checked as on the /login/mfa page, on a live continuation."""
    now = now or utcnow()
    db = services.db
    with db.connection() as conn:
        found = continuations.find(conn, token, now=now)
    if found is None:
        return _deny_step(Reason.INVALID_CREDENTIALS, "This sign-in expired: start again.")
    actor = audit.Actor.account(found.account_id)
    if code is not None:
        result = verify.verify_code(
            db,
            account_id=found.account_id,
            code=code,
            keys=services.keys,
            settings=services.settings,
            actor=actor,
            now=now,
        )
    elif credential is not None and found.challenge_id:
        result = verify.verify_webauthn(
            db,
            account_id=found.account_id,
            challenge_id=found.challenge_id,
            credential=credential,
            settings=services.settings,
            actor=actor,
            now=now,
        )
    else:
        return _deny_step(Reason.INVALID_CREDENTIALS, "Ask for the WebAuthn options first.")
    if not result.ok:
        with db.connection() as conn:
            continuations.failed(conn, found.id, now=now)
        return _deny_step(Reason.INVALID_CREDENTIALS, result.message, found.account_id)
    event = audit.Event(
        actor,
        audit.Action.SESSION_STARTED,
        f"account:{found.account_id}",
        {"method": result.kind, "ip": ip, "via": via},
    )
    with db.connection() as conn:
        spent = continuations.spend(conn, found, now=now)
        if spent:
            audit.append(conn, [event], now=now)
    if not spent:  # raced by another request, or the account was reset meanwhile
        return _deny_step(Reason.INVALID_CREDENTIALS, "This sign-in expired: start again.")
    return Answer(
        Verdict(Decision.ALLOW, (Reason.MFA_ENROLLED,)),
        found.account_id,
        message=result.message,
    )


def _deny_step(reason: Reason, message: str, account_id: int | None = None) -> Answer:
    return Answer(Verdict(Decision.DENY, (reason,)), account_id, message=message)
