"""Sign-in risk rules (auth/activity/risk.py), pure, as tables; and the counters they read
(auth/activity/risk_counters.py) in memory."""

from __future__ import annotations

import datetime as dt

import pytest

from auth.activity import user_agents
from auth.activity.risk import (
    NetworkTally,
    RiskPolicy,
    is_new_network,
    is_spray,
    is_stuffing,
    with_new_network,
)
from auth.activity.risk_counters import MemoryCounters
from auth.signin.rules import Decision, Reason, Verdict

POLICY = RiskPolicy(spray_accounts=20, stuffing_accounts=10, stuffing_failure_percent=80)
T0 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("accounts_tried", "spray"),
    [(1, False), (19, False), (20, True), (500, True)],
)
def test_one_wrong_password_against_twenty_accounts_is_a_spray(
    accounts_tried: int, spray: bool
) -> None:
    assert is_spray(accounts_tried, POLICY) is spray


@pytest.mark.parametrize(
    ("accounts", "attempts", "failures", "stuffing"),
    [
        (10, 10, 10, True),  # ten leaked pairs, all wrong
        (10, 10, 8, True),  # 80 % failing: the line
        (10, 10, 7, False),  # an office where most people type their password right
        (9, 50, 50, False),  # one person hammering a few accounts: the per-address ban's job
        (200, 1000, 990, True),
        (10, 0, 0, False),
    ],
)
def test_many_accounts_mostly_failing_from_one_network_is_stuffing(
    accounts: int, attempts: int, failures: int, stuffing: bool
) -> None:
    assert is_stuffing(NetworkTally(accounts, attempts, failures), POLICY) is stuffing


@pytest.mark.parametrize(
    ("known_here", "known_any", "new"),
    [
        (False, False, False),  # first sign-in ever: its network becomes known, not "new"
        (True, True, False),
        (False, True, True),
    ],
)
def test_a_network_is_new_only_to_an_account_that_has_known_networks(
    known_here: bool, known_any: bool, new: bool
) -> None:
    assert is_new_network(known_here=known_here, known_any=known_any) is new


ALLOW = Verdict(Decision.ALLOW, (Reason.NO_MFA_REQUIRED,))
GRACE = Verdict(Decision.ALLOW, (Reason.MFA_GRACE,))
MFA = Verdict(Decision.MFA_REQUIRED, (Reason.MFA_ENROLLED,), ("totp",))
ENROLL = Verdict(Decision.ENROLL_REQUIRED, (Reason.MFA_POLICY,))
NEW_NETWORK_MFA = Verdict(Decision.MFA_REQUIRED, (Reason.NEW_NETWORK,), ("totp",))


@pytest.mark.parametrize(
    ("verdict", "new", "factors", "requires", "expected"),
    [
        (ALLOW, True, ("totp",), True, NEW_NETWORK_MFA),
        (GRACE, True, ("totp",), True, NEW_NETWORK_MFA),
        (ALLOW, True, (), True, ALLOW),  # no factor: let in as the policy says, but told
        (ALLOW, False, ("totp",), True, ALLOW),
        (ALLOW, True, ("totp",), False, ALLOW),  # NEW_SIGN_IN_REQUIRES_MFA=false
        (MFA, True, ("totp",), True, MFA),
        (ENROLL, True, (), True, ENROLL),
    ],
)
def test_a_new_network_asks_for_the_factor_where_the_password_alone_would_do(
    verdict: Verdict, new: bool, factors: tuple[str, ...], requires: bool, expected: Verdict
) -> None:
    policy = RiskPolicy(new_sign_in_requires_mfa=requires)
    assert with_new_network(verdict, new_network=new, factors=factors, policy=policy) == expected


def _counters() -> MemoryCounters:
    return MemoryCounters(
        spray_window=dt.timedelta(hours=1), stuffing_window=dt.timedelta(minutes=10)
    )


def test_spray_counts_distinct_accounts_within_the_window_only() -> None:
    counters = _counters()
    assert counters.spray("d", 1, now=T0) == [1]
    assert counters.spray("d", 1, now=T0 + dt.timedelta(minutes=1)) == [1]
    assert counters.spray("d", 2, now=T0 + dt.timedelta(minutes=30)) == [1, 2]
    assert counters.spray("other", 3, now=T0 + dt.timedelta(minutes=30)) == [3]
    # an hour after account 1 was last tried with it, it has left the window
    assert counters.spray("d", 4, now=T0 + dt.timedelta(minutes=61, seconds=1)) == [2, 4]


def test_a_spray_keeps_one_label_while_it_lasts_and_a_new_one_after() -> None:
    counters = _counters()
    first = counters.spray_label("d", now=T0)
    assert first == "spray:2026-12-07T10:00:00Z"
    assert counters.spray_label("d", now=T0 + dt.timedelta(minutes=50)) == first
    later = counters.spray_label("d", now=T0 + dt.timedelta(hours=3))
    assert later == "spray:2026-12-07T13:00:00Z"


def test_a_networks_tally_counts_addresses_attempts_and_failures_in_its_window() -> None:
    counters = _counters()
    counters.network("198.51.100.0/24", "a", failed=True, now=T0)
    counters.network("198.51.100.0/24", "a", failed=False, now=T0)
    tally = counters.network("198.51.100.0/24", "b", failed=True, now=T0)
    assert tally == NetworkTally(accounts=2, attempts=3, failures=2)
    later = counters.network(
        "198.51.100.0/24", "c", failed=False, now=T0 + dt.timedelta(minutes=11)
    )
    assert later == NetworkTally(accounts=1, attempts=1, failures=0)
    counters.forget_network("198.51.100.0/24")
    fresh = counters.network("198.51.100.0/24", "d", failed=True, now=T0 + dt.timedelta(minutes=11))
    assert fresh == NetworkTally(accounts=1, attempts=1, failures=1)


def _words(message: str, **values: object) -> str:
    return message % values if values else message


@pytest.mark.parametrize(
    ("user_agent", "words"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0",
            "Firefox on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
            "Safari on iPhone",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/18.1 Safari/605.1.15",
            "Safari on macOS",
        ),
        ("python-requests/2.32.3", "an unknown browser or program"),
        ("", "an unknown browser or program"),
        ("Mozilla/5.0 (X11; Linux x86_64)", "a browser on Linux"),
    ],
)
def test_a_user_agent_reads_as_a_browser_and_a_system_in_words(user_agent: str, words: str) -> None:
    assert user_agents.describe(user_agent, _words) == words
