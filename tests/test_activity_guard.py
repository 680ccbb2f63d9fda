"""The activity guard against real counters: the database (SQLite, or PostgreSQL with
TEST_DATABASE_URL) or Redis (TEST_REDIS_URL). A robot is blocked within its first few dozen
look-ups and everything a block does is in the database; a person's day is never blocked;
a step-up is answered by the hook's second step; the portal's session id is never kept."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import random

import pyotp
import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import select, text

from auth import accounts, audit, report
from auth.activity import counters as counting
from auth.activity import exposure
from auth.activity.guard import ActivityReport, BadReport, Guard, Ruling
from auth.activity.policy import Decision, parse_policy
from auth.cli import main as cli
from auth.errors import NotFound
from auth.models import (
    Account,
    AccountNetwork,
    ActivityEvent,
    ActivitySession,
    Alert,
    AlertDelivery,
    AuditEvent,
    ExposedSubject,
    IpBan,
    Notice,
    SignInRecord,
    WebSession,
    utcnow,
)
from auth.services import Services
from auth.signin.flow import SignIn
from tests.totp_helpers import enroll_totp

EMAIL = "dr.martin@example.org"
OFFICE = "198.51.100.23"  # the network the person works from
ROBOT = "203.0.113.7"  # the attacker's address, a network the account never used
ACTOR = audit.Actor.cli("test")


@pytest.fixture
def account_id(registry: Services, now: dt.datetime) -> int:
    with registry.db.session() as s:
        created = accounts.create(
            s,
            email=EMAIL,
            password="Correct-Horse-42",
            hasher=registry.hasher,
            actor=ACTOR,
            now=now,
        )
        s.add(AccountNetwork(account_id=created.id, network="198.51.100.0/24", first_at=now))
        return int(created.id)


@pytest.fixture
def guard(registry: Services) -> Guard:
    return Guard(registry)


def lookup(
    guard: Guard, at: dt.datetime, subject: str, *, session: str = "robot-session", ip: str = ROBOT
) -> Ruling:
    report = ActivityReport(EMAIL, session, ip, "patient_lookup", subject=subject, at=at)
    return guard.report(report, now=at)


def robot(
    guard: Guard, start: dt.datetime, *, jitter: random.Random | None = None, ip: str = ROBOT
) -> list[Ruling]:
    """Chained look-ups at 2 per second until blocked (or 200 of them)."""
    rulings, at = [], start
    for n in range(200):
        rulings.append(lookup(guard, at, f"R{n:04d}", ip=ip))
        if rulings[-1].decision is Decision.BLOCK:
            break
        gap = jitter.expovariate(2.0) if jitter else 0.5
        at += dt.timedelta(seconds=gap)
    return rulings


def person_morning(guard: Guard, now: dt.datetime) -> None:
    """The owner's own look-ups from the office, before the robot starts."""
    at = now - dt.timedelta(hours=3)
    for n in range(12):
        assert lookup(guard, at, f"P{n:03d}", session="own", ip=OFFICE).decision is Decision.ALLOW
        at += dt.timedelta(minutes=7, seconds=n * 13)


