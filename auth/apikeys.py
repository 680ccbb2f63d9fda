"""Scoped API keys: `bg_<id>_<secret>`; only SHA-256 of the secret is stored.

The secret has 256 bits of entropy, so a fast hash is enough (a slow KDF protects
low-entropy passwords, not random keys); comparison is constant-time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select, update
from sqlalchemy.orm import Session

from auth import audit
from auth.errors import InvalidInput, NotFound, one_line
from auth.models import ApiKey, Role, table
from auth.prepared import Prepared, Read

PREFIX = "bg"

# What each role may call. Endpoints name a scope; roles grant sets of scopes.
SCOPES: dict[Role, frozenset[str]] = {
    Role.HOOK: frozenset({"hook", "check:password"}),
    Role.SECURITY: frozenset(
        {"check:password", "check:email", "range:email", "scan", "reset", "audit"}
    ),
    Role.ADMIN: frozenset(
        {"hook", "check:password", "check:email", "range:email", "scan", "reset", "audit", "admin"}
    ),
}


def allows(role: str, scope: str) -> bool:
    try:
        return scope in SCOPES[Role(role)]
    except ValueError:
        return False


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewKey:
    id: str
    role: str
    name: str
    token: str  # shown once, never stored


def create(
    session: Session, *, role: str, name: str, actor: audit.Actor, now: dt.datetime
) -> NewKey:
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput(f"role must be one of {', '.join(Role)}; got {role!r}") from None
    name = one_line(name, "name")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiKey(
            id=key_id,
            name=name,
            role=role,
            secret_sha256=_digest(secret),
            created_at=now,
            created_by=str(actor),
        )
    )
    audit.append(
        session,
        [
            audit.Event(
                actor, audit.Action.APIKEY_CREATED, f"apikey:{key_id}", {"role": role, "name": name}
            )
        ],
        now=now,
    )
    return NewKey(key_id, role, name, f"{PREFIX}_{key_id}_{secret}")


_KEYS = table(ApiKey)
USED_EVERY = dt.timedelta(minutes=1)  # coarse, so a busy key does not write on every request
# Every API call runs these, so they go straight to the driver (auth.prepared), and the
# "last used more than a minute ago?" question is asked in SQL: no datetime comes back.
_FIND = Prepared(
    select(
        _KEYS.c.id,
        _KEYS.c.name,
        _KEYS.c.role,
        _KEYS.c.secret_sha256,
        _KEYS.c.revoked_at.is_not(None),
        or_(_KEYS.c.last_used_at.is_(None), _KEYS.c.last_used_at < bindparam("stale")),
    ).where(_KEYS.c.id == bindparam("key_id"))
)
_USED = Prepared(
    update(_KEYS).where(_KEYS.c.id == bindparam("key_id")).values(last_used_at=bindparam("now"))
)


@dataclass(frozen=True)
class Caller:
    """The active key a request came with: what the routes need of it."""

    id: str
    name: str
    role: str


def lookup(token: str, *, now: dt.datetime) -> Read | None:
    """The read that finds the key a token names, to run alone (authenticate) or with other
    reads in one round trip (the login hook: auth.signin.Gate); None for a malformed token."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    return _FIND, {"key_id": parts[1], "stale": now - USED_EVERY}


def admit(conn: Connection, token: str, rows: Sequence[Any], *, now: dt.datetime) -> Caller | None:
    """The active key lookup() found for this token, or None; marks it used when due (the
    caller commits)."""
    secret = token.split("_", 2)[-1]
    if not rows or rows[0][4]:
        _digest(secret)  # same work either way
        return None
    key_id, name, role, secret_sha256, _revoked, due = rows[0]
    if not hmac.compare_digest(secret_sha256, _digest(secret)):
        return None
    if due:
        _USED.rowcount(conn, {"key_id": key_id, "now": now})
    return Caller(key_id, name, role)


def authenticate(conn: Connection | Session, token: str, *, now: dt.datetime) -> Caller | None:
    """The active key a token belongs to, or None; marks it used (at most once a minute).

    One statement, or two when the mark is due (one round trip with `Database.reader()`).
    """
    read = lookup(token, now=now)
    if read is None:
        return None
    connection = conn.connection() if isinstance(conn, Session) else conn
    return admit(connection, token, read[0].rows(connection, read[1]), now=now)


def revoke(session: Session, key_id: str, *, actor: audit.Actor, now: dt.datetime) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"no API key with id {key_id!r}")
    if key.revoked_at is None:
        key.revoked_at = now
        audit.append(
            session, [audit.Event(actor, audit.Action.APIKEY_REVOKED, f"apikey:{key_id}")], now=now
        )
    return key


def list_keys(session: Session) -> Sequence[ApiKey]:
    return session.execute(select(ApiKey).order_by(ApiKey.created_at)).scalars().all()
