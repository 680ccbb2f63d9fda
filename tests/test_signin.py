"""The login flow in process (auth/signin/flow.py) on a real database: what each decision does
to the account, the audit trail, bans and continuations."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from auth import accounts, audit
from auth.breach.importer import Importer, Source
from auth.config import Settings
from auth.models import (
    Account,
    AuditEvent,
    BreachKind,
    Finding,
    LoginContinuation,
    Notice,
    utcnow,
)
from auth.services import Services, build
from auth.signin import bans, lockout
from auth.signin.flow import SignIn
from auth.signin.rules import Decision
from tests.totp_helpers import enroll_totp, next_code

PASSWORD = "Correct-Horse-Battery-42"
LEAKED = "Summer2024!"  # in the local corpus below
EMAIL = "claire@example.fr"
IP = "203.0.113.7"
ACTOR = audit.Actor.cli("test")


class Clock:
    """Sign-ins at chosen times (backoff delays are minutes long)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def tick(self, seconds: float = 3600) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def site(settings: Settings, tmp_path: Path) -> Services:
    registry = build(dataclasses.replace(settings, ip_ban_after=0))
    corpus = tmp_path / "leak.txt"
    corpus.write_text(f"{LEAKED}\n")
    with registry.db.session() as s:
        accounts.create(
            s, email=EMAIL, password=PASSWORD, hasher=registry.hasher, actor=ACTOR, now=utcnow()
        )
        Importer(s, registry.hasher, ACTOR).run(
            Source(str(corpus)), BreachKind.PASSWORDS, breach="Leak"
        )
    return registry


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def flow(site: Services, waits: list[float]) -> SignIn:
    return SignIn(site, sleep=waits.append)


def account(site: Services) -> Account:
    with site.db.session() as s:
        found = s.execute(select(Account).where(Account.email == EMAIL)).scalar_one()
        s.expunge(found)
        return found