def test_a_robot_from_a_new_network_is_blocked_and_everything_a_block_does_is_done(
    registry: Services, guard: Guard, account_id: int, now: dt.datetime
) -> None:
    person_morning(guard, now)
    with registry.db.session() as s:
        s.add(
            WebSession(
                id="a" * 64,
                account_id=account_id,
                session_epoch=0,
                created_at=now,
                last_seen_at=now,
                expires_at=now + dt.timedelta(hours=1),
            )
        )

    rulings = robot(guard, now)

    block = rulings[-1]
    assert block.decision is Decision.BLOCK and len(rulings) <= 40
    assert rulings[0].decision is Decision.STEP_UP and "new_network" in rulings[0].reasons
    assert rulings[0].to_json()["enroll_required"] is True  # no second factor to ask for
    assert "regular_spacing" in block.reasons
    robot_subjects = {f"R{n:04d}" for n in range(len(rulings))}
    with registry.db.session() as s:
        account = s.get(Account, account_id)
        assert account is not None
        assert (account.status, account.reset_reason_code) == ("reset_required", "activity_block")
        assert account.mfa_required and account.session_epoch >= 1
        assert s.execute(select(WebSession)).first() is None  # every session ended
        [notice] = s.execute(select(Notice)).scalars()
        assert (notice.account_id, notice.reason_code, notice.status) == (
            account_id,
            "activity_block",
            "queued",
        )
        [ban] = s.execute(select(IpBan)).scalars()
        assert ban.network == f"{ROBOT}/32" and ban.automatic
        blocked_at = now + dt.timedelta(seconds=0.5 * (len(rulings) - 1))
        ban_length = dt.timedelta(seconds=registry.settings.ip_ban_seconds)
        assert ban.expires_at == blocked_at + ban_length
        [alert] = s.execute(select(Alert).where(Alert.kind == "activity_block")).scalars()
        assert (alert.accounts, alert.addresses) == ([account_id], [ROBOT])
        assert alert.suspected_from == now  # the first look-up from the new network
        assert alert.evidence["exposed_subjects"] == len(robot_subjects)
        assert block.alert_id == alert.id
        exposed = {x.subject: x for x in s.execute(select(ExposedSubject)).scalars()}
        assert set(exposed) == robot_subjects  # not the owner's morning, nothing missed
        assert exposed["R0000"].first_at == now
        assert s.execute(
            select(AuditEvent).where(AuditEvent.action == audit.Action.SESSIONS_ENDED.value)
        ).first()

    later = lookup(guard, now + dt.timedelta(minutes=1), "R9999")
    assert (later.decision, later.reasons) == (Decision.BLOCK, ("blocked",))
    from_elsewhere = lookup(guard, now + dt.timedelta(minutes=2), "X", session="own", ip=OFFICE)
    assert from_elsewhere.decision is Decision.BLOCK  # the account waits for its reset


def test_a_robot_on_a_known_network_is_blocked_by_its_regular_spacing(
    registry: Services, guard: Guard, account_id: int, now: dt.datetime
) -> None:
    person_morning(guard, now)

    rulings = robot(guard, now, ip="198.51.100.99")

    assert [r.decision for r in rulings[:-1]] == [Decision.ALLOW] * (len(rulings) - 1)
    assert rulings[-1].reasons == ("regular_spacing",) and len(rulings) == 17
    with registry.db.session() as s:
        kept = set(s.execute(select(ExposedSubject.subject)).scalars())
    assert kept == {f"R{n:04d}" for n in range(17)}


def test_a_robot_with_random_spacing_meets_the_per_minute_limit(
    guard: Guard, account_id: int, now: dt.datetime
) -> None:
    rulings = robot(guard, now, jitter=random.Random(7), ip="198.51.100.99")

    assert rulings[-1].decision is Decision.BLOCK
    assert "rate_minute" in rulings[-1].reasons and len(rulings) <= 41


def test_a_persons_busy_day_is_never_blocked_nor_stepped_up(
    guard: Guard, account_id: int, now: dt.datetime
) -> None:
    rng = random.Random(25)
    at = now.replace(hour=8)
    seen = []
    for hour in range(9):
        per_hour = 100 if hour == 4 else rng.randint(20, 50)  # one busy hour
        end = at + dt.timedelta(hours=1)
        while at < end:
            seen.append(lookup(guard, at, f"S{rng.randrange(10**6)}", session="day", ip=OFFICE))
            at += dt.timedelta(seconds=rng.expovariate(per_hour / 3600))
    assert len(seen) > 300
    assert {r.decision for r in seen} == {Decision.ALLOW}


def test_a_step_up_answered_by_the_second_step_lets_the_session_go_on(
    registry: Services, guard: Guard, account_id: int
) -> None:
    now = utcnow()  # the second step checks a real TOTP code at this time
    secret = enroll_totp(registry, account_id)
    at = now + dt.timedelta(minutes=1)

    asked = lookup(guard, at, "A1", session="travel")

    assert asked.decision is Decision.STEP_UP and asked.reasons == ("new_network",)
    body = asked.to_json()
    assert body["factors"] == ["totp"] and body["enroll_required"] is False
    code = pyotp.TOTP(secret).at(at + dt.timedelta(seconds=30))
    second = SignIn(registry).second_step(body["continuation"], code=code, ip=ROBOT, now=at)
    assert second.decision.value == "allow"
    after = [
        lookup(guard, at + dt.timedelta(seconds=40 + 9 * n), f"A{n + 2}", session="travel")
        for n in range(10)
    ]
    assert {r.decision for r in after} == {Decision.ALLOW}
    with registry.db.session() as s:
        row = s.execute(select(ActivitySession)).scalar_one()
        assert row.stepped_up_at == at
        known = set(s.execute(select(AccountNetwork.network)).scalars())
        assert "203.0.113.0/24" in known
        [alert] = s.execute(select(Alert)).scalars()
        assert alert.kind == "activity_step_up"


