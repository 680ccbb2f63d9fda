"""A forced reset, applied to a batch of accounts in one transaction, set-based.

For each account not already waiting for a reset: a Reset row (unique per account and
reset key, so a finding or a job resets an account once), status `reset_required` with
the reason (the password no longer signs in), the session epoch bumped (every session
dies), the account's API keys revoked, a second factor required by policy, a fresh reset
token (older ones revoked), one queued notice (idempotency key `reset:<id>`), the findings
behind it linked to the reset, and an audit event naming the actor and the reason.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Integer, String, Text, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from auth import audit, metrics
from auth.bulk import among, among_bound, ids_bound, ids_value, insert_tuples, stamp
from auth.models import (
    Account,
    AccountStatus,
    ApiKey,
    Finding,
    Notice,
    NoticeStatus,
    Reset,
    UTCDateTime,
    table,
)
from auth.prepared import Prepared
from auth.reset import tokens

CHUNK = 5000  # ids per IN (...) list (an array parameter on PostgreSQL)
DEFAULT_REASON = "password may have been exposed in a data leak (default wording)"


class Outcome(enum.StrEnum):
    RESET = "reset"
    ALREADY = "already_reset"
    UNKNOWN = "unknown"
    FAILED = "failed"


@dataclass(frozen=True)
class Target:
    account_id: int
    finding_ids: tuple[int, ...] = ()


@dataclass
class Batch:
    """A batch of a job's targets, with their addresses for the outcome rows."""

    items: list[Target]
    emails: dict[int, str]  # account id -> e-mail
    draft: Draft | None = None  # made ahead by draft(), or made by apply()


@dataclass(frozen=True)
class Draft:
    """What a job's batch will write that depends on nothing in the database: a token for
    each account (id, and the digest its row stores) and each audit event's encoded tail.
    A job makes the next batch's on its read-ahead thread (auth/reset/job.py) while this
    thread's statements run in SQLite, which releases the GIL: 1e5 of 1e6 accounts reset
    in 3.56-3.70 s against 3.99-4.02 s with all of it made in the batch's transaction."""

    accounts: list[int]  # in account order
    tokens: list[tuple[str, str]]  # (token id, SHA-256 of its link), one per account
    events: audit.Alike

    def only(self, ids: list[int]) -> Draft:
        """The draft of these accounts (a sorted subset), when some were not reset."""
        if ids == self.accounts:
            return self
        wanted = set(ids)
        keep = [i for i, a in enumerate(self.accounts) if a in wanted]
        return Draft(ids, [self.tokens[i] for i in keep], self.events.only(keep))


@dataclass(frozen=True)
class Plan:
    reason: str
    reset_key: str  # "job:<id>" or "" to use the first finding: "finding:<id>"
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


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    return [list(ids[i : i + CHUNK]) for i in range(0, len(ids), CHUNK)]


def classify(session: Session, targets: Sequence[Target], plan: Plan) -> BatchResult:
    """Which targets a reset would act on, and which are already waiting for one."""
    result = BatchResult()
    ids = [t.account_id for t in targets]
    waiting: set[int] = set()
    done: set[tuple[int, str]] = set()
    for chunk in _chunks(ids):
        waiting |= set(
            session.execute(
                select(Account.id).where(
                    Account.id.in_(chunk), Account.status == AccountStatus.RESET_REQUIRED
                )
            ).scalars()
        )
        done |= {
            (a, k)
            for a, k in session.execute(
                select(Reset.account_id, Reset.reset_key).where(Reset.account_id.in_(chunk))
            ).all()
        }
    for t in targets:
        if t.account_id in waiting or (t.account_id, key_for(t, plan)) in done:
            result.already.append(t.account_id)
        else:
            result.reset.append(t.account_id)
    return result


class _Batch:
    """The statements a batch runs once per chunk, built once per database and run on the
    driver's cursor (auth.prepared): through SQLAlchemy's execute, building and running
    them cost ~1 ms a chunk in Python, more than SQLite took to run them."""

    def __init__(self, dialect: str) -> None:
        accounts, resets, keys = table(Account), table(Reset), table(ApiKey)
        self.done = Prepared(
            select(resets.c.account_id).where(
                among_bound(dialect, resets.c.account_id),
                resets.c.reset_key == bindparam("key", type_=String),
            )
        )
        self.mark = {
            mfa: Prepared(
                update(accounts)
                .where(
                    among_bound(dialect, accounts.c.id),
                    accounts.c.status != AccountStatus.RESET_REQUIRED.value,
                )
                .values(
                    status=AccountStatus.RESET_REQUIRED.value,
                    reset_reason=bindparam("reason", type_=Text),
                    session_epoch=accounts.c.session_epoch + 1,
                    updated_at=bindparam("now", type_=UTCDateTime),
                    **({"mfa_required": True} if mfa else {}),
                )
                .returning(accounts.c.id)
            )
            for mfa in (False, True)
        }
        ids = ids_bound(dialect)
        self.resets = Prepared(  # a job's rows: one key, no finding
            insert(resets).from_select(
                ["account_id", "job_id", "reset_key", "reason", "actor", "created_at"],
                select(
                    ids.c.id,
                    bindparam("job", type_=Integer),
                    bindparam("key", type_=String),
                    bindparam("reason", type_=Text),
                    bindparam("actor", type_=String),
                    bindparam("now", type_=UTCDateTime),
                ),
            )
        )
        self.revoke_keys = Prepared(
            update(keys)
            .where(among_bound(dialect, keys.c.account_id), keys.c.revoked_at.is_(None))
            .values(revoked_at=bindparam("now", type_=UTCDateTime))
        )