def actions(site: Services) -> list[str]:
    with site.db.session() as s:
        return list(s.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


def all_at_once(attempt: Callable[[int], None], n: int) -> None:
    """Run attempt(0..n-1) in n threads and wait for them all."""
    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_a_clean_account_without_a_factor_is_allowed_and_the_decision_audited(
    flow: SignIn, site: Services
) -> None:
    answer = flow.login(EMAIL, PASSWORD, ip=IP, user_agent="Firefox")
    assert answer.decision is Decision.ALLOW
    assert answer.to_json()["reasons"] == ["no_mfa_required"]
    assert actions(site)[-1] == audit.Action.LOGIN_DECIDED


def test_wrong_password_and_unknown_email_get_the_same_answer(flow: SignIn, site: Services) -> None:
    wrong = flow.login(EMAIL, "not-it", ip=IP)
    unknown = flow.login("nobody@example.fr", PASSWORD, ip=IP)
    assert wrong.to_json() == unknown.to_json()
    assert wrong.to_json()["decision"] == "deny"
    assert wrong.to_json()["reasons"] == ["invalid_credentials"]
    assert account(site).failed_logins == 1
    assert actions(site)[-2:] == [audit.Action.LOGIN_FAILED] * 2


def test_after_five_failures_attempts_wait_without_hashing(
    flow: SignIn, site: Services, waits: list[float]
) -> None:
    clock = Clock()
    for _ in range(5):
        assert flow.login(EMAIL, "wrong", ip=IP, now=clock.tick()).decision is Decision.DENY
    verifies = []
    original = site.hasher.verify
    site.hasher.verify = lambda *a: verifies.append(1) or original(*a)  # type: ignore[method-assign]
    # One second after the fifth failure: still inside the first (1 s) delay.
    throttled = flow.login(EMAIL, PASSWORD, ip=IP, now=clock.tick(0.5))
    assert throttled.decision is Decision.DENY
    assert verifies == [] and len(waits) == 1  # it waited (what an argon2 run takes) instead
    assert account(site).failed_logins == 5  # a refused attempt is not a counted guess
    # After the delay, the right password gets in and clears the count.
    assert flow.login(EMAIL, PASSWORD, ip=IP, now=clock.tick(2)).decision is Decision.ALLOW
    assert account(site).failed_logins == 0


def test_attempts_racing_for_the_slot_a_backoff_opens_are_hashed_once(
    flow: SignIn, site: Services
) -> None:
    """A flood from many addresses: when the delay ends, every attempt in flight has read
    the same count of failures. One of them is hashed; the others are refused unhashed."""
    clock = Clock()
    for _ in range(5):
        flow.login(EMAIL, "wrong", ip=IP, now=clock.tick())
    after_delay = clock.tick()
    hashed: list[int] = []
    read = threading.Barrier(6)
    original = site.hasher.verify

    def slow_verify(*args: object) -> object:
        hashed.append(1)
        time.sleep(0.2)  # the others have read the account and asked for the slot by now
        return original(*args)  # type: ignore[arg-type]

    site.hasher.verify = slow_verify  # type: ignore[method-assign, assignment]
    answers: list[Decision] = []

    def attempt(i: int) -> None:
        read.wait()
        answer = flow.login(EMAIL, "wrong", ip=f"198.51.100.{i}", now=after_delay)
        answers.append(answer.decision)

    all_at_once(attempt, 6)
    assert answers == [Decision.DENY] * 6
    assert hashed == [1]
    assert account(site).failed_logins == 6  # the one hashed guess counted, the rest not


def test_a_burst_of_guesses_is_hashed_no_more_than_the_free_attempts(
    flow: SignIn, site: Services, waits: list[float]
) -> None:
    """Twelve wrong passwords arrive at once for an account with no failures yet. Each
    attempt reads the failures its predecessors counted, so five are hashed (the attempts
    before the backoff) and seven are refused unhashed, however the threads interleave."""
    now = utcnow()
    hashed: list[int] = []
    arrive = threading.Barrier(12)
    original = site.hasher.verify

    def slow_verify(*args: object) -> object:
        hashed.append(1)
        time.sleep(0.05)  # long enough for every other attempt to have read the account
        return original(*args)  # type: ignore[arg-type]

    site.hasher.verify = slow_verify  # type: ignore[method-assign, assignment]
    answers: list[Decision] = []

    def attempt(i: int) -> None:
        arrive.wait()
        answers.append(flow.login(EMAIL, f"wrong-{i}", ip=f"198.51.100.{i}", now=now).decision)

    all_at_once(attempt, 12)
    assert answers == [Decision.DENY] * 12
    assert len(hashed) == 5
    assert account(site).failed_logins == 5
    assert len(waits) == 7  # the unhashed refusals were paced like hashed ones
    assert len(flow._turns) == 0  # nothing kept for the address once its attempts are done


def test_attempts_on_different_addresses_do_not_wait_for_each_other(
    flow: SignIn, site: Services
) -> None:
    """The turns are per address: a slow hash for one account holds up no other sign-in."""
    with site.db.session() as s:
        accounts.create(
            s,
            email="other@example.fr",
            password=PASSWORD,
            hasher=site.hasher,
            actor=ACTOR,
            now=utcnow(),
        )
    release = threading.Event()
    original = site.hasher.verify

    def held_verify(stored: str | None, password: str) -> object:
        if password == "held":
            release.wait(10)
        return original(stored, password)

    site.hasher.verify = held_verify  # type: ignore[method-assign, assignment]
    held = threading.Thread(target=flow.login, args=(EMAIL, "held"), kwargs={"ip": IP})
    held.start()
    try:
        other = flow.login("other@example.fr", PASSWORD, ip=IP)  # would block if shared
        assert other.decision is Decision.ALLOW
    finally:
        release.set()
        held.join()


def test_an_unlock_is_honoured_at_the_very_next_attempt(flow: SignIn, site: Services) -> None:
    clock = Clock()
    for _ in range(20):
        flow.login(EMAIL, "wrong", ip=IP, now=clock.tick())
    assert flow.login(EMAIL, PASSWORD, ip=IP, now=clock.tick()).decision is Decision.DENY
    with site.db.session() as s:
        lockout.unlock(s, email=EMAIL, actor=ACTOR, now=clock.now)
    assert flow.login(EMAIL, PASSWORD, ip=IP, now=clock.tick(0.01)).decision is Decision.ALLOW


def test_twenty_failures_lock_the_account_until_an_admin_unlocks_it(
    flow: SignIn, site: Services
) -> None:
    clock = Clock()
    for _ in range(20):
        flow.login(EMAIL, "wrong", ip=IP, now=clock.tick())
    assert account(site).status == "locked"
    assert audit.Action.ACCOUNT_LOCKED in actions(site)
    assert flow.login(EMAIL, PASSWORD, ip=IP, now=clock.tick()).decision is Decision.DENY
    with site.db.session() as s:
        lockout.unlock(s, email=EMAIL, actor=ACTOR, now=clock.now)
    assert flow.login(EMAIL, PASSWORD, ip=IP, now=clock.tick()).decision is Decision.ALLOW


def test_a_banned_address_is_refused_before_any_hashing(
    flow: SignIn, site: Services, waits: list[float]
) -> None:
    now = utcnow()
    with site.db.session() as s:
        bans.add(s, "203.0.113.0/24", reason="robot", expires_at=None, actor=ACTOR, now=now)
        bans.add(
            s,
            "198.51.100.9",
            reason="old",
            expires_at=now - dt.timedelta(seconds=1),
            actor=ACTOR,
            now=now,
        )
    assert flow.login(EMAIL, PASSWORD, ip=IP).decision is Decision.DENY
    assert len(waits) == 1
    assert flow.login(EMAIL, PASSWORD, ip="198.51.100.9").decision is Decision.ALLOW  # expired
    with site.db.session() as s:
        bans.remove(s, "203.0.113.0/24", actor=ACTOR, now=utcnow())
    assert flow.login(EMAIL, PASSWORD, ip=IP).decision is Decision.ALLOW


def test_an_address_with_too_many_wrong_passwords_is_banned_automatically(
    settings: Settings, site: Services
) -> None:
    flow = SignIn(build(dataclasses.replace(settings, ip_ban_after=3)), sleep=lambda _: None)
    for n in range(3):
        flow.login(f"guess{n}@example.fr", "password1", ip="192.0.2.1")
    with site.db.session() as s:
        active = bans.active(s, now=utcnow())
    assert [(b.network, b.automatic) for b in active] == [("192.0.2.1/32", True)]
    assert flow.login(EMAIL, PASSWORD, ip="192.0.2.1").decision is Decision.DENY
    assert flow.login(EMAIL, PASSWORD, ip="192.0.2.2").decision is Decision.ALLOW


def test_an_account_waiting_for_a_reset_is_sent_to_reset(flow: SignIn, site: Services) -> None:
    with site.db.session() as s:
        s.execute(
            Account.__table__.update().values(status="reset_required")  # type: ignore[attr-defined]
        )
    assert flow.login(EMAIL, PASSWORD, ip=IP).decision is Decision.RESET_REQUIRED
    assert flow.login(EMAIL, "wrong", ip=IP).decision is Decision.DENY  # says nothing more


def test_a_leaked_password_forces_a_reset_with_a_finding_and_a_notice(
    flow: SignIn, site: Services
) -> None:
    with site.db.session() as s:
        s.execute(
            Account.__table__.update().values(  # type: ignore[attr-defined]
                password_hash=site.hasher.hash(LEAKED)
            )
        )
    answer = flow.login(EMAIL, LEAKED, ip=IP)
    assert answer.decision is Decision.RESET_REQUIRED
    assert answer.to_json()["reasons"] == ["password_breached"]
    after = account(site)
    assert after.status == "reset_required" and after.mfa_required
    with site.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Finding)) == 1
        notice = s.execute(select(Notice)).scalar_one()
        assert notice.kind == "reset_forced" and notice.account_id == after.id
    assert audit.Action.ACCOUNT_RESET_FORCED in actions(site)
    # The next attempt with the same password is told the same, without a second reset.
    assert flow.login(EMAIL, LEAKED, ip=IP).to_json()["reasons"] == ["reset_pending"]


