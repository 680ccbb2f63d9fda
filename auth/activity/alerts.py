"""Alerts for the security team: one record per cause, grouped while it lasts.

`raise_alert` is the one way an alert is made. A repeat of an open alert's cause (same kind,
same `cause` key, within ALERT_GROUP_SECONDS of its last occurrence) joins it: its count
and last time move, its accounts and addresses are merged, its timeline grows; the security
team sees one alert, not a thousand. A new alert is written to the audit trail and counted
in the metrics, and queued for each configured channel (`channels(settings)`: the
webhook, the security team's address), in the same transaction; auth/activity/deliveries.py
pushes them. A `cause` names what repeats (a network, an account); it never holds a
secret, not even a digest of one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth import audit, metrics
from auth.config import Settings
from auth.errors import NotFound
from auth.models import Alert, AlertDelivery, AlertKind

TIMELINE_MAX = 100  # entries kept in an alert's evidence; the oldest go first
LISTED_MAX = 1000  # accounts or addresses kept on one alert


WEBHOOK, EMAIL = "webhook", "email"


def channels(settings: Settings) -> tuple[str, ...]:
    """Where a new alert is pushed: the webhook when ALERT_WEBHOOK_URL is set, an e-mail
    when SECURITY_ALERT_EMAIL is."""
    return tuple(
        name
        for name, configured in (
            (WEBHOOK, settings.alert_webhook_url),
            (EMAIL, settings.security_alert_email),
        )
        if configured
    )


@dataclass(frozen=True)
class Raised:
    alert_id: int
    new: bool  # False: it joined an open alert of the same cause


def raise_alert(
    session: Session,
    *,
    kind: AlertKind,
    cause: str,
    accounts: Iterable[int] = (),
    addresses: Iterable[str] = (),
    evidence: Mapping[str, Any] | None = None,
    now: dt.datetime,
    settings: Settings,
    suspected_from: dt.datetime | None = None,
) -> Raised:
    """Record an alert inside the caller's transaction, or join the open one of its cause.

    `evidence` holds counts (the latest replace the earlier) and a `timeline` list (appended)
    of entries `{"at": ISO time, …}`, with `"count": n` when one entry stands for several
    events: the console charts it. A repeat within ALERT_GROUP_SECONDS of the open alert's
    last occurrence joins it and is not pushed again.
    """
    evidence = dict(evidence or {})
    timeline = list(evidence.pop("timeline", []))
    open_one = session.execute(
        select(Alert)
        .where(
            Alert.kind == kind.value,
            Alert.cause == cause,
            Alert.closed_at.is_(None),
            Alert.last_at >= now - dt.timedelta(seconds=settings.alert_group_seconds),
        )
        .order_by(Alert.id.desc())
        .limit(1)
        .with_for_update()
    ).scalar_one_or_none()
    if open_one is not None:
        merged = dict(open_one.evidence or {})
        merged.update(evidence)
        merged["timeline"] = (list(merged.get("timeline", [])) + timeline)[-TIMELINE_MAX:]
        open_one.evidence = merged
        open_one.accounts = _merged(open_one.accounts, accounts)
        open_one.addresses = _merged(open_one.addresses, addresses)
        open_one.occurrences += 1
        open_one.last_at = now
        if suspected_from is not None and (
            open_one.suspected_from is None or suspected_from < open_one.suspected_from
        ):
            open_one.suspected_from = suspected_from
        session.flush()
        metrics.alert_raised(kind.value, new=False)
        return Raised(open_one.id, new=False)
    alert = Alert(
        kind=kind.value,
        cause=cause,
        first_at=now,
        last_at=now,
        occurrences=1,
        accounts=_merged([], accounts),
        addresses=_merged([], addresses),
        evidence={**evidence, "timeline": timeline[-TIMELINE_MAX:]},
        suspected_from=suspected_from,
    )
    session.add(alert)
    session.flush()
    audit.append(
        session,
        [
            audit.Event(
                audit.Actor.policy(kind.value),
                audit.Action.ALERT_RAISED,
                f"alert:{alert.id}",
                {"kind": kind.value, "accounts": len(alert.accounts), "cause": cause},
            )
        ],
        now=now,
    )
    session.add_all(
        AlertDelivery(alert_id=alert.id, channel=channel, next_attempt_at=now, created_at=now)
        for channel in channels(settings)
    )
    session.flush()
    metrics.alert_raised(kind.value, new=True)
    return Raised(alert.id, new=True)


def close_alert(session: Session, alert_id: int, *, actor: audit.Actor, now: dt.datetime) -> bool:
    """Close an alert (audited); False when it was already closed. A later repeat of its
    cause opens a new alert. Raises NotFound for an unknown id."""
    alert = session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise NotFound(f"no alert #{alert_id}")
    if alert.closed_at is not None:
        return False
    alert.closed_at = now
    audit.append(
        session,
        [
            audit.Event(
                actor,
                audit.Action.ALERT_CLOSED,
                f"alert:{alert.id}",
                {"kind": alert.kind, "occurrences": alert.occurrences},
            )
        ],
        now=now,
    )
    return True


def _merged(old: Iterable[Any], new: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys([*old, *new]))[:LISTED_MAX]