@functools.cache
def _batch(dialect: str) -> _Batch:
    return _Batch(dialect)


def _not_yet(conn: Connection, ids: list[int], value: Any, reset_key: str) -> tuple[list[int], Any]:
    """The ids without a Reset row for `reset_key`, and their ids_value (`value` is that of
    `ids`), found through the (account_id, reset_key) key. Not a NOT EXISTS in the UPDATE:
    while a job runs, the statistics say no row has its key, and PostgreSQL then
    anti-joined every batch against a scan of all the job's rows so far (quadratic: 4 min
    3 s instead of 24 s for 1e5 accounts when the table already held 3e5 resets)."""
    dialect = conn.dialect.name
    done = {r[0] for r in _batch(dialect).done.rows(conn, {"ids": value, "key": reset_key})}
    if not done:
        return ids, value
    kept = [a for a in ids if a not in done]
    return kept, ids_value(dialect, kept)


def _insert_resets(
    session: Session,
    todo: Sequence[Target],
    plan: Plan,
    actor: str,
    at: str,
) -> None:
    """Reset rows that carry their own finding and key (a scan's), as tuples."""
    insert_tuples(
        session,
        table(Reset),
        ("account_id", "job_id", "finding_id", "reset_key", "reason", "actor", "created_at"),
        [
            (
                t.account_id,
                plan.job_id,
                min(t.finding_ids) if t.finding_ids else None,
                key_for(t, plan),
                plan.reason,
                actor,
                at,
            )
            for t in todo
        ],
        plain=True,
    )


def _one_key(targets: Sequence[Target], plan: Plan) -> bool:
    """Whether every target is reset under the plan's one key with no finding: a job's
    list, whose rows differ only by account."""
    return bool(plan.reset_key) and not any(t.finding_ids for t in targets)


def draft(targets: Sequence[Target], plan: Plan, *, secret_key: str) -> Draft | None:
    """The Draft of a batch of a job's list (one reset key, no findings); None otherwise."""
    if not _one_key(targets, plan):
        return None
    accounts = sorted(t.account_id for t in targets)
    events = audit.alike(
        plan.actor,
        audit.Action.ACCOUNT_RESET_FORCED,
        _details(plan, plan.reset_key, ()),
        [f"account:{a}" for a in accounts],
    )
    return Draft(accounts, tokens.minted(secret_key, len(accounts)), events)


def _details(plan: Plan, key: str, finding_ids: tuple[int, ...]) -> dict[str, object]:
    return {
        "reason": plan.reason or DEFAULT_REASON,
        "reset_key": key,
        "job": plan.job_id,
        "findings": list(finding_ids),
    }


# SQLite (>= 3.38 for ->>): a batch's tokens as one JSON parameter, [[token id, account id,
# digest]], for both inserts; one statement each, run without the GIL (see Draft).
_INSERT_TOKENS = (
    "INSERT INTO reset_tokens (id, account_id, token_sha256, created_at) "
    "SELECT value ->> 0, value ->> 1, value ->> 2, ? FROM json_each(?)"
)
_INSERT_NOTICES = (
    "INSERT INTO notices (account_id, kind, idempotency_key, token_id, reason, status, "
    "attempts, next_attempt_at, created_at) "
    "SELECT value ->> 1, 'reset_forced', 'reset:' || (value ->> 1) || ':' || ?, value ->> 0, "
    "?, ?, 0, ?, ? FROM json_each(?)"
)


def _write_drafted(
    session: Session, ids: list[int], made: Draft, plan: Plan, *, at: str, now: dt.datetime
) -> None:
    """A job's tokens, notices and audit events on SQLite, from the batch's Draft: the rows
    the general path below writes (tests check each column)."""
    made = made.only(ids)
    tokens.revoke_open(session, ids, now=now)
    listed = json.dumps([(t, a, d) for a, (t, d) in zip(ids, made.tokens, strict=True)])
    driver = cast(Any, session.connection().connection.driver_connection)
    driver.execute(_INSERT_TOKENS, (at, listed))
    queued = NoticeStatus.QUEUED.value
    driver.execute(_INSERT_NOTICES, (plan.reset_key, plan.reason, queued, at, at, listed))
    audit.append_alike(session, made.events, now=now)


