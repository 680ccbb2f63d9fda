"""Sign-in risk rules, pure: password spraying, credential stuffing, a new network.

Each rule takes what the counters and the sign-in read (auth/activity/signin_risk.py keeps
them) and answers; nothing here touches a store or the clock.

- Spraying: one wrong password tried against SPRAY_ACCOUNTS distinct accounts within
  SPRAY_WINDOW, from any number of addresses. Attackers try a few common passwords against
  a long list of accounts, staying under every per-account and per-address limit.
- Stuffing: STUFFING_ACCOUNTS distinct accounts tried from one network within
  STUFFING_WINDOW, at least STUFFING_FAILURE_PERCENT of the attempts failing: leaked pairs
  replayed in bulk. A person signs in to one or two accounts; an office's shared address
  fails now and then, never mostly, over many accounts.
- New network: a network the account never signed in from. An account with no known
  network yet has nothing to compare with: its first network becomes known, not "new".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from auth.config import Settings
from auth.signin.rules import Decision, Reason, Verdict


@dataclass(frozen=True)
class RiskPolicy:
    spray_accounts: int = 20
    spray_window: dt.timedelta = dt.timedelta(hours=1)
    spray_requires_mfa: bool = True
    stuffing_accounts: int = 10
    stuffing_window: dt.timedelta = dt.timedelta(minutes=10)
    stuffing_failure_percent: int = 80
    new_sign_in_requires_mfa: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> RiskPolicy:
        return cls(
            spray_accounts=settings.spray_accounts,
            spray_window=dt.timedelta(seconds=settings.spray_window),
            spray_requires_mfa=settings.spray_requires_mfa,
            stuffing_accounts=settings.stuffing_accounts,
            stuffing_window=dt.timedelta(seconds=settings.stuffing_window),
            stuffing_failure_percent=settings.stuffing_failure_percent,
            new_sign_in_requires_mfa=settings.new_sign_in_requires_mfa,
        )


@dataclass(frozen=True)
class NetworkTally:
    """One network's sign-in attempts within the stuffing window."""

    accounts: int  # distinct e-mail addresses tried
    attempts: int
    failures: int  # wrong passwords and unknown addresses


def is_spray(accounts_tried: int, policy: RiskPolicy) -> bool:
    """Whether one wrong password, tried against this many distinct accounts within the
    window, is a spray."""
    return accounts_tried >= policy.spray_accounts


def is_stuffing(tally: NetworkTally, policy: RiskPolicy) -> bool:
    """Whether a network's attempts look like credential stuffing: many accounts, mostly
    failing."""
    if tally.accounts < policy.stuffing_accounts or tally.attempts <= 0:
        return False
    return tally.failures * 100 >= policy.stuffing_failure_percent * tally.attempts


def is_new_network(*, known_here: bool, known_any: bool) -> bool:
    """Whether a sign-in comes from a network new to the account: it has known networks,
    and this is not one of them."""
    return known_any and not known_here


def with_new_network(
    verdict: Verdict, *, new_network: bool, factors: tuple[str, ...], policy: RiskPolicy
) -> Verdict:
    """The verdict for a correct password from a new network: where it would let the
    person straight in and the account has a factor, the factor is asked for
    (NEW_SIGN_IN_REQUIRES_MFA). Without a factor the verdict stands (the person is told by
    e-mail); any other verdict stands too."""
    if (
        not new_network
        or not policy.new_sign_in_requires_mfa
        or not factors
        or verdict.decision is not Decision.ALLOW
    ):
        return verdict
    return replace(
        verdict, decision=Decision.MFA_REQUIRED, reasons=(Reason.NEW_NETWORK,), factors=factors
    )
