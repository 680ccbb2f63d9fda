"""The activity guard: the portal reports each sensitive action, breachguard decides.

Over HTTP: POST /api/v1/activity (auth/web/activity_api.py). In process:

    guard = Guard(build(load_settings()))
    ruling = guard.report(ActivityReport("dr.martin@example.org", portal_session_id,
                                         "203.0.113.7", "patient_lookup", subject=key))
    if ruling.decision is Decision.BLOCK: ...  # end the portal's session

One report: the account's standing is read in one statement, the action is counted in the
counters (auth/activity/counters.py) and the rules decide (auth/activity/policy.py).
`block` then, in one transaction: ends every session of the account, forces its reset with
the activity guard's reason, requires a second factor, bans the address for IP_BAN_SECONDS,
raises an `activity_block` alert and keeps the subjects the account touched from the
suspected start of the compromise (`report exposure`). Later reports for that account or
session answer `block` at once. `step_up` raises an `activity_step_up` alert (one per
account while it lasts) and hands the portal a continuation for the hook's second step
(POST /api/v1/hook/mfa); once it succeeds, the session's windows count from then.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import Any

import redis
from sqlalchemy import and_, bindparam, exists, func, insert, select, update
from sqlalchemy.orm import Session

from auth.activity import counters as counting
from auth.activity import exposure, signin_risk
from auth.activity.alerts import raise_alert
from auth.activity.networks import network_of
from auth.activity.policy import LONGEST_WINDOW, Decision, Facts, Reason, Verdict, decide
from auth.breach.hashing import normalise_email
from auth.db import dialect_insert
from auth.errors import BreachguardError, InvalidInput, NotFound, has_control
from auth.models import (
    Account,
    AccountNetwork,
    AccountStatus,
    ActivityEvent,
    ActivitySession,
    AlertKind,
    LoginContinuation,
    MfaFactor,
    ResetReason,
    iso_utc,
    table,
    utcnow,
)
from auth.reset import forced, reasons
from auth.services import Services
from auth.signin import bans, continuations
from auth.web import session as web_session

ACTOR = reasons.ACTIVITY  # audit.Actor.policy("activity")
STEP_UP_MARK = "~step_up"  # an event row naming the continuation a step-up handed out
ACTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
LIMITS = {"account": 320, "session": 512, "subject": 128}
CLOCK_SKEW = dt.timedelta(minutes=1)  # how far ahead of ours the portal's clock may be
ACCOUNT_ID_DIGITS = 18  # longer ids would overflow the column; no account has one

_A, _S, _E, _N = table(Account), table(ActivitySession), table(ActivityEvent), table(AccountNetwork)
_C, _F = table(LoginContinuation), table(MfaFactor)


class BadReport(InvalidInput):
    """A report the guard cannot read; `field` names the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class GuardUnavailable(BreachguardError):
    """The counters (Redis) did not answer: no decision could be taken."""


@dataclass(frozen=True)
class ActivityReport:
    account: str  # the e-mail the person signed in with, or breachguard's account id
    session: str  # the portal's session id (only its SHA-256 is kept)
    ip: str
    action: str  # e.g. "patient_lookup": picks the policy row
    subject: str = ""  # the portal's opaque key for what was looked up, never an identifier
    at: dt.datetime | None = None  # when the action happened; now by default


@dataclass(frozen=True)
class Ruling:
    """The guard's answer: the verdict, and for a step-up what the portal needs to ask for
    the second factor (a continuation for /api/v1/hook/mfa), or `enroll_required` when the
    account has no second factor to ask for."""

    verdict: Verdict
    account_id: int
    continuation: str | None = None
    continuation_expires_at: dt.datetime | None = None
    factors: tuple[str, ...] = ()
    enroll_required: bool = False
    alert_id: int | None = None

    @property
    def decision(self) -> Decision:
        return self.verdict.decision

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.verdict.reasons

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"decision": self.decision.value, "reasons": list(self.reasons)}
        if self.decision is Decision.STEP_UP:
            expires = self.continuation_expires_at
            body |= {
                "continuation": self.continuation,
                "continuation_expires_at": iso_utc(expires) if expires else None,
                "factors": list(self.factors),
                "enroll_required": self.enroll_required,
            }
        return body


