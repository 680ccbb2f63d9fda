"""Append-only, hash-chained audit events.

Each event's hash covers its content and the previous event's hash (`event_hash`, the
chain's one definition), and the chain's tip is kept in `audit_head`, so an edited,
deleted or truncated trail is detected by `verify`. Single events and a reset batch's
thousands are appended by the same `append` (on PostgreSQL one event at a time goes
through the audit_append() function: see _APPEND_ONE).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import getpass
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    Text,
    Update,
    bindparam,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.orm import Session

from auth.db import Database, insert_rows
from auth.models import AuditEvent, AuditHead, UTCDateTime, table

GENESIS = "0" * 64


@dataclass(frozen=True)
class Actor:
    """Who acts: the CLI user, an API key, an automatic policy, or the system."""

    kind: str
    id: str

    @classmethod
    def cli(cls, user: str | None = None) -> Actor:
        return cls("cli", user or getpass.getuser())

    @classmethod
    def api_key(cls, key_id: str) -> Actor:
        return cls("api_key", key_id)

    @classmethod
    def account(cls, account_id: int) -> Actor:
        """The person themself, signed in to the web pages."""
        return cls("account", str(account_id))

    @classmethod
    def policy(cls, name: str) -> Actor:
        return cls("policy", name)

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


class Action(enum.StrEnum):
    ACCOUNT_CREATED = "account:created"
    ACCOUNT_UPDATED = "account:updated"
    APIKEY_CREATED = "apikey:created"
    APIKEY_REVOKED = "apikey:revoked"
    CORPUS_IMPORTED = "corpus:imported"
    FINDING_RECORDED = "finding:recorded"
    FINDING_ACTED = "finding:acted"  # reset / mfa / dismiss, by the policy table or a person
    MONITOR_COMPLETED = "monitor:completed"
    HIBP_NOTIFIED = "hibp:notified"
    HIBP_SUBSCRIBED = "hibp:subscribed"
    SCAN_COMPLETED = "scan:completed"
    MFA_ENROLLED = "mfa:enrolled"
    MFA_RENAMED = "mfa:renamed"
    MFA_REMOVED = "mfa:removed"
    MFA_FAILED = "mfa:failed"
    MFA_LOCKED = "mfa:locked"
    MFA_CLONE_SUSPECTED = "mfa:webauthn:clone_suspected"
    MFA_KEYS_ROTATED = "mfa:keys:rotated"
    RECOVERY_GENERATED = "mfa:recovery:generated"
    RECOVERY_USED = "mfa:recovery:used"
    SESSION_STARTED = "session:started"
    SESSIONS_ENDED = "session:ended_everywhere"
    ACCOUNT_RESET_FORCED = "account:reset:forced"
    RESET_JOB_FINISHED = "reset:job:finished"
    LOGIN_FAILED = "login:failed"
    LOGIN_DECIDED = "login:decided"
    ACCOUNT_LOCKED = "account:locked"
    ACCOUNT_UNLOCKED = "account:unlocked"
    IP_BANNED = "ip:banned"
    IP_UNBANNED = "ip:unbanned"
    PASSWORD_RESET_REQUESTED = "password:reset:requested"
    PASSWORD_CHANGED = "password:changed"
    ALERT_RAISED = "alert:raised"
    ALERT_CLOSED = "alert:closed"


@dataclass(frozen=True)
class Event:
    """One audit event; its time and place in the chain are given when it is appended."""

    actor: Actor
    action: Action
    target: str
    details: Mapping[str, Any] = field(default_factory=dict)


def event_hash(
    seq: int, at: dt.datetime, actor: str, action: str, target: str, details: str, prev: str
) -> str:
    """The chain's definition: sha256 of the compact JSON [seq, at, actor, action, target,
    details, prev], `details` being the event's details as `canonical` encodes them."""
    payload = json.dumps(
        [seq, at.isoformat(), actor, action, target, details, prev], separators=(",", ":")
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def canonical(details: Mapping[str, Any]) -> str:
    """Details as they are stored and hashed: compact JSON, keys sorted."""
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)


_HEAD, _EVENTS = table(AuditHead), table(AuditEvent)
# Takes the head row's lock, then reads the tip, in one statement.
_LOCK_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=_HEAD.c.seq)
    .returning(_HEAD.c.seq, _HEAD.c.hash)
)
_MOVE_HEAD = (
    update(_HEAD).where(_HEAD.c.id == 1).values(seq=bindparam("to_seq"), hash=bindparam("to_hash"))
)
# PostgreSQL: one event is appended by the audit_append() function (migration 0006), in one
# statement that takes the head row's lock, hashes and inserts the event and moves the head.
# It is the one place where the chain is extended in SQL: a sign-in costs a statement and
# its lock is held for no round trip, which the sign-in's latency floor needs on
# PostgreSQL (bench/README.md). The function hashes what event_hash hashes: the caller sends
# the event's own fields as JSON (`tail`) and it adds the sequence number and the previous
# hash around them (tests check that both agree on awkward text).
_APPEND_ONE = func.audit_append(
    bindparam("at", type_=UTCDateTime),
    bindparam("actor", type_=Text),
    bindparam("action", type_=Text),
    bindparam("target", type_=Text),
    bindparam("details", type_=Text),
    bindparam("tail", type_=Text),
)


