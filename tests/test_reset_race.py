"""A bulk reset running while logins hammer the hook: no login with an old password gets
`allow` (or `mfa_required`) once its account's reset has committed.

The reset job (auth/reset/job.py) runs in a thread in small batches, so there are many
commits; its sink is called per account after the account's batch committed, and the time
of that call is the account's "reset committed" mark. Meanwhile several threads sign in
(SignIn.login, in process) with the old passwords, half of the time at the batch about to
be committed, and record when each login was sent and what it got. Password hashing is
given a few milliseconds (what argon2 at production cost takes) so that a login reading
an account just before its batch commits often confirms just after: the race the
conditional confirm in auth/signin/flow.py exists for. Logins sent after the commit are checked
by their answers; the ones that straddle it, by the audit trail's commit order.

Runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from dataclasses import dataclass

import pyotp
from sqlalchemy import insert, select

from auth import audit
from auth.breach.hashing import email_sha1
from auth.models import Account, AccountStatus, AuditEvent, utcnow
from auth.passwords import Verified
from auth.reset import job, sources
from auth.reset.forced import ResetOutcome
from auth.services import Services
from auth.signin import continuations
from auth.signin.flow import SignIn
from auth.signin.rules import Decision
from tests.totp_helpers import enroll_totp

ACTOR = audit.Actor.cli("race-test")
RESET = 300  # accounts the job resets
CONTROL = 20  # accounts it leaves alone
BATCH = 25  # accounts per committed batch: 12 commits
THREADS = 6
BATCH_PAUSE = 0.08  # after each batch's sink rows, so logins land between commits
OPEN = {Decision.ALLOW, Decision.MFA_REQUIRED}  # a way in (or halfway)


@dataclass(frozen=True)
class Attempt:
    sent: float  # time.monotonic() just before the call
    index: int  # the account's position (ids in creation order)
    decision: Decision
    continuation: str | None


def password(i: int) -> str:
    return f"Old-Password-{i:03d}-Tiger"


def email(i: int) -> str:
    return f"race{i:03d}@example.org"


def make_accounts(registry: Services, n: int) -> list[int]:
    now = utcnow()
    rows = [
        {
            "email": email(i),
            "email_sha1": email_sha1(email(i)),
            "name": f"Race {i}",
            "password_hash": registry.hasher.hash(password(i)),
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n)
    ]
    with registry.db.session() as s:
        s.execute(insert(Account), rows)
        ids = dict(s.execute(select(Account.email, Account.id)).all())
    return [ids[email(i)] for i in range(n)]


def slow_hashing(registry: Services) -> None:
    """argon2 at test cost takes ~1 ms; production's takes tens: widen the window between
    reading the account and confirming the decision as production's would be."""
    verify = registry.hasher.verify

    def slower(stored: str | None, password: str) -> Verified:
        time.sleep(random.uniform(0.0, 0.006))
        return verify(stored, password)

    registry.hasher.verify = slower  # type: ignore[method-assign]