def _state(by_id: bool) -> Any:
    """The account's standing for one report, in one statement."""
    proved = (
        select(func.max(_C.c.used_at))
        .select_from(_E.join(_C, _C.c.id == _E.c.subject))
        .where(
            _E.c.session == bindparam("session"),
            _E.c.action == STEP_UP_MARK,
            _C.c.used_at.is_not(None),
            _C.c.failures < continuations.MAX_FAILURES,
        )
        .scalar_subquery()
    )
    blocks = _S.alias("blocks")  # the account's other sessions, not the outer join's row
    last_block = (
        select(func.max(blocks.c.blocked_at))
        .where(blocks.c.account_id == _A.c.id)
        .scalar_subquery()
    )
    known = exists().where(_N.c.account_id == _A.c.id, _N.c.network == bindparam("network"))
    any_known = exists().where(_N.c.account_id == _A.c.id)
    key = _A.c.id == bindparam("id") if by_id else _A.c.email == bindparam("email")
    return (
        select(
            _A.c.id,
            _A.c.status,
            _A.c.reset_reason_code,
            _A.c.session_epoch,
            _S.c.stepped_up_at,
            _S.c.blocked_at,
            last_block.label("account_blocked_at"),
            known.label("known"),
            any_known.label("any_known"),
            proved.label("proved_at"),
        )
        .select_from(
            _A.outerjoin(_S, and_(_S.c.session == bindparam("session"), _S.c.account_id == _A.c.id))
        )
        .where(key)
    )


_BY_ID, _BY_EMAIL = _state(True), _state(False)
_FACTORS = (
    select(_F.c.kind)
    .where(_F.c.account_id == bindparam("account"), _F.c.confirmed_at.is_not(None))
    .distinct()
)


