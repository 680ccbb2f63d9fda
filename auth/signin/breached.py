"""Rule 4 carried out: a password found in a breach corpus at sign-in no longer signs in.

A finding records the evidence (which sources saw the password), the account's reset is
forced at once (auth/reset/forced.py: notice, sessions ended, a second factor required by
policy), the finding is marked acted on so the finding policy does not reset it again,
and the decision is audited: all in one transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from auth import audit
from auth.breach import finding_policy, findings
from auth.breach.checker import Check
from auth.models import Finding, FindingKind, FindingStatus
from auth.reset import forced
from auth.services import Services

ACTOR = audit.Actor.policy("login")
REASON = "password found in a breach corpus at sign-in"


def force_reset(
    services: Services,
    account_id: int,
    check: Check,
    *,
    details: dict[str, Any],
    now: dt.datetime,
) -> None:
    sources = [r.source for r in check.results if r.count]
    with services.db.session() as session:
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
            reason=REASON,
            reset_key=f"login:{now:%Y%m%dT%H%M%S.%f}",
            job_id=None,
            require_mfa=services.settings.reset_requires_mfa,
            actor=ACTOR,
        )
        target = forced.Target(account_id, tuple(finding_ids))
        forced.apply(session, [target], plan, secret_key=services.settings.secret_key, now=now)
        finding_policy.mark_acted(session, target.finding_ids, action="reset", actor=ACTOR, now=now)
        decided = {"decision": "reset_required", "reasons": ["password_breached"]}
        audit.append(
            session,
            [
                audit.Event(
                    ACTOR, audit.Action.LOGIN_DECIDED, f"account:{account_id}", decided | details
                )
            ],
            now=now,
        )
