"""Continuous monitoring against the local corpus: a new import is checked against every
account, new accounts against every import, each finding recorded once; and the pacing
logic that keeps HIBP look-ups under the plan's rate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, insert, select

from auth import audit
from auth.breach import monitor
from auth.breach.hashing import email_sha1
from auth.breach.importer import Importer, Source
from auth.breach.pacing import Budget, Pacer
from auth.cli import main
from auth.errors import InvalidInput
from auth.models import Account, AuditEvent, Breach, BreachKind, Finding
from auth.services import Services

TESTER = audit.Actor.cli("tester")


class Clock:
    """A settable UTC clock for the monitor's timestamps."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self, minutes: int = 60) -> dt.datetime:
        self.now += dt.timedelta(minutes=minutes)
        return self.now


def add_accounts(registry: Services, emails: list[str], now: dt.datetime) -> None:
    with registry.db.session() as s:
        s.execute(
            insert(Account),
            [
                {"email": e, "email_sha1": email_sha1(e), "created_at": now, "updated_at": now}
                for e in emails
            ],
        )


def import_emails(
    registry: Services, tmp: Path, name: str, emails: list[str], now: dt.datetime
) -> None:
    path = tmp / f"{name}.txt"
    path.write_text("\n".join(emails) + "\n")
    with registry.db.session() as s:
        Importer(s, registry.hasher, TESTER).run(
            Source(str(path)), BreachKind.EMAILS, breach=name, now=now
        )


def findings_by_key(registry: Services) -> dict[tuple[str, str], Finding]:
    with registry.db.session() as s:
        rows = s.execute(
            select(Account.email, Finding).join(Account, Account.id == Finding.account_id)
        ).all()
    return {(email, f.breach): f for email, f in rows}


def run(registry: Services, clock: Clock) -> monitor.MonitorReport:
    return monitor.run(registry, actor=TESTER, budget=Budget(), clock=clock)


def events(registry: Services, action: str) -> int:
    with registry.db.session() as s:
        return int(
            s.execute(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
            ).scalar_one()
        )


@pytest.fixture
def clock(now: dt.datetime) -> Clock:
    return Clock(now)


def test_a_second_corpus_yields_exactly_the_new_findings_and_keeps_first_seen(
    registry: Services, tmp_path: Path, clock: Clock
) -> None:
    add_accounts(registry, ["ana@example.fr", "ben@example.fr", "cai@example.fr"], clock())
    import_emails(registry, tmp_path, "forum-2023", ["ana@example.fr", "x@example.org"], clock())
    first = run(registry, clock)
    assert first.breaches == {"forum-2023": 1}
    assert set(findings_by_key(registry)) == {("ana@example.fr", "forum-2023")}
    first_seen = findings_by_key(registry)[("ana@example.fr", "forum-2023")].first_seen

    later = clock.tick()
    import_emails(registry, tmp_path, "webmail-2024", ["ana@example.fr", "ben@example.fr"], later)
    second = run(registry, clock)
    assert second.breaches == {"webmail-2024": 2}
    assert second.accounts_checked == 0 and second.account_findings == 0
    found = findings_by_key(registry)
    assert set(found) == {
        ("ana@example.fr", "forum-2023"),
        ("ana@example.fr", "webmail-2024"),
        ("ben@example.fr", "webmail-2024"),
    }
    assert found[("ana@example.fr", "forum-2023")].first_seen == first_seen
    assert found[("ben@example.fr", "webmail-2024")].first_seen == later
    assert events(registry, "finding:recorded") == 3


def test_a_run_with_nothing_new_records_and_acts_on_nothing(
    registry: Services, tmp_path: Path, clock: Clock
) -> None:
    add_accounts(registry, ["ana@example.fr"], clock())
    import_emails(registry, tmp_path, "forum-2023", ["ana@example.fr"], clock())
    run(registry, clock)
    before = events(registry, "finding:recorded"), events(registry, "finding:acted")
    clock.tick()
    again = run(registry, clock)
    assert again.new_findings == 0 and again.breaches == {}
    assert again.policy.as_dict() == {k: 0 for k in again.policy.as_dict()}
    assert (events(registry, "finding:recorded"), events(registry, "finding:acted")) == before
    assert events(registry, "monitor:completed") == 2


def test_accounts_created_later_are_checked_against_every_earlier_import(
    registry: Services, tmp_path: Path, clock: Clock
) -> None:
    add_accounts(registry, ["ana@example.fr"], clock())
    import_emails(registry, tmp_path, "forum-2023", ["dan@example.fr"], clock())
    import_emails(registry, tmp_path, "webmail-2024", ["dan@example.fr", "eve@example.fr"], clock())
    assert run(registry, clock).new_findings == 0
    add_accounts(registry, ["dan@example.fr", "eve@example.fr", "fay@example.fr"], clock.tick())
    report = run(registry, clock)
    assert report.breaches == {} and report.accounts_checked == 3
    assert set(findings_by_key(registry)) == {
        ("dan@example.fr", "forum-2023"),
        ("dan@example.fr", "webmail-2024"),
        ("eve@example.fr", "webmail-2024"),
    }
    with registry.db.session() as s:
        assert monitor.read_state(s, monitor.ACCOUNTS_STATE) == {"through": 4}