def test_a_rate_step_up_restarts_the_windows_once_the_person_proves_themself(
    registry: Services, guard: Guard, account_id: int
) -> None:
    now = utcnow()
    secret = enroll_totp(registry, account_id)
    at, rulings = now + dt.timedelta(minutes=1), []
    for n in range(21):  # a quick burst from the office: the 21st in a minute asks
        rulings.append(lookup(guard, at, f"B{n}", session="desk", ip=OFFICE))
        at += dt.timedelta(seconds=1 + (n % 4))
    assert [r.decision for r in rulings[:20]] == [Decision.ALLOW] * 20
    assert rulings[20].decision is Decision.STEP_UP and rulings[20].reasons == ("rate_minute",)

    code = pyotp.TOTP(secret).at(at + dt.timedelta(seconds=30))
    token = rulings[20].continuation
    assert token is not None
    assert SignIn(registry).second_step(token, code=code, ip=OFFICE, now=at).decision.value == (
        "allow"
    )
    again = lookup(guard, at + dt.timedelta(seconds=2), "B21", session="desk", ip=OFFICE)
    assert again.decision is Decision.ALLOW


def test_the_first_network_of_an_account_becomes_known(
    registry: Services, guard: Guard, now: dt.datetime
) -> None:
    with registry.db.session() as s:
        accounts.create(
            s, email=EMAIL, password="x-Long-42!", hasher=registry.hasher, actor=ACTOR, now=now
        )

    first = lookup(guard, now, "F1", session="first", ip=OFFICE)
    moved = lookup(guard, now + dt.timedelta(minutes=5), "F2", session="first", ip=ROBOT)

    assert first.decision is Decision.ALLOW
    assert moved.decision is Decision.STEP_UP and moved.reasons == ("new_network",)


def test_the_portal_session_id_is_kept_only_as_its_sha256(
    registry: Services, guard: Guard, account_id: int, now: dt.datetime
) -> None:
    secret_session = "portal-session-7f3a9c"
    for n in range(30):
        lookup(guard, now + dt.timedelta(seconds=n / 2), f"K{n}", session=secret_session)

    digest = hashlib.sha256(secret_session.encode()).hexdigest()
    with registry.db.session() as s:
        kept = {r for r in s.execute(select(ActivityEvent.session)).scalars()}
        kept |= set(s.execute(select(ActivitySession.session)).scalars())
        details = [json.dumps(d) for d in s.execute(select(AuditEvent.details)).scalars()]
        alerts = [json.dumps(a.evidence) for a in s.execute(select(Alert)).scalars()]
    assert kept == {digest}
    assert not any(secret_session in blob for blob in details + alerts)
    if registry.settings.redis_url:
        client = redis.Redis.from_url(registry.settings.redis_url)
        prefix = f"{registry.settings.ratelimit_key_prefix}:activity:"
        keys = [k.decode() for k in client.scan_iter(f"{prefix}*")]
        assert keys and any(digest in k for k in keys)
        assert not any(secret_session in k for k in keys)
        for key in keys:
            members = client.zrange(key, 0, -1)
            assert not any(secret_session.encode() in m for m in members)


