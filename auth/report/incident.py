"""An incident in a time window: what a regulator's breach notification (GDPR art. 33)
asks for, gathered from the database.

The queries are set-based (counts, first and last times, never a row per account unless
the listing is asked for), and everything is read in the caller's connection.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, distinct, func, select
from sqlalchemy.sql import ColumnElement

from auth.activity import exposure
from auth.audit import Action
from auth.mfa import census
from auth.models import (
    Account,
    AuditEvent,
    Finding,
    IpBan,
    Notice,
    Reset,
    table,
)


@dataclass(frozen=True)
class Exposure:
    """Findings first seen in the window, for one kind of evidence and one breach."""

    kind: str
    breach: str
    findings: int
    accounts: int
    first_seen: dt.datetime
    last_seen: dt.datetime


@dataclass(frozen=True)
class Measure:
    """One kind of action taken by one actor in the window, with its first and last time."""

    what: str
    by: str
    count: int
    accounts: int  # distinct accounts (or addresses, for bans) it touched
    first: dt.datetime
    last: dt.datetime


@dataclass(frozen=True)
class AffectedAccount:
    id: int
    email: str
    kinds: tuple[str, ...]
    first_seen: dt.datetime
    reset_at: dt.datetime | None


@dataclass(frozen=True)
class Incident:
    since: dt.datetime
    until: dt.datetime
    generated_at: dt.datetime
    exposures: tuple[Exposure, ...]
    accounts_affected: int  # distinct accounts over every exposure
    accounts_total: int
    measures: tuple[Measure, ...]
    coverage_day: dt.date  # the last day counted as "before" the window
    coverage_before: census.Census | None  # None: no daily figure was recorded by then
    coverage_after: census.Census
    accounts: tuple[AffectedAccount, ...] | None = None  # only with --with-accounts
    # Distinct accounts per kind of evidence (an account in two breaches counts once).
    accounts_by_kind: tuple[tuple[str, int], ...] = ()
    # Subject keys a blocked account's sessions touched (auth/activity/exposure.py).
    exposed_subjects: int = 0


_F, _R, _A = table(Finding), table(Reset), table(Account)
_E, _B, _N = table(AuditEvent), table(IpBan), table(Notice)


def _in(
    column: ColumnElement[dt.datetime], since: dt.datetime, until: dt.datetime
) -> list[ColumnElement[bool]]:
    return [column >= since, column < until]


def _exposures(conn: Connection, since: dt.datetime, until: dt.datetime) -> list[Exposure]:
    rows = conn.execute(
        select(
            _F.c.kind,
            _F.c.breach,
            func.count(),
            func.count(distinct(_F.c.account_id)),
            func.min(_F.c.first_seen),
            func.max(_F.c.first_seen),
        )
        .where(*_in(_F.c.first_seen, since, until))
        .group_by(_F.c.kind, _F.c.breach)
        .order_by(_F.c.kind, _F.c.breach)
    ).all()
    return [Exposure(*row) for row in rows]


def _accounts_by_kind(
    conn: Connection, since: dt.datetime, until: dt.datetime
) -> list[tuple[str, int]]:
    rows = conn.execute(
        select(_F.c.kind, func.count(distinct(_F.c.account_id)))
        .where(*_in(_F.c.first_seen, since, until))
        .group_by(_F.c.kind)
        .order_by(_F.c.kind)
    ).all()
    return [(str(kind), int(n)) for kind, n in rows]


def _grouped(
    conn: Connection,
    what: str,
    by: ColumnElement[str] | str,
    subject: ColumnElement[Any],
    at: ColumnElement[dt.datetime],
    since: dt.datetime,
    until: dt.datetime,
    *where: ColumnElement[bool],
) -> list[Measure]:
    """Per actor (`by` a column), or one row for everyone (`by` a fixed label)."""
    figures = (func.count(), func.count(distinct(subject)), func.min(at), func.max(at))
    query = select(*figures).where(*_in(at, since, until), *where)
    if isinstance(by, str):
        rows: list[Any] = [(by, *row) for row in conn.execute(query).all()]
    else:
        rows = [(r[-1], *r[:-1]) for r in conn.execute(query.add_columns(by).group_by(by))]
    return [Measure(what, str(b), n, d, first, last) for b, n, d, first, last in rows if n]


def _measures(conn: Connection, since: dt.datetime, until: dt.datetime) -> list[Measure]:
    w = (since, until)
    found = [
        *_grouped(conn, "password reset forced", _R.c.actor, _R.c.account_id, _R.c.created_at, *w),
        *_grouped(
            conn,
            "second factor required",
            _F.c.acted_by,
            _F.c.account_id,
            _F.c.acted_at,
            *w,
            _F.c.action == "mfa",
        ),
        *_grouped(
            conn,
            "finding dismissed",
            _F.c.acted_by,
            _F.c.account_id,
            _F.c.acted_at,
            *w,
            _F.c.action == "dismiss",
        ),
        *_grouped(
            conn,
            "account locked (wrong passwords)",
            _E.c.actor,
            _E.c.target,
            _E.c.at,
            *w,
            _E.c.action == Action.ACCOUNT_LOCKED.value,
        ),
        *_grouped(
            conn,
            "second factor locked (wrong codes)",
            _E.c.actor,
            _E.c.target,
            _E.c.at,
            *w,
            _E.c.action == Action.MFA_LOCKED.value,
        ),
        *_grouped(conn, "IP address banned", _B.c.created_by, _B.c.network, _B.c.created_at, *w),
        *_grouped(
            conn,
            "new password set after a forced reset",
            "the account holder",
            _R.c.account_id,
            _R.c.completed_at,
            *w,
        ),
        *_grouped(
            conn,
            "e-mail notice sent",
            _N.c.kind,
            _N.c.account_id,
            _N.c.sent_at,
            *w,
        ),
    ]
    return sorted(found, key=lambda m: m.first)


def _affected(conn: Connection, since: dt.datetime, until: dt.datetime) -> list[AffectedAccount]:
    """The opt-in listing: one row per account, its kinds of exposure, its first reset."""
    window = _in(_F.c.first_seen, since, until)
    kinds: dict[int, set[str]] = {}
    firsts: dict[int, dt.datetime] = {}
    for account_id, kind, first in conn.execute(
        select(_F.c.account_id, _F.c.kind, _F.c.first_seen).where(*window)
    ):
        kinds.setdefault(account_id, set()).add(kind)
        firsts[account_id] = min(first, firsts.get(account_id, first))
    if not kinds:
        return []
    affected = select(_F.c.account_id).where(*window)
    emails = dict(conn.execute(select(_A.c.id, _A.c.email).where(_A.c.id.in_(affected))).all())
    resets = dict(
        conn.execute(
            select(_R.c.account_id, func.min(_R.c.created_at))
            .where(_R.c.account_id.in_(affected), _R.c.created_at >= since)
            .group_by(_R.c.account_id)
        ).all()
    )
    return [
        AffectedAccount(a, emails.get(a, "?"), tuple(sorted(kinds[a])), firsts[a], resets.get(a))
        for a in sorted(kinds)
    ]


def gather(
    conn: Connection,
    *,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
    with_accounts: bool = False,
) -> Incident:
    """Everything the report says, read in one connection."""
    window = (since, until)
    affected = conn.execute(
        select(func.count(distinct(_F.c.account_id))).where(*_in(_F.c.first_seen, *window))
    ).scalar_one()
    # The day before the window: a daily figure taken on `since`'s own day may already
    # count enrollments made in response to the incident.
    day = since.date() - dt.timedelta(days=1)
    return Incident(
        since=since,
        until=until,
        generated_at=now,
        exposures=tuple(_exposures(conn, *window)),
        accounts_affected=int(affected),
        accounts_total=int(conn.execute(select(func.count()).select_from(_A)).scalar_one()),
        measures=tuple(_measures(conn, *window)),
        coverage_day=day,
        coverage_before=census.on_or_before(conn, day),
        coverage_after=census.current(conn, now.date()),
        accounts=tuple(_affected(conn, *window)) if with_accounts else None,
        accounts_by_kind=tuple(_accounts_by_kind(conn, *window)),
        exposed_subjects=exposure.count(conn, since=since, until=until),
    )
