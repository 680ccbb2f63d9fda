"""`breachguard ban …` and `breachguard accounts unlock` against the real database."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from auth import audit
from auth.cli import main
from auth.cli.bans import parse_duration
from auth.models import Account, AuditEvent, utcnow
from auth.services import Services
from auth.signin import bans


def test_durations_read_as_people_write_them() -> None:
    assert parse_duration("30m") == dt.timedelta(minutes=30)
    assert parse_duration("7d") == dt.timedelta(days=7)
    assert parse_duration("forever") is None


def test_ban_add_list_remove(runner: CliRunner, registry: Services) -> None:
    assert runner.invoke(main, ["init"]).exit_code == 0
    added = runner.invoke(main, ["ban", "add", "203.0.113.9/24", "--for", "2h", "--reason", "bot"])
    assert added.exit_code == 0, added.output
    assert "banned 203.0.113.0/24 until" in added.output
    listed = runner.invoke(main, ["ban", "list"])
    assert (
        "203.0.113.0/24" in listed.output and "manual" in listed.output and "bot" in listed.output
    )
    with registry.db.session() as s:
        active = [ban.network for ban in bans.active(s, now=utcnow())]
    assert bans.banned_by("203.0.113.200", active)
    removed = runner.invoke(main, ["ban", "remove", "203.0.113.0/24"])
    assert removed.exit_code == 0, removed.output
    assert runner.invoke(main, ["ban", "list"]).output.strip() == "no active bans"
    with registry.db.session() as s:
        acts = s.execute(select(AuditEvent.action)).scalars().all()
    assert audit.Action.IP_BANNED in acts and audit.Action.IP_UNBANNED in acts


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ban", "add", "not-an-ip"], "'not-an-ip' is not an IP address or CIDR network"),
        (["ban", "add", "10.0.0.1", "--for", "soon"], "--for: 'soon' is not a duration"),
        (["ban", "remove", "10.9.9.9"], "no active ban on 10.9.9.9/32"),
        (["ban", "add", "10.0.0.1", "--reason", "bot\x00"], "reason: no control characters"),
    ],
)
def test_bad_ban_input_is_named(runner: CliRunner, args: list[str], message: str) -> None:
    runner.invoke(main, ["init"])
    result = runner.invoke(main, args)
    assert result.exit_code == 2 and message in result.output


def test_unlock_lifts_a_lock(runner: CliRunner, registry: Services) -> None:
    runner.invoke(main, ["init"])
    runner.invoke(main, ["accounts", "create", "bob@example.org"])
    with registry.db.session() as s:
        s.execute(Account.__table__.update().values(status="locked", failed_logins=20))  # type: ignore[attr-defined]
    result = runner.invoke(main, ["accounts", "unlock", "Bob@Example.org"])
    assert result.exit_code == 0, result.output
    assert "bob@example.org: active, failure count cleared" in result.output
    with registry.db.session() as s:
        acct = s.execute(select(Account)).scalar_one()
        assert (acct.status, acct.failed_logins) == ("active", 0)
