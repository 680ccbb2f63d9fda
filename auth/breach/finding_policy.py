"""What is done about a finding, once: force a reset, require a second factor, dismiss it.

The policy table (FINDING_POLICY) and the security console share these functions, so an
automatic action and a person's action are the same code and leave the same trail.

Each action first *claims* its findings with one UPDATE .. RETURNING that only matches
findings still open and not yet acted on as strongly (none < mfa < reset): the row locks
it takes make a second concurrent run (a cron `monitor`, the HIBP callback, the console)
find nothing left to claim, so an account is reset or flagged once per finding.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, or_, select, update
from sqlalchemy.orm import Session

from auth import audit
from auth.db import Database, among
from auth.errors import InvalidInput, one_line
from auth.models import Account, Finding, FindingStatus, Reset, table
from auth.reset import forced

POLICY_ACTOR = audit.Actor.policy("finding_policy")
# Weaker actions a stronger one may replace (the console escalates mfa -> reset).
_REPLACEABLE = {"reset": ("mfa", "none"), "mfa": ("none",)}
BATCH = 5000  # findings per transaction when the policy table runs over a backlog


@dataclass
class ActionResult:
    """What one action did: findings it marked, accounts it changed, findings it left."""

    action: str
    findings: list[int] = field(default_factory=list)  # marked with this action now
    accounts: list[int] = field(default_factory=list)  # reset / newly required a factor
    already: list[int] = field(default_factory=list)  # accounts that already were
    skipped: list[int] = field(default_factory=list)  # unknown, closed or already acted on


@dataclass(frozen=True)
class _Claimed:
    id: int
    account_id: int
    kind: str
    reset_id: int | None


def _update_open(
    session: Session, finding_ids: Sequence[int], *conditions: Any, values: Mapping[str, Any]
) -> list[_Claimed]:
    """One UPDATE .. RETURNING over the open findings among `finding_ids` that also meet
    `conditions`: the row locks make a concurrent second claim find nothing."""
    findings = table(Finding)
    rows = session.execute(
        update(findings)
        .where(
            among(findings.c.id, sorted(set(finding_ids))),
            findings.c.status == FindingStatus.OPEN,
            *conditions,
        )
        .values(**values)
        .returning(findings.c.id, findings.c.account_id, findings.c.kind, findings.c.reset_id)
    ).all()
    return sorted((_Claimed(*r) for r in rows), key=lambda c: c.id)


def _claim(
    session: Session,
    finding_ids: Sequence[int],
    *,
    action: str,
    actor: audit.Actor,
    now: dt.datetime,
    replace: Iterable[str] = (),
) -> list[_Claimed]:
    """Mark open findings not yet acted on (or acted on more weakly) with `action`."""
    findings = table(Finding)
    weaker = list(replace)
    not_acted = findings.c.action.is_(None)
    condition = or_(not_acted, findings.c.action.in_(weaker)) if weaker else not_acted
    values = {"action": action, "acted_at": now, "acted_by": str(actor)}
    return _update_open(session, finding_ids, condition, values=values)


def _by_account(claimed: Sequence[_Claimed]) -> dict[int, list[_Claimed]]:
    groups: dict[int, list[_Claimed]] = defaultdict(list)
    for c in claimed:
        groups[c.account_id].append(c)
    return dict(sorted(groups.items()))


def _acted_events(
    actor: audit.Actor, action: str, groups: Mapping[int, list[_Claimed]], changed: set[int]
) -> list[audit.Event]:
    return [
        audit.Event(
            actor,
            audit.Action.FINDING_ACTED,
            f"account:{account_id}",
            {
                "action": action,
                "findings": [c.id for c in group],
                "kinds": sorted({c.kind for c in group}),
                "changed": account_id in changed,
            },
        )
        for account_id, group in groups.items()
    ]


def _skipped(finding_ids: Sequence[int], claimed: Sequence[_Claimed]) -> list[int]:
    done = {c.id for c in claimed}
    return sorted(set(finding_ids) - done)


def force_reset(
    session: Session,
    finding_ids: Sequence[int],
    *,
    actor: audit.Actor,
    reason: str,
    secret_key: str,
    now: dt.datetime,
    require_mfa: bool = True,
) -> ActionResult:
    """Force the reset of the accounts behind these findings, once per finding, inside the
    caller's transaction. A finding already reset (by a job, at sign-in) is marked, not
    reset again; an account already waiting for a reset is counted in `already`."""
    claimed = _claim(
        session, finding_ids, action="reset", actor=actor, now=now, replace=_REPLACEABLE["reset"]
    )
    result = ActionResult("reset", findings=[c.id for c in claimed])
    result.skipped = _skipped(finding_ids, claimed)
    groups = _by_account(claimed)
    targets = [
        forced.Target(a, tuple(c.id for c in group if c.reset_id is None))
        for a, group in groups.items()
        if any(c.reset_id is None for c in group)
    ]
    targets = _without_done_keys(session, targets)
    plan = forced.Plan(
        reason=reason, reset_key="", job_id=None, require_mfa=require_mfa, actor=actor
    )
    outcome = forced.apply(session, targets, plan, secret_key=secret_key, now=now)
    result.accounts = outcome.reset
    result.already = sorted(set(groups) - set(outcome.reset))
    audit.append(session, _acted_events(actor, "reset", groups, set(outcome.reset)), now=now)
    return result


def _without_done_keys(session: Session, targets: list[forced.Target]) -> list[forced.Target]:
    """Drop targets whose reset key ("finding:<id>") was used before: a reset happens once
    per finding even when the account has since set a new password."""
    if not targets:
        return targets
    keys = {t.account_id: forced.key_for(t, _NO_PLAN) for t in targets}
    rows = session.execute(
        select(Reset.account_id, Reset.reset_key).where(
            among(Reset.account_id, list(keys)),
            among(Reset.reset_key, sorted(set(keys.values())), String),
        )
    )
    done = {(account_id, key) for account_id, key in rows}
    return [t for t in targets if (t.account_id, keys[t.account_id]) not in done]


_NO_PLAN = forced.Plan(reason="", reset_key="", job_id=None, require_mfa=False, actor=POLICY_ACTOR)


def require_mfa(
    session: Session, finding_ids: Sequence[int], *, actor: audit.Actor, now: dt.datetime
) -> ActionResult:
    """Require a second factor at the next sign-in of the accounts behind these findings
    (an account without one is asked to enroll); in the caller's transaction."""
    claimed = _claim(
        session, finding_ids, action="mfa", actor=actor, now=now, replace=_REPLACEABLE["mfa"]
    )
    result = ActionResult("mfa", findings=[c.id for c in claimed])
    result.skipped = _skipped(finding_ids, claimed)
    groups = _by_account(claimed)
    accounts = table(Account)
    changed = set(
        session.execute(
            update(accounts)
            .where(among(accounts.c.id, list(groups)), accounts.c.mfa_required.is_(False))
            .values(mfa_required=True, updated_at=now)
            .returning(accounts.c.id)
        ).scalars()
    )
    result.accounts = sorted(changed)
    result.already = sorted(set(groups) - changed)
    audit.append(session, _acted_events(actor, "mfa", groups, changed), now=now)
    return result


