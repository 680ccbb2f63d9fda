"""WebAuthn ceremonies as JSON for the browser (static/webauthn.js), under /api/v1/mfa.

Authenticated by the page session (cookie) and a CSRF header, not by API keys. The
challenge lives server-side (shared by every instance); the session only names it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, jsonify, request, session, url_for

from auth import audit
from auth.activity import signin_risk
from auth.mfa import factors, recovery, verify
from auth.mfa import webauthn as wa
from auth.models import FactorKind, utcnow
from auth.web import session as web_session
from auth.web.context import services
from auth.web.i18n import gettext
from auth.web.pages import factor_message

bp = Blueprint("mfa_api", __name__, url_prefix="/api/v1/mfa")


def _error(status: int, message: str, detail: str = "") -> Response:
    """`error` is shown to the person (static/webauthn.js), in their language; `detail`,
    when there is one, is the ceremony's own English account of it, for whoever debugs."""
    response = jsonify({"error": message, **({"detail": detail} if detail else {})})
    response.status_code = status
    return response


def _refused(exc: wa.WebauthnError) -> str:
    """A refused registration, in the person's words."""
    if isinstance(exc, wa.InvalidName):
        return gettext("A name has at most 100 characters, on one line.")
    if isinstance(exc, wa.ChallengeError):
        return gettext("This request has expired: start again.")
    return gettext("Your security key's answer was refused: try again.")


def _options(options_json: str) -> Response:
    return Response(
        options_json, mimetype="application/json", headers={"Cache-Control": "no-store"}
    )


def _credential() -> dict[str, Any] | None:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("credential"), dict):
        return None
    credential: dict[str, Any] = body["credential"]
    return credential


@bp.post("/webauthn/register/options")
def register_options() -> Response:
    account = web_session.current_account()
    if account is None:
        return _error(401, gettext("Sign in first."))
    registry = services()
    challenge_id, options = wa.begin_registration(
        registry.db,
        account=account,
        rp=wa.RelyingParty.from_settings(registry.settings),
        now=utcnow(),
    )
    session["wa_register"] = challenge_id
    return _options(options)


@bp.post("/webauthn/register/verify")
def register_verify() -> Response:
    account = web_session.current_account()
    if account is None:
        return _error(401, gettext("Sign in first."))
    credential = _credential()
    challenge_id = session.pop("wa_register", None)
    if credential is None:
        return _error(
            400, gettext("Your browser's answer could not be read: reload the page and try again.")
        )
    if not isinstance(challenge_id, str):
        return _error(400, gettext("No security key is being added: start again."))
    body = request.get_json(silent=True) or {}
    registry = services()
    now = utcnow()
    actor = audit.Actor.account(account.id)
    with registry.db.session() as db:
        first = not factors.active(db, account.id)
    try:
        factor = wa.finish_registration(
            registry.db,
            account=account,
            challenge_id=challenge_id,
            credential=credential,
            name=str(body.get("name") or gettext("Security key")),
            rp=wa.RelyingParty.from_settings(registry.settings),
            now=now,
            actor=actor,
        )
    except wa.WebauthnError as exc:
        return _error(400, _refused(exc), str(exc))
    # Said on the security page, which the browser loads next (at once, or once the first
    # factor's recovery codes are saved).
    flash(gettext("Security key or passkey added."))
    codes: list[str] = []
    if first:
        with registry.db.session() as db:
            codes = recovery.generate(db, account_id=account.id, actor=actor, now=now)
    return jsonify({"ok": True, "factor": factor.id, "name": factor.name, "recovery_codes": codes})


@bp.post("/webauthn/authenticate/options")
def authenticate_options() -> Response:
    account = web_session.pending_account()
    if account is None:
        return _error(401, gettext("Sign in with your password first."))
    registry = services()
    with registry.db.session() as db:
        if FactorKind.WEBAUTHN not in factors.kinds(db, account.id):
            return _error(400, gettext("This account has no security key or passkey."))
    challenge_id, options = wa.begin_authentication(
        registry.db,
        account=account,
        rp=wa.RelyingParty.from_settings(registry.settings),
        now=utcnow(),
    )
    session["wa_authenticate"] = challenge_id
    return _options(options)


@bp.post("/webauthn/authenticate/verify")
def authenticate_verify() -> Response:
    account = web_session.pending_account()
    if account is None:
        return _error(401, gettext("Your sign-in took too long: please start again."))
    credential = _credential()
    challenge_id = session.pop("wa_authenticate", None)
    if credential is None:
        return _error(
            400, gettext("Your browser's answer could not be read: reload the page and try again.")
        )
    if not isinstance(challenge_id, str):
        return _error(400, gettext("No sign-in is in progress: start again."))
    registry = services()
    result = verify.verify_webauthn(
        registry.db,
        account_id=account.id,
        challenge_id=challenge_id,
        credential=credential,
        settings=registry.settings,
        actor=audit.Actor.account(account.id),
        now=utcnow(),
    )
    if not result.ok:
        status = 429 if result.status is verify.CheckStatus.LOCKED else 400
        return _error(status, factor_message(result), result.message)
    next_url = web_session.safe_next(session.get("next")) or url_for("account.security")
    web_session.open_session(account, mfa=True, method="webauthn")
    with registry.db.connection() as conn:  # the sign-in completed: its network is known
        signin_risk.known_network(conn, account.id, request.remote_addr or "", utcnow())
    return jsonify({"ok": True, "redirect": next_url})
