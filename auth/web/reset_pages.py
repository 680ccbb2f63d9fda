"""Password reset pages: /forgot asks for a link, /reset/<token> sets a new password.

Two blueprints so the factory can give each POST its own per-address budget: /forgot
(FORGOT_RATE_LIMIT, per network address and per e-mail address) and /reset/<token>
(LOGIN_RATE_LIMIT). Neither page tells whether an account exists or why a link died.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_limiter.util import get_remote_address

from auth.breach.hashing import normalise_email
from auth.errors import InvalidInput
from auth.i18n import N_, format_number
from auth.mfa import factors
from auth.models import Account, utcnow
from auth.reset import complete, reasons
from auth.web import i18n
from auth.web import session as web_session
from auth.web.context import services
from auth.web.i18n import current_language, gettext

forgot_bp = Blueprint("forgot_pages", __name__)
reset_bp = Blueprint("reset_pages", __name__)

# /forgot answers no sooner than this, so a known address (a token, a notice, an audit
# event written) and an unknown one (one SELECT) take the same time as seen from outside.
FORGOT_MIN_SECONDS = 0.25

NO_FACTOR = N_(
    "Your password is changed. Add a second factor now: with an authenticator app or a "
    "security key, a leaked password alone no longer opens your account."
)
WITH_FACTOR = N_("Your password is changed. Sign in with it and your second factor.")
TOO_MANY = N_("Too many attempts from your network: wait a minute, then try again.")
TOO_MANY_LINKS = N_("Too many requests for a reset link: wait a minute, then try again.")


def refusal(problem: complete.Problem) -> str:
    """Why a new password is refused, in the reader's language."""
    return gettext(problem.message, count=format_number(problem.count, current_language()))


def _minutes() -> int:
    return services().settings.reset_token_minutes


def forgot_email_key() -> str:
    """Rate-limit key for /forgot per e-mail address (hashed; never the address itself)."""
    raw = request.form.get("email", "")
    try:
        email = normalise_email(raw)
    except InvalidInput:
        email = raw.strip().lower()
    return "forgot-email:" + hashlib.sha256(email.encode("utf-8", "replace")).hexdigest()[:32]


# --- /forgot --------------------------------------------------------------------------------


@forgot_bp.get("/forgot")
def forgot() -> Any:
    return render_template("forgot.html", minutes=_minutes())


@forgot_bp.post("/forgot")
def forgot_post() -> Any:
    started = time.monotonic()
    registry = services()
    with registry.db.session() as db:
        complete.request_reset(
            db,
            email=request.form.get("email", "")[:320],
            secret_key=registry.settings.secret_key,
            now=utcnow(),
            ip=get_remote_address(),
        )
    left = FORGOT_MIN_SECONDS - (time.monotonic() - started)
    if left > 0:
        time.sleep(left)
    return render_template("forgot.html", sent=True, minutes=_minutes())


@forgot_bp.errorhandler(429)
def forgot_too_many(exc: Exception) -> Any:
    return render_template("forgot.html", error=gettext(TOO_MANY_LINKS), minutes=_minutes()), 429


# --- /reset/<token> -------------------------------------------------------------------------


def _invalid() -> Any:
    return render_template("reset_invalid.html"), 410


def _form(account: Account, error: str | None = None) -> str:
    """A forced reset says why, in the reader's language, and quotes a person's note."""
    forced = account.reset_reason_code is not None or bool(account.reset_reason)
    return render_template(
        "reset.html",
        email=account.email,
        reason=gettext(reasons.sentence(account.reset_reason_code)) if forced else None,
        note=account.reset_reason,
        min_length=complete.MIN_LENGTH,
        max_length=complete.MAX_LENGTH,
        error=error,
    )


@reset_bp.get("/reset/<token>")
def reset(token: str) -> Any:
    with services().db.session() as db:
        try:
            _, account = complete.live_token(db, token, now=utcnow())
        except complete.TokenInvalid:
            return _invalid()
        return _form(account)


@reset_bp.post("/reset/<token>")
def reset_post(token: str) -> Any:
    if "language" in request.form:  # the language switch (base.html: switch_posts_back)
        return i18n.switched(request.form["language"], request.path)
    registry = services()
    try:
        with registry.db.session() as db:
            account = complete.complete_reset(
                db,
                token=token,
                new_password=request.form.get("password", ""),
                repeat=request.form.get("repeat", ""),
                hasher=registry.hasher,
                checker=registry.checker,
                now=utcnow(),
            )
            has_factor = bool(factors.kinds(db, account.id))
            db.expunge(account)
    except complete.TokenInvalid:
        return _invalid()
    except complete.PasswordRefused as exc:
        with registry.db.session() as db:
            try:
                _, account = complete.live_token(db, token, now=utcnow())
            except complete.TokenInvalid:
                return _invalid()
            return _form(account, refusal(exc.problem)), 400
    if has_factor:
        # The second factor still stands between a reset link and a session.
        web_session.close()
        flash(gettext(WITH_FACTOR))
        return redirect(url_for("pages.login"))
    web_session.open_session(account, method="reset")
    flash(gettext(NO_FACTOR))
    return redirect(url_for("account.security"))


@reset_bp.errorhandler(429)
def reset_too_many(exc: Exception) -> Any:
    return render_template("base.html", error=gettext(TOO_MANY)), 429
