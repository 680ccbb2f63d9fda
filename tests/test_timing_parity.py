"""An unknown e-mail, a wrong password and a locked account must take about as long to be
refused: otherwise timing tells an attacker which addresses have accounts. A statistical
check with a generous bound (medians of interleaved runs), not a flaky one."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable

from auth import accounts, audit
from auth.config import Argon2Params, Settings
from auth.models import Account, utcnow
from auth.services import build
from auth.signin.flow import SignIn
from auth.signin.rules import Decision

RUNS = 25
# Costly enough that hashing dominates, as in production (OWASP's is ~28 ms here).
ARGON2 = Argon2Params(time_cost=1, memory_cost=8 * 1024, parallelism=1)


def median_seconds(attempt: Callable[[], object]) -> float:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        attempt()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def test_unknown_wrong_and_locked_are_refused_in_about_the_same_time(settings: Settings) -> None:
    registry = build(dataclasses.replace(settings, argon2=ARGON2, ip_ban_after=0))
    with registry.db.session() as s:
        for email in ("known@example.fr", "locked@example.fr"):
            accounts.create(
                s,
                email=email,
                password="Correct-Horse-Battery-42",
                hasher=registry.hasher,
                actor=audit.Actor.cli(),
                now=utcnow(),
            )
        s.query(Account).filter_by(email="locked@example.fr").update({"status": "locked"})
    flow = SignIn(registry)

    def attempt(email: str) -> Callable[[], object]:
        def run() -> object:
            # A fresh count each time, so the known account never enters its backoff.
            with registry.db.session() as s:
                s.query(Account).filter_by(email="known@example.fr").update({"failed_logins": 0})
            answer = flow.login(email, "not-the-password", ip="192.0.2.9")
            assert answer.decision is Decision.DENY
            return answer

        return run

    medians = {}
    for _ in range(3):  # interleaved, so drift on a shared machine hits all three alike
        for who in ("known@example.fr", "nobody@example.fr", "locked@example.fr"):
            medians.setdefault(who, []).append(median_seconds(attempt(who)))
    known, unknown, locked = (min(medians[w]) for w in medians)
    assert known > 0.002, "the hash must dominate for this test to mean anything"
    assert abs(unknown - known) / known < 0.5, medians
    assert abs(locked - known) / known < 0.5, medians
