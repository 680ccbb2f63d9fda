""" "This wasn't me": the person disowns a sign-in, from the link of a "new sign-in" e-mail
or from /account/security. Every session of the account ends, a reset is forced (one
set-based path: auth/reset/forced.py), and a NOT_ME alert tells the security team, with
`suspected_from` set where an exposure report should count from.

The e-mail's link carries a token that is never stored: the sign-in's id, the account's
session epoch when the e-mail was sent, and an expiry, signed with HMAC-SHA256 under a key
derived from SECRET_KEY. Acting on it ends every session, which moves the epoch on: the
token then matches nothing, so it works once; signing out everywhere or a new password
ends it too.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from auth import audit, i18n
from auth.activity import exposure, signin_risk, user_agents
from auth.activity.alerts import raise_alert
from auth.activity.counters import Counters
from auth.activity.policy import LONGEST_WINDOW
from auth.config import Settings
from auth.models import Account, AlertKind, Notice, SignInRecord, iso_utc
from auth.reset import forced, reasons
from auth.web.session import end_all

log = logging.getLogger(__name__)

LIFETIME = dt.timedelta(days=7)  # a person may read their e-mail days later
TOKEN_MAX = 200


def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"breachguard:not-me-link", hashlib.sha256).digest()


def _mac(secret_key: str, payload: str) -> str:
    mac = hmac.new(_key(secret_key), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def make_token(secret_key: str, *, sign_in_id: int, epoch: int, expires: dt.datetime) -> str:
    payload = f"{sign_in_id}.{epoch}.{int(expires.timestamp())}"
    return f"{payload}.{_mac(secret_key, payload)}"


@dataclass(frozen=True)
class Disowned:
    """A sign-in the person may disown: the record and its account."""

    sign_in: SignInRecord
    account: Account


def find(session: Session, token: str, *, secret_key: str, now: dt.datetime) -> Disowned | None:
    """The sign-in behind a live token, or None (forged, expired, or already acted on)."""
    if not token or len(token) > TOKEN_MAX or not token.isascii() or token.count(".") != 3:
        return None
    payload, _, mac = token.rpartition(".")
    if not hmac.compare_digest(mac, _mac(secret_key, payload)):
        return None
    sign_in_id, epoch, expires = (
        int(part) if part.isdigit() else -1 for part in payload.split(".")
    )
    if now.timestamp() >= expires:
        return None
    record = session.get(SignInRecord, sign_in_id)
    account = session.get(Account, record.account_id) if record is not None else None
    if record is None or account is None or account.session_epoch != epoch:
        return None
    return Disowned(record, account)


def recent(session: Session, account_id: int, *, limit: int = 20) -> list[SignInRecord]:
    """The account's latest sign-in attempts, newest first."""
    return list(
        session.execute(
            select(SignInRecord)
            .where(SignInRecord.account_id == account_id)
            .order_by(SignInRecord.at.desc(), SignInRecord.id.desc())
            .limit(limit)
        ).scalars()
    )


@dataclass(frozen=True)
class Outcome:
    sessions_ended: int
    reset: bool  # False: the account was already waiting for a new password
    alert_id: int


def disown(
    session: Session,
    account_id: int,
    *,
    settings: Settings,
    counters: Counters,
    ip: str,
    now: dt.datetime,
    sign_in: SignInRecord | None = None,
) -> Outcome:
    """End every session, force a reset, alert the security team and keep the subjects
    the account touched since the suspected start (for `report exposure`); one
    transaction. The suspected start is the first sign-in from a new network, or the one
    the link names; without either, as far back as the activity counters reach."""
    new_ones = list(
        session.execute(
            select(SignInRecord)
            .where(
                SignInRecord.account_id == account_id,
                SignInRecord.new_network.is_(True),
                SignInRecord.outcome != "deny",
                SignInRecord.at >= now - dt.timedelta(days=settings.exposure_retention_days),
            )
            .order_by(SignInRecord.at)
            .limit(100)
        ).scalars()
    )
    starts = [r.at for r in new_ones[:1]] + ([sign_in.at] if sign_in is not None else [])
    actor = audit.Actor.account(account_id)
    ended = end_all(
        session.connection(),
        account_id,
        actor=actor,
        now=now,
        details={"ip": ip, "why": "not_me"},
    )
    plan = forced.Plan(
        reason="",
        reset_key=f"not_me:{int(now.timestamp() * 1000)}",
        job_id=None,
        require_mfa=True,
        actor=reasons.NOT_ME,
    )
    result = forced.apply(
        session, [forced.Target(account_id)], plan, secret_key=settings.secret_key, now=now
    )
    raised = raise_alert(
        session,
        kind=AlertKind.NOT_ME,
        cause=f"account:{account_id}",
        accounts=[account_id],
        addresses=[r.ip for r in new_ones] + ([sign_in.ip] if sign_in is not None else []),
        evidence={
            "sessions_ended": ended,
            "new_network_sign_ins": len(new_ones),
            "timeline": [
                {
                    "at": iso_utc(now),
                    "from": "email" if sign_in is not None else "security_page",
                    "sign_in": sign_in.id if sign_in is not None else None,
                    "ip": ip,
                }
            ],
        },
        now=now,
        settings=settings,
        suspected_from=min(starts) if starts else None,
    )
    since = min(starts) if starts else now - dt.timedelta(seconds=LONGEST_WINDOW)
    try:
        touched = counters.touched(account_id, since=since.timestamp(), until=now.timestamp())
    except redis.RedisError as exc:  # the account is secured all the same
        log.error("not_me: the activity counters did not answer (%s)", type(exc).__name__)
        touched = []
    exposure.keep(
        session,
        alert_id=raised.alert_id,
        account_id=account_id,
        subjects=exposure.first_touches(touched),
        now=now,
    )
    return Outcome(ended, bool(result.reset), raised.alert_id)


def notice_context(
    notice: Notice, account: Account, *, language: str, settings: Settings, now: dt.datetime
) -> Mapping[str, Any]:
    """What a "new sign-in" e-mail says: when, from where, what browser, and the link.
    The notice is read inside the queue's session, which finds its sign-in."""
    session = object_session(notice)
    sign_in_id = signin_risk.notice_record_id(notice)
    record = session.get(SignInRecord, sign_in_id) if session and sign_in_id else None
    catalog = i18n.translations(language)

    def gettext(message: str, **values: object) -> str:
        return catalog.gettext(message) % values if values else catalog.gettext(message)

    if record is None:  # the sign-in is gone (its account deleted): nothing to disown
        return {"when": "", "ip": "", "network": "", "browser": "", "not_me_url": ""}
    token = make_token(
        settings.secret_key,
        sign_in_id=record.id,
        epoch=account.session_epoch,
        expires=now + LIFETIME,
    )
    return {
        "when": i18n.format_datetime(record.at, language, length="long"),
        "ip": record.ip,
        "network": record.network,
        "browser": user_agents.describe(record.user_agent, gettext),
        "not_me_url": f"{settings.public_url}/not-me/{token}",
        "days": LIFETIME.days,
    }