def dismiss(
    session: Session,
    finding_ids: Sequence[int],
    *,
    actor: audit.Actor,
    reason: str,
    now: dt.datetime,
) -> ActionResult:
    """Close open findings as not needing action (a test address, a known false match);
    the reason is kept on each finding and in the audit trail."""
    reason = one_line(reason, "reason")
    if not reason:
        raise InvalidInput("reason: say why these findings are dismissed")
    values = {
        "status": FindingStatus.DISMISSED,
        "action": "dismiss",
        "acted_at": now,
        "acted_by": str(actor),
        "note": reason,
    }
    claimed = _update_open(session, finding_ids, values=values)
    groups = _by_account(claimed)
    result = ActionResult("dismiss", findings=[c.id for c in claimed])
    result.skipped = _skipped(finding_ids, claimed)
    events = _acted_events(actor, "dismiss", groups, set())
    audit.append(
        session,
        [audit.Event(e.actor, e.action, e.target, {**e.details, "reason": reason}) for e in events],
        now=now,
    )
    return result


def mark_acted(
    session: Session,
    finding_ids: Sequence[int],
    *,
    action: str,
    actor: audit.Actor,
    now: dt.datetime,
) -> list[int]:
    """Record that the caller already acted on these findings (the sign-in flow resets the
    account itself), so the policy table does not act on them a second time."""
    return [
        c.id
        for c in _claim(
            session,
            finding_ids,
            action=action,
            actor=actor,
            now=now,
            replace=_REPLACEABLE.get(action, ()),
        )
    ]


