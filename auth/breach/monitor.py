"""`monitor`: re-check only what changed since the last run, and resume where it stopped.

Three steps, each committed in small transactions together with its progress marker, so
a run killed at any point loses nothing and a rerun repeats nothing:

1. imports not yet checked (`breaches.checked_at` lags `imported_at`): every account
   against THAT breach's e-mail digests, one INSERT..SELECT per breach;
2. accounts created since the last run (a watermark on the account id): against every
   breach, in batches;
3. with HIBP as a source, a slice of a pass over the 6-hex prefixes that hold accounts,
   paced to the plan's rate; the cursor (last prefix done) is committed with each
   prefix's findings, a finished pass starts over at the next run.

Then the finding policy table acts on what is new (auth/breach/finding_policy.py). Run one monitor
at a time (systemd timers do not overlap; under cron use `flock -n`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from auth import audit
from auth.breach import finding_policy, findings, scan
from auth.breach.hashing import EMAIL_PREFIX_LEN, prefix_bounds, sha1_hex
from auth.breach.hibp import HibpClient
from auth.breach.pacing import Budget, Pacer
from auth.db import Database
from auth.errors import BreachSourceError
from auth.mfa import census
from auth.models import (
    Breach,
    BreachKind,
    FindingKind,
    MonitorState,
    utcnow,
)
from auth.services import Services

ACCOUNTS_STATE = "accounts_through"
HIBP_STATE = "hibp_cursor"
ACCOUNT_BATCH = 5000
Clock = Callable[[], dt.datetime]


# --- progress markers ---------------------------------------------------------------------


def read_state(session: Session, name: str) -> dict[str, Any] | None:
    row = session.get(MonitorState, name)
    return None if row is None else dict(json.loads(row.value or "{}"))


def write_state(session: Session, name: str, value: dict[str, Any], *, now: dt.datetime) -> None:
    """In the caller's transaction, so the marker moves with the work it marks."""
    row = session.get(MonitorState, name)
    if row is None:
        session.add(MonitorState(name=name, value=json.dumps(value), updated_at=now))
    else:
        row.value, row.updated_at = json.dumps(value), now
    session.flush()


# --- 1. imports not yet checked -----------------------------------------------------------


def check_breach(session: Session, breach: Breach, *, actor: audit.Actor, now: dt.datetime) -> int:
    """Every account against one breach's e-mails; marks the import checked. Returns how
    many findings are new. In the caller's transaction."""
    new: list[tuple[int, str]] = []
    if breach.kind != BreachKind.PASSWORDS:
        new = scan.record_local(
            session, actor=actor, now=now, scope=scan.ONE_BREACH, breach_id=breach.id
        )
    breach.checked_at = breach.imported_at
    session.flush()
    return len(new)


def unchecked_breaches(session: Session) -> list[int]:
    return list(
        session.execute(
            select(Breach.id)
            .where((Breach.checked_at.is_(None)) | (Breach.checked_at < Breach.imported_at))
            .order_by(Breach.imported_at, Breach.id)
        ).scalars()
    )


def check_imports(
    db: Database, *, actor: audit.Actor, clock: Clock, only: int | None = None
) -> dict[str, int]:
    """Each unchecked import in its own transaction; returns new findings per breach."""
    done: dict[str, int] = {}
    with db.session() as session:
        ids = unchecked_breaches(session)
    for breach_id in ids if only is None else [i for i in ids if i == only]:
        with db.session() as session:
            # Re-read under the transaction: a concurrent re-import moves imported_at.
            breach = session.get(Breach, breach_id)
            if breach is None or (
                breach.checked_at is not None and breach.checked_at >= breach.imported_at
            ):
                continue
            done[breach.name] = check_breach(session, breach, actor=actor, now=clock())
    return done


# --- 2. accounts created since the last run -----------------------------------------------

_BATCH_TOP = """
SELECT MAX(id), COUNT(*) FROM (SELECT id FROM accounts WHERE id > :lo ORDER BY id LIMIT :n) AS b
"""


