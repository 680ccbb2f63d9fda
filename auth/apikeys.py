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

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from auth import audit
from auth.db import Database
from auth.errors import InvalidInput, NotFound, one_line
from auth.models import ApiKey, Role, table

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
# "Last used more than a minute ago?" is asked in SQL: no datetime needs converting.
_FIND = select(
    _KEYS.c.id,
    _KEYS.c.name,
    _KEYS.c.role,
    _KEYS.c.secret_sha256,
    _KEYS.c.revoked_at.is_not(None).label("revoked"),
    or_(_KEYS.c.last_used_at.is_(None), _KEYS.c.last_used_at < bindparam("stale")).label("due"),
).where(_KEYS.c.id == bindparam("key_id"))
_USED = update(_KEYS).where(_KEYS.c.id == bindparam("key_id")).values(last_used_at=bindparam("now"))


@dataclass(frozen=True)
class Caller:
    """The active key a request came with: what the routes need of it."""

    id: str
    name: str
    role: str


def authenticate(db: Database, token: str, *, now: dt.datetime) -> Caller | None:
    """The active key a token belongs to, or None; marks it used (at most once a minute)."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    key_id, secret = parts[1], parts[2]
    rows = db.run(_FIND, {"key_id": key_id, "stale": now - USED_EVERY})
    if not rows or rows[0].revoked:
        _digest(secret)  # the same work either way
        return None
    row = rows[0]
    if not hmac.compare_digest(row.secret_sha256, _digest(secret)):
        return None
    if row.due:
        db.run(_USED, {"key_id": key_id, "now": now})
    return Caller(row.id, row.name, row.role)


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