def test_no_old_password_gets_in_once_its_accounts_reset_committed(registry: Services) -> None:
    started = time.monotonic()
    ids = make_accounts(registry, RESET + CONTROL)
    totp_secrets = {i: enroll_totp(registry, ids[i]) for i in range(0, RESET + CONTROL, 10)}
    verify = registry.hasher.verify
    slow_hashing(registry)
    flow = SignIn(registry)
    index_of = {account_id: i for i, account_id in enumerate(ids)}

    committed: dict[int, float] = {}  # account index -> when its sink row arrived
    attempts: list[Attempt] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    job_window: dict[str, float] = {}
    rechecks = [0]
    recheck = flow._recheck

    def counted_recheck(*args: object, **kwargs: object) -> object:
        rechecks[0] += 1  # the decision was taken again: the account changed under a login
        return recheck(*args, **kwargs)  # type: ignore[arg-type]

    flow._recheck = counted_recheck  # type: ignore[assignment, method-assign]

    def sink(rows: list[job.AccountResult]) -> None:
        at = time.monotonic()  # first thing: the batch has committed by now
        for row in rows:
            _, account_id, outcome, _ = row
            assert account_id is not None and outcome is ResetOutcome.RESET, row
            committed[index_of[account_id]] = at
        time.sleep(BATCH_PAUSE)  # after each batch

    def run_job() -> None:
        try:
            job_window["start"] = time.monotonic()
            job.run(
                registry.db,
                sources.Addresses([email(i) for i in range(RESET)], "race test"),
                reason="race test",
                actor=ACTOR,
                secret_key=registry.settings.secret_key,
                require_mfa=True,
                batch=BATCH,
                sink=sink,
            )
            job_window["end"] = time.monotonic()
        except BaseException as exc:
            errors.append(exc)

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                nearby = len(committed) // BATCH * BATCH  # the batch being applied now
                if rng.random() < 0.5 and nearby < RESET:
                    i = rng.randrange(nearby, min(nearby + BATCH, RESET))
                else:
                    i = rng.randrange(RESET + CONTROL)
                sent = time.monotonic()
                answer = flow.login(email(i), password(i), ip=f"198.51.100.{seed + 1}")
                attempts.append(Attempt(sent, i, answer.decision, answer.continuation))
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    hammers = [threading.Thread(target=hammer, args=(n,)) for n in range(THREADS)]
    resetter = threading.Thread(target=run_job)
    for thread in hammers:
        thread.start()
    time.sleep(0.3)  # logins under way before the first commit
    resetter.start()
    resetter.join(timeout=60)
    time.sleep(0.2)  # and after the last one
    stop.set()
    for thread in hammers:
        thread.join(timeout=30)
    registry.hasher.verify = verify  # type: ignore[method-assign]
    assert not errors, errors
    assert not resetter.is_alive() and "end" in job_window, "the reset job did not finish"
    assert sorted(committed) == list(range(RESET)), "every account of the job has its sink row"

    # The property: a login sent after its account's reset committed never got a way in.
    late = [a for a in attempts if a.index in committed and a.sent > committed[a.index]]
    wrong = [a for a in late if a.decision is not Decision.RESET_REQUIRED]
    assert not wrong, f"{len(wrong)} logins after the reset committed got in: {wrong[:5]}"
    # The same in commit order, from the audit trail (one chain, appended under one lock in
    # each deciding transaction): no decision letting an old password in was committed
    # after its account's reset. This also covers logins sent before the commit whose
    # decision was confirmed after it.
    with registry.db.session() as s:
        trail = s.execute(
            select(AuditEvent.seq, AuditEvent.action, AuditEvent.target, AuditEvent.details).where(
                AuditEvent.action.in_(
                    [audit.Action.ACCOUNT_RESET_FORCED, audit.Action.LOGIN_DECIDED]
                )
            )
        ).all()
    reset_seq = {
        t: seq for seq, action, t, _ in trail if action == audit.Action.ACCOUNT_RESET_FORCED
    }
    assert len(reset_seq) == RESET
    after_reset = [
        (seq, t, json.loads(details)["decision"])
        for seq, action, t, details in trail
        if action == audit.Action.LOGIN_DECIDED and t in reset_seq and seq > reset_seq[t]
    ]
    let_in = [e for e in after_reset if e[2] != Decision.RESET_REQUIRED]
    assert not let_in, f"committed after the reset: {let_in[:5]}"
    # (continuations.issue holds the account row, so not even mfa_required comes late.)
    stale_mfa = sum(1 for e in after_reset if e[2] == "mfa_required")
    # Nothing else answers a right password here, before or after.
    assert {a.decision for a in attempts} <= OPEN | {Decision.RESET_REQUIRED}
    assert all(a.decision in OPEN for a in attempts if a.index >= RESET), "control accounts"

    # And it raced: during the job, accounts not yet committed let their person in, while
    # accounts already committed answered reset_required.
    start, end = job_window["start"], job_window["end"]
    early = [
        a
        for a in attempts
        if a.index in committed and start <= a.sent < committed[a.index] and a.decision in OPEN
    ]
    caught = [a for a in late if a.sent < end]
    assert early and caught, (len(early), len(caught))
    assert len({a.index for a in early} & {a.index for a in caught}) > 0  # same account, both
    assert rechecks[0] > 0, "no login read an account just before its reset and confirmed after"

    # Continuations handed out before a reset are void after it; the control accounts' are
    # live and can be finished.
    with registry.db.engine.connect() as conn:
        for a in attempts:
            if a.continuation is not None:
                live = continuations.find(conn, a.continuation, now=utcnow()) is not None
                assert live is (a.index >= RESET), (a, live)
    code_at = utcnow() + dt.timedelta(seconds=30)  # enrolment used the current step
    for i in range(RESET, RESET + CONTROL):
        token = next((a.continuation for a in attempts if a.index == i and a.continuation), None)
        if i in totp_secrets and token is not None:
            code = pyotp.TOTP(totp_secrets[i]).at(code_at)
            assert flow.second_step(token, code=code, ip="198.51.100.99").decision is Decision.ALLOW

    # After the job, every old password answers reset_required; the rest is untouched.
    for i in range(RESET + CONTROL):
        answer = flow.login(email(i), password(i), ip="198.51.100.100")
        if i < RESET:
            expected = Decision.RESET_REQUIRED
        else:
            expected = Decision.MFA_REQUIRED if i in totp_secrets else Decision.ALLOW
        assert answer.decision is expected, (i, answer.decision)
    with registry.db.session() as s:
        statuses = s.execute(select(Account.status).order_by(Account.id)).scalars().all()
    assert statuses == [AccountStatus.RESET_REQUIRED] * RESET + [AccountStatus.ACTIVE] * CONTROL

    print(
        f"\n{len(attempts)} logins in {end - start:.2f} s of job ({time.monotonic() - started:.1f}"
        f" s in all): {len(early)} got in before their commit, {len(late)} sent after it, "
        f"{rechecks[0]} decided again because the account changed while hashing, "
        f"{stale_mfa} mfa_required (void continuation) committed after the reset"
    )
