"""Properties of the sign-in decision (auth/signin/rules.py) over any facts at all
(hypothesis): what must hold whatever else is true."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from auth.models import AccountStatus
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

NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
times = st.one_of(
    st.none(),
    st.integers(min_value=-86_400 * 30, max_value=86_400).map(
        lambda s: NOW + dt.timedelta(seconds=s)
    ),
)
accounts = st.builds(
    AccountFacts,
    id=st.integers(min_value=1, max_value=10**6),
    status=st.sampled_from([*AccountStatus, "something-else"]),
    session_epoch=st.integers(min_value=0, max_value=5),
    failed_logins=st.integers(min_value=0, max_value=40),
    last_failed_login_at=times,
)
mfa = st.builds(
    MfaFacts,
    factors=st.lists(st.sampled_from(["totp", "webauthn"]), unique=True, max_size=2).map(tuple),
    required_by_account=st.booleans(),
    has_findings=st.booleans(),
    grace_from=times,
)
facts = st.builds(
    Facts,
    now=st.just(NOW),
    ip_banned=st.booleans(),
    account=st.one_of(st.none(), accounts),
    password_ok=st.one_of(st.none(), st.booleans()),
    breach_count=st.one_of(st.none(), st.integers(min_value=0, max_value=10**7)),
    breach_failed=st.booleans(),
    mfa=st.one_of(st.none(), mfa),
)
policies = st.builds(
    SigninPolicy,
    mfa=st.sampled_from(["findings", "all"]),
    grace=st.integers(min_value=0, max_value=30).map(lambda d: dt.timedelta(days=d)),
    fail_closed=st.booleans(),
    backoff_after=st.integers(min_value=1, max_value=10),
    lock_after=st.integers(min_value=1, max_value=30),
)


def settle(f: Facts, policy: SigninPolicy) -> Verdict:
    """Answer every need with what the facts already say (a fact still unknown: the
    worst case for the person), until the rules decide."""
    for _ in range(4):
        result = decide(f, policy)
        if isinstance(result, Verdict):
            return result
        if result is Need.PASSWORD:
            f = replace(f, password_ok=bool(f.password_ok))
        elif result is Need.BREACH:
            f = replace(f, breach_count=f.breach_count or 0)
        else:
            f = replace(f, mfa=f.mfa or MfaFacts())
    raise AssertionError(f"no verdict after every fact was given: {f}")


@given(facts, policies)
def test_every_deny_reads_invalid_credentials_outside(f: Facts, policy: SigninPolicy) -> None:
    verdict = settle(f, policy)
    if verdict.decision is Decision.DENY:
        assert verdict.public_reasons == ("invalid_credentials",)
    else:
        assert "invalid_credentials" not in verdict.public_reasons


@given(facts, policies)
def test_a_banned_address_is_never_let_in(f: Facts, policy: SigninPolicy) -> None:
    banned = replace(f, ip_banned=True)
    assert decide(banned, policy) == Verdict(Decision.DENY, (Reason.IP_BANNED,))


@given(facts, policies, accounts)
def test_a_locked_account_is_never_let_in(
    f: Facts, policy: SigninPolicy, account: AccountFacts
) -> None:
    locked = replace(account, status=AccountStatus.LOCKED)
    verdict = settle(replace(f, account=locked), policy)
    assert verdict.decision is Decision.DENY


@given(facts, policies, accounts)
def test_an_account_waiting_for_a_reset_never_gets_in_with_its_old_password(
    f: Facts, policy: SigninPolicy, account: AccountFacts
) -> None:
    waiting = replace(account, status=AccountStatus.RESET_REQUIRED)
    verdict = settle(replace(f, account=waiting), policy)
    assert verdict.decision in (Decision.DENY, Decision.RESET_REQUIRED)


@given(facts, policies, st.integers(min_value=1, max_value=10**7))
def test_a_breached_password_never_gets_in(f: Facts, policy: SigninPolicy, seen: int) -> None:
    breached = replace(f, breach_count=seen, breach_failed=False)
    verdict = settle(breached, policy)
    assert verdict.decision in (Decision.DENY, Decision.RESET_REQUIRED)


@given(facts, policies)
def test_nothing_lets_in_without_a_right_password(f: Facts, policy: SigninPolicy) -> None:
    wrong = replace(f, password_ok=False)
    assert settle(wrong, policy).decision is Decision.DENY


@given(facts, policies)
def test_no_breach_look_up_is_asked_for_before_the_password_is_right(
    f: Facts, policy: SigninPolicy
) -> None:
    result = decide(f, policy)
    if result is Need.BREACH:
        assert f.password_ok is True and f.account is not None


@given(
    st.integers(min_value=0, max_value=100),
    times,
    policies,
)
def test_the_backoff_never_shrinks_with_more_failures(
    failures: int, last: dt.datetime | None, policy: SigninPolicy
) -> None:
    assert backoff_until(failures, last, policy) <= backoff_until(failures + 1, last, policy)
    if last is not None:
        assert backoff_until(failures, last, policy) <= last + policy.backoff_max