def test_an_unknown_account_or_a_malformed_report_is_refused(
    guard: Guard, account_id: int, now: dt.datetime
) -> None:
    with pytest.raises(NotFound):
        guard.report(ActivityReport("nobody@example.org", "s", OFFICE, "patient_lookup"))
    with pytest.raises(NotFound):
        guard.report(ActivityReport(str(account_id + 1000), "s", OFFICE, "patient_lookup"))
    with pytest.raises(NotFound):  # more digits than any id: not a number the column holds
        guard.report(ActivityReport("9" * 30, "s", OFFICE, "patient_lookup"))
    with pytest.raises(BadReport):  # a digit, not a number
        guard.report(ActivityReport("²", "s", OFFICE, "patient_lookup"))
    assert guard.report(ActivityReport(str(account_id), "s", OFFICE, "x")).decision.value == (
        "allow"
    )
    for bad, field in (
        (ActivityReport(EMAIL, "s", "999.1.1.1", "x"), "ip"),
        (ActivityReport(EMAIL, "", OFFICE, "x"), "session"),
        (ActivityReport(EMAIL, "s", OFFICE, "~step_up"), "action"),
        (ActivityReport(EMAIL, "s", OFFICE, "x", subject="k" * 129), "subject"),
        (ActivityReport(EMAIL, "s", OFFICE, "x", at=dt.datetime(2026, 1, 1)), "at"),
        (ActivityReport(EMAIL, "s", OFFICE, "x", at=now + dt.timedelta(hours=2)), "at"),
        (ActivityReport("not an address", "s", OFFICE, "x"), "account"),
    ):
        with pytest.raises(BadReport) as refused:
            guard.report(bad, now=now)
        assert refused.value.field == field


def test_after_the_reset_the_person_starts_afresh(
    registry: Services, guard: Guard, account_id: int, now: dt.datetime
) -> None:
    robot(guard, now, ip="198.51.100.99")
    with registry.db.session() as s:  # the person set a new password
        s.execute(
            text("UPDATE accounts SET status = 'active', reset_reason_code = NULL WHERE id = :a"),
            {"a": account_id},
        )

    later = lookup(guard, now + dt.timedelta(minutes=10), "N1", session="new", ip=OFFICE)

    assert later.decision is Decision.ALLOW


def test_exposed_subjects_and_old_events_are_purged(
    registry: Services, guard: Guard, account_id: int, now: dt.datetime
) -> None:
    robot(guard, now, ip="198.51.100.99")
    SignIn(registry).login(EMAIL, "Correct-Horse-42", ip=OFFICE, now=now)
    days = registry.settings.exposure_retention_days
    with registry.db.connection() as conn:
        assert exposure.purge(conn, now=now + dt.timedelta(days=days - 1), retention_days=days) == 0
    with registry.db.session() as s:
        assert s.execute(select(ActivityEvent)).first() is None  # past the longest window
        assert s.execute(select(ExposedSubject)).first() is not None
        assert s.execute(select(SignInRecord)).first() is not None
    with registry.db.connection() as conn:
        assert (
            exposure.purge(conn, now=now + dt.timedelta(days=days + 1), retention_days=days) == 17
        )
    with registry.db.session() as s:
        assert s.execute(select(SignInRecord)).first() is None


def test_report_exposure_lists_the_subjects_as_csv_and_json(
    registry: Services, guard: Guard, account_id: int, now: dt.datetime, runner: CliRunner
) -> None:
    block = robot(guard, now, ip="198.51.100.99")[-1]

    as_csv = runner.invoke(cli, ["report", "exposure", "--alert", str(block.alert_id)])
    as_json = runner.invoke(
        cli, ["report", "exposure", "--alert", str(block.alert_id), "--format", "json"]
    )

    assert as_csv.exit_code == 0, as_csv.output
    lines = as_csv.output.splitlines()
    assert lines[0] == "subject,first_at,account_id" and len(lines) == 18
    assert lines[1] == f"R0000,{now.isoformat()},{account_id}"
    assert as_json.exit_code == 0, as_json.output
    listed = json.loads(as_json.output)
    assert listed["alert"] == block.alert_id and len(listed["subjects"]) == 17
    assert listed["subjects"][0] == {
        "subject": "R0000",
        "first_at": now.isoformat(),
        "account_id": account_id,
    }