def check_new_accounts(
    db: Database, *, actor: audit.Actor, clock: Clock, batch: int = ACCOUNT_BATCH
) -> tuple[int, int]:
    """Accounts above the watermark against every breach; returns (accounts, new findings).
    The watermark moves in the same transaction as the batch's findings."""
    accounts = new = 0
    while True:
        with db.session() as session:
            state = read_state(session, ACCOUNTS_STATE) or {"through": 0}
            lo = int(state["through"])
            conn = session.connection()
            hi, count = conn.execute(text(_BATCH_TOP), {"lo": lo, "n": batch}).one()
            if hi is None:
                return accounts, new
            now = clock()
            rows = scan.record_local(
                session, actor=actor, now=now, scope=scan.ACCOUNT_RANGE, lo=lo, hi=int(hi)
            )
            write_state(session, ACCOUNTS_STATE, {"through": int(hi)}, now=now)
        accounts += int(count)
        new += len(rows)


# --- 3. a slice of the HIBP pass ----------------------------------------------------------


@dataclass
class HibpSlice:
    prefixes: int = 0
    new_findings: int = 0
    pass_finished: bool = False
    stopped_by_budget: bool = False
    cursor: str = ""
    failed_prefix: str | None = None  # the prefix HIBP could not answer: the slice stops
    failed_accounts: int = 0  # its accounts, not known to be clean
    errors: list[str] = field(default_factory=list)


def next_prefix(session: Session, after: str) -> tuple[str, list[tuple[int, str]]] | None:
    """The first prefix above `after` that holds accounts, with (account id, suffix)."""
    low = prefix_bounds(after)[1] if after else b""
    first = session.execute(
        text(  # LIMIT: without it the driver would fetch every later row to return one
            "SELECT email_sha1 FROM accounts WHERE email_sha1 >= :low ORDER BY email_sha1 LIMIT 1"
        ),
        {"low": low},
    ).first()
    if first is None:
        return None
    prefix = sha1_hex(bytes(first[0]))[:EMAIL_PREFIX_LEN]
    lo, hi = prefix_bounds(prefix)
    rows = session.execute(
        text("SELECT id, email_sha1 FROM accounts WHERE email_sha1 >= :lo AND email_sha1 < :hi"),
        {"lo": lo, "hi": hi},
    ).all()
    return prefix, [(aid, sha1_hex(bytes(d))[EMAIL_PREFIX_LEN:]) for aid, d in rows]


def hibp_slice(
    db: Database,
    client: HibpClient,
    *,
    actor: audit.Actor,
    clock: Clock,
    pacer: Pacer,
    budget: Budget,
) -> HibpSlice:
    """Continue the pass from its cursor until the budget or the pass ends. A failed
    prefix stops the slice with the cursor before it, so the next run asks it again."""
    result = HibpSlice()
    while True:
        with db.session() as session:
            state = read_state(session, HIBP_STATE) or {}
            if state.get("finished_at"):  # the last run ended a pass: begin the next one
                state = {"passes": state.get("passes", 0)}
            after = str(state.get("after", ""))
            found = next_prefix(session, after)
            if found is None:
                state.update(after="", finished_at=clock().isoformat())
                state["passes"] = int(state.get("passes", 0)) + 1
                write_state(session, HIBP_STATE, state, now=clock())
                result.pass_finished, result.cursor = True, ""
                return result
        prefix, members = found
        if not budget.take(pacer):
            result.stopped_by_budget, result.cursor = True, after
            return result
        try:
            answer = client.email_range(prefix)
        except BreachSourceError as exc:
            result.errors.append(f"hibp {prefix}: {exc}")
            result.failed_prefix, result.failed_accounts = prefix, len(members)
            result.cursor = after
            return result
        keys = [
            (account_id, FindingKind.EMAIL_IN_BREACH, "hibp", name)
            for account_id, suffix in members
            for name in answer.get(suffix, ())
        ]
        with db.session() as session:
            now = clock()
            result.new_findings += findings.record(session, keys, actor=actor, now=now)
            state.setdefault("started_at", now.isoformat())
            state["after"] = prefix
            write_state(session, HIBP_STATE, state, now=now)
        result.prefixes += 1
        result.cursor = prefix


