"""The finding policy table and the actions it shares with the console: force a reset,
require a second factor, dismiss; each applied once, audited with the actor who acted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from auth import accounts, audit
from auth.breach import finding_policy
from auth.breach.hashing import email_sha1
from auth.breach.importer import Importer, Source
from auth.errors import InvalidInput
from auth.models import (
    Account,
    AccountStatus,
    AuditEvent,
    BreachKind,
    Finding,
    Notice,
    Reset,
)
from auth.services import Services
from auth.signin.flow import SignIn
from auth.signin.rules import Decision
from tests.finding_helpers import open_finding

ALICE = audit.Actor.cli("alice")


def make_account(registry: Services, email: str, now: dt.datetime) -> int:
    with registry.db.session() as s:
        return int(
            s.execute(
                insert(Account)
                .values(email=email, email_sha1=email_sha1(email), created_at=now, updated_at=now)
                .returning(Account.id)
            ).scalar_one()
        )


def make_finding(
    registry: Services, account_id: int, kind: str, breach: str, now: dt.datetime
) -> int:
    with registry.db.session() as s:
        return open_finding(s, account_id, kind, breach, now)


def count(registry: Services, model: type, *where: object) -> int:
    with registry.db.session() as s:
        return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def finding(registry: Services, fid: int) -> Finding:
    with registry.db.session() as s:
        return s.execute(select(Finding).where(Finding.id == fid)).scalar_one()


def account(registry: Services, aid: int) -> Account:
    with registry.db.session() as s:
        return s.execute(select(Account).where(Account.id == aid)).scalar_one()


def run_table(
    registry: Services, now: dt.datetime, **overrides: str
) -> finding_policy.PolicyReport:
    table = {**registry.settings.finding_policy, **overrides}
    return finding_policy.run(
        registry.db,
        table,
        secret_key=registry.settings.secret_key,
        require_mfa_on_reset=True,
        now=now,
    )


@pytest.fixture
def exposed(registry: Services, now: dt.datetime) -> dict[str, int]:
    """Three accounts, one finding of each kind, and a fourth account with two findings."""
    ids = {n: make_account(registry, f"{n}@example.fr", now) for n in ("val", "pwd", "mail", "two")}
    return {
        "val": make_finding(registry, ids["val"], "valid_credential", "combo-2024", now),
        "pwd": make_finding(registry, ids["pwd"], "password_in_breach", "sign-in check", now),
        "mail": make_finding(registry, ids["mail"], "email_in_breach", "forum-2023", now),
        "two_a": make_finding(registry, ids["two"], "valid_credential", "combo-2024", now),
        "two_b": make_finding(registry, ids["two"], "email_in_breach", "forum-2023", now),
    }


def test_the_default_table_resets_leaked_credentials_and_asks_a_factor_for_breached_emails(
    registry: Services, exposed: dict[str, int], now: dt.datetime
) -> None:
    report = run_table(registry, now)
    assert report.reset_findings == 3 and report.reset_accounts == 3
    assert report.mfa_findings == 2
    # "two" is reset (and so already must use a second factor): only "mail" changes.
    assert report.mfa_accounts == 1
    val, mail = finding(registry, exposed["val"]), finding(registry, exposed["mail"])
    assert (val.action, val.acted_by, val.acted_at) == ("reset", "policy:finding_policy", now)
    assert val.reset_id is not None
    assert (mail.action, mail.acted_by) == ("mfa", "policy:finding_policy")
    mail_account = account(registry, mail.account_id)
    assert mail_account.mfa_required and mail_account.status == AccountStatus.ACTIVE
    assert account(registry, val.account_id).status == AccountStatus.RESET_REQUIRED
    assert count(registry, Reset) == 3 and count(registry, Notice) == 3
    acted = count(registry, AuditEvent, AuditEvent.action == "finding:acted")
    forced = count(registry, AuditEvent, AuditEvent.action == "account:reset:forced")
    assert acted == 5 and forced == 3  # one per account and action
    with registry.db.session() as s:
        actors = set(s.execute(select(AuditEvent.actor)).scalars())
    assert actors == {"policy:finding_policy"}


def test_running_the_table_twice_acts_once(
    registry: Services, exposed: dict[str, int], now: dt.datetime
) -> None:
    run_table(registry, now)
    events = count(registry, AuditEvent)
    again = run_table(registry, now + dt.timedelta(hours=1))
    assert again.as_dict() == finding_policy.PolicyReport().as_dict()
    assert count(registry, Reset) == 3 and count(registry, Notice) == 3
    assert count(registry, AuditEvent) == events


def test_a_kind_mapped_to_none_is_left_for_the_console(
    registry: Services, exposed: dict[str, int], now: dt.datetime
) -> None:
    report = run_table(registry, now, email_in_breach="none", valid_credential="none")
    assert report.reset_findings == 1 and report.mfa_findings == 0
    left = finding(registry, exposed["mail"])
    assert left.action is None and left.acted_at is None
    assert not account(registry, left.account_id).mfa_required


def test_the_table_may_reset_on_a_breached_email(
    registry: Services, exposed: dict[str, int], now: dt.datetime
) -> None:
    run_table(registry, now, email_in_breach="reset")
    assert finding(registry, exposed["mail"]).action == "reset"
    assert count(registry, Reset) == 4  # "two" once, for its first finding


def test_the_console_escalates_a_second_factor_to_a_reset_once(
    registry: Services, exposed: dict[str, int], now: dt.datetime
) -> None:
    run_table(registry, now)
    later = now + dt.timedelta(minutes=5)
    with registry.db.session() as s:
        first = finding_policy.force_reset(
            s,
            [exposed["mail"], exposed["val"], 999_999],
            actor=ALICE,
            reason="seen on a paste site",
            secret_key=registry.settings.secret_key,
            now=later,
        )
    assert first.findings == [exposed["mail"]]
    assert sorted(first.skipped) == sorted([exposed["val"], 999_999])
    assert len(first.accounts) == 1
    mail = finding(registry, exposed["mail"])
    assert (mail.action, mail.acted_by, mail.acted_at) == ("reset", "cli:alice", later)
    assert account(registry, mail.account_id).reset_reason == "seen on a paste site"
    with registry.db.session() as s:
        second = finding_policy.force_reset(
            s,
            [exposed["mail"]],
            actor=ALICE,
            reason="again",
            secret_key=registry.settings.secret_key,
            now=later,
        )
    assert second.findings == [] and second.skipped == [exposed["mail"]]
    assert count(registry, Reset) == 4


def test_a_finding_a_reset_job_already_covered_is_marked_not_reset_again(
    registry: Services, exposed: dict[str, int], now: dt.datetime
) -> None:
    with registry.db.session() as s:
        done = finding_policy.force_reset(
            s,
            [exposed["val"]],
            actor=ALICE,
            reason="",
            secret_key=registry.settings.secret_key,
            now=now,
        )
    assert len(done.accounts) == 1
    # The account sets a new password; a later action on the same finding does nothing.
    with registry.db.session() as s:
        s.execute(
            Account.__table__.update()
            .where(Account.id == done.accounts[0])
            .values(status=AccountStatus.ACTIVE)
        )
        s.execute(
            Finding.__table__.update().where(Finding.id == exposed["val"]).values(action=None)
        )
    with registry.db.session() as s:
        again = finding_policy.force_reset(
            s,
            [exposed["val"]],
            actor=ALICE,
            reason="",
            secret_key=registry.settings.secret_key,
            now=now,
        )
    assert again.findings == [exposed["val"]] and again.accounts == []
    assert again.already == [done.accounts[0]]
    assert count(registry, Reset) == 1


def test_requiring_a_factor_marks_the_findings_and_flags_the_account_once(
    registry: Services, exposed: dict[str, int], now: dt.datetime
) -> None:
    with registry.db.session() as s:
        first = finding_policy.require_mfa(s, [exposed["mail"]], actor=ALICE, now=now)
    with registry.db.session() as s:
        second = finding_policy.require_mfa(s, [exposed["mail"]], actor=ALICE, now=now)
    assert len(first.accounts) == 1 and first.findings == [exposed["mail"]]
    assert second.findings == [] and second.skipped == [exposed["mail"]]
    assert account(registry, first.accounts[0]).mfa_required


def test_dismissing_needs_a_reason_and_closes_the_findings(
    registry: Services, exposed: dict[str, int], now: dt.datetime
) -> None:
    with registry.db.session() as s, pytest.raises(InvalidInput, match="reason"):
        finding_policy.dismiss(s, [exposed["mail"]], actor=ALICE, reason="  ", now=now)
    with registry.db.session() as s:
        result = finding_policy.dismiss(
            s, [exposed["mail"]], actor=ALICE, reason="a shared test mailbox", now=now
        )
    assert result.findings == [exposed["mail"]]
    mail = finding(registry, exposed["mail"])
    assert (mail.status, mail.action, mail.note) == (
        "dismissed",
        "dismiss",
        "a shared test mailbox",
    )
    assert run_table(registry, now).mfa_findings == 1  # only "two"'s breached e-mail is left
    assert not account(registry, mail.account_id).mfa_required


def test_a_backlog_is_worked_through_in_batches(registry: Services, now: dt.datetime) -> None:
    for i in range(7):
        aid = make_account(registry, f"b{i}@example.fr", now)
        make_finding(registry, aid, "email_in_breach", "forum-2023", now)
    report = finding_policy.run(
        registry.db,
        registry.settings.finding_policy,
        secret_key=registry.settings.secret_key,
        require_mfa_on_reset=True,
        now=now,
        batch=3,
    )
    assert report.mfa_findings == 7 and report.mfa_accounts == 7
    assert count(registry, Finding, Finding.action.is_(None)) == 0


def test_a_password_found_at_sign_in_is_reset_by_the_login_flow_not_again_by_the_table(
    registry: Services, tmp_path: Path, now: dt.datetime
) -> None:
    leaked = "Summer2024!"
    corpus = tmp_path / "leak.txt"
    corpus.write_text(f"{leaked}\n")
    with registry.db.session() as s:
        accounts.create(
            s,
            email="claire@example.fr",
            password=leaked,
            hasher=registry.hasher,
            actor=ALICE,
            now=now,
        )
        Importer(s, registry.hasher, ALICE).run(
            Source(str(corpus)), BreachKind.PASSWORDS, breach="Leak"
        )
    answer = SignIn(registry, sleep=lambda _s: None).login(
        "claire@example.fr", leaked, ip="203.0.113.7"
    )
    assert answer.decision is Decision.RESET_REQUIRED
    with registry.db.session() as s:
        found = s.execute(select(Finding)).scalar_one()
    assert (found.kind, found.action, found.acted_by) == (
        "password_in_breach",
        "reset",
        "policy:login",
    )
    # The account sets a new password; the table must not reset it for the same finding.
    with registry.db.session() as s:
        s.execute(Account.__table__.update().values(status=AccountStatus.ACTIVE))
    assert run_table(registry, now).reset_findings == 0
    assert count(registry, Reset) == 1 and count(registry, Notice) == 1