class Guard:
    def __init__(self, services: Services, counters: counting.Counters | None = None) -> None:
        self.services = services
        self.settings = services.settings
        self.counters = counters or counting.build(services.settings, services.db)

    def report(self, report: ActivityReport, *, now: dt.datetime | None = None) -> Ruling:
        """Decide on one reported action; NotFound for an unknown account, BadReport for
        a malformed one, GuardUnavailable when the counters do not answer."""
        now = now or utcnow()
        at = report.at or now
        ip, action, subject = _checked(report)
        if at > now + CLOCK_SKEW:  # it would trim every window that others share, too
            raise BadReport("at", "at is ahead of breachguard's clock by more than a minute")
        digest = counting.session_digest(report.session)
        network = network_of(ip)
        state = self._state(report.account, digest, network)
        if _blocked(state.status, state.reset_reason_code) or state.blocked_at is not None:
            return Ruling(Verdict(Decision.BLOCK, (Reason.BLOCKED.value,)), state.id)
        stepped_up = state.stepped_up_at
        if state.proved_at is not None and (stepped_up is None or state.proved_at > stepped_up):
            stepped_up = state.proved_at
            self._stepped_up(state.id, digest, network, stepped_up, now)
        elif not state.any_known:
            self._first_network(state.id, network, now)
        floors = [t.timestamp() for t in (stepped_up, state.account_blocked_at) if t]
        row = self.settings.activity_policy.row(action)
        new_network = bool(state.any_known and not state.known and stepped_up is None)
        event = counting.Event(state.id, digest, ip, network, action, subject, at, new_network)
        try:
            facts = self.counters.observe(
                event, floor=max(floors, default=0.0), recent=row.regular_intervals + 1
            )
        except redis.RedisError as exc:
            raise GuardUnavailable(f"the activity counters did not answer: {exc}") from None
        facts = replace(facts, new_network=new_network, stepped_up=stepped_up is not None)
        verdict = decide(facts, row, at)
        if verdict.decision is Decision.ALLOW:
            return Ruling(verdict, state.id)
        if verdict.decision is Decision.STEP_UP:
            return self._step_up(verdict, facts, event, state.session_epoch, now)
        return self._block(verdict, facts, event, now)

    # --- reading ------------------------------------------------------------------------

    def _state(self, account: str, digest: str, network: str) -> Any:
        params: dict[str, Any] = {"session": digest, "network": network}
        key = account.strip()
        if key.isascii() and key.isdecimal():  # an id ("²" is a digit too, not a number)
            if len(key) > ACCOUNT_ID_DIGITS:
                raise NotFound("account: no such account")
            rows = self.services.db.run(_BY_ID, params | {"id": int(key)})
        else:
            try:
                email = normalise_email(account)
            except InvalidInput:
                raise BadReport(
                    "account", "account: not an e-mail address or a breachguard account id"
                ) from None
            rows = self.services.db.run(_BY_EMAIL, params | {"email": email})
        if not rows:
            raise NotFound("account: no such account")
        return rows[0]

    # --- networks and step-ups ----------------------------------------------------------

    def _first_network(self, account_id: int, network: str, now: dt.datetime) -> None:
        """An account with no known network yet: its first one becomes known."""
        with self.services.db.session() as session:
            session.execute(signin_risk.know(session, account_id, network, now))

    def _stepped_up(
        self, account_id: int, digest: str, network: str, at: dt.datetime, now: dt.datetime
    ) -> None:
        """The second step the guard asked for succeeded: the session counts from then and
        the network it works from is the account's."""
        with self.services.db.session() as session:
            _mark_session(session, digest, account_id, now, stepped_up_at=at)
            session.execute(signin_risk.know(session, account_id, network, now))

    def _step_up(
        self, verdict: Verdict, facts: Facts, event: counting.Event, epoch: int, now: dt.datetime
    ) -> Ruling:
        """An alert (one per account while it lasts) and, when the account has a second
        factor, a continuation for the hook's second step, remembered for this session."""
        ttl = dt.timedelta(seconds=self.settings.continuation_seconds)
        with self.services.db.session() as session:
            factors = tuple(
                sorted(session.execute(_FACTORS, {"account": event.account_id}).scalars())
            )
            token = None
            if factors:
                token = continuations.issue(
                    session.connection(),
                    account_id=event.account_id,
                    epoch=epoch,
                    ip=event.ip,
                    now=now,
                    ttl=ttl,
                )
            if token is not None:
                mark = replace(
                    event, action=STEP_UP_MARK, subject=continuations.digest(token), at=now
                )
                session.execute(insert(_E).values(counting.row_of(mark)))
            raised = raise_alert(
                session,
                kind=AlertKind.ACTIVITY_STEP_UP,
                cause=f"account:{event.account_id}",
                accounts=[event.account_id],
                addresses=[event.ip],
                evidence=_evidence(verdict, facts, event)
                | {"timeline": [_moment(verdict, event, now)]},
                now=now,
                settings=self.settings,
            )
        return Ruling(
            verdict,
            event.account_id,
            continuation=token,
            continuation_expires_at=now + ttl if token else None,
            factors=factors,
            enroll_required=not factors,
            alert_id=raised.alert_id,
        )

    # --- the block ----------------------------------------------------------------------

    def _block(
        self, verdict: Verdict, facts: Facts, event: counting.Event, now: dt.datetime
    ) -> Ruling:
        at = event.at.timestamp()
        start = max(verdict.since if verdict.since is not None else at, at - LONGEST_WINDOW)
        window = self.counters.touched(event.account_id, since=at - LONGEST_WINDOW, until=at)
        if facts.new_network:  # the account's first action from the network it never used
            start = min([start, *(t.at for t in window if t.network == event.network)])
        touched = [t for t in window if t.at >= start]
        exposed = exposure.first_touches(touched)
        suspected_from = dt.datetime.fromtimestamp(start, dt.UTC)
        with self.services.db.session() as session:
            if not self._take(session, event.account_id):
                _mark_session(session, event.session, event.account_id, now, blocked_at=now)
                return Ruling(verdict, event.account_id)
            evidence = _evidence(verdict, facts, event) | {
                "exposed_subjects": len(exposed),
                "timeline": [*_per_minute(touched), _moment(verdict, event, now)],
            }
            raised = raise_alert(
                session,
                kind=AlertKind.ACTIVITY_BLOCK,
                cause=f"account:{event.account_id}",
                accounts=[event.account_id],
                addresses=[event.ip],
                evidence=evidence,
                now=now,
                settings=self.settings,
                suspected_from=suspected_from,
            )
            self._consequences(session, event, verdict, now)
            exposure.keep(
                session,
                alert_id=raised.alert_id,
                account_id=event.account_id,
                subjects=exposed,
                now=now,
            )
            _mark_session(session, event.session, event.account_id, now, blocked_at=now)
        return Ruling(verdict, event.account_id, alert_id=raised.alert_id)

    @staticmethod
    def _take(session: Session, account_id: int) -> bool:
        """Require a second factor and claim the block: False when a concurrent report
        blocked the account first (the row's lock orders the two)."""
        row = session.execute(
            update(_A)
            .where(_A.c.id == account_id)
            .values(mfa_required=True)
            .returning(_A.c.status, _A.c.reset_reason_code)
        ).one()
        return not _blocked(row.status, row.reset_reason_code)

    def _consequences(
        self, session: Session, event: counting.Event, verdict: Verdict, now: dt.datetime
    ) -> None:
        reasons = ", ".join(verdict.reasons)
        web_session.end_all(
            session.connection(),
            event.account_id,
            actor=ACTOR,
            now=now,
            details={"reason": "activity_block", "rules": list(verdict.reasons)},
        )
        plan = forced.Plan(
            reason="",  # the code says why (reasons.ACTIVITY); the rules are in the audit trail
            reset_key=f"activity:{now:%Y%m%dT%H%M%S.%f}",
            job_id=None,
            require_mfa=True,
            actor=ACTOR,
        )
        forced.apply(
            session,
            [forced.Target(event.account_id)],
            plan,
            secret_key=self.settings.secret_key,
            now=now,
        )
        if self.settings.ip_ban_seconds > 0:
            bans.add(
                session,
                event.ip,
                reason=f"activity guard blocked account {event.account_id}: {reasons}",
                expires_at=now + dt.timedelta(seconds=self.settings.ip_ban_seconds),
                actor=ACTOR,
                now=now,
                automatic=True,
            )


