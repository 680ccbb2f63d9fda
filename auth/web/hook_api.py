"""The login hook over HTTP: the portal asks "may this person in?" (/api/v1/hook/login)
and, when told `mfa_required`, sends the second factor (/api/v1/hook/mfa).

Every decision is a 200 (the decision is the answer); 400 only for a malformed request,
401/403 for a bad key. Limits count per hook key (the portal) and per end-user address
(the `ip` in the body), since every request comes from the portal's own address.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from flask import Blueprint, Response, jsonify, request

from auth.signin.answer import Answer
from auth.web.api import error
from auth.web.context import signin
from auth.web.keys import current_key, require

bp = Blueprint("hook_api", __name__, url_prefix="/api/v1/hook")

LIMITS = {"email": 320, "password": 1024, "user_agent": 512, "continuation": 200, "code": 64}


def body() -> dict[str, Any] | Response:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return error(400, "the body must be a JSON object")
    return data


def text(data: dict[str, Any], name: str, *, required: bool = True) -> str | Response:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        return error(400, f"{name} is required and must be a non-empty string", name)
    if len(value) > LIMITS[name]:
        return error(400, f"{name} is longer than {LIMITS[name]} characters", name)
    return value


def client_ip(data: dict[str, Any] | None = None) -> str | Response:
    """The end user's address as the portal reports it."""
    data = data if data is not None else (request.get_json(silent=True) or {})
    value = data.get("ip") if isinstance(data, dict) else None
    if not isinstance(value, str):
        return error(400, "ip is required: the address the person signs in from", "ip")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return error(400, f"ip: {value[:60]!r} is not an IP address", "ip")


def limit_key() -> str:
    """Flask-Limiter key for the end user's address and the route (each route has its own
    budget; malformed bodies share one bucket)."""
    ip = client_ip()
    return f"enduser:{ip if isinstance(ip, str) else 'invalid'}:{request.endpoint}"


def _answer(answer: Answer) -> Response:
    response = jsonify(answer.to_json())
    response.headers["Cache-Control"] = "no-store"
    return response


def _via() -> str:
    key = current_key()
    return f"hook:{key.id}" if key is not None else "hook"


@bp.post("/login")
@require("hook")
def login() -> Response:
    data = body()
    if isinstance(data, Response):
        return data
    fields = {n: text(data, n) for n in ("email", "password")}
    fields["user_agent"] = text(data, "user_agent", required=False)
    ip = client_ip(data)
    for value in (*fields.values(), ip):
        if isinstance(value, Response):
            return value
    answer = signin().login(
        str(fields["email"]),
        str(fields["password"]),
        ip=str(ip),
        user_agent=str(fields["user_agent"]),
        via=_via(),
    )
    return _answer(answer)


@bp.post("/mfa/webauthn/options")
@require("hook")
def webauthn_options() -> Response:
    data = body()
    if isinstance(data, Response):
        return data
    token = text(data, "continuation")
    if isinstance(token, Response):
        return token
    options = signin().webauthn_options(token)
    if options is None:  # a well-formed token names no live sign-in with a key: not found
        return error(
            404,
            "the continuation is unknown, spent or expired, or the account has no security key",
            "continuation",
        )
    return Response(options, mimetype="application/json", headers={"Cache-Control": "no-store"})


@bp.post("/mfa")
@require("hook")
def mfa() -> Response:
    data = body()
    if isinstance(data, Response):
        return data
    token = text(data, "continuation")
    ip = client_ip(data)
    for value in (token, ip):
        if isinstance(value, Response):
            return value
    if ("code" in data) == ("webauthn" in data):
        return error(400, "give exactly one of code (TOTP or recovery code) or webauthn", "code")
    credential = data.get("webauthn")
    if "code" in data:
        checked = text(data, "code")
        if isinstance(checked, Response):
            return checked
        answer = signin().second_step(str(token), code=checked, ip=str(ip), via=_via())
    else:
        if not isinstance(credential, dict):
            return error(400, "webauthn must be the PublicKeyCredential as JSON", "webauthn")
        answer = signin().second_step(str(token), credential=credential, ip=str(ip), via=_via())
    return _answer(answer)
