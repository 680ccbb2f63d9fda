"""WebAuthn ceremonies as JSON for the browser (static/webauthn.js), under /api/v1/mfa.

Authenticated by the page session (cookie) and a CSRF header, not by API keys. The
challenge lives server-side (shared by every instance); the session only names it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, session, url_for

from auth import audit
from auth.mfa import factors, recovery, verify
from auth.mfa import webauthn as wa
from auth.models import FactorKind, utcnow
from auth.web import session as web_session
from auth.web.context import services

bp = Blueprint("mfa_api", __name__, url_prefix="/api/v1/mfa")


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


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
        return _error(401, "sign in first")
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
        return _error(401, "sign in first")
    credential = _credential()
    challenge_id = session.pop("wa_register", None)
    if credential is None:
        return _error(400, "credential: expected the PublicKeyCredential as JSON")
    if not isinstance(challenge_id, str):
        return _error(400, "no registration in progress: start again")
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
            name=str(body.get("name") or "Security key"),
            rp=wa.RelyingParty.from_settings(registry.settings),
            now=now,
            actor=actor,
        )
    except wa.WebauthnError as exc:
        return _error(400, str(exc))
    codes: list[str] = []
    if first:
        with registry.db.session() as db:
            codes = recovery.generate(db, account_id=account.id, actor=actor, now=now)
    return jsonify({"ok": True, "factor": factor.id, "name": factor.name, "recovery_codes": codes})


@bp.post("/webauthn/authenticate/options")
def authenticate_options() -> Response:
    account = web_session.pending_account()
    if account is None:
        return _error(401, "sign in with your password first")
    registry = services()
    with registry.db.session() as db:
        if FactorKind.WEBAUTHN not in factors.kinds(db, account.id):
            return _error(400, "this account has no security key or passkey")
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
        return _error(401, "your sign-in took too long: start again")
    credential = _credential()
    challenge_id = session.pop("wa_authenticate", None)
    if credential is None:
        return _error(400, "credential: expected the PublicKeyCredential as JSON")
    if not isinstance(challenge_id, str):
        return _error(400, "no sign-in in progress: start again")
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
        return _error(status, result.message)
    next_url = web_session.safe_next(session.get("next")) or url_for("account.security")
    web_session.open_session(account, mfa=True, method="webauthn")
    return jsonify({"ok": True, "redirect": next_url})
