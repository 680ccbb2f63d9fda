"""The sign-in: gathers the facts auth/signin/rules.py asks for, in its order, and carries
out the verdict (counting failures, banning, forcing a reset, issuing a continuation).

This is the in-process API for a portal running in the same Python process, and what the
HTTP hook (/api/v1/hook/…) and breachguard's own /login page call:

    flow = SignIn(services)
    answer = flow.login("dr.martin@example.org", password, ip="203.0.113.7")
    if answer.decision is Decision.MFA_REQUIRED:
        answer = flow.second_step(answer.continuation, code="123456", ip="203.0.113.7")
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import bindparam, func, select, update

from auth import audit, metrics
from auth.activity import risk, signin_risk
from auth.breach.checker import Check
from auth.breach.hashing import normalise_email
from auth.errors import InvalidInput
from auth.models import Account, AccountStatus, UTCDateTime, table, utcnow
from auth.services import Services
from auth.signin import bans, breached, continuations, facts, lockout, second_step
from auth.signin.answer import Answer
from auth.signin.facts import Found
from auth.signin.keyed_lock import KeyedLock
from auth.signin.rules import (
    AccountFacts,
    Decision,
    Facts,
    Need,
    Reason,
    SigninPolicy,
    Verdict,
    decide,
)

ACTOR = audit.Actor.policy("login")
log = logging.getLogger(__name__)
# Refusals decided before any hashing (rule 1 of auth/signin/rules.py).
UNHASHED = {Reason.IP_BANNED, Reason.ACCOUNT_LOCKED, Reason.ACCOUNT_DISABLED, Reason.THROTTLED}

_A = table(Account)
# Allow only if the account still stands as it was read: a reset or lock committed while
# the password was being hashed turns this into no row, and the decision is taken again.
_CONFIRM = (
    update(_A)
    .where(
        _A.c.id == bindparam("account"),
        _A.c.session_epoch == bindparam("epoch"),
        _A.c.status == AccountStatus.ACTIVE.value,
    )
    .values(failed_logins=0, last_failed_login_at=None)
)
# The same, for a sign-in let in during MFA_REQUIRED=all's grace: the grace starts now,
# if it had not started yet.
_CONFIRM_IN_GRACE = _CONFIRM.values(
    mfa_grace_from=func.coalesce(_A.c.mfa_grace_from, bindparam("now", type_=UTCDateTime))
)
# An attempt under backoff takes its slot (SignIn._claim): moving the last failure to now
# restarts the delay for every other attempt that read the same state.
_CLAIM = (
    update(_A)
    .where(
        _A.c.id == bindparam("account"),
        _A.c.failed_logins == bindparam("failures"),
        _A.c.last_failed_login_at == bindparam("last", type_=UTCDateTime),
    )
    .values(last_failed_login_at=bindparam("now", type_=UTCDateTime))
    .returning(_A.c.id)
)


class SignIn:
    def __init__(self, services: Services, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.services = services
        self.settings = services.settings
        self.policy = SigninPolicy.from_settings(services.settings)
        self.autoban = bans.AutoBan(
            after=self.settings.ip_ban_after,
            window=dt.timedelta(seconds=self.settings.ip_ban_window),
            length=dt.timedelta(seconds=self.settings.ip_ban_seconds),
        )
        self._sleep = sleep
        # How long refusing a wrong password takes here (hash and writes): the last few.
        self._refusals: deque[float] = deque(maxlen=31)
        self._turns = KeyedLock()  # one attempt at a time per address (login)
        self.risk = signin_risk.SignInRisk.from_settings(self.settings)

    # --- the first step ---------------------------------------------------------------

    def login(
        self,
        email: str,
        password: str,
        *,
        ip: str,
        user_agent: str = "",
        via: str = "hook",
        continuation: bool = True,
        now: dt.datetime | None = None,
    ) -> Answer:
        """Decide on a sign-in. continuation=False: the caller keeps the pending state itself
        (the /login page, in its signed session cookie).

        Attempts on one address take turns within the process, from the reads to the
        failure counted: otherwise every attempt of a flood that arrives before the first
        wrong guess is counted reads "no failures yet" and is hashed (as many at once as
        there are threads). The pause that makes a refusal without hashing last as long as a
        hashed one is taken after the turn, so it holds up nobody else."""
        now = now or utcnow()
        started = time.perf_counter()
        address = ""  # matches no account
        with contextlib.suppress(InvalidInput):
            address = normalise_email(email)
        with self._turns.hold(address) if address else contextlib.nullcontext():
            answer = self._login(
                address,
                password,
                ip=ip,
                user_agent=user_agent,
                via=via,
                continuation=continuation,
                now=now,
                started=started,
            )
        if answer.decision is Decision.DENY and answer.verdict.reasons[0] in UNHASHED:
            # No hash was computed: wait as long as a refused guess takes, so this refusal
            # cannot be told from a wrong password (no account enumeration) yet costs no CPU.
            self._sleep(max(0.0, self._typical_refusal() - (time.perf_counter() - started)))
        return answer

    def _login(
        self,
        address: str,
        password: str,
        *,
        ip: str,
        user_agent: str,
        via: str,
        continuation: bool,
        now: dt.datetime,
        started: float,
    ) -> Answer:
        found = facts.read(self.services.db, address=address, password=password, ip=ip, now=now)
        known, account = found.facts, found.facts.account
        check: Check | None = None
        while isinstance(step := decide(known, self.policy), Need):
            if step is Need.PASSWORD and account is not None and not self._claim(account, now):
                step = Verdict(Decision.DENY, (Reason.THROTTLED,))  # another attempt has it
                break
            if step is Need.PASSWORD:
                known = replace(known, password_ok=self._verify(found, password))
            elif step is Need.BREACH:
                check = self.services.checker.check_password(password, local_count=found.seen)
                known = replace(known, breach_count=check.count, breach_failed=bool(check.errors))
            else:
                known = replace(known, mfa=found.mfa())
        if isinstance(step, Verdict) and known.password_ok is not None:
            self.risk.attempt(
                self.services.db,
                address=address,
                ip=ip,
                failed=step.decision is Decision.DENY,
                now=now,
            )
        spray = None
        if known.password_ok is False and account is not None:
            spray = self.risk.spray_of(password, account_id=account.id, now=now)
        return self._carry_out(
            step,
            known,
            found=found,
            spray=spray,
            check=check,
            ip=ip,
            user_agent=user_agent,
            via=via,
            continuation=continuation,
            started=started,
        )

    def _verify(self, found: facts.Found, password: str) -> bool:
        """The password against the account's hash (a dummy one for no account: the same
        cost), rehashed when the parameters changed."""
        result = self.services.hasher.verify(found.password_hash, password)
        account = found.facts.account
        if result.ok and result.new_hash and account is not None:
            rehashed = update(_A).where(_A.c.id == account.id).values(password_hash=result.new_hash)
            self.services.db.run(rehashed)
        return result.ok

    def _claim(self, account: AccountFacts, now: dt.datetime) -> bool:
        """Under backoff, one attempt per delay: the slot the delay just opened is taken with
        a compare-and-set on the failures as read, so of a flood's concurrent attempts that
        all read the account before the last failure was counted, one is hashed and the
        rest are refused without hashing. Outside backoff: nothing to take."""
        if (
            account.failed_logins < self.policy.backoff_after
            or account.last_failed_login_at is None
        ):
            return True
        params = {
            "account": account.id,
            "failures": account.failed_logins,
            "last": account.last_failed_login_at,
            "now": now,
        }
        return bool(self.services.db.run(_CLAIM, params))

    def _carry_out(
        self,
        verdict: Verdict,
        facts: Facts,
        *,
        found: Found,
        spray: signin_risk.Spray | None,
        check: Check | None,
        ip: str,
        user_agent: str,
        via: str,
        continuation: bool,
        started: float,
    ) -> Answer:
        now, account = facts.now, facts.account
        new_network = found.new_network
        if facts.mfa is not None:
            verdict = risk.with_new_network(
                verdict, new_network=new_network, factors=facts.mfa.factors, policy=self.risk.policy
            )
        metrics.login_decided(verdict.decision.value, via)
        account_id = account.id if account else None
        details = {"ip": ip, "via": via, "user_agent": user_agent[:200]}
        attempt = (
            signin_risk.Attempt(
                account.id,
                ip,
                user_agent,
                via,
                verdict.decision.value,
                new_network,
                now,
                found.network_last_used,
            )
            if account is not None
            else None
        )
        if verdict.decision is Decision.DENY:
            self._denied(
                verdict, facts, details=details, started=started, attempt=attempt, spray=spray
            )
            return Answer(verdict, account_id)
        assert account is not None and attempt is not None
        if Reason.PASSWORD_BREACHED in verdict.reasons and check is not None:
            breached.force_reset(self.services, account.id, check, details=details, now=now)
            self.risk.signed_in(self.services.db, attempt, complete=False)
            return Answer(verdict, account.id)
        target = f"account:{account.id}"
        event = audit.Event(
            ACTOR,
            audit.Action.LOGIN_DECIDED,
            target,
            {"decision": verdict.decision.value, "reasons": [r.value for r in verdict.reasons]}
            | details,
        )
        db, token, expires = self.services.db, None, None
        if verdict.decision is Decision.RESET_REQUIRED:
            with db.connection() as conn:
                audit.append(conn, [event], now=now)
            confirmed = True
        elif verdict.decision is Decision.MFA_REQUIRED and continuation:
            expires = now + dt.timedelta(seconds=self.settings.continuation_seconds)
            with db.connection() as conn:
                token = continuations.issue(
                    conn,
                    account_id=account.id,
                    epoch=account.session_epoch,
                    ip=ip,
                    now=now,
                    ttl=expires - now,
                )
                confirmed = token is not None
                if confirmed:
                    lockout.clear(conn, account.id)
                    audit.append(conn, [event], now=now)
        else:  # allow, or the /login page's own second step: the account must stand as read
            guard = _CONFIRM_IN_GRACE if Reason.MFA_GRACE in verdict.reasons else _CONFIRM
            params = {"account": account.id, "epoch": account.session_epoch, "now": now}
            confirmed = audit.append_if(db, guard, params, event, now=now)
        if not confirmed:
            # The account changed under us (a reset or a lock committed meanwhile): that
            # state decides, never the stale one.
            return self._recheck(account.id)
        # Complete when no second factor is asked: its network becomes known now (else
        # once the second step succeeds).
        complete = verdict.decision in (Decision.ALLOW, Decision.ENROLL_REQUIRED)
        self.risk.signed_in(db, attempt, complete=complete)
        return Answer(verdict, account.id, account.session_epoch, token, expires)

    def _recheck(self, account_id: int) -> Answer:
        rows = self.services.db.run(select(_A.c.status).where(_A.c.id == account_id))
        status = rows[0].status if rows else None
        if status == AccountStatus.RESET_REQUIRED:
            return Answer(Verdict(Decision.RESET_REQUIRED, (Reason.RESET_PENDING,)), account_id)
        return Answer(Verdict(Decision.DENY, (Reason.ACCOUNT_LOCKED,)), account_id)

    def _denied(
        self,
        verdict: Verdict,
        facts: Facts,
        *,
        details: dict[str, Any],
        started: float,
        attempt: signin_risk.Attempt | None,
        spray: signin_risk.Spray | None,
    ) -> None:
        now, account = facts.now, facts.account
        reason = verdict.reasons[0]
        target = f"account:{account.id}" if account else "account:unknown"
        if reason in UNHASHED:
            # Nothing is written: a flood against a locked account or from a banned address
            # must not queue on the audit trail's head row (login() paces the answer).
            log.info("sign-in refused before hashing: %s %s ip=%s", reason, target, details["ip"])
            return
        events = [
            audit.Event(
                ACTOR, audit.Action.LOGIN_FAILED, target, {"reason": reason.value} | details
            )
        ]
        with self.services.db.session() as session:
            if reason is Reason.WRONG_PASSWORD and account is not None:
                failure = lockout.record_failure(
                    session,
                    account_id=account.id,
                    status_before=account.status,
                    lock_after=self.policy.lock_after,
                    now=now,
                )
                if failure.locked_now:
                    events.append(
                        audit.Event(
                            ACTOR,
                            audit.Action.ACCOUNT_LOCKED,
                            target,
                            {"failures": failure.failures, "ip": details["ip"]},
                        )
                    )
            audit.append(session, events, now=now)
            if attempt is not None:
                self.risk.record(session, attempt)
            if spray is not None and account is not None:
                self.risk.spray_found(
                    session, spray, account_id=account.id, ip=details["ip"], now=now
                )
            if reason in (Reason.WRONG_PASSWORD, Reason.UNKNOWN_ACCOUNT):
                bans.record_failure(
                    session, details["ip"], policy=self.autoban, actor=ACTOR, now=now
                )
        if reason in (Reason.WRONG_PASSWORD, Reason.UNKNOWN_ACCOUNT):
            self._refusals.append(time.perf_counter() - started)

    def _typical_refusal(self) -> float:
        """The median of the last refusals (robust to a stray slow one), or a hash's time."""
        if not self._refusals:
            return self.services.hasher.typical_seconds
        return statistics.median(self._refusals)

    # --- the second step -------------------------------------------------------------

    def webauthn_options(self, token: str, *, now: dt.datetime | None = None) -> str | None:
        """Options for navigator.credentials.get(), or None when the token is not live or
        the account has no security key."""
        return second_step.webauthn_options(self.services, token, now=now)

    def second_step(
        self,
        token: str,
        *,
        code: str | None = None,
        credential: dict[str, Any] | str | None = None,
        ip: str,
        via: str = "hook",
        now: dt.datetime | None = None,
    ) -> Answer:
        """allow or deny: the factor checked as on the /login/mfa page (auth/mfa/verify.py),
        on a live continuation (auth/signin/second_step.py)."""
        return second_step.finish(
            self.services, token, code=code, credential=credential, ip=ip, via=via, now=now
        )
