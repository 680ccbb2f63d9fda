"""Who must be told: the subject keys a blocked (or disowned) account touched, as the
portal needs them to find the people it must inform (GDPR article 34), and their
retention.

The guard keeps them when it blocks (auth/activity/guard.py), and a "this wasn't me" when
the person disowns a sign-in (auth/activity/not_me.py): what the counters say the account
touched since the suspected start, each subject with its first time (`first_touches`).
`breachguard report exposure` reads them; `purge` deletes them after
EXPOSURE_RETENTION_DAYS, with the activity events and sessions past the guard's longest
window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, delete, distinct, func, select
from sqlalchemy.orm import Session

from auth.activity import counters
from auth.db import Database, dialect_insert
from auth.errors import InvalidInput, NotFound
from auth.models import Alert, AlertKind, ExposedSubject, SignInRecord, table

KINDS = (AlertKind.ACTIVITY_BLOCK, AlertKind.NOT_ME)  # the alerts that keep subjects
_X, _SIGN_INS = table(ExposedSubject), table(SignInRecord)


@dataclass(frozen=True)
class Exposed:
    subject: str
    first_at: dt.datetime
    account_id: int


def first_touches(touched: Iterable[counters.Touched]) -> dict[str, float]:
    """Each subject with the first time it was touched (epoch seconds), oldest first."""
    first: dict[str, float] = {}
    for t in sorted(touched, key=lambda t: t.at):
        if t.subject:
            first.setdefault(t.subject, t.at)
    return first


def keep(
    session: Session,
    *,
    alert_id: int,
    account_id: int,
    subjects: Mapping[str, float],
    now: dt.datetime,
) -> None:
    """Keep the subjects for the alert, in the caller's transaction (a subject already kept
    for it keeps its first time)."""
    if not subjects:
        return
    rows = [
        {
            "alert_id": alert_id,
            "subject": subject,
            "account_id": account_id,
            "first_at": dt.datetime.fromtimestamp(first, dt.UTC),
            "kept_at": now,
        }
        for subject, first in subjects.items()
    ]
    insert = dialect_insert(session)(_X).on_conflict_do_nothing(
        index_elements=[_X.c.alert_id, _X.c.subject]
    )
    session.execute(insert, rows)


def listing(db: Database, alert_id: int) -> list[Exposed]:
    """The subjects kept for the alert, in the order they were first touched; NotFound for
    no such alert, InvalidInput for an alert of a kind that keeps none."""
    with db.session() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise NotFound(f"alert {alert_id}: no such alert")
        if alert.kind not in KINDS:
            raise InvalidInput(
                f"alert {alert_id} is a {alert.kind} alert: only "
                f"{' and '.join(KINDS)} alerts keep exposed subjects"
            )
        rows = session.execute(
            select(_X.c.subject, _X.c.first_at, _X.c.account_id)
            .where(_X.c.alert_id == alert_id)
            .order_by(_X.c.first_at, _X.c.subject)
        ).all()
    return [Exposed(*row) for row in rows]


def count(conn: Connection, *, since: dt.datetime, until: dt.datetime) -> int:
    """Distinct subjects first touched in the window under a kept alert (the incident
    report's figure: the people the portal must inform)."""
    counted = select(func.count(distinct(_X.c.subject))).where(
        _X.c.first_at >= since, _X.c.first_at < until
    )
    return int(conn.execute(counted).scalar_one())


def purge(conn: Connection, *, now: dt.datetime, retention_days: int) -> int:
    """Delete subjects and sign-in records kept longer than the retention (a "this
    wasn't me" looks no further back), and one batch of activity events (and sessions)
    past the guard's longest window; returns the subjects deleted."""
    cutoff = now - dt.timedelta(days=retention_days)
    deleted = conn.execute(delete(_X).where(_X.c.kept_at < cutoff)).rowcount
    conn.execute(delete(_SIGN_INS).where(_SIGN_INS.c.at < cutoff))
    counters.purge(conn, now=now)
    return int(deleted)
