"""`breachguard report incident`: a seeded incident gives the expected counts and times,
rendered as Markdown or escaped HTML; bad dates exit 2."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from auth import accounts, audit, notify, report
from auth.breach import findings
from auth.breach.checker import Checker
from auth.cli import main
from auth.mfa import census
from auth.models import Finding, FindingKind
from auth.reset import complete, forced
from auth.services import Services
from auth.signin import bans
from tests.totp_helpers import enroll_totp

ALICE = audit.Actor.cli("alice")
SINCE = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC)
UNTIL = SINCE + dt.timedelta(days=1)
T1 = SINCE + dt.timedelta(hours=1)  # resets forced
T2 = SINCE + dt.timedelta(hours=2)  # second factor required, a finding dismissed
T3 = SINCE + dt.timedelta(hours=3)  # an account locked
T4 = SINCE + dt.timedelta(hours=4)  # an address banned
T5 = SINCE + dt.timedelta(hours=5)  # notices sent
T6 = T5 + dt.timedelta(minutes=5)  # one new password set
NEW_PASSWORD = "Lantern-Orchard-Pebble-Sonata"
LINK = re.compile(r"/reset/([A-Za-z0-9_\-]+)")


def _token(outbox: Path) -> str:
    eml = sorted(outbox.glob("*.eml"))[0]
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    body = message.get_body(("plain",))
    assert body is not None
    found = LINK.search(body.get_content())
    assert found, "no reset link in the notice"
    return found.group(1)


@dataclasses.dataclass
class Seeded:
    ids: dict[str, int]


@pytest.fixture
def seeded(registry: Services) -> Seeded:
    """Four accounts; d had TOTP before the incident and a d finding predates it; a, b, c
    are found exposed in the window; a and b are reset, c must use a second factor."""
    before = SINCE - dt.timedelta(days=10)
    ids: dict[str, int] = {}
    with registry.db.session() as s:
        for name in "abcd":
            ids[name] = accounts.create(
                s,
                email=f"{name}@example.org",
                password="Old-Password-For-" + name,
                hasher=registry.hasher,
                actor=ALICE,
                now=before,
            ).id
        findings.record(
            s,
            [(ids["d"], FindingKind.EMAIL_IN_BREACH, "local", "old-leak")],
            actor=ALICE,
            now=before,
        )
    enroll_totp(registry, ids["d"])
    with registry.db.engine.begin() as conn:
        census.snapshot(conn, SINCE.date() - dt.timedelta(days=1))
    with registry.db.session() as s:
        findings.record(
            s,
            [
                (ids["a"], FindingKind.VALID_CREDENTIAL, "combos", "webmail-2022"),
                (ids["b"], FindingKind.PASSWORD_IN_BREACH, "local", "webmail-2022"),
                (ids["b"], FindingKind.EMAIL_IN_BREACH, "local", "sante-forum"),
                (ids["c"], FindingKind.EMAIL_IN_BREACH, "local", "sante-forum"),
            ],
            actor=audit.Actor.policy("scan"),
            now=SINCE + dt.timedelta(minutes=30),
        )
    with registry.db.session() as s:
        plan = forced.Plan("leak", "job:1", None, require_mfa=True, actor=ALICE)
        targets = [forced.Target(ids["a"]), forced.Target(ids["b"])]
        forced.apply(s, targets, plan, secret_key=registry.settings.secret_key, now=T1)
    with registry.db.engine.begin() as conn:
        for account, action, by in (("c", "mfa", "policy:monitor"), ("d", "dismiss", "cli:bob")):
            conn.execute(
                update(Finding)
                .where(Finding.account_id == ids[account])
                .values(action=action, acted_at=T2, acted_by=by)
            )
    with registry.db.session() as s:
        locked = audit.Event(
            audit.Actor.policy("login"), audit.Action.ACCOUNT_LOCKED, f"account:{ids['c']}"
        )
        audit.append(s, [locked], now=T3)
        bans.add(s, "203.0.113.7", reason="robot", expires_at=None, actor=ALICE, now=T4)
    outbox = registry.settings.outbox_path
    sent = notify.drain(
        registry.db, mailer=notify.OutboxMailer(outbox), settings=registry.settings, now=lambda: T5
    )
    assert sent.sent == 2
    token = _token(outbox)
    with registry.db.session() as s:
        complete.complete_reset(
            s,
            token=token,
            new_password=NEW_PASSWORD,
            repeat=NEW_PASSWORD,
            hasher=registry.hasher,
            checker=Checker([]),
            now=T6,
        )
    enroll_totp(registry, ids["a"])  # after: a and d covered
    return Seeded(ids)


def _gather(registry: Services, **kw: bool) -> report.Incident:
    with registry.db.engine.connect() as conn:
        return report.gather(conn, since=SINCE, until=UNTIL, now=UNTIL, **kw)


def test_accounts_affected_are_the_findings_first_seen_in_the_window(
    registry: Services, seeded: Seeded
) -> None:
    inc = _gather(registry)
    assert inc.accounts_affected == 3 and inc.accounts_total == 4
    seen = SINCE + dt.timedelta(minutes=30)
    assert [(e.kind, e.breach, e.findings, e.accounts) for e in inc.exposures] == [
        ("email_in_breach", "sante-forum", 2, 2),
        ("password_in_breach", "webmail-2022", 1, 1),
        ("valid_credential", "webmail-2022", 1, 1),
    ]
    assert {e.first_seen for e in inc.exposures} == {seen}


def test_an_account_found_in_two_breaches_counts_once_for_its_kind(
    registry: Services, seeded: Seeded
) -> None:
    with registry.db.session() as s:
        findings.record(
            s,
            [(seeded.ids["c"], FindingKind.EMAIL_IN_BREACH, "local", "webmail-2022")],
            actor=ALICE,
            now=SINCE + dt.timedelta(hours=1),
        )
    inc = _gather(registry)
    assert dict(inc.accounts_by_kind)["email_in_breach"] == 2  # b and c, c in two breaches
    assert "e-mail address found in a breach: 2 account(s)" in report.to_markdown(inc)


def test_measures_are_listed_with_who_how_many_and_when(registry: Services, seeded: Seeded) -> None:
    inc = _gather(registry)
    got = [(m.what, m.by, m.count, m.accounts, m.first, m.last) for m in inc.measures]
    assert got == [
        ("password reset forced", "cli:alice", 2, 2, T1, T1),
        ("second factor required", "policy:monitor", 1, 1, T2, T2),
        ("finding dismissed", "cli:bob", 1, 1, T2, T2),
        ("account locked (wrong passwords)", "policy:login", 1, 1, T3, T3),
        ("IP address banned", "cli:alice", 1, 1, T4, T4),
        ("e-mail notice sent", "reset_forced", 2, 2, T5, T5),
        ("new password set after a forced reset", "the account holder", 1, 1, T6, T6),
    ]


def test_coverage_before_is_the_recorded_day_and_after_is_counted_now(
    registry: Services, seeded: Seeded
) -> None:
    inc = _gather(registry)
    assert inc.coverage_before is not None
    assert (inc.coverage_before.accounts, inc.coverage_before.covered) == (4, 1)
    assert (inc.coverage_after.accounts, inc.coverage_after.covered) == (4, 2)


def test_without_a_recorded_day_coverage_before_says_not_recorded(registry: Services) -> None:
    inc = _gather(registry)
    assert inc.coverage_before is None
    assert "Second-factor coverage before the window: not recorded" in report.to_markdown(inc)


def test_the_markdown_report_follows_article_33_and_leaves_the_dpo_fields_marked(
    registry: Services, seeded: Seeded
) -> None:
    text = report.to_markdown(_gather(registry))
    for heading in ("Nature of the personal data breach", "approximate number", "consequences"):
        assert heading in text
    assert "3 account(s) affected, of 4 in total" in text
    assert "| password reset forced | cli:alice | 2 | 2 | 2026-11-28 09:00:00Z |" in text
    assert "1 of 4 accounts (25.0%)" in text and "2 of 4 accounts (50.0%)" in text
    assert text.count("**\\[TO BE COMPLETED BY THE DATA PROTECTION OFFICER\\]**") == 5
    assert "@example.org" not in text  # counts only, unless asked


def test_with_accounts_adds_the_annex_listing(registry: Services, seeded: Seeded) -> None:
    inc = _gather(registry, with_accounts=True)
    assert inc.accounts is not None
    assert [(a.email, a.kinds, a.reset_at) for a in inc.accounts] == [
        ("a@example.org", ("valid_credential",), T1),
        ("b@example.org", ("email_in_breach", "password_in_breach"), T1),
        ("c@example.org", ("email_in_breach",), None),
    ]
    assert "Annex: accounts affected" in report.to_markdown(inc)


def test_every_value_is_escaped_in_html() -> None:
    hostile = "<script>alert('x')</script>&"
    inc = report.Incident(
        since=SINCE,
        until=UNTIL,
        generated_at=UNTIL,
        exposures=(report.Exposure("email_in_breach", hostile, 1, 1, T1, T1),),
        accounts_affected=1,
        accounts_total=1,
        measures=(report.Measure("password reset forced", hostile, 1, 1, T1, T1),),
        coverage_day=SINCE.date(),
        coverage_before=None,
        coverage_after=census.Census(UNTIL.date(), 1, 1, 0, 0, 0),
        accounts=(report.AffectedAccount(1, hostile, ("email_in_breach",), T1, None),),
    )
    page = report.to_html(inc)
    assert "<script>" not in page and "alert(&#x27;x&#x27;)" in page
    assert page.count("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;") == 3
    markdown = report.to_markdown(inc)
    assert "<script>" not in markdown and "\\<script\\>" in markdown


def test_the_cli_writes_the_html_report_to_a_file(
    registry: Services, seeded: Seeded, runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "incident.html"
    result = runner.invoke(
        main,
        [
            "report",
            "incident",
            "--since",
            "2026-11-28T08:00:00Z",
            "--until",
            "2026-11-29T08:00:00Z",
            "--format",
            "html",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 account(s) affected" in result.output
    page = out.read_text()
    assert page.startswith("<!doctype html>") and "<td>password reset forced</td>" in page
    assert "@example.org" not in page


def test_the_cli_prints_markdown_by_default(
    registry: Services, seeded: Seeded, runner: CliRunner
) -> None:
    result = runner.invoke(main, ["report", "incident", "--since", "2026-11-28", "--with-accounts"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# Personal data breach notification")
    assert "a@example.org" in result.output


@pytest.mark.parametrize("bad", ["last week", "2026-13-01", ""])
def test_a_bad_since_exits_2_naming_the_option(
    registry: Services, runner: CliRunner, bad: str
) -> None:
    result = runner.invoke(main, ["report", "incident", "--since", bad])
    assert result.exit_code == 2 and "--since" in result.output


def test_since_is_required(registry: Services, runner: CliRunner) -> None:
    result = runner.invoke(main, ["report", "incident"])
    assert result.exit_code == 2 and "--since" in result.output
