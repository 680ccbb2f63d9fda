"""The login flow: gathers the facts auth/hook.py asks for, in its order, and carries out
the verdict (counting failures, banning, forcing a reset, issuing a continuation).

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
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, bindparam, exists, func, select, update

from auth import audit, bans, continuations, lockout, metrics, signin_second
from auth.answer import Answer
from auth.breach import findings, policy, store
from auth.breach.checker import Check
from auth.breach.hashing import normalise_email, password_sha1
from auth.errors import InvalidInput
from auth.hook import (
    AccountFacts,
    Decision,
    Facts,
    MfaFacts,
    Need,
    Policy,
    Reason,
    Verdict,
    backoff_until,
    decide,
)
from auth.keyed_lock import KeyedLock
from auth.models import (
    Account,
    AccountStatus,
    FactorKind,
    Finding,
    FindingKind,
    FindingStatus,
    MfaFactor,
    UTCDateTime,
    table,
    utcnow,
)
from auth.prepared import Prepared, Read, rows_together
from auth.reset import forced
from auth.services import Services

ACTOR = audit.Actor.policy("login")
log = logging.getLogger(__name__)
BREACHED_REASON = "password found in a breach corpus at sign-in"
# Refusals decided before any hashing (rule 1 of auth/hook.py).
_SKIPPED_HASHING = {
    Reason.IP_BANNED,
    Reason.ACCOUNT_LOCKED,
    Reason.ACCOUNT_DISABLED,
    Reason.THROTTLED,
}


_A = table(Account)
_F, _FI = table(MfaFactor), table(Finding)


def _has_factor(kind: str) -> Any:
    return (
        exists()
        .where(_F.c.account_id == _A.c.id, _F.c.kind == kind, _F.c.confirmed_at.is_not(None))
        .label(f"has_{kind}")
    )


# Everything the rules may ask about the account, in one statement (the factor and finding
# tests are index look-ups): one round trip instead of three on a sign-in.
_ACCOUNT = Prepared(
    select(
        _A.c.id,
        _A.c.status,
        _A.c.session_epoch,
        _A.c.failed_logins,
        _A.c.last_failed_login_at,
        _A.c.password_hash,
        _A.c.mfa_required,
        _A.c.mfa_grace_from,
        _has_factor(FactorKind.TOTP),
        _has_factor(FactorKind.WEBAUTHN),
        exists()
        .where(_FI.c.account_id == _A.c.id, _FI.c.status == FindingStatus.OPEN.value)
        .label("has_findings"),
    ).where(_A.c.email == bindparam("email"))
)
# Allow only if the account still stands as it was read: a reset or lock committed while
# the password was being hashed turns this into no row, and the decision is taken again.
_CONFIRM = Prepared(
    update(_A)
    .where(
        _A.c.id == bindparam("account"),
        _A.c.session_epoch == bindparam("epoch"),
        _A.c.status == AccountStatus.ACTIVE.value,
    )
    .values(failed_logins=0, last_failed_login_at=None)
)
# An attempt under backoff takes its slot (SignIn._claim): moving the last failure to now
# restarts the delay for every other attempt that read the same state.
_CLAIM = Prepared(
    update(_A)
    .where(
        _A.c.id == bindparam("account"),
        _A.c.failed_logins == bindparam("failures"),
        _A.c.last_failed_login_at == bindparam("last", type_=UTCDateTime),
    )
    .values(last_failed_login_at=bindparam("now", type_=UTCDateTime))
)
# The same, for a sign-in let in during MFA_REQUIRED=all's grace: the grace starts now,
# if it had not started yet.
_CONFIRM_IN_GRACE = Prepared(
    _CONFIRM.statement.values(  # type: ignore[attr-defined]
        mfa_grace_from=func.coalesce(_A.c.mfa_grace_from, bindparam("now", type_=UTCDateTime))
    )
)


# Refusals kept by address, for at most REFUSAL_MEMORY (the bound is on the logical clock
# the sign-ins are given, `now`): those the account's state decided, not the address's ban.
_REMEMBERED = _SKIPPED_HASHING - {Reason.IP_BANNED}
REFUSAL_MEMORY = dt.timedelta(seconds=1)
REFUSALS_REMEMBERED = 10_000  # then the expired ones are dropped, at most once a second


@dataclass(frozen=True)
class _Refusing:
    """A refusal the account's state decided, remembered so that the next attempts of a
    flood within the second are refused with no reads but their API key's (none at all
    for a key admitted lately: Gate.admitted_lately). In process that is 3.2 M -> 2.3 M
    instructions a refused attempt; in bench/hook_flood.py's spread flood, 0.105 (SQLite)
    and 0.117 (PostgreSQL) of an argon2 run's CPU went to 0.067-0.083. It only ever
    refuses, and never past the end of the backoff delay; an unlock or a reset is honoured
    within REFUSAL_MEMORY."""

    until: dt.datetime
    reason: Reason
    account_id: int


def _refused_unhashed(reason: Reason, target: str, ip: str) -> None:
    log.info("sign-in refused before hashing: %s %s ip=%s", reason, target, ip)


@dataclass(frozen=True)
class Gate:
    """A read that goes out with the sign-in's own (one round trip on PostgreSQL) and a
    check of its rows that must pass before the sign-in goes on: the login hook's API key
    (auth/web/keys.py). `admit` raises to refuse, when nothing has been hashed or written
    yet; it may write (a key's last-used mark), and is committed with the reads."""

    read: Read
    admit: Callable[[Connection, list[Any]], None]
    # Whether this very key passed `admit` within the last second in this process. A
    # remembered refusal settles for that instead of a read: it answers nothing but
    # "deny", so a key revoked within that second gains nothing from it, and a key that
    # never passed still goes to the database and gets its 401.
    admitted_lately: Callable[[], bool] = lambda: False


class SignIn:
    def __init__(self, services: Services, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.services = services
        self.settings = services.settings
        self.policy = Policy.from_settings(services.settings)
        self.autoban = bans.AutoBan(
            after=self.settings.ip_ban_after,
            window=dt.timedelta(seconds=self.settings.ip_ban_window),
            length=dt.timedelta(seconds=self.settings.ip_ban_seconds),
        )
        self._sleep = sleep
        # How long refusing a wrong password takes here (hash and writes): the last few.
        self._refusals: deque[float] = deque(maxlen=31)
        self._turns = KeyedLock()  # one attempt at a time per address (login)
        self._refusing: dict[str, _Refusing] = {}  # by address (_remember)
        self._pruned = dt.datetime.min.replace(tzinfo=dt.UTC)  # its expired entries, last

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
        gate: Gate | None = None,
    ) -> Answer:
        """Decide on a sign-in. continuation=False: the caller keeps the pending state itself
        (the /login page, in its signed session cookie). gate: see Gate.

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
                gate=gate,
                started=started,
            )
        if answer.decision is Decision.DENY and answer.verdict.reasons[0] in _SKIPPED_HASHING:
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
        gate: Gate | None,
        started: float,
    ) -> Answer:
        remembered = self._refusing.get(address)
        if remembered is not None and now < remembered.until:
            return self._refuse_again(remembered, ip=ip, via=via, gate=gate)
        db = self.services.db
        reads: list[Read] = [(bans.ACTIVE, {"now": now}), (_ACCOUNT, {"email": address})]
        if self.services.checker.local:  # read ahead: used only once the password is right
            reads.append((store.PASSWORD_COUNT, {"d": password_sha1(password)}))
        if gate is not None:
            reads.append(gate.read)
        with db.reader() as conn:
            networks, accounts, *seen = rows_together(conn, reads)
            if gate is not None:
                gate.admit(conn, seen.pop())
                conn.commit()
        banned = bans.banned_by(ip, [n for (n,) in networks])
        row = accounts[0] if accounts else None
        known = {"local": int(seen[0][0][0] or 0)} if seen else None
        account = (
            None
            if row is None
            else AccountFacts(
                row.id, row.status, row.session_epoch, row.failed_logins, row.last_failed_login_at
            )
        )
        facts = Facts(now=now, ip_banned=banned, account=account)
        check: Check | None = None
        while isinstance(step := decide(facts, self.policy), Need):
            if step is Need.PASSWORD and account is not None and not self._claim(account, now):
                step = Verdict(Decision.DENY, (Reason.THROTTLED,))  # another attempt has it
                break
            if step is Need.PASSWORD:
                result = self.services.hasher.verify(row.password_hash if row else None, password)
                if result.ok and result.new_hash and row is not None:
                    with db.engine.begin() as conn:
                        conn.execute(
                            update(_A)
                            .where(_A.c.id == row.id)
                            .values(password_hash=result.new_hash)
                        )
                facts = replace(facts, password_ok=result.ok)
            elif step is Need.BREACH:
                check = self.services.checker.check_password(password, known=known)
                facts = replace(facts, breach_count=check.count, breach_failed=bool(check.errors))
            else:
                assert row is not None
                kinds = tuple(k for k in FactorKind if getattr(row, f"has_{k}"))
                mfa = MfaFacts(
                    kinds, bool(row.mfa_required), bool(row.has_findings), row.mfa_grace_from
                )
                facts = replace(facts, mfa=mfa)
        self._remember(address, step, facts)
        return self._carry_out(
            step,
            facts,
            check=check,
            ip=ip,
            user_agent=user_agent,
            via=via,
            continuation=continuation,
            started=started,
        )

    def _remember(self, address: str, verdict: Verdict, facts: Facts) -> None:
        """Keep a refusal that the account's own state decided (its lock, or its backoff
        while the delay runs) for at most REFUSAL_MEMORY: see _Refusing."""
        account, reason = facts.account, verdict.reasons[0] if verdict.reasons else None
        if account is None or reason not in _REMEMBERED or verdict.decision is not Decision.DENY:
            return
        until = facts.now + REFUSAL_MEMORY
        if reason is Reason.THROTTLED:  # not past the delay's end (an attempt that lost the
            # race for the slot a delay opened is past it, and not remembered)
            last = account.last_failed_login_at
            until = min(until, backoff_until(account.failed_logins, last, self.policy))
        if until <= facts.now:
            return
        if len(self._refusing) >= REFUSALS_REMEMBERED:  # a flood over many accounts
            if facts.now < self._pruned + REFUSAL_MEMORY:
                return  # full of live ones: the next refusals just read the database
            self._pruned = facts.now  # each entry lives a second: one pass a second will do
            self._refusing = {a: r for a, r in self._refusing.items() if r.until > facts.now}
            if len(self._refusing) >= REFUSALS_REMEMBERED:
                return
        self._refusing[address] = _Refusing(until, reason, account.id)

    def _refuse_again(
        self, remembered: _Refusing, *, ip: str, via: str, gate: Gate | None
    ) -> Answer:
        """A remembered refusal: the API key is checked (see Gate.admitted_lately), nothing
        else is read or written."""
        if gate is not None and not gate.admitted_lately():
            with self.services.db.reader() as conn:
                statement, params = gate.read
                gate.admit(conn, statement.rows(conn, params))
                conn.commit()
        verdict = Verdict(Decision.DENY, (remembered.reason,))
        metrics.login_decided(verdict.decision.value, via)
        _refused_unhashed(remembered.reason, f"account:{remembered.account_id}", ip)
        return Answer(verdict, remembered.account_id)

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
        with self.services.db.engine.begin() as conn:
            return _CLAIM.rowcount(conn, params) == 1

    def _carry_out(
        self,
        verdict: Verdict,
        facts: Facts,
        *,
        check: Check | None,
        ip: str,
        user_agent: str,
        via: str,
        continuation: bool,
        started: float,
    ) -> Answer:
        now, account = facts.now, facts.account
        metrics.login_decided(verdict.decision.value, via)
        account_id = account.id if account else None
        details = {"ip": ip, "via": via, "user_agent": user_agent[:200]}
        if verdict.decision is Decision.DENY:
            self._denied(verdict, facts, details=details, started=started)
            return Answer(verdict, account_id)
        assert account is not None
        if Reason.PASSWORD_BREACHED in verdict.reasons and check is not None:
            self._force_reset(account.id, check, details=details, now=now)
            return Answer(verdict, account.id)
        target = f"account:{account.id}"
        event = audit.Event(
            ACTOR,
            audit.Action.LOGIN_DECIDED,
            target,
            {"decision": verdict.decision.value, "reasons": [r.value for r in verdict.reasons]}
            | details,
        )
        token, expires = None, None
        if verdict.decision is Decision.RESET_REQUIRED:
            with self.services.db.engine.begin() as conn:
                audit.append(conn, [event], now=now)
            confirmed = True
        elif verdict.decision is Decision.MFA_REQUIRED and continuation:
            expires = now + dt.timedelta(seconds=self.settings.continuation_seconds)
            with self.services.db.engine.begin() as conn:
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
            params = {"account": account.id, "epoch": account.session_epoch, "now": now}
            guard = _CONFIRM_IN_GRACE if Reason.MFA_GRACE in verdict.reasons else _CONFIRM
            confirmed = audit.guarded_append(self.services.db, (guard, params), event, now=now)
        if not confirmed:
            # The account changed under us (a reset or a lock committed meanwhile): that
            # state decides, never the stale one.
            return self._recheck(account.id, verdict, now=now)
        return Answer(verdict, account.id, account.session_epoch, token, expires)

    def _recheck(self, account_id: int, previous: Verdict, *, now: dt.datetime) -> Answer:
        with self.services.db.reader() as conn:
            status = conn.execute(select(_A.c.status).where(_A.c.id == account_id)).scalar()
        if status == AccountStatus.RESET_REQUIRED:
            return Answer(Verdict(Decision.RESET_REQUIRED, (Reason.RESET_PENDING,)), account_id)
        return Answer(Verdict(Decision.DENY, (Reason.ACCOUNT_LOCKED,)), account_id)

    def _denied(
        self, verdict: Verdict, facts: Facts, *, details: dict[str, Any], started: float
    ) -> None:
        now, account = facts.now, facts.account
        reason = verdict.reasons[0]
        target = f"account:{account.id}" if account else "account:unknown"
        if reason in _SKIPPED_HASHING:
            # Nothing is written: a flood against a locked account or from a banned address
            # must not queue on the audit trail's head row (login() paces the answer).
            _refused_unhashed(reason, target, details["ip"])
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

    def _force_reset(
        self, account_id: int, check: Check, *, details: dict[str, Any], now: dt.datetime
    ) -> None:
        """Rule 4: a finding for the evidence, then the forced reset, in one transaction."""
        sources = [r.source for r in check.results if r.count]
        with self.services.db.session() as session:
            findings.record(
                session,
                [(account_id, FindingKind.PASSWORD_IN_BREACH, s, "sign-in check") for s in sources],
                actor=ACTOR,
                now=now,
            )
            finding_ids = session.execute(
                select(Finding.id).where(
                    Finding.account_id == account_id,
                    Finding.kind == FindingKind.PASSWORD_IN_BREACH,
                    Finding.status == FindingStatus.OPEN,
                )
            ).scalars()
            plan = forced.Plan(
                reason=BREACHED_REASON,
                reset_key=f"login:{now:%Y%m%dT%H%M%S.%f}",
                job_id=None,
                require_mfa=self.settings.reset_requires_mfa,
                actor=ACTOR,
            )
            target = forced.Target(account_id, tuple(finding_ids))
            forced.apply(session, [target], plan, secret_key=self.settings.secret_key, now=now)
            policy.mark_acted(session, target.finding_ids, action="reset", actor=ACTOR, now=now)
            audit.append(
                session,
                [
                    audit.Event(
                        ACTOR,
                        audit.Action.LOGIN_DECIDED,
                        f"account:{account_id}",
                        {"decision": "reset_required", "reasons": ["password_breached"]} | details,
                    )
                ],
                now=now,
            )

    # --- the second step (auth/signin_second.py) -----------------------------------------

    def webauthn_options(self, token: str, *, now: dt.datetime | None = None) -> str | None:
        """Options for navigator.credentials.get(), or None when the token is not live or
        the account has no security key."""
        return signin_second.webauthn_options(self.services, token, now=now)

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
        """allow or deny, with the same checks as the /login/mfa page (auth/mfa/second_step)."""
        return signin_second.second_step(
            self.services, token, code=code, credential=credential, ip=ip, via=via, now=now
        )
