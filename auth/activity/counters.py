"""The activity guard's counters: record an action and read every window in one call.

One interface, two implementations chosen by configuration: Redis when REDIS_URL is set
(sliding windows in sorted sets that every instance shares, one round trip per action),
the database otherwise (`activity_events` rows: one insert, one statement for every count,
one for the session's latest times). Either keeps nothing longer than the longest window:
Redis keys expire, old rows are deleted in bounded batches every PURGE_EVERY seconds.

A portal session id arrives here already as its SHA-256 (`session_digest`); a subject is
the portal's opaque key, never a patient identifier.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Protocol, cast

import redis
from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    delete,
    distinct,
    exists,
    func,
    insert,
    or_,
    select,
)

from auth.activity.policy import DAY, HOUR, LONGEST_WINDOW, MINUTE, NETWORK_WINDOW, Counts, Facts
from auth.config import REDIS_TIMEOUTS, Settings
from auth.db import Database
from auth.models import AccountNetwork, ActivityEvent, ActivitySession, UTCDateTime, table

PURGE_EVERY = 60.0  # seconds of activity between two purge batches (database counters)
PURGE_BATCH = 5000
_E, _S, _N = table(ActivityEvent), table(ActivitySession), table(AccountNetwork)


def session_digest(portal_session: str) -> str:
    """What is kept of the portal's session id: its SHA-256, in hex."""
    return hashlib.sha256(portal_session.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Event:
    account_id: int
    session: str  # session_digest() of the portal's session id
    ip: str
    network: str
    action: str
    subject: str  # "" when the action names none
    at: dt.datetime
    new_network: bool = False  # the account never used this network (a burst counts these)


@dataclass(frozen=True)
class Touched:
    """One recorded action, as an exposure report needs it."""

    at: float  # epoch seconds
    network: str
    subject: str


class Counters(Protocol):
    def observe(self, event: Event, *, floor: float, recent: int) -> Facts:
        """Record the event and return the counts of every window that includes it, none
        reaching back before `floor` (epoch seconds; network counts excepted), and the
        session's `recent` latest times."""
        ...

    def touched(self, account_id: int, *, since: float, until: float) -> list[Touched]:
        """What the account's sessions did between the two times, oldest first."""
        ...


def build(settings: Settings, db: Database) -> Counters:
    if settings.redis_url:
        return RedisCounters(
            redis.Redis.from_url(settings.redis_url, **REDIS_TIMEOUTS),
            prefix=f"{settings.ratelimit_key_prefix}:activity",
        )
    return DatabaseCounters(db)


def _starts(t: float, floor: float) -> dict[str, float]:
    return {
        "minute": max(t - MINUTE, floor),
        "hour": max(t - HOUR, floor),
        "day": max(t - DAY, floor),
        "network_since": t - NETWORK_WINDOW,
    }


# --- the database -----------------------------------------------------------------------


def _at(name: str) -> Any:
    return bindparam(name, type_=UTCDateTime)


_MINE = _E.c.account_id == bindparam("account")
_SESSION = _E.c.session == bindparam("session")
_NETWORK = _E.c.network == bindparam("network")
# The network is new to the account that acted from it: a burst counts only these, not a
# hospital's many people behind its one address.
_NEW = ~exists().where(_N.c.account_id == _E.c.account_id, _N.c.network == _E.c.network)


def _count(where: Any, since: str) -> Any:
    return func.coalesce(func.sum(case((and_(where, _E.c.at >= _at(since)), 1), else_=0)), 0)


_COUNTS = select(
    *(_count(scope, w) for scope in (_MINE, _SESSION) for w in ("minute", "hour", "day")),
    func.count(
        distinct(case((and_(_MINE, _E.c.at >= _at("hour"), _E.c.subject != ""), _E.c.subject)))
    ),
    func.count(
        distinct(case((and_(_NETWORK, _E.c.at >= _at("network_since"), _NEW), _E.c.account_id)))
    ),
).where(
    _E.c.action == bindparam("action"),
    or_(
        and_(_MINE, _E.c.at >= _at("day")),
        and_(_SESSION, _E.c.at >= _at("day")),
        and_(_NETWORK, _E.c.at >= _at("network_since")),
    ),
)
_RECENT = (
    select(_E.c.at)
    .where(_SESSION, _E.c.action == bindparam("action"), _E.c.at >= _at("day"))
    .order_by(_E.c.at.desc())
    .limit(bindparam("recent"))
)
_TOUCHED = (
    select(_E.c.at, _E.c.network, _E.c.subject)
    .where(
        _MINE,
        _E.c.at >= _at("since"),
        _E.c.at <= _at("until"),
        ~_E.c.action.startswith("~"),  # the guard's own marks (a step-up asked)
    )
    .order_by(_E.c.at, _E.c.id)
)


class DatabaseCounters:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._purged_at = 0.0

    def observe(self, event: Event, *, floor: float, recent: int) -> Facts:
        t = event.at.timestamp()
        params = {
            "account": event.account_id,
            "session": event.session,
            "network": event.network,
            "action": event.action,
            "recent": recent,
            **{k: _utc(v) for k, v in _starts(t, floor).items()},
        }
        with self.db.connection() as conn:
            conn.execute(insert(_E).values(row_of(event)))
            row = conn.execute(_COUNTS, params).one()
            times = conn.execute(_RECENT, params).scalars().all()
        if t - self._purged_at >= PURGE_EVERY:
            self._purged_at = t
            with self.db.connection() as conn:
                purge(conn, now=event.at)
        return Facts(
            account=Counts(*row[0:3]),
            session=Counts(*row[3:6]),
            subjects_hour=row[6],
            recent=tuple(a.timestamp() for a in reversed(times)),
            network_accounts=row[7],
            floor=floor,
        )

    def touched(self, account_id: int, *, since: float, until: float) -> list[Touched]:
        params = {"account": account_id, "since": _utc(since), "until": _utc(until)}
        rows = self.db.run(_TOUCHED, params)
        return [Touched(r.at.timestamp(), r.network, r.subject) for r in rows]


def row_of(event: Event) -> dict[str, Any]:  # new_network is not kept: see _NEW
    return {
        "account_id": event.account_id,
        "session": event.session,
        "ip": event.ip,
        "network": event.network,
        "action": event.action,
        "subject": event.subject,
        "at": event.at,
    }


def _utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def purge(conn: Connection, *, now: dt.datetime, batch: int = PURGE_BATCH) -> int:
    """Delete up to `batch` events, and the session rows, older than the longest window."""
    cutoff = now - dt.timedelta(seconds=LONGEST_WINDOW)
    old = select(_E.c.id).where(_E.c.at < cutoff).limit(batch).scalar_subquery()
    deleted = conn.execute(delete(_E).where(_E.c.id.in_(old))).rowcount
    conn.execute(delete(_S).where(_S.c.seen_at < cutoff))
    return int(deleted)


# --- Redis --------------------------------------------------------------------------------


# One script, one round trip: record the action in every set (trimmed to the longest window
# and expiring with it), then read every count and the session's latest times.
OBSERVE = """
local t, keep = tonumber(ARGV[1]), tonumber(ARGV[2])
local cut = '(' .. ARGV[3]
local function add(key, member)
  redis.call('ZADD', key, t, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', cut)
  redis.call('EXPIRE', key, keep + 1)
end
add(KEYS[1], ARGV[4])
add(KEYS[2], ARGV[4])
if ARGV[13] == '1' then add(KEYS[4], ARGV[6]) end
add(KEYS[5], ARGV[7])
if ARGV[5] ~= '' then add(KEYS[3], ARGV[5]) end
local out = {}
for _, key in ipairs({KEYS[1], KEYS[2]}) do
  for i = 8, 10 do out[#out + 1] = redis.call('ZCOUNT', key, ARGV[i], '+inf') end
end
out[#out + 1] = redis.call('ZCOUNT', KEYS[3], ARGV[9], '+inf')
out[#out + 1] = redis.call('ZCOUNT', KEYS[4], ARGV[11], '+inf')
local recent = redis.call('ZREVRANGEBYSCORE', KEYS[2], '+inf', ARGV[10], 'WITHSCORES',
  'LIMIT', 0, tonumber(ARGV[12]))
for i = 2, #recent, 2 do out[#out + 1] = recent[i] end
return out
"""


class RedisCounters:
    """Sorted sets scored by time: per account and action (`a:`), per session and action
    (`s:`), the account's subjects with their latest time (`j:`), the accounts seen per
    network while it was new to them (`n:`), and every action of the account (`e:`,
    members `nonce|network|subject`) for an exposure report. A single Redis (the keys of
    one action are not in one slot of a cluster)."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._observe = client.register_script(OBSERVE)

    def observe(self, event: Event, *, floor: float, recent: int) -> Facts:
        t = event.at.timestamp()
        s = _starts(t, floor)
        p, a, act = self.prefix, event.account_id, event.action
        nonce = secrets.token_hex(6)
        keys = [
            f"{p}:a:{a}:{act}",
            f"{p}:s:{event.session}:{act}",
            f"{p}:j:{a}:{act}",
            f"{p}:n:{event.network}:{act}",
            f"{p}:e:{a}",
        ]
        args: list[str | int] = [
            repr(t),
            LONGEST_WINDOW,
            repr(t - LONGEST_WINDOW),
            nonce,
            event.subject,
            a,
            f"{nonce}|{event.network}|{event.subject}",
            *(repr(s[w]) for w in ("minute", "hour", "day", "network_since")),
            recent,
            int(event.new_network),
        ]
        out = cast(list[Any], self._observe(keys=keys, args=args))
        return Facts(
            account=Counts(*out[0:3]),
            session=Counts(*out[3:6]),
            subjects_hour=out[6],
            recent=tuple(float(score) for score in reversed(out[8:])),
            network_accounts=out[7],
            floor=floor,
        )

    def touched(self, account_id: int, *, since: float, until: float) -> list[Touched]:
        rows = self.client.zrangebyscore(
            f"{self.prefix}:e:{account_id}", since, until, withscores=True
        )
        found = []
        for member, score in cast(list[tuple[bytes, float]], rows):
            _, network, subject = member.decode("utf-8", "surrogatepass").split("|", 2)
            found.append(Touched(score, network, subject))
        return found