def test_a_factor_leads_to_a_continuation_that_a_right_code_spends_once(
    flow: SignIn, site: Services
) -> None:
    secret = enroll_totp(site, account(site).id)
    first = flow.login(EMAIL, PASSWORD, ip=IP)
    assert first.decision is Decision.MFA_REQUIRED
    assert first.to_json()["factors"] == ["totp"]
    token = first.continuation
    assert token and len(token) >= 40
    with site.db.session() as s:  # only a digest is stored
        assert s.get(LoginContinuation, token) is None
    wrong = flow.second_step(token, code="000000", ip=IP)
    assert wrong.decision is Decision.DENY
    done = flow.second_step(token, code=next_code(secret), ip=IP)
    assert done.decision is Decision.ALLOW
    again = flow.second_step(token, code=next_code(secret), ip=IP)
    assert again.decision is Decision.DENY
    assert actions(site)[-1] == audit.Action.SESSION_STARTED


def test_five_wrong_codes_burn_the_continuation(flow: SignIn, site: Services) -> None:
    secret = enroll_totp(site, account(site).id)
    token = flow.login(EMAIL, PASSWORD, ip=IP).continuation
    assert token
    for _ in range(5):
        flow.second_step(token, code="000000", ip=IP)
    assert flow.second_step(token, code=next_code(secret), ip=IP).decision is Decision.DENY


