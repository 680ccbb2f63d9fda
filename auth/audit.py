"""Append-only, hash-chained audit events.

Each event's hash covers its content and the previous event's hash, and the chain's tip
is kept in `audit_head`, so an edited, deleted or truncated trail is detected by `verify`.
Appenders serialise on the head row: its UPDATE takes the row lock (PostgreSQL) or the
write lock (SQLite) before the tip is read. On PostgreSQL a few events at a time are
appended by the `audit_append` function (migration 0006), which hashes them exactly as
`event_hash` does, so the lock is held on the server only, never across a round trip.
"""

from __future__ import annotations

import datetime as dt
import enum
import getpass
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Connection,
    Text,
    Update,
    bindparam,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.orm import Session

from auth.bulk import FEW, insert_tuples, stamp
from auth.db import Database
from auth.models import AuditEvent, AuditHead, UTCDateTime, table
from auth.prepared import Prepared

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


class Event(NamedTuple):
    """One audit event. A named tuple, not a frozen dataclass: a reset batch builds one per
    account, and a tuple is built in half the time (1e5: 33 ms against 65 ms)."""

    actor: Actor
    action: Action
    target: str
    details: Mapping[str, Any] = {}  # shared, and read-only through Mapping's type


# Built once: json.dumps with options builds a new encoder on every call.
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode
_json_string = json.encoder.encode_basestring_ascii  # what both use for a str


def event_hash(
    seq: int, at: dt.datetime, actor: str, action: str, target: str, details: str, prev: str
) -> str:
    """The chain's definition: sha256 of the compact JSON [seq, at, actor, action, target,
    details, prev]."""
    payload = json.dumps(
        [seq, at.isoformat(), actor, action, target, details, prev], separators=(",", ":")
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _tail(at: str, actor: str, action: str, target: str, details: str) -> str:
    """The middle of event_hash's payload, which does not depend on the chain's tip: the
    compact JSON of five strings, each as json.dumps writes one (ensure_ascii)."""
    return ",".join(map(_json_string, (at, actor, action, target, details)))


_HEAD = table(AuditHead)
# Take the head row's lock and read the tip in one round trip (UPDATE .. RETURNING: the
# lock is held before the value is read, on PostgreSQL and SQLite >= 3.35 alike).
_LOCK_HEAD = Prepared(
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=_HEAD.c.seq)
    .returning(_HEAD.c.seq, _HEAD.c.hash)
)
_MOVE_HEAD = Prepared(
    update(_HEAD).where(_HEAD.c.id == 1).values(seq=bindparam("to_seq"), hash=bindparam("to_hash"))
)


_COLUMNS = ("seq", "at", "actor", "action", "target", "details", "prev_hash", "hash")
_FIELDS = _COLUMNS[1:6]  # an event's own fields, as the hash takes them


Staged = tuple[str, str, str, str, str]  # actor, action, target, details, tail
_Shape = tuple[str, str, str, str, str]  # actor, action, details; the tail's parts around a target


def _stage(events: Iterable[Event], now: dt.datetime) -> list[Staged]:
    """Everything about the events that does not depend on the tip: encoded before the
    head row is locked, so a reset batch holds that lock only to hash and insert."""
    at, staged = now.isoformat(), []
    # A batch shares its actor, action and details mapping: each distinct (actor, action,
    # details) is encoded once, and the tail (what _tail makes) is its encoded fields
    # around each target's. The memo holds the actor and the mapping, so that no id is
    # reused by another object while it runs.
    shapes: dict[tuple[int, str, int], tuple[object, object, _Shape]] = {}
    for ev in events:
        key = (id(ev.actor), ev.action, id(ev.details))
        if key not in shapes:
            actor, action, details = str(ev.actor), str(ev.action), _canonical(ev.details)
            before = ",".join(map(_json_string, (at, actor, action))) + ","
            after = "," + _json_string(details)
            shapes[key] = (ev.actor, ev.details, (actor, action, details, before, after))
        actor, action, details, before, after = shapes[key][2]
        tail = before + _json_string(ev.target) + after
        staged.append((actor, action, ev.target, details, tail))
    return staged


