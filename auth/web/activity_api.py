"""POST /api/v1/activity: the portal reports a sensitive action (hook-role key) and reads
allow, step_up or block at once (auth/activity/guard.py decides).

Every decision is a 200; 400 names the field at fault; 404 for an account breachguard does
not know (the caller is the portal, holding a hook key: nothing to enumerate); 503 when the
counters (Redis) do not answer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from auth.activity.guard import ActivityReport, BadReport, Guard, GuardUnavailable
from auth.errors import NotFound
from auth.web.api import error
from auth.web.context import services
from auth.web.keys import require

bp = Blueprint("activity_api", __name__, url_prefix="/api/v1")
GUARD = "breachguard.activity_guard"
FIELDS = ("account", "session", "ip", "action", "subject", "at")


def guard() -> Guard:
    """The app's guard (one per app: it holds the counters' connection)."""
    found: Guard | None = current_app.extensions.get(GUARD)
    if found is None:
        found = current_app.extensions[GUARD] = Guard(services())
    return found


@bp.post("/activity")
@require("hook")
def report() -> Response:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return error(400, "the body must be a JSON object", "body")
    parsed = _report(data)
    if isinstance(parsed, Response):
        return parsed
    try:
        ruling = guard().report(parsed)
    except BadReport as exc:
        return error(400, str(exc), exc.field)
    except NotFound as exc:
        return error(404, str(exc), "account")
    except GuardUnavailable as exc:
        return error(503, str(exc))
    response = jsonify(ruling.to_json())
    response.headers["Cache-Control"] = "no-store"
    return response


def _report(data: dict[str, Any]) -> ActivityReport | Response:
    """The body as a report: strings where strings are due, `at` parsed; the guard checks
    the rest (auth/activity/guard.py)."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        fields = ", ".join(FIELDS)
        return error(400, f"unknown field {unknown[0]}: the fields are {fields}", unknown[0])
    texts = {name: data.get(name, "") for name in FIELDS[:5]}
    for name, value in texts.items():
        if not isinstance(value, str):
            return error(400, f"{name} must be a string", name)
    when = None
    if data.get("at") is not None:
        raw = data["at"]
        try:
            when = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            when = None
        if when is None:
            return error(400, "at must be an ISO-8601 date-time (2026-12-07T10:00:00Z)", "at")
    return ActivityReport(at=when, **texts)
