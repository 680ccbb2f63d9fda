"""A second step that straddles a forced reset: the continuation is read and the factor
checked before the reset commits, the continuation spent after. The person must not get
`allow` once the reset committed (the continuation is bound to the old session epoch).

Deterministic: continuations.spend is held until a reset of the account is applied in a
transaction left open, then the reset commits while the spend waits for the audit lock.
Known to fail on PostgreSQL (READ COMMITTED): `_SPEND` checks the account in an EXISTS
subquery, which reads the snapshot taken before the reset committed and does not wait for
the reset's row lock, so the spend succeeds and `allow` is committed after the reset.
SQLite serialises writers, so there the spend sees the reset and is refused.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from auth import accounts, audit
from auth.models import AuditEvent, utcnow
from auth.reset import forced
from auth.services import Services
from auth.signin import continuations
from auth.signin.answer import Answer
from auth.signin.flow import SignIn
from auth.signin.rules import Decision
from tests.totp_helpers import enroll_totp, next_code

ACTOR = audit.Actor.cli("race-test")
PASSWORD = "Correct-Horse-Battery-42"
EMAIL = "straddle@example.org"


def test_a_second_step_straddling_a_reset_is_refused(
    registry: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    with registry.db.session() as s:
        account = accounts.create(
            s, email=EMAIL, password=PASSWORD, hasher=registry.hasher, actor=ACTOR, now=utcnow()
        )
        account_id = account.id
    secret = enroll_totp(registry, account_id)
    flow = SignIn(registry)
    first = flow.login(EMAIL, PASSWORD, ip="192.0.2.1")
    assert first.decision is Decision.MFA_REQUIRED and first.continuation

    spending, go = threading.Event(), threading.Event()
    spend = continuations.spend

    def held_spend(conn: Any, continuation: Any, *, now: dt.datetime) -> bool:
        spending.set()
        go.wait(10)
        return spend(conn, continuation, now=now)

    monkeypatch.setattr(continuations, "spend", held_spend)
    answers: list[Answer] = []
    code = next_code(secret)
    step = threading.Thread(
        target=lambda: answers.append(
            flow.second_step(first.continuation or "", code=code, ip="192.0.2.1")
        )
    )
    step.start()
    assert spending.wait(10), "the second step never reached the spend"
    with registry.db.session() as s:  # the reset commits at the end of this block
        plan = forced.Plan("straddle", "straddle-test", None, True, ACTOR)
        forced.apply(s, [forced.Target(account_id)], plan, secret_key="k", now=utcnow())
        go.set()
        time.sleep(0.3)  # the spend runs, and waits for the audit lock the reset holds
    step.join(10)
    (answer,) = answers
    with registry.db.session() as s:
        order = list(
            s.execute(
                select(AuditEvent.action)
                .where(
                    AuditEvent.action.in_(
                        [audit.Action.ACCOUNT_RESET_FORCED, audit.Action.SESSION_STARTED]
                    )
                )
                .order_by(AuditEvent.seq)
            ).scalars()
        )
    assert answer.decision is Decision.DENY, order
    assert order == [audit.Action.ACCOUNT_RESET_FORCED]