def _chain(
    seq: int, prev: str, staged: Iterable[Staged], at: dt.datetime | str
) -> list[tuple[Any, ...]]:
    """The rows (in _COLUMNS order) that extend a chain whose tip is (seq, prev); `at` as
    it is stored (bulk.stamp). Each digest is event_hash's, from the precomputed tail
    (equal by construction; tests compare them). The tip read from the database is quoted
    as json.dumps quotes it; a hex digest made here needs no escaping."""
    rows = []
    quoted = _json_string(prev)
    sha256 = hashlib.sha256
    for actor, action, target, details, tail in staged:
        seq += 1
        digest = sha256(f"[{seq},{tail},{quoted}]".encode()).hexdigest()
        rows.append((seq, at, actor, action, target, details, prev, digest))
        prev, quoted = digest, f'"{digest}"'
    return rows


def append(session: Session | Connection, events: Iterable[Event], *, now: dt.datetime) -> int:
    """Append events in order inside the caller's transaction; returns how many.

    Every sign-in and every reset appends, all queued on one row. On PostgreSQL a few
    events go to the audit_append function (migration 0006) in one round trip, and the head
    row's lock is taken on the server; many (a reset batch) are hashed here and COPied.
    """
    events = list(events)
    conn = session.connection() if isinstance(session, Session) else session
    if conn.dialect.name == "postgresql" and 0 < len(events) <= FEW:
        driver = cast(Any, conn.connection.driver_connection)
        with driver.pipeline(), driver.cursor() as cur:
            for event in events:
                cur.execute(*_APPEND_ONE.driver_args(conn, _params(event, now)), prepare=True)
        return len(events)
    staged = _stage(events, now)
    if isinstance(session, Session):
        # What the session holds is written before the head row is locked, as an execute
        # through it would (autoflush): its row locks are taken before the head's, always.
        session.flush()
    ((seq, prev),) = _LOCK_HEAD.rows(conn, {})
    rows = _chain(seq, prev, staged, stamp(session, now))
    if rows:
        insert_tuples(session, table(AuditEvent), _COLUMNS, rows, plain=True)
        _MOVE_HEAD.rowcount(conn, {"to_seq": rows[-1][0], "to_hash": rows[-1][-1]})
    return len(rows)


@dataclass(frozen=True)
class Alike:
    """Events that share their actor, action and details, one per target, encoded before
    any transaction: a job's batch of forced resets, made on the job's read-ahead thread."""

    actor: str
    action: str
    details: str  # as _canonical encodes them
    targets: list[str]
    ends: list[str]  # each event's tail after `at,actor,action,`: its target and the details

    def only(self, keep: Sequence[int]) -> Alike:
        """The events at these positions, in that order."""
        return replace(
            self, targets=[self.targets[i] for i in keep], ends=[self.ends[i] for i in keep]
        )


def alike(actor: Actor, action: Action, details: Mapping[str, Any], targets: list[str]) -> Alike:
    encoded = _canonical(details)
    after = "," + _json_string(encoded)
    ends = [_json_string(t) + after for t in targets]
    return Alike(str(actor), str(action), encoded, targets, ends)


# SQLite (>= 3.38 for ->>): the rows come as one JSON parameter, [[seq, target, prev, hash]],
# the shared fields as parameters. One statement, which SQLite runs without taking the GIL
# back per row as executemany does: the read-ahead thread makes the next batch meanwhile.
_INSERT_ALIKE = (
    "INSERT INTO audit_events (seq, at, actor, action, target, details, prev_hash, hash) "
    "SELECT value ->> 0, ?, ?, ?, value ->> 1, ?, value ->> 2, value ->> 3 FROM json_each(?)"
)