def append(conn: Session | Connection, events: Iterable[Event], *, now: dt.datetime) -> int:
    """Append events in order, inside the caller's transaction; returns how many.

    Appenders take turns on the head row from here to their commit. What a session holds
    is written first, so every transaction takes its other row locks before the head's,
    never after: no deadlock between two appenders."""
    events = list(events)
    if not events:
        return 0
    if isinstance(conn, Session):
        conn.flush()
    at = now.astimezone(dt.UTC)
    if len(events) == 1 and _postgresql(conn):
        conn.execute(select(_APPEND_ONE), _fields(events[0], at))
        return 1
    seq, prev = conn.execute(_LOCK_HEAD).one()
    rows = []
    for event in events:
        seq += 1
        actor, action, details = str(event.actor), str(event.action), canonical(event.details)
        digest = event_hash(seq, at, actor, action, event.target, details, prev)
        rows.append(
            {
                "seq": seq,
                "actor": actor,
                "action": action,
                "target": event.target,
                "details": details,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    insert_rows(conn, _EVENTS, rows, at=at)
    conn.execute(_MOVE_HEAD, {"to_seq": seq, "to_hash": prev})
    return len(rows)


def append_if(
    db: Database, guard: Update, params: Mapping[str, Any], event: Event, *, now: dt.datetime
) -> bool:
    """Run `guard` (an UPDATE that matches one row while what is recorded still holds, e.g.
    a sign-in's account as it was read) and append the event only if it matched, both in
    one transaction; returns whether it matched. On PostgreSQL that is one statement."""
    if db.dialect == "postgresql":
        fields = _fields(event, now.astimezone(dt.UTC))
        return bool(db.run(_guarded(guard), {**params, **fields}))
    with db.connection() as conn:
        if conn.execute(guard, params).rowcount != 1:
            return False
        append(conn, [event], now=now)
    return True


@functools.cache
def _guarded(guard: Update) -> Select[Any]:
    """WITH confirmed AS (<guard> RETURNING 1) SELECT audit_append(...) FROM confirmed,
    built once per guard (the guards are module constants)."""
    confirmed = guard.returning(literal_column("1")).cte("confirmed")
    return select(_APPEND_ONE).select_from(confirmed)


def _postgresql(conn: Session | Connection) -> bool:
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    return bind.dialect.name == "postgresql"


def _fields(event: Event, at: dt.datetime) -> dict[str, Any]:
    """audit_append()'s arguments: the event's fields, and `tail`, the JSON event_hash
    writes between the sequence number and the previous hash."""
    actor, action, details = str(event.actor), str(event.action), canonical(event.details)
    tail = json.dumps([at.isoformat(), actor, action, event.target, details], separators=(",", ":"))
    return {
        "at": at,
        "actor": actor,
        "action": action,
        "target": event.target,
        "details": details,
        "tail": tail[1:-1],
    }


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    problem: str | None = None
    first_bad_seq: int | None = None


def iter_events(
    session: Session,
    batch: int = 5000,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    target: str | None = None,
) -> Iterator[AuditEvent]:
    """Events in seq order, a batch at a time (constant memory), optionally only those at
    or after `since`, before `until` (the index on `at`), and about one `target`."""
    conditions = []
    if since is not None:
        conditions.append(AuditEvent.at >= since)
    if until is not None:
        conditions.append(AuditEvent.at < until)
    if target is not None:
        conditions.append(AuditEvent.target == target)
    after = 0
    while True:
        chunk = (
            session.execute(
                select(AuditEvent)
                .where(AuditEvent.seq > after, *conditions)
                .order_by(AuditEvent.seq)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not chunk:
            return
        yield from chunk
        after = chunk[-1].seq
        session.expunge_all()


def as_record(ev: AuditEvent) -> dict[str, Any]:
    """An event as exported (`audit export`, GET /api/v1/audit): details parsed, UTC time."""
    return {
        "seq": ev.seq,
        "at": ev.at.isoformat(),
        "actor": ev.actor,
        "action": ev.action,
        "target": ev.target,
        "details": json.loads(ev.details),
        "prev_hash": ev.prev_hash,
        "hash": ev.hash,
    }


def verify(session: Session) -> ChainReport:
    """Walk the chain; name the first event that was edited, removed or inserted."""
    prev, expected, count = GENESIS, 1, 0
    for ev in iter_events(session):
        if ev.seq != expected:
            return ChainReport(False, count, f"event {expected} is missing", expected)
        if ev.prev_hash != prev:
            return ChainReport(
                False, count, f"event {ev.seq} does not follow its predecessor", ev.seq
            )
        digest = event_hash(ev.seq, ev.at, ev.actor, ev.action, ev.target, ev.details, prev)
        if digest != ev.hash:
            return ChainReport(False, count, f"event {ev.seq} was altered", ev.seq)
        prev, expected, count = ev.hash, expected + 1, count + 1
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    if head.seq != count or head.hash != prev:
        return ChainReport(
            False, count, f"the trail ends at event {count} but the head says {head.seq}", count + 1
        )
    return ChainReport(True, count)
