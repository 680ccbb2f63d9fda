"""An account as the console shows it: status, factors, findings, resets, audit events.

Audit events are paged newest first by sequence number (`before`): a keyset page stays
right while new events arrive, where an offset would shift under the reader.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from auth.activity import user_agents
from auth.breach.hashing import normalise_email
from auth.console import labels
from auth.console.forms import FieldError
from auth.errors import InvalidInput, NotFound
from auth.models import (
    Account,
    AccountStatus,
    AuditEvent,
    Finding,
    FindingStatus,
    MfaFactor,
    Reset,
    SignInRecord,
    table,
)
from auth.web.i18n import gettext

_A, _M, _F, _R, _E = (
    table(Account),
    table(MfaFactor),
    table(Finding),
    table(Reset),
    table(AuditEvent),
)
EVENTS_PAGE = 25
SIGN_INS = 20  # the latest sign-in attempts shown
SEARCH_LIMIT = 50


@dataclass(frozen=True)
class Event:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    details: dict[str, Any]


@dataclass(frozen=True)
class Detail:
    account: Any  # the accounts row (id, email, name, status, admin, mfa_required, ...)
    factors: list[Any]
    findings: list[Any]
    resets: list[Any]
    events: list[Event]
    older: int | None  # `before` for the next (older) page, None on the last one
    sign_ins: list[SignIn] = field(default_factory=list)


@dataclass(frozen=True)
class SignIn:
    at: dt.datetime
    ip: str
    network: str
    browser: str  # in words
    outcome: str  # in words
    new_network: bool
    via: str


def detail(conn: Connection, account_id: int, *, before: int | None = None) -> Detail:
    account = conn.execute(select(_A).where(_A.c.id == account_id)).first()
    if account is None:
        raise NotFound(f"no account {account_id}")
    factors = conn.execute(
        select(
            _M.c.id,
            _M.c.kind,
            _M.c.name,
            _M.c.created_at,
            _M.c.confirmed_at,
            _M.c.last_used_at,
            _M.c.possibly_cloned,
        )
        .where(_M.c.account_id == account_id)
        .order_by(_M.c.created_at, _M.c.id)
    ).all()
    findings = conn.execute(
        select(_F).where(_F.c.account_id == account_id).order_by(_F.c.last_seen.desc(), _F.c.id)
    ).all()
    resets = conn.execute(
        select(_R).where(_R.c.account_id == account_id).order_by(_R.c.created_at.desc(), _R.c.id)
    ).all()
    query = select(_E.c.seq, _E.c.at, _E.c.actor, _E.c.action, _E.c.details).where(
        _E.c.target == f"account:{account_id}"
    )
    if before is not None:
        query = query.where(_E.c.seq < before)
    rows = conn.execute(query.order_by(_E.c.seq.desc()).limit(EVENTS_PAGE + 1)).all()
    events = [Event(r.seq, r.at, r.actor, r.action, json.loads(r.details)) for r in rows]
    older = events[EVENTS_PAGE - 1].seq if len(events) > EVENTS_PAGE else None
    return Detail(
        account,
        list(factors),
        list(findings),
        list(resets),
        events[:EVENTS_PAGE],
        older,
        _sign_ins(conn, account_id),
    )


def _sign_ins(conn: Connection, account_id: int) -> list[SignIn]:
    s = table(SignInRecord)
    rows = conn.execute(
        select(s.c.at, s.c.ip, s.c.network, s.c.user_agent, s.c.outcome, s.c.new_network, s.c.via)
        .where(s.c.account_id == account_id)
        .order_by(s.c.at.desc(), s.c.id.desc())
        .limit(SIGN_INS)
    ).all()
    return [
        SignIn(
            r.at,
            r.ip,
            r.network,
            user_agents.describe(r.user_agent, gettext),
            labels.sign_in_outcome(r.outcome),
            bool(r.new_network),
            r.via,
        )
        for r in rows
    ]


def parse_before(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise FieldError("before", gettext("This is not an event number."))
    return int(raw)


def emails(conn: Connection, ids: set[int]) -> dict[int, str]:
    """The e-mails of these accounts (to name the administrators in a trail), one query."""
    if not ids:
        return {}
    rows = conn.execute(select(_A.c.id, _A.c.email).where(_A.c.id.in_(sorted(ids))))
    return {int(i): str(e) for i, e in rows}


def actor_names(conn: Connection, actors: Sequence[str | None]) -> dict[str, str]:
    """Each actor string (`admin:6`, `cli:bob`) as the console words it."""
    known = emails(conn, labels.admin_ids(actors))
    return {a: labels.actor(a, known) for a in set(actors) if a}


@dataclass(frozen=True)
class Listing:
    """Accounts for the accounts page: a search's matches, or, before any search, the
    most recently exposed ones (optionally of one status, or without a second factor)."""

    rows: list[Any]  # id, email, name, status, admin, exposed (last open finding seen)
    searched: bool


STATUSES = tuple(s.value for s in AccountStatus)


def parse_status(raw: str | None) -> str:
    status = (raw or "").strip()
    if status and status not in STATUSES:
        raise FieldError("status", gettext("Choose a status from the list."))
    return status


def listing(
    conn: Connection, query: str, *, status: str = "", without_factor: bool = False
) -> Listing:
    needle = query.strip().lower()
    if len(needle) > 320:
        raise FieldError("email", gettext("An e-mail address has at most 320 characters."))
    exposed = (
        select(_F.c.account_id, func.max(_F.c.last_seen).label("exposed"))
        .where(_F.c.status == FindingStatus.OPEN)
        .group_by(_F.c.account_id)
        .subquery()
    )
    columns = (_A.c.id, _A.c.email, _A.c.name, _A.c.status, _A.c.admin, exposed.c.exposed)
    base = select(*columns).outerjoin(exposed, exposed.c.account_id == _A.c.id)
    if status:
        base = base.where(_A.c.status == status)
    if without_factor:
        confirmed = select(_M.c.account_id).where(_M.c.confirmed_at.is_not(None))
        base = base.where(_A.c.id.not_in(confirmed))
    if needle:
        if "@" in needle and "." in needle.split("@")[-1]:
            with contextlib.suppress(InvalidInput):  # a whole address: its stored form
                needle = normalise_email(needle)
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query_ = base.where(func.lower(_A.c.email).like(f"%{escaped}%", escape="\\"))
        rows = conn.execute(query_.order_by(_A.c.email).limit(SEARCH_LIMIT)).all()
        return Listing(list(rows), True)
    if not status and not without_factor:
        base = base.where(exposed.c.exposed.is_not(None))
    newest = (exposed.c.exposed.is_(None), exposed.c.exposed.desc(), _A.c.email)
    rows = conn.execute(base.order_by(*newest).limit(SEARCH_LIMIT)).all()
    return Listing(list(rows), False)