# --- one run ------------------------------------------------------------------------------


@dataclass
class MonitorReport:
    breaches: dict[str, int] = field(default_factory=dict)  # new findings per checked import
    accounts_checked: int = 0
    account_findings: int = 0
    hibp: HibpSlice | None = None
    policy: finding_policy.PolicyReport = field(default_factory=finding_policy.PolicyReport)
    errors: list[str] = field(default_factory=list)

    @property
    def new_findings(self) -> int:
        hibp = self.hibp.new_findings if self.hibp else 0
        return sum(self.breaches.values()) + self.account_findings + hibp

    def as_dict(self) -> dict[str, Any]:
        hibp = self.hibp
        return {
            "breaches_checked": len(self.breaches),
            "breach_findings": self.breaches,
            "accounts_checked": self.accounts_checked,
            "account_findings": self.account_findings,
            "hibp": None
            if hibp is None
            else {
                "prefixes": hibp.prefixes,
                "new_findings": hibp.new_findings,
                "pass_finished": hibp.pass_finished,
                "stopped_by_budget": hibp.stopped_by_budget,
                "cursor": hibp.cursor,
                "failed_prefix": hibp.failed_prefix,
                "failed_accounts": hibp.failed_accounts,
            },
            "new_findings": self.new_findings,
            "policy": self.policy.as_dict(),
            "errors": self.errors,
        }


def apply_policy(services: Services, *, clock: Clock) -> finding_policy.PolicyReport:
    settings = services.settings
    return finding_policy.run(
        services.db,
        settings.finding_policy,
        secret_key=settings.secret_key,
        require_mfa_on_reset=settings.reset_requires_mfa,
        now=clock(),
    )


def run(
    services: Services,
    *,
    actor: audit.Actor,
    budget: Budget,
    clock: Clock = utcnow,
    pacer: Pacer | None = None,
) -> MonitorReport:
    """One monitor run: imports, new accounts, a slice of the HIBP pass, the policy."""
    settings, db = services.settings, services.db
    report = MonitorReport()
    if "local" in settings.breach_sources:
        report.breaches = check_imports(db, actor=actor, clock=clock)
        report.accounts_checked, report.account_findings = check_new_accounts(
            db, actor=actor, clock=clock
        )
    if "hibp" in settings.breach_sources and services.hibp is not None:
        pacer = pacer or Pacer(settings.hibp_rate_per_minute)
        budget.start()
        report.hibp = hibp_slice(
            db, services.hibp, actor=actor, clock=clock, pacer=pacer, budget=budget
        )
        report.errors.extend(report.hibp.errors)
    report.policy = apply_policy(services, clock=clock)
    with db.session() as session:
        census.snapshot(session, clock().date())  # the console's and the report's history
        audit.append(
            session,
            [audit.Event(actor, audit.Action.MONITOR_COMPLETED, "accounts", report.as_dict())],
            now=clock(),
        )
    return report


def after_import(
    services: Services, breach_name: str, *, actor: audit.Actor, clock: Clock = utcnow
) -> dict[str, Any]:
    """Right after `corpus import` commits: every account against that import, then the
    policy table, so a fresh leak is acted on without waiting for the next monitor run."""
    with services.db.session() as session:
        breach_id = session.execute(
            select(Breach.id).where(Breach.name == breach_name)
        ).scalar_one()
    new = check_imports(services.db, actor=actor, clock=clock, only=breach_id)
    acted = apply_policy(services, clock=clock)
    return {"new_findings": sum(new.values()), "policy": acted.as_dict()}