# --- helpers ------------------------------------------------------------------------------


def _checked(report: ActivityReport) -> tuple[str, str, str]:
    """The report's address (normalised), action and subject, or BadReport."""
    for name in ("account", "session"):
        value = getattr(report, name)
        if not isinstance(value, str) or not value.strip():
            raise BadReport(name, f"{name} is required and must be a non-empty string")
        if len(value) > LIMITS[name]:
            raise BadReport(name, f"{name} is longer than {LIMITS[name]} characters")
    try:
        ip = str(bans.parse_ip(report.ip))
    except (InvalidInput, AttributeError):  # AttributeError: not a string, in process
        raise BadReport("ip", f"ip: {str(report.ip)[:60]!r} is not an IP address") from None
    if not isinstance(report.action, str) or not ACTION.fullmatch(report.action):
        raise BadReport(
            "action", "action must be 1 to 64 letters, digits or _ . : - (e.g. patient_lookup)"
        )
    subject = report.subject or ""
    if not isinstance(subject, str) or len(subject) > LIMITS["subject"] or has_control(subject):
        raise BadReport(
            "subject",
            f"subject must be a string of at most {LIMITS['subject']} characters, without "
            "control characters",
        )
    if report.at is not None and report.at.tzinfo is None:
        raise BadReport("at", "at must carry its time zone (e.g. 2026-12-07T10:00:00Z)")
    return ip, report.action, subject


def _blocked(status: str, reset_reason: str | None) -> bool:
    """Whether the account's standing is the guard's own block (a reset it required)."""
    return status == AccountStatus.RESET_REQUIRED and reset_reason == ResetReason.ACTIVITY_BLOCK


def _mark_session(
    session: Session, digest: str, account_id: int, now: dt.datetime, **values: dt.datetime
) -> None:
    upsert = dialect_insert(session)(_S).values(
        session=digest, account_id=account_id, seen_at=now, **values
    )
    session.execute(
        upsert.on_conflict_do_update(index_elements=[_S.c.session], set_={"seen_at": now, **values})
    )


def _evidence(verdict: Verdict, facts: Facts, event: counting.Event) -> dict[str, Any]:
    return {
        "reasons": list(verdict.reasons),
        "action": event.action,
        "network": event.network,
        "account": asdict(facts.account),
        "session": asdict(facts.session),
        "subjects_hour": facts.subjects_hour,
        "network_accounts": facts.network_accounts,
        "new_network": facts.new_network,
    }


def _moment(verdict: Verdict, event: counting.Event, now: dt.datetime) -> dict[str, Any]:
    return {
        "at": iso_utc(now),
        "decision": verdict.decision.value,
        "reasons": list(verdict.reasons),
        "ip": event.ip,
    }


def _per_minute(touched: list[counting.Touched]) -> list[dict[str, Any]]:
    """The account's actions per minute, from the suspected start to the block."""
    minutes = Counter(int(t.at // 60) * 60 for t in touched)
    return [
        {"at": iso_utc(dt.datetime.fromtimestamp(m, dt.UTC)), "count": n}
        for m, n in sorted(minutes.items())
    ]
