"""`breachguard alerts list/close/send` against the test database and a webhook receiver
on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from click.testing import CliRunner
from sqlalchemy import select

from auth import audit
from auth.activity import alerts
from auth.cli import main
from auth.config import Settings
from auth.models import Alert, AlertKind, AuditEvent
from auth.services import Services, build
from tests.test_admin_console import make_account
from tests.test_alert_push import SECRET, Receiver


def raise_one(site: Services, kind: AlertKind, at: dt.datetime, accounts: list[int]) -> int:
    with site.db.session() as session:
        return alerts.raise_alert(
            session,
            kind=kind,
            cause=f"{kind.value}:{at.isoformat()}",
            accounts=accounts,
            addresses=["192.0.2.1"],
            evidence={"accounts": len(accounts)},
            now=at,
            settings=dataclasses.replace(site.settings, alert_group_seconds=60),
        ).alert_id


def test_list_shows_the_newest_first_and_open_ones_with_open(
    runner: CliRunner, registry: Services, now: dt.datetime
) -> None:
    claire = make_account(registry, "claire@cabinet.example")
    older = raise_one(registry, AlertKind.PASSWORD_SPRAY, now - dt.timedelta(hours=2), [claire])
    newer = raise_one(registry, AlertKind.NOT_ME, now, [claire])
    with registry.db.session() as session:
        alerts.close_alert(session, older, actor=audit.Actor.cli("t"), now=now)

    table = runner.invoke(main, ["alerts", "list"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].startswith(f"#{newer}  not_me") and lines[1].startswith(
        f"#{older}  password_spray"
    )
    assert "closed 2026-11-28" in lines[1] and lines[0].endswith("open")

    only_open = runner.invoke(main, ["alerts", "list", "--open", "--format", "json"])
    assert only_open.exit_code == 0, only_open.output
    [alert] = json.loads(only_open.output)
    assert (alert["id"], alert["kind"]) == (newer, "not_me")
    assert alert["accounts"] == [{"id": claire, "email": "claire@cabinet.example"}]


def test_close_is_audited_once_and_an_unknown_id_is_a_usage_error(
    runner: CliRunner, registry: Services, now: dt.datetime
) -> None:
    alert_id = raise_one(registry, AlertKind.CREDENTIAL_STUFFING, now, [])
    first = runner.invoke(main, ["alerts", "close", str(alert_id)])
    assert first.exit_code == 0 and f"alert #{alert_id} closed" in first.output
    again = runner.invoke(main, ["alerts", "close", str(alert_id)])
    assert again.exit_code == 0 and "already closed" in again.output
    unknown = runner.invoke(main, ["alerts", "close", "999999"])
    assert unknown.exit_code == 2 and "no alert #999999" in unknown.output
    with registry.db.session() as session:
        assert session.get_one(Alert, alert_id).closed_at is not None
        events = session.execute(
            select(AuditEvent.actor).where(AuditEvent.action == "alert:closed")
        ).all()
    assert len(events) == 1 and events[0][0].startswith("cli:")


def test_send_pushes_what_is_due_and_fails_while_the_webhook_fails(
    runner: CliRunner, settings: Settings, cli_env: dict[str, str], now: dt.datetime
) -> None:
    failing = Receiver([503])
    try:
        env = {**cli_env, "ALERT_WEBHOOK_URL": failing.url, "ALERT_WEBHOOK_SECRET": SECRET}
        site = build(
            dataclasses.replace(
                settings, alert_webhook_url=failing.url, alert_webhook_secret=SECRET
            )
        )
        raise_one(site, AlertKind.ACTIVITY_BLOCK, now, [])
        raise_one(site, AlertKind.NEW_SIGN_IN, now, [])

        first = runner.invoke(main, ["alerts", "send"], env=env)
        assert first.exit_code == 1
        assert "sent 1, retrying 1, failed 0" in first.output
        assert "503" in first.output and "team-token-42" not in first.output
        assert len(failing.received) == 2
    finally:
        failing.stop()


def test_send_with_nothing_due_says_so_and_succeeds(runner: CliRunner) -> None:
    done = runner.invoke(main, ["alerts", "send"])
    assert done.exit_code == 0 and done.output.strip() == "sent 0, retrying 0, failed 0"
