"""The sign-in decision (auth/signin/rules.py) as a table: facts in, verdict (or the next fact
needed) out. No database, no clock: every input is an argument."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from auth.signin.rules import (
    AccountFacts,
    Decision,
    Facts,
    MfaFacts,
    Need,
    Reason,
    SigninPolicy,
    Verdict,
    backoff_until,
    decide,
)

NOW = dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)
ACTIVE = AccountFacts(id=7, status="active")
POLICY = SigninPolicy()
CLEAN = dict(password_ok=True, breach_count=0)


def facts(**kw: object) -> Facts:
    kw.setdefault("account", ACTIVE)
    return Facts(now=NOW, **kw)  # type: ignore[arg-type]


def verdict(f: Facts, policy: SigninPolicy = POLICY) -> Verdict:
    result = decide(f, policy)
    assert isinstance(result, Verdict), f"expected a verdict, got a need for {result}"
    return result


TABLE = [
    # rule 1: refusals before hashing (the password is not even looked at)
    (facts(ip_banned=True), Decision.DENY, Reason.IP_BANNED),
    (facts(ip_banned=True, account=None), Decision.DENY, Reason.IP_BANNED),
    (facts(account=AccountFacts(7, "locked")), Decision.DENY, Reason.ACCOUNT_LOCKED),
    (
        facts(account=AccountFacts(7, "active", failed_logins=20)),
        Decision.DENY,
        Reason.ACCOUNT_LOCKED,
    ),
    (facts(account=AccountFacts(7, "disabled")), Decision.DENY, Reason.ACCOUNT_DISABLED),
    (
        facts(account=AccountFacts(7, "active", failed_logins=5, last_failed_login_at=NOW)),
        Decision.DENY,
        Reason.THROTTLED,
    ),
    # rule 2: wrong password, unknown account
    (facts(password_ok=False), Decision.DENY, Reason.WRONG_PASSWORD),
    (facts(account=None, password_ok=False), Decision.DENY, Reason.UNKNOWN_ACCOUNT),
    # rule 3: a reset is pending (no breach look-up needed)
    (
        facts(account=AccountFacts(7, "reset_required"), password_ok=True),
        Decision.RESET_REQUIRED,
        Reason.RESET_PENDING,
    ),
    # rule 4: the password is in a corpus
    (facts(password_ok=True, breach_count=3), Decision.RESET_REQUIRED, Reason.PASSWORD_BREACHED),
    (
        facts(password_ok=True, breach_count=3, breach_failed=True),
        Decision.RESET_REQUIRED,
        Reason.PASSWORD_BREACHED,
    ),
    # rule 5: second factors and policy
    (facts(**CLEAN, mfa=MfaFacts(("totp",))), Decision.MFA_REQUIRED, Reason.MFA_ENROLLED),
    (
        facts(**CLEAN, mfa=MfaFacts(required_by_account=True)),
        Decision.ENROLL_REQUIRED,
        Reason.MFA_POLICY,
    ),
    (facts(**CLEAN, mfa=MfaFacts(has_findings=True)), Decision.ENROLL_REQUIRED, Reason.MFA_POLICY),
    (facts(**CLEAN, mfa=MfaFacts()), Decision.ALLOW, Reason.NO_MFA_REQUIRED),
]


@pytest.mark.parametrize(("given", "decision", "reason"), TABLE)
def test_decision_table(given: Facts, decision: Decision, reason: Reason) -> None:
    result = verdict(given)
    assert (result.decision, result.reasons) == (decision, (reason,))


def test_facts_are_asked_for_in_rule_order() -> None:
    assert decide(facts(), POLICY) is Need.PASSWORD
    assert decide(facts(account=None), POLICY) is Need.PASSWORD  # a dummy hash is run too
    assert decide(facts(password_ok=True), POLICY) is Need.BREACH
    assert decide(facts(**CLEAN), POLICY) is Need.FACTORS


def test_a_wrong_password_is_never_checked_against_the_corpus() -> None:
    assert verdict(facts(password_ok=False, breach_count=None)).decision is Decision.DENY


def test_every_deny_says_the_same_thing_outside() -> None:
    denies = [row for row in TABLE if row[1] is Decision.DENY]
    assert len(denies) >= 6
    assert {verdict(f).public_reasons for f, _, _ in denies} == {("invalid_credentials",)}


def test_mfa_required_names_the_factor_kinds() -> None:
    result = verdict(facts(**CLEAN, mfa=MfaFacts(("totp", "webauthn"))))
    assert result.factors == ("totp", "webauthn")
    assert result.public_reasons == ("mfa_enrolled",)


def test_an_unreachable_corpus_follows_the_failure_policy() -> None:
    down = facts(password_ok=True, breach_count=0, breach_failed=True, mfa=MfaFacts())
    assert verdict(down, SigninPolicy(fail_closed=False)).decision is Decision.ALLOW
    closed = verdict(down, SigninPolicy(fail_closed=True))
    assert (closed.decision, closed.reasons) == (Decision.DENY, (Reason.BREACH_CHECK_FAILED,))


def test_policy_all_gives_a_grace_period_then_requires_enrollment() -> None:
    policy = SigninPolicy(mfa="all", grace=dt.timedelta(days=14))
    first = verdict(facts(**CLEAN, mfa=MfaFacts()), policy)
    assert (first.decision, first.reasons) == (Decision.ALLOW, (Reason.MFA_GRACE,))
    assert first.enroll_by == NOW + dt.timedelta(days=14)
    started = NOW - dt.timedelta(days=13, hours=23)
    assert (
        verdict(facts(**CLEAN, mfa=MfaFacts(grace_from=started)), policy).decision is Decision.ALLOW
    )
    over = NOW - dt.timedelta(days=14)
    late = verdict(facts(**CLEAN, mfa=MfaFacts(grace_from=over)), policy)
    assert late.decision is Decision.ENROLL_REQUIRED
    # Findings end the grace at once.
    assert verdict(facts(**CLEAN, mfa=MfaFacts(has_findings=True)), policy).decision is (
        Decision.ENROLL_REQUIRED
    )


def test_policy_findings_lets_accounts_without_findings_in_without_a_factor() -> None:
    assert (
        verdict(facts(**CLEAN, mfa=MfaFacts()), SigninPolicy(mfa="findings")).decision
        is Decision.ALLOW
    )


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(0, 0), (4, 0), (5, 1), (6, 2), (7, 4), (14, 512), (15, 900), (19, 900)],
)
def test_backoff_doubles_from_the_fifth_failure_up_to_a_ceiling(failures: int, wait: int) -> None:
    until = backoff_until(failures, NOW, POLICY)
    assert max(dt.timedelta(0), until - NOW) == dt.timedelta(seconds=wait)


def test_backoff_ends_when_its_delay_has_passed() -> None:
    account = AccountFacts(7, "active", failed_logins=6, last_failed_login_at=NOW)
    assert verdict(facts(account=account)).reasons == (Reason.THROTTLED,)
    later = dataclasses.replace(facts(account=account), now=NOW + dt.timedelta(seconds=2))
    assert decide(later, POLICY) is Need.PASSWORD