def apply(
    session: Session,
    targets: Sequence[Target],
    plan: Plan,
    *,
    secret_key: str,
    now: dt.datetime,
    made: Draft | None = None,
) -> BatchResult:
    """Force the reset of every target not already waiting for one, inside the caller's
    transaction; returns what was done. `made`: the batch's Draft, if made ahead."""
    resets = table(Reset)
    session.flush()  # what the session holds goes first, as an execute through it would
    conn = session.connection()
    dialect = conn.dialect.name
    sql = _batch(dialect)
    # The UPDATE decides who is reset (RETURNING), so no separate look-up is needed: the
    # row lock it takes also keeps two concurrent runs from resetting one account twice.
    chosen: set[int] = set()
    for chunk in _chunks([t.account_id for t in targets]):
        value = ids_value(dialect, chunk)  # the list as one parameter, made once
        if plan.reset_key:  # a job's list: an account it reset (then changed password) is done
            chunk, value = _not_yet(conn, chunk, value, plan.reset_key)
            if not chunk:
                continue
        params = {"ids": value, "reason": plan.reason, "now": now}
        chosen.update(r[0] for r in sql.mark[plan.require_mfa].rows(conn, params))
    # In account order: every insert below checks its foreign key to `accounts` and adds
    # to an index on account_id, and in key order those touch the pages one after the other
    # (a batch's accounts are spread over the whole table; in file order they are random).
    todo = sorted((t for t in targets if t.account_id in chosen), key=lambda t: t.account_id)
    result = BatchResult(
        reset=[t.account_id for t in todo],
        already=[t.account_id for t in targets if t.account_id not in chosen],
    )
    if not todo:
        return result
    ids = result.reset
    one_key = _one_key(todo, plan)
    # Nothing below needs the new rows' ids (the notice's key is account + reset key), so
    # the inserts can be COPY on PostgreSQL (auth/bulk.py).
    actor, at = str(plan.actor), stamp(session, now)
    values = [ids_value(dialect, chunk) for chunk in _chunks(ids)]
    if one_key:  # a job's list: the Reset rows from the ids alone
        row = {"job": plan.job_id, "key": plan.reset_key, "reason": plan.reason, "actor": actor}
        whole = values[0] if len(values) == 1 else ids_value(dialect, ids)
        sql.resets.rowcount(conn, {"ids": whole, "now": now, **row})
    else:
        _insert_resets(session, todo, plan, actor, at)
    for value in values:
        sql.revoke_keys.rowcount(conn, {"ids": value, "now": now})
    if one_key and dialect == "sqlite":
        made = made or draft(todo, plan, secret_key=secret_key)
        assert made is not None  # a job's list always has one
        _write_drafted(session, ids, made, plan, at=at, now=now)
        metrics.resets_forced(plan.actor.kind, len(todo))
        return result
    keys = {t.account_id: key_for(t, plan) for t in todo}
    token_ids = tokens.issue(session, [(a, None) for a in ids], secret_key=secret_key, now=now)
    insert_tuples(
        session,
        table(Notice),
        (
            "account_id",
            "kind",
            "idempotency_key",
            "token_id",
            "reason",
            "status",
            "attempts",
            "next_attempt_at",
            "created_at",
        ),
        [
            (
                a,
                "reset_forced",
                f"reset:{a}:{keys[a]}",
                token_ids[a],
                plan.reason,
                NoticeStatus.QUEUED.value,
                0,
                at,
                at,
            )
            for a in ids
        ],
        plain=True,
    )
    finding_ids = [f for t in todo for f in t.finding_ids]
    findings = table(Finding)
    latest = (
        select(func.max(resets.c.id))
        .where(resets.c.account_id == findings.c.account_id)
        .scalar_subquery()
    )
    for chunk in _chunks(finding_ids):
        session.execute(
            update(findings).where(among(session, findings.c.id, chunk)).values(reset_id=latest)
        )
    details: dict[tuple[str, tuple[int, ...]], dict[str, object]] = {}  # one per kind
    for t in todo:
        if (keys[t.account_id], t.finding_ids) not in details:
            details[keys[t.account_id], t.finding_ids] = _details(
                plan, keys[t.account_id], t.finding_ids
            )
    audit.append(
        session,
        [
            audit.Event(
                plan.actor,
                audit.Action.ACCOUNT_RESET_FORCED,
                f"account:{t.account_id}",
                details[keys[t.account_id], t.finding_ids],
            )
            for t in todo
        ],
        now=now,
    )
    metrics.resets_forced(plan.actor.kind, len(todo))
    return result
