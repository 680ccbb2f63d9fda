""" "This wasn't me" pages: from a "new sign-in" e-mail's link (/not-me/<token>), and the
button of /account/security. The GET shows the sign-in and asks; the POST (with CSRF) acts
(auth/activity/not_me.py) and says what happened and what comes next."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from auth.activity import not_me, user_agents
from auth.models import utcnow
from auth.web import activity_api
from auth.web import session as web_session
from auth.web.context import services
from auth.web.i18n import gettext

bp = Blueprint("not_me", __name__)


def _sign_in_page(token: str) -> Any:
    registry = services()
    with registry.db.session() as db:
        found = not_me.find(db, token, secret_key=registry.settings.secret_key, now=utcnow())
        if found is None:
            return render_template("not_me.html", invalid=True), 404
        record = found.sign_in
        return render_template(
            "not_me.html",
            invalid=False,
            token=token,
            sign_in=record,
            browser=user_agents.describe(record.user_agent, gettext),
        )


@bp.get("/not-me/<token>")
def confirm(token: str) -> Any:
    return _sign_in_page(token)


@bp.post("/not-me/<token>")
def act(token: str) -> Any:
    registry, now = services(), utcnow()
    with registry.db.session() as db:
        found = not_me.find(db, token, secret_key=registry.settings.secret_key, now=now)
        if found is None:
            return render_template("not_me.html", invalid=True), 404
        outcome = not_me.disown(
            db,
            found.account.id,
            settings=registry.settings,
            counters=activity_api.guard().counters,
            ip=request.remote_addr or "",
            now=now,
            sign_in=found.sign_in,
        )
    web_session.close()  # this browser too, if it was signed in
    return render_template("not_me_done.html", outcome=outcome)


@bp.get("/account/security/not-me")
@web_session.login_required
def confirm_from_security_page() -> Any:
    """Asked first: acting ends this session too and makes the password stop working."""
    return render_template("not_me.html", invalid=False, token=None, sign_in=None)


@bp.post("/account/security/not-me")
@web_session.login_required
def from_security_page() -> Any:
    account = web_session.current_account()
    assert account is not None
    registry = services()
    with registry.db.session() as db:
        outcome = not_me.disown(
            db,
            account.id,
            settings=registry.settings,
            counters=activity_api.guard().counters,
            ip=request.remote_addr or "",
            now=utcnow(),
        )
    web_session.close()
    return render_template("not_me_done.html", outcome=outcome)