def test_report_exposure_refuses_an_unknown_alert_or_another_kind(
    registry: Services, guard: Guard, account_id: int, now: dt.datetime, runner: CliRunner
) -> None:
    asked = lookup(guard, now, "Q1")  # a new network: a step-up alert
    assert asked.alert_id is not None

    unknown = runner.invoke(cli, ["report", "exposure", "--alert", "999"])
    other = runner.invoke(cli, ["report", "exposure", "--alert", str(asked.alert_id)])

    assert unknown.exit_code == 2 and "no such alert" in unknown.output
    assert other.exit_code == 2 and "activity_step_up" in other.output


def test_both_counters_agree_on_the_counts(
    registry: Services, account_id: int, now: dt.datetime
) -> None:
    """The database's statement and Redis's pipeline count the same windows."""
    stores: list[counting.Counters] = [counting.DatabaseCounters(registry.db)]
    if registry.settings.redis_url:
        stores.append(counting.build(registry.settings, registry.db))
    answers = []
    for store in stores:
        facts = None
        for n in range(40):
            at = now + dt.timedelta(seconds=n * 45)
            event = counting.Event(
                account_id, "d" * 64, OFFICE, "198.51.100.0/24", "x", f"s{n % 30}", at
            )
            facts = store.observe(event, floor=0.0, recent=5)
        answers.append(facts)
    counted = [(f.account.minute, f.account.hour, f.subjects_hour) for f in answers if f]
    assert counted == [(2, 40, 30)] * len(stores)  # each store, not one against itself
    assert len(set(answers)) == 1  # recent times and network counts too


def test_the_incident_report_counts_the_exposed_subjects(
    registry: Services, guard: Guard, account_id: int, now: dt.datetime
) -> None:
    robot(guard, now, ip="198.51.100.99")

    with registry.db.connection() as conn:
        incident = report.gather(
            conn, since=now - dt.timedelta(hours=1), until=now + dt.timedelta(hours=1), now=now
        )

    assert incident.exposed_subjects == 17
    assert "looked up: 17 subject key(s)" in report.to_markdown(incident)


def test_many_accounts_new_to_one_network_ask_but_a_shared_known_network_does_not(
    registry: Services, now: dt.datetime
) -> None:
    quiet = parse_policy("*.new_network_step_up=false")  # the burst rule alone
    guard = Guard(
        dataclasses.replace(
            registry, settings=dataclasses.replace(registry.settings, activity_policy=quiet)
        )
    )
    with registry.db.session() as s:
        for n in range(41):
            made = accounts.create(
                s, email=f"pro{n}@example.org", hasher=registry.hasher, actor=ACTOR, now=now
            )
            s.add(AccountNetwork(account_id=made.id, network="198.51.100.0/24", first_at=now))

    def report(n: int, ip: str, at: dt.datetime) -> Ruling:
        return guard.report(
            ActivityReport(f"pro{n}@example.org", f"s{n}", ip, "patient_lookup"), now=at
        )

    hospital = [report(n, f"198.51.100.{n + 1}", now) for n in range(30)]
    attack = [
        report(30 + n, f"203.0.113.{n + 1}", now + dt.timedelta(seconds=20 * n)) for n in range(11)
    ]

    assert {r.decision for r in hospital} == {Decision.ALLOW}  # 30 behind one known NAT
    assert {r.decision for r in attack[:10]} == {Decision.ALLOW}
    assert (attack[10].decision, attack[10].reasons) == (Decision.STEP_UP, ("network_burst",))


def test_a_block_is_pushed_to_the_webhook_and_the_security_teams_address(
    registry: Services, account_id: int, now: dt.datetime
) -> None:
    pushing = dataclasses.replace(
        registry.settings,
        alert_webhook_url="http://127.0.0.1:9/alerts",
        alert_webhook_secret="s3cret",
        security_alert_email="soc@example.org",
    )
    guard = Guard(dataclasses.replace(registry, settings=pushing))

    assert robot(guard, now)[-1].decision is Decision.BLOCK

    with registry.db.session() as s:
        queued = s.execute(
            select(Alert.kind, AlertDelivery.channel).join(
                AlertDelivery, AlertDelivery.alert_id == Alert.id
            )
        ).all()
    assert sorted(queued) == [  # the step-up for the new network, then the block
        ("activity_block", "email"),
        ("activity_block", "webhook"),
        ("activity_step_up", "email"),
        ("activity_step_up", "webhook"),
    ]