def test_new_accounts_are_worked_through_in_batches_each_moving_the_watermark(
    registry: Services, tmp_path: Path, clock: Clock
) -> None:
    emails = [f"pro{i}@example.fr" for i in range(7)]
    import_emails(registry, tmp_path, "forum-2023", emails[::2], clock())
    add_accounts(registry, emails, clock())
    monitor.check_imports(registry.db, actor=TESTER, clock=clock)  # the import: 4 findings
    with registry.db.session() as s:
        s.execute(Finding.__table__.delete())  # so the account step must find them again
    checked, new = monitor.check_new_accounts(registry.db, actor=TESTER, clock=clock, batch=3)
    assert (checked, new) == (7, 4)
    with registry.db.session() as s:
        assert monitor.read_state(s, monitor.ACCOUNTS_STATE) == {"through": 7}


def test_a_reimported_breach_is_checked_again_and_its_findings_seen_again(
    registry: Services, tmp_path: Path, clock: Clock
) -> None:
    add_accounts(registry, ["ana@example.fr", "ben@example.fr"], clock())
    import_emails(registry, tmp_path, "forum-2023", ["ana@example.fr"], clock())
    run(registry, clock)
    later = clock.tick()
    import_emails(registry, tmp_path, "forum-2023", ["ana@example.fr", "ben@example.fr"], later)
    assert run(registry, clock).breaches == {"forum-2023": 1}
    found = findings_by_key(registry)
    assert found[("ana@example.fr", "forum-2023")].last_seen == later
    assert found[("ben@example.fr", "forum-2023")].first_seen == later
    with registry.db.session() as s:
        breach = s.execute(select(Breach)).scalar_one()
    assert breach.checked_at == breach.imported_at == later


def test_a_monitor_run_applies_the_policy_table_once(
    registry: Services, tmp_path: Path, clock: Clock
) -> None:
    add_accounts(registry, ["ana@example.fr", "ben@example.fr"], clock())
    import_emails(registry, tmp_path, "forum-2023", ["ana@example.fr"], clock())
    report = run(registry, clock)
    assert report.policy.mfa_findings == 1 and report.policy.mfa_accounts == 1
    with registry.db.session() as s:
        required = dict(s.execute(select(Account.email, Account.mfa_required)).all())
    assert required == {"ana@example.fr": True, "ben@example.fr": False}
    assert run(registry, clock).policy.mfa_findings == 0


def test_corpus_import_checks_the_accounts_and_applies_the_policy_unless_told_not_to(
    registry: Services, runner: CliRunner, tmp_path: Path, clock: Clock
) -> None:
    add_accounts(registry, ["ana@example.fr", "ben@example.fr"], clock())
    first = tmp_path / "forum.txt"
    first.write_text("ana@example.fr\n")
    quiet = runner.invoke(
        main, ["corpus", "import", str(first), "--type", "emails", "--no-monitor"]
    )
    assert quiet.exit_code == 0, quiet.output
    assert findings_by_key(registry) == {}
    second = tmp_path / "webmail.txt"
    second.write_text("ben@example.fr\n")
    result = runner.invoke(
        main, ["corpus", "import", str(second), "--type", "emails", "--breach", "webmail"]
    )
    assert result.exit_code == 0, result.output
    assert "1 new finding(s)" in result.output and "1 newly required" in result.output
    # Only the import just made is checked; the one imported with --no-monitor waits.
    assert set(findings_by_key(registry)) == {("ben@example.fr", "webmail")}
    assert run(registry, clock).breaches == {"forum": 1}


# --- pacing ---------------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_the_pacer_spaces_calls_to_the_rate_per_minute() -> None:
    fake = FakeTime()
    pacer = Pacer(10, clock=fake.clock, sleep=fake.sleep)
    assert pacer.wait() == 0.0  # the first call goes at once
    fake.t += 2.0  # the call itself took 2 s
    assert pacer.wait() == pytest.approx(4.0)  # 6 s between starts at 10 per minute
    fake.t += 10.0  # a slow call: no wait after it
    assert pacer.wait() == 0.0
    assert fake.slept == [pytest.approx(4.0)]


def test_a_rate_below_one_per_minute_is_refused() -> None:
    with pytest.raises(InvalidInput, match="HIBP_RATE_PER_MINUTE"):
        Pacer(0)


def test_the_budget_stops_at_its_count_or_before_a_wait_that_would_overrun() -> None:
    fake = FakeTime()
    by_count = Budget(max_items=2, clock=fake.clock)
    by_count.start()
    assert by_count.allows()
    by_count.spend()
    by_count.spend()
    assert not by_count.allows()
    by_time = Budget(max_seconds=30, clock=fake.clock)
    by_time.start()
    fake.t += 25
    assert by_time.allows(wait=5.0)
    assert not by_time.allows(wait=6.0)
    assert Budget().allows(wait=1e9)  # no limits: a run goes to the end of the pass
