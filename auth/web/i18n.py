"""The language of a page: Flask-Babel wired to auth/i18n.py, and the language switch.

Which language a request gets, first match wins:
1. the browser's own choice, made with the switch (the `bg_lang` cookie);
2. the signed-in account's language (chosen on another device; e-mails use it too);
3. the browser's Accept-Language, best match among LANGUAGES;
4. DEFAULT_LANGUAGE (French).

Templates translate with `_()` / `{% trans %}` and show dates and numbers with the filters
`when` (date and time), `day` (date) and `number`; Python code with `gettext` from here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import flask_babel
from flask import (
    Blueprint,
    Flask,
    current_app,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from sqlalchemy import update
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Response as Redirect

from auth import i18n
from auth.config import LANGUAGES, Settings
from auth.models import Account, table, utcnow
from auth.web import session as web_session
from auth.web.context import services

bp = Blueprint("language", __name__)
_ACCOUNTS = table(Account)
COOKIE_SECONDS = 365 * 24 * 3600


def gettext(message: str, **variables: object) -> str:
    """`message` in this request's language; `%(name)s` placeholders filled from `variables`."""
    return str(flask_babel.gettext(message, **variables))


def ngettext(singular: str, plural: str, num: int, **variables: object) -> str:
    """The form for `num` (available as `%(num)d`) in this request's language."""
    return str(flask_babel.ngettext(singular, plural, num, **variables))


class _Catalogs(flask_babel.Domain):  # type: ignore[misc]
    """Flask-Babel's domain, reading the catalogs auth/i18n.py compiles (no .mo files)."""

    def get_translations(self) -> Any:
        return i18n.translations(current_language())


class _Babel(flask_babel.Babel):  # type: ignore[misc]
    @property
    def domain_instance(self) -> _Catalogs:
        return _CATALOGS


_CATALOGS = _Catalogs()


def current_language() -> str:
    """The language of this request (one of LANGUAGES)."""
    locale = flask_babel.get_locale()
    language = str(locale.language) if locale is not None else ""
    return language if language in LANGUAGES else services().settings.default_language


def _select() -> str | None:
    if not has_request_context():
        return None  # the default locale
    chosen = request.cookies.get(i18n.COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    if "sid" in session:  # no database read for a browser that is not signed in
        account = web_session.current_account()
        if account is not None and account.language in LANGUAGES:
            return str(account.language)
    default = services().settings.default_language
    return i18n.best_language(list(request.accept_languages), default)


def init_app(app: Flask, settings: Settings) -> None:
    _Babel(app, locale_selector=_select, default_locale=settings.default_language)
    app.jinja_env.policies["ext.i18n.trimmed"] = True  # as babel.cfg extracts them
    app.jinja_env.filters.update(when=_when, day=_day, number=_number)
    app.jinja_env.globals.update(
        current_language=current_language, languages=LANGUAGES, language_name=i18n.language_name
    )
    app.register_blueprint(bp)


def _when(value: dt.datetime | None, length: str = "medium") -> str:
    return "" if value is None else i18n.format_datetime(value, current_language(), length=length)


def _day(value: dt.date | dt.datetime | None, length: str = "medium") -> str:
    return "" if value is None else i18n.format_date(value, current_language(), length=length)


def _number(value: float) -> str:
    return i18n.format_number(value, current_language())


def _back_to(target: str | None) -> str:
    """Where the switch returns: the page it was used on when that page answers GET (a
    page shown after a POST, such as a form with an error, may not), else a safe default."""
    path = web_session.safe_next(target)
    if path is not None:
        adapter = current_app.url_map.bind("")
        try:
            adapter.match(path.split("?", 1)[0], method="GET")
            return path
        except (NotFound, MethodNotAllowed, RequestRedirect):
            pass
    if web_session.current_account() is not None:
        return url_for("account.security")
    return url_for("index")


@bp.post("/language")
def switch() -> Redirect:
    """The language switch of every page (CSRF-checked, as every form)."""
    return switched(request.form.get("language", ""), _back_to(request.form.get("next")))


def switched(language: str, back_to: str) -> Redirect:
    """Remember the language chosen, in this browser (a cookie) and on the signed-in
    account, so that its e-mails go out in it; then back to the page. A page whose address
    holds a secret (a reset link) posts the switch to itself and calls this, so that the
    secret is never written into the page."""
    response = redirect(back_to, code=303)
    if language not in LANGUAGES:
        return response
    response.set_cookie(
        i18n.COOKIE,
        language,
        max_age=COOKIE_SECONDS,
        secure=bool(current_app.config["SESSION_COOKIE_SECURE"]) or request.is_secure,
        httponly=True,
        samesite="Lax",
    )
    account = web_session.current_account()
    if account is not None and account.language != language:
        with services().db.connection() as conn:
            conn.execute(
                update(_ACCOUNTS)
                .where(_ACCOUNTS.c.id == account.id)
                .values(language=language, updated_at=utcnow())
            )
    return response
