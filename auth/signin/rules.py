"""The sign-in decision: allow, mfa_required, enroll_required, reset_required or deny.

`decide` is pure. It is given the facts known so far and either decides or names the one
fact it needs next (`Need`): the caller (auth/signin/flow.py) gathers facts in that order, so
nothing costly is done that the rules do not ask for — no argon2 run for a banned address,
no breach look-up for a wrong password. The rules, in order:

1. banned address, locked or disabled account, or an account in its backoff delay → deny;
2. wrong password (or unknown account) → deny, counted towards lockout;
3. account waiting for a reset → reset_required;
4. password found in a breach corpus → reset_required (the caller forces the reset);
   the corpus could not be asked and the policy is fail_closed → deny;
5. a second factor enrolled → mfa_required; none, and the policy requires one →
   enroll_required (or allow during the grace period of MFA_REQUIRED=all); else allow.

Every deny looks the same from outside (`invalid_credentials`): the precise reason is for
the audit trail, not for whoever is guessing.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from auth.config import Settings
from auth.models import AccountStatus


class Decision(enum.StrEnum):
    ALLOW = "allow"
    MFA_REQUIRED = "mfa_required"
    ENROLL_REQUIRED = "enroll_required"
    RESET_REQUIRED = "reset_required"
    DENY = "deny"


class Reason(enum.StrEnum):
    INVALID_CREDENTIALS = "invalid_credentials"  # what every deny says outside
    IP_BANNED = "ip_banned"
    ACCOUNT_LOCKED = "account_locked"
    ACCOUNT_DISABLED = "account_disabled"
    THROTTLED = "throttled"
    UNKNOWN_ACCOUNT = "unknown_account"
    WRONG_PASSWORD = "wrong_password"
    BREACH_CHECK_FAILED = "breach_check_unavailable"
    RESET_PENDING = "reset_pending"
    PASSWORD_BREACHED = "password_breached"
    MFA_ENROLLED = "mfa_enrolled"
    MFA_POLICY = "mfa_policy"
    MFA_GRACE = "mfa_grace"
    NO_MFA_REQUIRED = "no_mfa_required"
    NEW_NETWORK = "new_network"  # a factor asked for a network new to the account


class Need(enum.StrEnum):
    """The next fact `decide` needs before it can answer."""

    PASSWORD = "password"
    BREACH = "breach"
    FACTORS = "factors"


@dataclass(frozen=True)
class SigninPolicy:
    mfa: str = "findings"  # "findings": accounts with findings or past resets; "all"
    grace: dt.timedelta = dt.timedelta(days=14)
    fail_closed: bool = False
    backoff_after: int = 5
    backoff_first: dt.timedelta = dt.timedelta(seconds=1)
    backoff_max: dt.timedelta = dt.timedelta(minutes=15)
    lock_after: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> SigninPolicy:
        return cls(
            mfa=settings.mfa_required,
            grace=dt.timedelta(days=settings.mfa_grace_days),
            fail_closed=settings.breach_failure_policy == "fail_closed",
            backoff_after=settings.login_backoff_after,
            backoff_first=dt.timedelta(seconds=settings.login_backoff_seconds),
            backoff_max=dt.timedelta(seconds=settings.login_backoff_max),
            lock_after=settings.login_lock_after,
        )


@dataclass(frozen=True)
class AccountFacts:
    id: int
    status: str
    session_epoch: int = 0
    failed_logins: int = 0
    last_failed_login_at: dt.datetime | None = None


@dataclass(frozen=True)
class MfaFacts:
    factors: tuple[str, ...] = ()  # kinds enrolled, e.g. ("totp", "webauthn")
    required_by_account: bool = False  # set by a forced reset
    has_findings: bool = False  # open findings against the account
    grace_from: dt.datetime | None = None  # MFA_REQUIRED=all: when the grace began


@dataclass(frozen=True)
class Facts:
    now: dt.datetime
    ip_banned: bool = False
    account: AccountFacts | None = None
    password_ok: bool | None = None  # None: not checked yet
    breach_count: int | None = None  # None: not checked yet
    breach_failed: bool = False  # a source could not answer
    mfa: MfaFacts | None = None


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reasons: tuple[Reason, ...]
    factors: tuple[str, ...] = ()
    enroll_by: dt.datetime | None = None  # end of the grace period, when in one

    @property
    def public_reasons(self) -> tuple[str, ...]:
        """What the caller may tell the person: a deny never says why."""
        if self.decision is Decision.DENY:
            return (Reason.INVALID_CREDENTIALS.value,)
        return tuple(r.value for r in self.reasons)


def backoff_until(
    failures: int, last_failure: dt.datetime | None, policy: SigninPolicy
) -> dt.datetime:
    """When the next password attempt may be tried after `failures` in a row.

    Free for the first `backoff_after - 1`, then a delay that doubles up to a ceiling.
    """
    if last_failure is None or failures < policy.backoff_after:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    doublings = min(failures - policy.backoff_after, 30)
    delay = min(policy.backoff_first * (1 << doublings), policy.backoff_max)
    return last_failure + delay


def _deny(*reasons: Reason) -> Verdict:
    return Verdict(Decision.DENY, reasons)


def _blocked(facts: Facts, policy: SigninPolicy) -> Verdict | None:
    """Rule 1: refusals decided before any password is hashed."""
    if facts.ip_banned:
        return _deny(Reason.IP_BANNED)
    account = facts.account
    if account is None:
        return None
    if account.status == AccountStatus.LOCKED or account.failed_logins >= policy.lock_after:
        return _deny(Reason.ACCOUNT_LOCKED)
    if account.status == AccountStatus.DISABLED:
        return _deny(Reason.ACCOUNT_DISABLED)
    until = backoff_until(account.failed_logins, account.last_failed_login_at, policy)
    if facts.now < until:
        return _deny(Reason.THROTTLED)
    return None


def mfa_verdict(mfa: MfaFacts, *, now: dt.datetime, policy: SigninPolicy) -> Verdict:
    """Rule 5, on its own: what a correct, unexposed password leads to."""
    if mfa.factors:
        return Verdict(Decision.MFA_REQUIRED, (Reason.MFA_ENROLLED,), mfa.factors)
    if mfa.required_by_account or mfa.has_findings:
        return Verdict(Decision.ENROLL_REQUIRED, (Reason.MFA_POLICY,))
    if policy.mfa == "all":
        enroll_by = (mfa.grace_from or now) + policy.grace
        if now < enroll_by:
            return Verdict(Decision.ALLOW, (Reason.MFA_GRACE,), enroll_by=enroll_by)
        return Verdict(Decision.ENROLL_REQUIRED, (Reason.MFA_POLICY,))
    return Verdict(Decision.ALLOW, (Reason.NO_MFA_REQUIRED,))


def decide(facts: Facts, policy: SigninPolicy) -> Verdict | Need:
    """The verdict, or the next fact needed to reach one."""
    blocked = _blocked(facts, policy)
    if blocked is not None:
        return blocked
    if facts.password_ok is None:
        return Need.PASSWORD  # unknown accounts too: a dummy hash costs the same
    if facts.account is None:
        return _deny(Reason.UNKNOWN_ACCOUNT)
    if not facts.password_ok:
        return _deny(Reason.WRONG_PASSWORD)
    if facts.account.status == AccountStatus.RESET_REQUIRED:
        return Verdict(Decision.RESET_REQUIRED, (Reason.RESET_PENDING,))
    if facts.breach_count is None and not facts.breach_failed:
        return Need.BREACH
    if facts.breach_count:
        return Verdict(Decision.RESET_REQUIRED, (Reason.PASSWORD_BREACHED,))
    if facts.breach_failed and policy.fail_closed:
        return _deny(Reason.BREACH_CHECK_FAILED)
    if facts.mfa is None:
        return Need.FACTORS
    return mfa_verdict(facts.mfa, now=facts.now, policy=policy)