# --- the policy table -------------------------------------------------------------------


@dataclass
class PolicyReport:
    reset_findings: int = 0
    reset_accounts: int = 0
    mfa_findings: int = 0
    mfa_accounts: int = 0

    def add(self, result: ActionResult) -> None:
        if result.action == "reset":
            self.reset_findings += len(result.findings)
            self.reset_accounts += len(result.accounts)
        elif result.action == "mfa":
            self.mfa_findings += len(result.findings)
            self.mfa_accounts += len(result.accounts)

    def as_dict(self) -> dict[str, int]:
        return {
            "reset_findings": self.reset_findings,
            "reset_accounts": self.reset_accounts,
            "mfa_findings": self.mfa_findings,
            "mfa_accounts": self.mfa_accounts,
        }


def pending(
    session: Session, policy: Mapping[str, str], *, limit: int = BATCH
) -> dict[str, list[int]]:
    """Open findings not acted on whose kind the table maps to an action, by action."""
    kinds = [k for k, a in policy.items() if a in ("reset", "mfa")]
    if not kinds:
        return {}
    rows = session.execute(
        select(Finding.id, Finding.kind)
        .where(
            Finding.status == FindingStatus.OPEN,
            Finding.action.is_(None),
            Finding.kind.in_(kinds),
        )
        .order_by(Finding.id)
        .limit(limit)
    ).all()
    todo: dict[str, list[int]] = defaultdict(list)
    for fid, kind in rows:
        todo[policy[kind]].append(fid)
    return dict(todo)


def apply_table(
    session: Session,
    policy: Mapping[str, str],
    *,
    secret_key: str,
    require_mfa_on_reset: bool,
    now: dt.datetime,
    limit: int = BATCH,
    actor: audit.Actor = POLICY_ACTOR,
) -> PolicyReport:
    """One batch of the policy table, in the caller's transaction: resets first (the
    stronger action), then second factors; `none` is left for the console."""
    report = PolicyReport()
    todo = pending(session, policy, limit=limit)
    if todo.get("reset"):
        report.add(
            force_reset(
                session,
                todo["reset"],
                actor=actor,
                reason="",  # the notice's own wording, in the account's language
                secret_key=secret_key,
                now=now,
                require_mfa=require_mfa_on_reset,
            )
        )
    if todo.get("mfa"):
        report.add(require_mfa(session, todo["mfa"], actor=actor, now=now))
    return report


def run(
    db: Database,
    policy: Mapping[str, str],
    *,
    secret_key: str,
    require_mfa_on_reset: bool,
    now: dt.datetime,
    batch: int = BATCH,
) -> PolicyReport:
    """The policy table over every pending finding, one transaction per batch (a crash
    loses nothing: what was claimed was also done, the rest waits for the next run)."""
    total = PolicyReport()
    while True:
        with db.session() as session:
            part = apply_table(
                session,
                policy,
                secret_key=secret_key,
                require_mfa_on_reset=require_mfa_on_reset,
                now=now,
                limit=batch,
            )
        if not part.reset_findings and not part.mfa_findings:
            return total  # nothing left (or a concurrent run claimed what was left)
        for name, value in part.as_dict().items():
            setattr(total, name, getattr(total, name) + value)
