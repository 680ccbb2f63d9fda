"""Page sessions: a signed cookie naming a row kept on the server.

The cookie holds a random secret; the `web_sessions` row named by its SHA-256 holds the
account, the account's session epoch at sign-in, whether a second factor was checked, and
when the session ends (SESSION_LIFETIME after sign-in, or SESSION_IDLE_TIMEOUT after the
last request, whichever comes first). Sign-out deletes the row, so a copy of the cookie
opens nothing; bumping the account's epoch (a forced reset, "sign out everywhere") ends
all its sessions at once. Between the password and the second factor, only a short-lived
*pending* sign-in exists, in the signed cookie.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import g, redirect, request, session, url_for
from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from auth import audit, i18n
from auth.config import LANGUAGES, Settings
from auth.models import Account, AccountStatus, WebSession, table, utcnow
from auth.web.context import services

PENDING_SECONDS = 300
TOUCH_EVERY = dt.timedelta(seconds=60)  # the idle end is this precise
_SESSIONS, _ACCOUNTS = table(WebSession), table(Account)
_CURRENT = "breachguard_session"  # flask.g: (account, mfa) of this request, or None
F = TypeVar("F", bound=Callable[..., Any])


def open_session(
    account: Account,
    *,
    mfa: bool = False,
    method: str | None = None,
    began: dt.datetime | None = None,
) -> None:
    """Start a full session (after every factor): a new row, and a fresh cookie naming it
    (which defeats fixation). With `method`, the sign-in is recorded in the same
    transaction; without, the caller recorded it (with the second factor's check).

    `mfa`: a second factor was checked on the way in. The security console asks for it;
    a session opened with a password alone (or by a reset link) never carries it.
    `began`: when the session being carried on began (see keep_this_session).
    """
    registry, now = services(), utcnow()
    created = began or now
    secret, previous = secrets.token_urlsafe(32), session.get("sid")
    with registry.db.connection() as conn:
        ended = and_(_SESSIONS.c.account_id == account.id, _SESSIONS.c.expires_at <= now)
        if isinstance(previous, str):  # this browser's earlier session goes too
            ended = or_(ended, _SESSIONS.c.id == _digest(previous))
        conn.execute(delete(_SESSIONS).where(ended))
        conn.execute(
            insert(_SESSIONS).values(
                id=_digest(secret),
                account_id=account.id,
                session_epoch=account.session_epoch,
                mfa=mfa,
                created_at=created,
                last_seen_at=now,
                expires_at=_ends(created, now, registry.settings),
            )
        )
        if method is not None:
            audit.append(conn, [started(account, method)], now=now)
        chosen = request.cookies.get(i18n.COOKIE)
        # The switch used before signing in, for an account with no language yet: the
        # e-mails follow it (the statement checks again, for a concurrent sign-in).
        if chosen in LANGUAGES and account.language is None:
            conn.execute(
                update(_ACCOUNTS)
                .where(_ACCOUNTS.c.id == account.id, _ACCOUNTS.c.language.is_(None))
                .values(language=chosen, updated_at=now)
            )
    session.clear()
    session["sid"] = secret
    session.permanent = False  # a browser-session cookie; the row decides how long it lives
    g.pop(_CURRENT, None)


@dataclass(frozen=True)
class Held:
    """This browser's session as it stood: when it began, and its second-factor flag."""

    began: dt.datetime
    mfa: bool


def this_session() -> Held | None:
    """Read before the account's other sessions end (which ends this one's row too), so
    that keep_this_session can carry it over."""
    secret = session.get("sid")
    if not isinstance(secret, str):
        return None
    with services().db.connection() as conn:
        row = conn.execute(
            select(_SESSIONS.c.created_at, _SESSIONS.c.mfa).where(_SESSIONS.c.id == _digest(secret))
        ).first()
    return None if row is None else Held(row.created_at, row.mfa)


def keep_this_session(account_id: int, epoch: int, held: Held | None) -> None:
    """Carry this browser's session over its account's new epoch (every other session
    ended): the same start and second-factor flag, so that ending the others, which anyone
    holding this session may do, never lengthens its life."""
    if held is not None:
        open_session(Account(id=account_id, session_epoch=epoch), mfa=held.mfa, began=held.began)


def started(account: Account, method: str) -> audit.Event:
    """The audit event of a sign-in: who, how, and from where."""
    return audit.Event(
        audit.Actor.account(account.id),
        audit.Action.SESSION_STARTED,
        f"account:{account.id}",
        {"method": method, "ip": request.remote_addr},
    )


def open_pending(account: Account, next_url: str | None) -> None:
    """Password accepted, second factor still due: no session yet, only the signed
    cookie's note of who is half-way, for PENDING_SECONDS."""
    close()
    session["pending"] = {"aid": account.id, "epoch": account.session_epoch, "at": int(time.time())}
    if next_url:
        session["next"] = next_url


def close() -> None:
    """Sign out this browser: its session row goes, so a copy of the cookie opens nothing."""
    secret = session.get("sid")
    if isinstance(secret, str):
        with services().db.connection() as conn:
            conn.execute(delete(_SESSIONS).where(_SESSIONS.c.id == _digest(secret)))
    session.clear()
    g.pop(_CURRENT, None)


def close_everywhere(account: Account) -> None:
    """Sign out every browser of the account, this one included (the person's own "sign
    out everywhere")."""
    with services().db.connection() as conn:
        end_all(
            conn,
            account.id,
            actor=audit.Actor.account(account.id),
            now=utcnow(),
            details={"ip": request.remote_addr},
        )
    session.clear()
    g.pop(_CURRENT, None)


def end_all(
    conn: Connection,
    account_id: int,
    *,
    actor: audit.Actor,
    now: dt.datetime,
    details: dict[str, Any],
) -> int:
    """End every session of the account, in the caller's transaction: its rows go and its
    epoch moves on (which also voids a half-way sign-in), recorded in the audit trail with
    the number of sessions ended. The person themself or an administrator acts."""
    ended = conn.execute(delete(_SESSIONS).where(_SESSIONS.c.account_id == account_id)).rowcount
    conn.execute(
        update(_ACCOUNTS)
        .where(_ACCOUNTS.c.id == account_id)
        .values(session_epoch=_ACCOUNTS.c.session_epoch + 1, updated_at=now)
    )
    event = audit.Event(
        actor, audit.Action.SESSIONS_ENDED, f"account:{account_id}", {**details, "sessions": ended}
    )
    audit.append(conn, [event], now=now)
    return int(ended)


def purge(conn: Connection, *, now: dt.datetime) -> int:
    """Delete ended sessions (the server's housekeeping)."""
    return conn.execute(delete(_SESSIONS).where(_SESSIONS.c.expires_at <= now)).rowcount


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def _ends(created: dt.datetime, seen: dt.datetime, settings: Settings) -> dt.datetime:
    return min(
        created + dt.timedelta(seconds=settings.session_lifetime),
        seen + dt.timedelta(seconds=settings.session_idle),
    )


def _usable(account: Account | None, epoch: int) -> bool:
    return (
        account is not None
        and account.session_epoch == epoch
        and account.status not in (AccountStatus.DISABLED, AccountStatus.RESET_REQUIRED)
    )


def _resume(secret: object) -> tuple[Account, bool] | None:
    """The account and the mfa flag of the session the cookie names, if it still stands;
    its idle end moves on (at most once per TOUCH_EVERY: a write per page would be waste)."""
    if not isinstance(secret, str) or len(secret) > 128:
        return None
    registry, now = services(), utcnow()
    with registry.db.session() as db:
        found = db.execute(
            select(WebSession, Account)
            .join(Account, Account.id == WebSession.account_id)
            .where(WebSession.id == _digest(secret))
        ).first()
        if found is None:
            return None
        row, account = found
        if row.expires_at <= now or not _usable(account, row.session_epoch):
            db.delete(row)
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            row.last_seen_at = now
            row.expires_at = _ends(row.created_at, now, registry.settings)
        return account, row.mfa


def current_account() -> Account | None:
    """The signed-in account of this request (read once per request), or None."""
    if _CURRENT not in g:
        resumed = _resume(session.get("sid")) if "sid" in session else None
        if resumed is None and "sid" in session:
            session.clear()
        g.setdefault(_CURRENT, resumed)
    current: tuple[Account, bool] | None = g.get(_CURRENT)
    return current[0] if current else None


def passed_second_factor() -> bool:
    """Whether this request's session was opened after a second factor."""
    current_account()
    current: tuple[Account, bool] | None = g.get(_CURRENT)
    return current is not None and current[1]


def _load(aid: int, epoch: int) -> Account | None:
    with services().db.session() as db:
        account = db.get(Account, aid)
    return account if account is not None and _usable(account, epoch) else None


def pending_account() -> Account | None:
    pending = session.get("pending")
    if not isinstance(pending, dict):
        return None
    if time.time() - int(pending.get("at", 0)) > PENDING_SECONDS:
        session.pop("pending", None)
        return None
    return _load(int(pending.get("aid", 0)), int(pending.get("epoch", -1)))


_DROPPED = str.maketrans("", "", "\t\n\r")  # removed anywhere in a URL by browsers
_TRIMMED = "".join(map(chr, range(0x21)))  # C0 controls and space, trimmed at the ends


def safe_next(target: str | None) -> str | None:
    """Where to go after signing in: a path on this site, or None.

    An open redirect would make a fine phishing link (the real /login, then the attacker's
    page). So `target` is read as a browser reads a Location: tabs and newlines dropped,
    spaces and control characters trimmed at the ends, a backslash taken for a slash
    (WHATWG URL). What is left must be a printable ASCII path that starts with one slash
    and names no scheme or host; the cleaned path is what is returned.
    """
    if not target:
        return None
    path = target.translate(_DROPPED).strip(_TRIMMED).replace("\\", "/")
    if not path.isascii() or not path.isprintable():
        return None
    if not path.startswith("/") or path.startswith("//"):
        return None
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return None
    return path


def login_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_account() is None:
            return redirect(url_for("pages.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
