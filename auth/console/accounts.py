"""An account as the console shows it: status, factors, findings, resets, audit events.

Audit events are paged newest first by sequence number (`before`): a keyset page stays
right while new events arrive, where an offset would shift under the reader.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from auth.breach.hashing import normalise_email
from auth.errors import InvalidInput, NotFound
from auth.models import Account, AuditEvent, Finding, MfaFactor, Reset, table

_A, _M, _F, _R, _E = (
    table(Account),
    table(MfaFactor),
    table(Finding),
    table(Reset),
    table(AuditEvent),
)
EVENTS_PAGE = 25
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
    return Detail(account, list(factors), list(findings), list(resets), events[:EVENTS_PAGE], older)


def parse_before(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput(f"before: {raw!r} is not an event number")
    return int(raw)


def search(conn: Connection, query: str) -> list[Any]:
    """Accounts whose e-mail contains `query` (case-insensitive), at most SEARCH_LIMIT."""
    needle = query.strip().lower()
    if not needle:
        return []
    if len(needle) > 320:
        raise InvalidInput("email: at most 320 characters")
    if "@" in needle and "." in needle.split("@")[-1]:
        with contextlib.suppress(InvalidInput):  # a whole address: its stored form
            needle = normalise_email(needle)
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return list(
        conn.execute(
            select(_A.c.id, _A.c.email, _A.c.name, _A.c.status, _A.c.admin)
            .where(func.lower(_A.c.email).like(pattern, escape="\\"))
            .order_by(_A.c.email)
            .limit(SEARCH_LIMIT)
        ).all()
    )
