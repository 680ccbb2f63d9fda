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

from auth.activity.guard import LIMITS, ActivityReport, Guard, GuardUnavailable
from auth.errors import InvalidInput, NotFound
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
    except NotFound as exc:
        return error(404, str(exc), "account")
    except InvalidInput as exc:
        return error(400, str(exc), str(exc).split(" ", 1)[0].rstrip(":"))
    except GuardUnavailable as exc:
        return error(503, str(exc))
    response = jsonify(ruling.to_json())
    response.headers["Cache-Control"] = "no-store"
    return response


def _report(data: dict[str, Any]) -> ActivityReport | Response:
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        return error(
            400, f"unknown field {unknown[0]}: the fields are {', '.join(FIELDS)}", unknown[0]
        )
    values: dict[str, str] = {}
    for name in ("account", "session", "ip", "action", "subject"):
        value = data.get(name)
        if value is None and name == "subject":
            value = ""
        if not isinstance(value, str) or (name != "subject" and not value):
            return error(400, f"{name} is required and must be a non-empty string", name)
        limit = LIMITS.get(name, 64)
        if len(value) > limit:
            return error(400, f"{name} is longer than {limit} characters", name)
        values[name] = value
    at = data.get("at")
    when = None
    if at is not None:
        if not isinstance(at, str):
            return error(400, "at must be an ISO-8601 date-time with its zone", "at")
        try:
            when = dt.datetime.fromisoformat(at.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            return error(
                400, "at must be an ISO-8601 date-time with its zone (2026-12-07T10:00:00Z)", "at"
            )
    return ActivityReport(at=when, **values)
