"""Alerts: one record per cause while it lasts; a new one is in the audit trail."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from auth import audit
from auth.activity.alerts import raise_alert
from auth.activity.networks import network_of
from auth.models import Alert, AlertKind, AuditEvent
from auth.services import Services


def stuffing(registry: Services, now: dt.datetime, accounts: list[int], cause: str = "n1") -> int:
    with registry.db.session() as session:
        raised = raise_alert(
            session,
            kind=AlertKind.CREDENTIAL_STUFFING,
            cause=cause,
            accounts=accounts,
            addresses=["203.0.113.7"],
            evidence={"failures": len(accounts), "timeline": [{"at": now.isoformat()}]},
            now=now,
            settings=registry.settings,
        )
        return raised.alert_id


def alerts(registry: Services) -> list[Alert]:
    with registry.db.session() as session:
        return list(session.execute(select(Alert).order_by(Alert.id)).scalars())


def test_a_repeat_of_the_same_cause_joins_the_open_alert(
    registry: Services, now: dt.datetime
) -> None:
    first = stuffing(registry, now, [1, 2])
    again = stuffing(registry, now + dt.timedelta(minutes=5), [2, 3])

    assert again == first
    [alert] = alerts(registry)
    assert (alert.occurrences, alert.accounts, alert.addresses) == (2, [1, 2, 3], ["203.0.113.7"])
    assert alert.evidence["failures"] == 2 and len(alert.evidence["timeline"]) == 2
    assert alert.last_at == now + dt.timedelta(minutes=5)


def test_another_cause_or_a_late_repeat_is_a_new_alert(
    registry: Services, now: dt.datetime
) -> None:
    first = stuffing(registry, now, [1])
    other = stuffing(registry, now, [1], cause="n2")
    late = stuffing(
        registry, now + dt.timedelta(seconds=registry.settings.alert_group_seconds + 1), [1]
    )

    assert len({first, other, late}) == 3


def test_a_new_alert_is_in_the_audit_trail_and_a_repeat_is_not(
    registry: Services, now: dt.datetime
) -> None:
    alert_id = stuffing(registry, now, [1, 2])
    stuffing(registry, now, [3])

    with registry.db.session() as session:
        events = list(
            session.execute(
                select(AuditEvent).where(AuditEvent.action == audit.Action.ALERT_RAISED.value)
            ).scalars()
        )
        assert audit.verify(session).ok
    assert [(e.target, json.loads(e.details)["kind"]) for e in events] == [
        (f"alert:{alert_id}", "credential_stuffing")
    ]


def test_networks_are_a_slash_24_or_a_slash_48() -> None:
    assert network_of("203.0.113.7") == "203.0.113.0/24"
    assert network_of("::ffff:203.0.113.7") == "203.0.113.0/24"
    assert network_of("2001:db8:1:2::5") == "2001:db8:1::/48"
