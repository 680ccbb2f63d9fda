"""A second step that straddles a forced reset. The person must not get `allow` once the
reset committed (the continuation is bound to the old session epoch), whether the reset
commits after the continuation was found and before the factor is checked, or while the
continuation is being spent (PostgreSQL: the spend waits for the reset's row lock and then
sees it; SQLite has one writer, so a reset cannot commit inside the step's transaction).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from auth import accounts, audit
from auth.mfa import verify
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


@pytest.mark.parametrize("held", ["check", "spend"])
def test_a_second_step_straddling_a_reset_is_refused(
    registry: Services, monkeypatch: pytest.MonkeyPatch, held: str
) -> None:
    if held == "spend" and registry.db.dialect == "sqlite":
        pytest.skip("SQLite has one writer: the reset would wait for the step's commit")
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
    if held == "spend":
        spend = continuations.spend

        def held_spend(conn: Any, continuation: Any, *, now: dt.datetime) -> bool:
            spending.set()
            go.wait(10)
            return spend(conn, continuation, now=now)

        monkeypatch.setattr(continuations, "spend", held_spend)
    else:
        check = verify.check_code

        def held_check(*args: Any, **kwargs: Any) -> verify.FactorCheck:
            spending.set()
            go.wait(10)
            return check(*args, **kwargs)

        monkeypatch.setattr(verify, "check_code", held_check)
    answers: list[Answer] = []
    code = next_code(secret)
    step = threading.Thread(
        target=lambda: answers.append(
            flow.second_step(first.continuation or "", code=code, ip="192.0.2.1")
        )
    )
    step.start()
    assert spending.wait(10), f"the second step never reached the {held}"
    with registry.db.session() as s:  # the reset commits at the end of this block
        plan = forced.Plan("straddle", "straddle-test", None, True, ACTOR)
        forced.apply(s, [forced.Target(account_id)], plan, secret_key="k", now=utcnow())
        if held == "spend":
            go.set()
            time.sleep(0.3)  # the spend runs, and waits for the row locks the reset holds
    go.set()
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
