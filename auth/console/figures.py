"""The dashboard's figures: a few aggregate queries, each one statement over a set.

Days are UTC days. Resets are counted per day in SQL (a bulk reset makes 50,000 rows in
one day); coverage comes from the daily rows of auth/mfa/census.py, today's counted when
the dashboard is read so the chart ends on today.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Date, cast, distinct, func, select
from sqlalchemy.sql.elements import ColumnElement

from auth import audit
from auth.mfa import census
from auth.mfa.census import Census
from auth.models import (
    Account,
    AccountStatus,
    AuditEvent,
    Finding,
    FindingKind,
    FindingStatus,
    IpBan,
    Reset,
    table,
)

_A, _F, _R, _E, _B = table(Account), table(Finding), table(Reset), table(AuditEvent), table(IpBan)
DAYS = 30


@dataclass(frozen=True)
class Totals:
    accounts: int
    admins: int
    exposed: int  # accounts with at least one open finding
    open_findings: int
    awaiting_reset: int  # status reset_required: the password no longer signs in
    locked: int
    mfa_share: float  # accounts with a second factor, 0..1


@dataclass(frozen=True)
class DayResets:
    day: dt.date
    issued: int
    completed: int


@dataclass(frozen=True)
class LastDay:
    """Refusals in the 24 hours before `now`."""

    lockouts: int  # accounts locked by wrong passwords
    mfa_locks: int  # second-factor steps locked by wrong codes
    bans_automatic: int
    bans_manual: int


@dataclass(frozen=True)
class Dashboard:
    today: dt.date
    totals: Totals
    findings_by_kind: list[tuple[str, int]]
    resets: list[DayResets]
    coverage: list[Census]
    last_day: LastDay


def _utc_day(conn: Connection, column: ColumnElement[dt.datetime]) -> ColumnElement[object]:
    """The UTC day of a timestamp: SQLite stores naive UTC text; PostgreSQL converts."""
    if conn.dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _count(conn: Connection, query: object) -> int:
    return int(conn.execute(query).scalar() or 0)  # type: ignore[call-overload]


def findings_by_kind(conn: Connection) -> list[tuple[str, int]]:
    """Accounts with an open finding, per kind, every kind listed (most urgent first)."""
    rows = conn.execute(
        select(_F.c.kind, func.count(distinct(_F.c.account_id)))
        .where(_F.c.status == FindingStatus.OPEN)
        .group_by(_F.c.kind)
    ).all()
    counts = {str(kind): int(n) for kind, n in rows}
    kinds = [k.value for k in FindingKind] + sorted(set(counts) - {k.value for k in FindingKind})
    return [(k, counts.get(k, 0)) for k in kinds]


def resets_per_day(conn: Connection, *, since: dt.date, until: dt.date) -> list[DayResets]:
    """Resets issued and completed on each day from `since` to `until`, zeros included."""
    start = dt.datetime.combine(since, dt.time(), dt.UTC)
    counts: dict[str, dict[dt.date, int]] = {}
    for name, column in (("issued", _R.c.created_at), ("completed", _R.c.completed_at)):
        day = _utc_day(conn, column).label("day")
        rows = conn.execute(select(day, func.count()).where(column >= start).group_by(day)).all()
        counts[name] = {_as_date(d): int(n) for d, n in rows}
    days = [since + dt.timedelta(days=i) for i in range((until - since).days + 1)]
    return [DayResets(d, counts["issued"].get(d, 0), counts["completed"].get(d, 0)) for d in days]


def fill_days(rows: Sequence[Census], *, until: dt.date) -> list[Census]:
    """One row per day from the first stored one to `until`: a day without a count keeps
    the day before's figures (coverage as it stood), so the x axis is even."""
    if not rows:
        return []
    by_day = {r.day: r for r in rows}
    filled, last = [], rows[0]
    day = rows[0].day
    while day <= until:
        last = by_day.get(day, last)
        filled.append(Census(day, last.accounts, last.none, last.totp, last.webauthn, last.both))
        day += dt.timedelta(days=1)
    return filled


def last_day(conn: Connection, *, now: dt.datetime) -> LastDay:
    since = now - dt.timedelta(hours=24)

    def events(action: audit.Action) -> int:
        return _count(
            conn,
            select(func.count()).where(_E.c.action == action.value, _E.c.at >= since),
        )

    rows = conn.execute(
        select(_B.c.automatic, func.count())
        .where(_B.c.created_at >= since)
        .group_by(_B.c.automatic)
    ).all()
    bans: dict[bool, int] = {bool(a): int(n) for a, n in rows}
    return LastDay(
        lockouts=events(audit.Action.ACCOUNT_LOCKED),
        mfa_locks=events(audit.Action.MFA_LOCKED),
        bans_automatic=int(bans.get(True, 0)),
        bans_manual=int(bans.get(False, 0)),
    )


def totals(conn: Connection, today: Census) -> Totals:
    rows = conn.execute(select(_A.c.status, func.count()).group_by(_A.c.status)).all()
    status: dict[str, int] = {str(s): int(n) for s, n in rows}
    open_ = _F.c.status == FindingStatus.OPEN
    return Totals(
        accounts=sum(int(n) for n in status.values()),
        admins=_count(conn, select(func.count()).where(_A.c.admin.is_(True))),
        exposed=_count(conn, select(func.count(distinct(_F.c.account_id))).where(open_)),
        open_findings=_count(conn, select(func.count()).where(open_)),
        awaiting_reset=int(status.get(AccountStatus.RESET_REQUIRED.value, 0)),
        locked=int(status.get(AccountStatus.LOCKED.value, 0)),
        mfa_share=today.share,
    )


def dashboard(conn: Connection, *, now: dt.datetime, days: int = DAYS) -> Dashboard:
    """Everything the dashboard shows; counts today's coverage first (in `conn`'s
    transaction), so call it inside `engine.begin()`."""
    today = now.astimezone(dt.UTC).date()
    since = today - dt.timedelta(days=days - 1)
    figures = census.snapshot(conn, today)
    return Dashboard(
        today=today,
        totals=totals(conn, figures),
        findings_by_kind=findings_by_kind(conn),
        resets=resets_per_day(conn, since=since, until=today),
        coverage=fill_days(census.history(conn, since), until=today),
        last_day=last_day(conn, now=now),
    )
