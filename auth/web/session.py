"""Signed-cookie sessions for the pages, revocable through the account's session epoch.

A session holds the account id and the epoch it was opened under; bumping the account's
epoch (a forced reset, "sign out everywhere") makes every older session invalid at once.
Between the password and the second factor, only a short-lived *pending* sign-in exists.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from auth import audit
from auth.models import Account, AccountStatus, utcnow
from auth.web.context import services

PENDING_SECONDS = 300
F = TypeVar("F", bound=Callable[..., Any])


def _loopback(host: str) -> bool:
    name = urlsplit(f"//{host}").hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class SessionInterface(SecureCookieSessionInterface):
    """Secure cookies except on loopback, where browsers allow plain http for development."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return not _loopback(request.host)


def open_session(account: Account, *, mfa: bool = False) -> None:
    """Start a full session (after every factor); a fresh cookie defeats fixation.

    `mfa`: a second factor was checked on the way in. The security console asks for it;
    a session opened with a password alone (or by a reset link) never carries it.
    """
    session.clear()
    session["aid"] = account.id
    session["epoch"] = account.session_epoch
    if mfa:
        session["mfa"] = True
    session.permanent = False


def passed_second_factor() -> bool:
    return session.get("mfa") is True


def started(account: Account, method: str) -> audit.Event:
    """The audit event of a sign-in: who, how, and from where."""
    return audit.Event(
        audit.Actor.account(account.id),
        audit.Action.SESSION_STARTED,
        f"account:{account.id}",
        {"method": method, "ip": request.remote_addr},
    )


def start(account: Account, method: str, *, mfa: bool = False) -> None:
    """Open the full session and record the sign-in."""
    open_session(account, mfa=mfa)
    with services().db.connection() as conn:
        audit.append(conn, [started(account, method)], now=utcnow())


def open_pending(account: Account, next_url: str | None) -> None:
    """Password accepted, second factor still due."""
    session.clear()
    session["pending"] = {"aid": account.id, "epoch": account.session_epoch, "at": int(time.time())}
    if next_url:
        session["next"] = next_url


def close() -> None:
    session.clear()


def _load(aid: int, epoch: int) -> Account | None:
    """The session's account, if the session still stands."""
    with services().db.session() as db:
        account = db.get(Account, aid)
    if account is None or account.session_epoch != epoch:
        return None
    if account.status in (AccountStatus.DISABLED, AccountStatus.RESET_REQUIRED):
        return None
    return account


def current_account() -> Account | None:
    aid, epoch = session.get("aid"), session.get("epoch")
    if not isinstance(aid, int) or not isinstance(epoch, int):
        return None
    account = _load(aid, epoch)
    if account is None:
        session.clear()
    return account


def pending_account() -> Account | None:
    pending = session.get("pending")
    if not isinstance(pending, dict):
        return None
    if time.time() - int(pending.get("at", 0)) > PENDING_SECONDS:
        session.pop("pending", None)
        return None
    return _load(int(pending.get("aid", 0)), int(pending.get("epoch", -1)))


def safe_next(target: str | None) -> str | None:
    """Only same-site paths: an open redirect would make a fine phishing link."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def login_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_account() is None:
            return redirect(url_for("pages.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
