"""A forced reset, applied to a batch of accounts in one transaction, set-based.

For each account not already waiting for a reset: a Reset row (unique per account and
reset key, so a finding or a job resets an account once), status `reset_required` with
the reason (the password no longer signs in), the session epoch bumped (every session
dies), the account's API keys revoked, a second factor required by policy, a fresh reset
token (older ones revoked), one queued notice (idempotency key `reset:<id>:<reset key>`),
the findings behind it linked to the reset, and an audit event naming the actor and the
reason. One path for every caller: a job's batch, a scan's findings, a sign-in.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningUpdate

from auth import audit, metrics
from auth.db import among, insert_rows
from auth.models import (
    Account,
    AccountStatus,
    ApiKey,
    Finding,
    Notice,
    NoticeStatus,
    Reset,
    table,
)
from auth.reset import reasons, tokens

_ACCOUNTS, _RESETS, _KEYS = table(Account), table(Reset), table(ApiKey)
_NOTICES, _FINDINGS = table(Notice), table(Finding)


class ResetOutcome(enum.StrEnum):
    """What a reset run did for one address or account."""

    RESET = "reset"
    ALREADY = "already_reset"
    UNKNOWN = "unknown"
    FAILED = "failed"


@dataclass(frozen=True)
class Target:
    account_id: int
    finding_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Plan:
    reason: str  # a person's words, or a policy's own wording: see reasons.decide
    reset_key: str  # "job:<id>", or "" for the first finding's: "finding:<id>"
    job_id: int | None
    require_mfa: bool
    actor: audit.Actor


@dataclass
class BatchResult:
    reset: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)


def key_for(target: Target, plan: Plan) -> str:
    if plan.reset_key:
        return plan.reset_key
    return f"finding:{min(target.finding_ids)}" if target.finding_ids else "manual"


def classify(session: Session, targets: Sequence[Target], plan: Plan) -> BatchResult:
    """Which targets a reset would act on, and which are already waiting for one (a dry
    run's answer, from the same rules as apply)."""
    ids = [t.account_id for t in targets]
    waiting = set(
        session.execute(
            select(_ACCOUNTS.c.id).where(
                among(_ACCOUNTS.c.id, ids),
                _ACCOUNTS.c.status == AccountStatus.RESET_REQUIRED.value,
            )
        ).scalars()
    )
    rows = session.execute(
        select(_RESETS.c.account_id, _RESETS.c.reset_key).where(among(_RESETS.c.account_id, ids))
    )
    done = {(account_id, key) for account_id, key in rows}
    result = BatchResult()
    for t in targets:
        if t.account_id in waiting or (t.account_id, key_for(t, plan)) in done:
            result.already.append(t.account_id)
        else:
            result.reset.append(t.account_id)
    return result


def apply(
    session: Session,
    targets: Sequence[Target],
    plan: Plan,
    *,
    secret_key: str,
    now: dt.datetime,
) -> BatchResult:
    """Force the reset of every target not already waiting for one, inside the caller's
    transaction; returns what was done."""
    session.flush()  # what the session holds goes first, as an execute through it would
    ids = [t.account_id for t in targets]
    if plan.reset_key and ids:  # a job's list: an account it reset (then changed password)
        ids = _not_reset_by(session, ids, plan.reset_key)
    # The UPDATE decides who is reset (RETURNING); its row locks keep two concurrent runs
    # from resetting one account twice.
    chosen = set(session.execute(_mark(plan, ids, now)).scalars()) if ids else set()
    # In account order: each insert below checks its foreign key to `accounts` and adds to
    # an index on account_id, and in key order those touch pages one after the other.
    todo = sorted((t for t in targets if t.account_id in chosen), key=lambda t: t.account_id)
    result = BatchResult(
        reset=[t.account_id for t in todo],
        already=[t.account_id for t in targets if t.account_id not in chosen],
    )
    if not todo:
        return result
    code, note = reasons.decide(plan.actor, plan.reason)
    keys = {t.account_id: key_for(t, plan) for t in todo}
    insert_rows(
        session,
        _RESETS,
        [
            {
                "account_id": t.account_id,
                "finding_id": min(t.finding_ids) if t.finding_ids else None,
                "reset_key": keys[t.account_id],
            }
            for t in todo
        ],
        job_id=plan.job_id,
        reason_code=code.value,
        reason=note,
        actor=str(plan.actor),
        created_at=now,
    )
    session.execute(
        update(_KEYS)
        .where(among(_KEYS.c.account_id, result.reset), _KEYS.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    token_ids = tokens.issue(session, result.reset, secret_key=secret_key, now=now)
    insert_rows(
        session,
        _NOTICES,
        [
            {"account_id": a, "idempotency_key": f"reset:{a}:{keys[a]}", "token_id": token_ids[a]}
            for a in result.reset
        ],
        kind=tokens.FORCED_NOTICE,
        reason_code=code.value,
        reason=note,
        status=NoticeStatus.QUEUED.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    _link_findings(session, [f for t in todo for f in t.finding_ids])
    audit.append(
        session,
        [
            audit.Event(
                plan.actor,
                audit.Action.ACCOUNT_RESET_FORCED,
                f"account:{t.account_id}",
                {
                    "reason": code.value,
                    **({"note": note} if note else {}),
                    "reset_key": keys[t.account_id],
                    "job": plan.job_id,
                    "findings": list(t.finding_ids),
                },
            )
            for t in todo
        ],
        now=now,
    )
    metrics.resets_forced(plan.actor.kind, len(todo))
    return result


def _not_reset_by(session: Session, ids: list[int], reset_key: str) -> list[int]:
    """The ids without a Reset row for `reset_key`, found through its (account, key) index.
    Not a NOT EXISTS inside the UPDATE: while a job runs, the planner's statistics say no
    row has its key, and PostgreSQL then anti-joins every batch against a scan of all the
    job's rows so far."""
    done = set(
        session.execute(
            select(_RESETS.c.account_id).where(
                among(_RESETS.c.account_id, ids), _RESETS.c.reset_key == reset_key
            )
        ).scalars()
    )
    return [a for a in ids if a not in done]


def _mark(plan: Plan, ids: list[int], now: dt.datetime) -> ReturningUpdate[Any]:
    """The UPDATE that puts the accounts in `reset_required`; it returns the ids it changed."""
    code, note = reasons.decide(plan.actor, plan.reason)
    return (
        update(_ACCOUNTS)
        .where(
            among(_ACCOUNTS.c.id, ids),
            _ACCOUNTS.c.status != AccountStatus.RESET_REQUIRED.value,
        )
        .values(
            status=AccountStatus.RESET_REQUIRED.value,
            reset_reason_code=code.value,
            reset_reason=note or None,
            session_epoch=_ACCOUNTS.c.session_epoch + 1,
            updated_at=now,
            **({"mfa_required": True} if plan.require_mfa else {}),
        )
        .returning(_ACCOUNTS.c.id)
    )


def _link_findings(session: Session, finding_ids: list[int]) -> None:
    """Each finding points at the reset just made for its account."""
    if not finding_ids:
        return
    latest = (
        select(func.max(_RESETS.c.id))
        .where(_RESETS.c.account_id == _FINDINGS.c.account_id)
        .scalar_subquery()
    )
    session.execute(
        update(_FINDINGS).where(among(_FINDINGS.c.id, finding_ids)).values(reset_id=latest)
    )
