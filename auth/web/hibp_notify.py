"""`POST /api/v1/hibp/notify`: HIBP's breach notification callback.

Authenticated by the bearer token agreed with HIBP (HIBP_NOTIFY_TOKEN), compared in
constant time; no token configured means the route is off (503). No cookies, so no CSRF
token; wrong tokens cost from the per-address budget for secrets (factory.py).
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, jsonify, request

from auth.breach import hibp_push
from auth.breach.monitor import apply_policy
from auth.models import utcnow
from auth.web.context import services

bp = Blueprint("hibp_notify", __name__, url_prefix="/api/v1/hibp")


def _answer(status: int, body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="breachguard-hibp"'
    return response


def _token_ok(expected: str) -> bool:
    header = request.headers.get("Authorization", "")
    presented = header[7:].strip() if header[:7].lower() == "bearer " else ""
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


@bp.errorhandler(413)
def too_large(_exc: Exception) -> Response:
    return _answer(413, {"error": "the body is larger than 64 KiB", "field": "body"})


@bp.post("/notify")
def notify() -> Response:
    registry = services()
    expected = registry.settings.hibp_notify_token
    if not expected:
        return _answer(503, {"error": "HIBP notifications are off: HIBP_NOTIFY_TOKEN is not set"})
    if not _token_ok(expected):
        return _answer(401, {"error": "the bearer token is missing or wrong"})
    try:
        note = hibp_push.parse(request.get_json(silent=True))
    except hibp_push.BadField as exc:
        return _answer(400, {"error": str(exc), "field": exc.field})
    with registry.db.session() as session:
        recorded = hibp_push.record(session, note, now=utcnow())
    acted = apply_policy(registry, clock=utcnow)
    return _answer(
        200,
        {
            "breach": note.breach,
            "matched_accounts": recorded.matched_accounts,
            "new_findings": recorded.new_findings,
            "policy": acted.as_dict(),
        },
    )