def append_alike(session: Session, events: Alike, *, now: dt.datetime) -> int:
    """append() for Alike events on SQLite, inside the caller's transaction; the rows go in
    as one JSON parameter. The chain is extended by _chain, as append() extends it."""
    if not events.targets:
        return 0
    session.flush()  # as append() does: the session's writes first, then the head's lock
    conn = session.connection()
    ((seq, prev),) = _LOCK_HEAD.rows(conn, {})
    before = ",".join(map(_json_string, (now.isoformat(), events.actor, events.action))) + ","
    staged = [
        (events.actor, events.action, target, events.details, before + end)
        for target, end in zip(events.targets, events.ends, strict=True)
    ]
    at = stamp(session, now)
    rows = [(r[0], r[4], r[6], r[7]) for r in _chain(seq, prev, staged, at)]  # what varies
    cast(Any, conn.connection.driver_connection).execute(
        _INSERT_ALIKE, (at, events.actor, events.action, events.details, json.dumps(rows))
    )
    _MOVE_HEAD.rowcount(conn, {"to_seq": rows[-1][0], "to_hash": rows[-1][3]})
    return len(rows)


_APPEND = func.audit_append(
    bindparam("audit_at", type_=UTCDateTime),
    *(bindparam(f"audit_{name}", type_=Text) for name in _FIELDS[1:]),
    bindparam("audit_tail", type_=Text),
)
_APPEND_ONE = Prepared(select(_APPEND))
_APPEND_AFTER: dict[Prepared, Prepared] = {}  # guard -> guard + audit_append(); constants
Step = tuple[Prepared, Mapping[str, Any]]


def _params(event: Event, now: dt.datetime) -> dict[str, Any]:
    """audit_append's arguments. `tail` is the JSON of the event's own fields without the
    brackets: event_hash's payload is [seq, <tail>, prev], so the function only wraps it
    and no JSON is encoded in SQL."""
    actor, action, target, details, tail = _stage([event], now)[0]
    return {
        "audit_at": now,
        "audit_actor": actor,
        "audit_action": action,
        "audit_target": target,
        "audit_details": details,
        "audit_tail": tail,
    }


def _after(guard: Prepared) -> Prepared:
    """`WITH confirmed AS (<guard> RETURNING 1) SELECT audit_append(...) FROM confirmed`:
    the event is appended only if the guard matched."""
    if guard not in _APPEND_AFTER:
        confirmed = cast(Update, guard.statement).returning(literal_column("1")).cte("confirmed")
        _APPEND_AFTER[guard] = Prepared(select(_APPEND).select_from(confirmed))
    return _APPEND_AFTER[guard]


def guarded_append(db: Database, guard: Step, event: Event, *, now: dt.datetime) -> bool:
    """One transaction, committed here: `guard` (an UPDATE that matches one row while what
    is being recorded still holds, e.g. a sign-in's account as it was read) and, only if it
    matched, the event. Returns whether the guard matched.

    Every sign-in goes through here. On PostgreSQL that is one statement, committed as it
    ends (one round trip), and the head row is locked only while the server runs
    audit_append, not across round trips: sign-ins queue on it for microseconds.
    """
    if db.dialect != "postgresql":
        with db.engine.begin() as conn:
            if guard[0].rowcount(conn, guard[1]) != 1:
                return False
            append(conn, [event], now=now)
        return True
    # One statement, so its own transaction: with autocommit it commits as it ends, and
    # no BEGIN or COMMIT is sent (in-process, ~1 ms less per sign-in than the same
    # statement between BEGIN and COMMIT in a psycopg pipeline).
    with db.autocommit_engine.connect() as conn:
        statement = _after(guard[0]).driver_args(conn, {**guard[1], **_params(event, now)})
        with cast(Any, conn.connection.driver_connection).cursor() as cur:
            cur.execute(*statement, prepare=True)
            return cur.fetchone() is not None


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
