"""Reset tokens: 256-bit, single-use, stored only as SHA-256.

A token is the (public) token id followed by HMAC-SHA256(SECRET_KEY, token id): the
queue can hold the id and the notice worker derive the link when it sends, so no plaintext
token is ever stored, and the database alone cannot produce one. A presented token is
found by its id (the primary key) and checked by comparing digests in constant time.

A token lives from the moment its notice was sent (a backlog does not eat its lifetime):
`RESET_FORCED_TOKEN_HOURS` for a forced reset, `RESET_TOKEN_MINUTES` for a link asked for
on /forgot (see `lifetime`). It dies when used, when a newer one is issued, or when the
password changes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.orm import Session

from auth.db import among, insert_rows
from auth.models import ResetToken, table

if TYPE_CHECKING:
    from auth.config import Settings

ID_CHARS = 32  # 128 bits, hex: 48 of time in ms, then 80 random
TOKEN_CHARS = ID_CHARS + 43  # the id, then 256 bits of HMAC in unpadded base64url
_ID = re.compile(f"[0-9a-f]{{{ID_CHARS}}}")
_RANDOM_BYTES = 10
_TOKENS = table(ResetToken)


def new_ids(n: int) -> list[str]:
    """n token ids: the time in milliseconds, then 80 random bits (one call to the
    system's generator). The time first puts a batch's new keys side by side at the end of
    the primary key's B-tree instead of on random pages. An id need not be secret: the link
    holds its HMAC too, and the digest of the whole token is what is checked."""
    stamp = f"{time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF:012x}"
    fresh, step = secrets.token_hex(_RANDOM_BYTES * n), 2 * _RANDOM_BYTES
    return [stamp + fresh[i : i + step] for i in range(0, len(fresh), step)]


def derive(secret_key: str, token_id: str) -> str:
    """The token of a link: its id, then the id's HMAC (only base64url characters)."""
    mac = hmac.new(secret_key.encode(), b"reset-token:" + token_id.encode(), hashlib.sha256)
    return token_id + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def revoke_open(session: Session, account_ids: Sequence[int], *, now: dt.datetime) -> None:
    """Kill the unused tokens of these accounts: a newer one is coming, or the password changed."""
    session.execute(
        update(_TOKENS)
        .where(
            among(_TOKENS.c.account_id, account_ids),
            _TOKENS.c.used_at.is_(None),
            _TOKENS.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


def issue(
    session: Session, account_ids: Sequence[int], *, secret_key: str, now: dt.datetime
) -> dict[int, str]:
    """A new token for each account, older ones revoked; account id -> token id. Only the
    token's digest is stored: the link is derived again when the notice is sent."""
    revoke_open(session, account_ids, now=now)
    ids = dict(zip(account_ids, new_ids(len(account_ids)), strict=True))
    insert_rows(
        session,
        _TOKENS,
        [
            {
                "id": token_id,
                "account_id": account_id,
                "token_sha256": digest(derive(secret_key, token_id)),
            }
            for account_id, token_id in ids.items()
        ],
        created_at=now,
    )
    return ids


FORCED_NOTICE = "reset_forced"


def lifetime(notice_kind: str, settings: Settings) -> dt.timedelta:
    """How long a link lives once its notice is sent. A forced reset reaches someone who
    did not ask for it and may read e-mail once a day; a link asked for on /forgot is
    opened at once, so it may die soon."""
    if notice_kind == FORCED_NOTICE:
        return dt.timedelta(hours=settings.reset_forced_token_hours)
    return dt.timedelta(minutes=settings.reset_token_minutes)


def activate(
    session: Session, token_id: str, *, secret_key: str, lifetime: dt.timedelta, now: dt.datetime
) -> str | None:
    """At sending time: start the token's lifetime and return it for the link (None if dead)."""
    token = session.get(ResetToken, token_id)
    if token is None or token.used_at is not None or token.revoked_at is not None:
        return None
    token.expires_at = now + lifetime
    return derive(secret_key, token_id)


def find_valid(session: Session, token: str, *, now: dt.datetime) -> ResetToken | None:
    """The live token row for a presented token, or None (unknown, used, revoked, expired)."""
    if len(token) != TOKEN_CHARS or not _ID.fullmatch(token[:ID_CHARS]):
        return None  # nothing that is not a token id reaches the database (a NUL: a 500)
    row = session.get(ResetToken, token[:ID_CHARS])
    if (
        row is None
        or not hmac.compare_digest(row.token_sha256, digest(token))
        or row.used_at is not None
        or row.revoked_at is not None
        or row.expires_at is None
        or row.expires_at <= now
    ):
        return None
    return row