def test_a_reset_between_the_two_steps_voids_the_continuation(flow: SignIn, site: Services) -> None:
    secret = enroll_totp(site, account(site).id)
    token = flow.login(EMAIL, PASSWORD, ip=IP).continuation
    assert token
    with site.db.session() as s:
        s.execute(
            Account.__table__.update().values(  # type: ignore[attr-defined]
                status="reset_required", session_epoch=Account.session_epoch + 1
            )
        )
    assert flow.second_step(token, code=next_code(secret), ip=IP).decision is Decision.DENY


def test_an_expired_continuation_is_refused(flow: SignIn, site: Services) -> None:
    secret = enroll_totp(site, account(site).id)
    token = flow.login(EMAIL, PASSWORD, ip=IP, now=utcnow() - dt.timedelta(minutes=6)).continuation
    assert token
    assert flow.second_step(token, code=next_code(secret), ip=IP).decision is Decision.DENY


def test_an_account_with_findings_must_enroll(flow: SignIn, site: Services) -> None:
    with site.db.session() as s:
        s.execute(Account.__table__.update().values(mfa_required=True))  # type: ignore[attr-defined]
    answer = flow.login(EMAIL, PASSWORD, ip=IP)
    assert answer.decision is Decision.ENROLL_REQUIRED


def test_policy_all_starts_the_grace_period_at_the_first_sign_in(
    settings: Settings, site: Services
) -> None:
    flow = SignIn(build(dataclasses.replace(settings, mfa_required="all", mfa_grace_days=14)))
    now = utcnow()
    answer = flow.login(EMAIL, PASSWORD, ip=IP, now=now)
    assert answer.decision is Decision.ALLOW and answer.to_json()["enroll_by"]
    assert account(site).mfa_grace_from == now.replace(microsecond=now.microsecond)
    later = flow.login(EMAIL, PASSWORD, ip=IP, now=now + dt.timedelta(days=15))
    assert later.decision is Decision.ENROLL_REQUIRED


@pytest.mark.parametrize(("policy", "decision"), [("fail_open", "allow"), ("fail_closed", "deny")])
def test_an_unreachable_hibp_follows_the_failure_policy(
    settings: Settings, site: Services, policy: str, decision: str
) -> None:
    down = dataclasses.replace(
        settings,
        breach_sources=("hibp",),
        hibp_passwords_url="http://127.0.0.1:9",  # nothing listens on the discard port
        hibp_timeout=0.5,
        breach_failure_policy=policy,
    )
    flow = SignIn(build(down))
    answer = flow.login(EMAIL, PASSWORD, ip=IP)
    assert answer.to_json()["decision"] == decision


def test_housekeeping_forgets_old_continuations_and_failure_counts(
    flow: SignIn, site: Services
) -> None:
    from auth.models import IpFailure
    from auth.web.server import _purge_expired

    enroll_totp(site, account(site).id)
    old = utcnow() - dt.timedelta(days=2)
    assert flow.login(EMAIL, PASSWORD, ip=IP, now=old).continuation
    assert flow.login(EMAIL, PASSWORD, ip=IP).continuation  # live: kept
    counting = SignIn(build(dataclasses.replace(site.settings, ip_ban_after=50)))
    counting.login(EMAIL, "wrong", ip="192.0.2.50", now=old)
    counting.login(EMAIL, "wrong", ip="192.0.2.51")
    _purge_expired(site.db, retention_days=site.settings.exposure_retention_days)
    with site.db.session() as s:
        assert s.scalar(select(func.count()).select_from(LoginContinuation)) == 1
        assert s.execute(select(IpFailure.ip)).scalars().all() == ["192.0.2.51"]
