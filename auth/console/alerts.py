"""The console's alerts: the list (newest first, filtered by kind and by open or closed),
one alert with its accounts, addresses, evidence and the activity that triggered it
counted per minute, per hour or per day, and the count of open alerts for the dashboard.

The activity comes from the alert's evidence timeline (`{"at": ISO time, "count": n}`
entries, a missing count meaning one event): nothing else is kept about it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auth.activity import deliveries
from auth.activity.push import AlertView
from auth.console.forms import FieldError
from auth.console.labels import ALERT_KINDS
from auth.models import Alert, AlertDelivery
from auth.web.i18n import gettext

PAGE_SIZE = 100
STATUSES = ("open", "closed")
# Bucket widths for the activity chart, the narrowest that keeps it to MAX_BUCKETS bars.
STEPS = tuple(dt.timedelta(minutes=m) for m in (1, 5, 15, 60, 6 * 60, 24 * 60, 7 * 24 * 60))
MAX_BUCKETS = 30


@dataclass(frozen=True)
class Filters:
    kind: str = ""
    status: str = "open"  # "" means open and closed


def parse_filters(args: Mapping[str, str]) -> Filters:
    """`kind` (one of the alert kinds, or empty) and `status` (open, closed or any)."""
    kind = args.get("kind", "").strip()
    if kind and kind not in ALERT_KINDS:
        raise FieldError("kind", gettext("Choose a kind from the list."))
    status = args.get("status", "open").strip()
    if status == "any":
        status = ""
    elif status not in STATUSES:
        raise FieldError("status", gettext("Choose a status from the list."))
    return Filters(kind, status)


@dataclass(frozen=True)
class AlertRow:
    id: int
    kind: str
    first_at: dt.datetime
    last_at: dt.datetime
    occurrences: int
    accounts: int
    addresses: int
    closed_at: dt.datetime | None


def listing(session: Session, filters: Filters, *, limit: int = PAGE_SIZE) -> list[AlertRow]:
    """The alerts the filters match, the most recently active first."""
    query = select(Alert).order_by(Alert.last_at.desc(), Alert.id.desc()).limit(limit)
    if filters.kind:
        query = query.where(Alert.kind == filters.kind)
    if filters.status == "open":
        query = query.where(Alert.closed_at.is_(None))
    elif filters.status == "closed":
        query = query.where(Alert.closed_at.is_not(None))
    return [
        AlertRow(
            a.id,
            a.kind,
            a.first_at,
            a.last_at,
            a.occurrences,
            len(a.accounts or []),
            len(a.addresses or []),
            a.closed_at,
        )
        for a in session.execute(query).scalars()
    ]


def open_count(session: Session) -> int:
    return int(session.execute(select(func.count()).where(Alert.closed_at.is_(None))).scalar_one())


@dataclass(frozen=True)
class Bucket:
    start: dt.datetime
    count: int


@dataclass(frozen=True)
class Activity:
    step: dt.timedelta
    buckets: tuple[Bucket, ...]


@dataclass(frozen=True)
class Entry:
    """One timeline entry: when, how many events, and its other facts (codes and counts)."""

    at: dt.datetime
    count: int
    facts: dict[str, Any]


@dataclass(frozen=True)
class Detail:
    view: AlertView
    counts: list[tuple[str, Any]]  # the evidence's figures, in their stored order
    timeline: list[Entry]
    activity: Activity
    deliveries: list[tuple[str, str, int]]  # channel, status, attempts

    @property
    def alert(self) -> Alert:
        return self.view.alert


def _parse_time(raw: object) -> dt.datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def entries(timeline: object) -> list[Entry]:
    """The timeline's readable entries, oldest first; a malformed one is left out."""
    found = []
    for item in timeline if isinstance(timeline, list) else []:
        if not isinstance(item, Mapping):
            continue
        at = _parse_time(item.get("at"))
        if at is None:
            continue
        raw = item.get("count", 1)
        count = raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else 1
        facts = {k: v for k, v in item.items() if k not in ("at", "count")}
        found.append(Entry(at, count, facts))
    return sorted(found, key=lambda e: e.at)


def _floor(when: dt.datetime, step: dt.timedelta) -> dt.datetime:
    epoch = dt.datetime(1970, 1, 5, tzinfo=dt.UTC)  # a Monday: week buckets start on one
    return epoch + ((when - epoch) // step) * step


def activity(timeline: Sequence[Entry]) -> Activity:
    """Events per bucket from the first entry to the last, empty buckets included, in the
    narrowest step that keeps the chart to MAX_BUCKETS bars."""
    if not timeline:
        return Activity(STEPS[0], ())
    first, last = timeline[0].at, timeline[-1].at
    step = next(
        (s for s in STEPS if (_floor(last, s) - _floor(first, s)) // s < MAX_BUCKETS), STEPS[-1]
    )
    start = _floor(first, step)
    size = (_floor(last, step) - start) // step + 1
    counts = [0] * size
    for entry in timeline:
        counts[min((_floor(entry.at, step) - start) // step, size - 1)] += entry.count
    return Activity(step, tuple(Bucket(start + i * step, n) for i, n in enumerate(counts)))


def detail(session: Session, alert_id: int) -> Detail:
    """One alert as its page shows it; raises NotFound."""
    view = deliveries.view(session, alert_id)
    evidence = dict(view.alert.evidence or {})
    timeline = entries(evidence.pop("timeline", []))
    counts = [
        (k, v)
        for k, v in evidence.items()
        if isinstance(v, int | float | str) and not isinstance(v, bool)  # bools: a number too
    ]
    pushes = session.execute(
        select(AlertDelivery.channel, AlertDelivery.status, AlertDelivery.attempts)
        .where(AlertDelivery.alert_id == alert_id)
        .order_by(AlertDelivery.id)
    ).all()
    return Detail(view, counts, timeline, activity(timeline), [(c, s, a) for c, s, a in pushes])
