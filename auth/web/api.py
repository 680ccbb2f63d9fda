"""The JSON API under /api/v1; every route names the scope its key must grant."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from auth import audit
from auth.breach.checker import BreachStatus, Check
from auth.errors import InvalidEmail, InvalidInput
from auth.models import AuditEvent, FindingKind
from auth.web.context import services
from auth.web.keys import current_key, require
from auth.web.openapi import REASON_MAX, SEQ_MAX, SPEC

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def error(status: int, message: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    return response


def _string_field(name: str) -> str | Response:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return error(400, f'the body must be a JSON object like {{"{name}": "..."}}', name)
    value = data.get(name)
    if not isinstance(value, str) or not value:
        return error(400, f"{name} is required and must be a non-empty string", name)
    if len(value) > 1024:
        return error(400, f"{name} is longer than 1024 characters", name)
    return value


def _sources(check: Check) -> list[dict[str, Any]]:
    return [
        {"source": r.source, "count": r.count, "breaches": list(r.breaches), "error": r.error}
        for r in check.results
    ]


def _answer(check: Check, body: dict[str, Any]) -> Response:
    """200 with the status `exposed` or `not_found`; 503 with `failed` when no source saw
    the input and one could not answer, whatever BREACH_FAILURE_POLICY is: a client that
    reads only the HTTP status must not take an unanswered check for "not found"."""
    status = check.status
    body["status"] = status.value
    body["sources"] = _sources(check)
    body["failed"] = status is BreachStatus.FAILED
    response = jsonify(body)
    if status is BreachStatus.FAILED:
        response.status_code = 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/check/password")
@require("check:password")
def check_password() -> Response:
    password = _string_field("password")
    if isinstance(password, Response):
        return password
    check = services().checker.check_password(password)
    return _answer(check, {"pwned": check.count > 0, "count": check.count})


@bp.post("/check/email")
@require("check:email")
def check_email() -> Response:
    email = _string_field("email")
    if isinstance(email, Response):
        return email
    try:
        check = services().checker.check_email(email)
    except InvalidEmail as exc:
        return error(400, str(exc), "email")
    return _answer(check, {"breached": bool(check.breaches), "breaches": list(check.breaches)})


@bp.post("/resets")
@require("reset")
def resets() -> Response:
    """Force resets, as `breachguard reset` does; notices are queued for the worker."""
    from auth.reset import job, sources

    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return error(400, "the body must be a JSON object", "emails")
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > REASON_MAX:
        return error(400, f"reason must be a string of at most {REASON_MAX} characters", "reason")
    if not isinstance(data.get("dry_run", False), bool):
        return error(400, "dry_run must be true or false", "dry_run")
    kinds = data.get("kinds", [])
    known = {str(k) for k in FindingKind}
    if not isinstance(kinds, list) or not all(isinstance(k, str) and k in known for k in kinds):
        return error(400, f"kinds must list finding kinds: {', '.join(FindingKind)}", "kinds")
    if ("emails" in data) == ("from_scan" in data):
        return error(
            400, "give emails (a list of addresses) or from_scan: true, one of them", "emails"
        )
    registry = services()
    key = current_key()
    assert key is not None
    source: sources.Source
    rows: list[job.AccountResult] = []
    try:
        if "emails" in data:
            emails = data["emails"]
            if not isinstance(emails, list) or not emails:
                return error(400, "emails must be a non-empty list of addresses", "emails")
            if not all(isinstance(e, str) for e in emails):
                return error(400, "emails must list addresses as strings", "emails")
            source = sources.Addresses.from_values(emails)
        elif data["from_scan"] is True:
            source = sources.FromScan(kinds)
        else:
            return error(400, "from_scan must be true (or give emails)", "from_scan")
        report = job.run(
            registry.db,
            source,
            reason=reason,
            actor=audit.Actor.api_key(key.id),
            secret_key=registry.settings.secret_key,
            require_mfa=registry.settings.reset_requires_mfa,
            batch=registry.settings.reset_batch,
            dry_run=data.get("dry_run") is True,
            sink=rows.extend,
        )
    except InvalidInput as exc:
        field = str(exc).split("[", 1)[0].split(":", 1)[0].lstrip("-")
        return error(400, str(exc), field if field in ("emails", "reason") else None)
    return jsonify(
        {
            "job": report.job_id,
            "dry_run": report.dry_run,
            "summary": report.summary(),
            "accounts": [
                {"email": e, "account_id": a, "outcome": o.value, "detail": d}
                for e, a, o, d in rows
            ],
        }
    )


@bp.get("/audit")
@require("audit")
def audit_events() -> Response:
    """The audit trail, oldest first, a page at a time: `?after=<seq>&limit=<n>`."""
    try:
        after = int(request.args.get("after", "0"))
        limit = int(request.args.get("limit", "500"))
    except ValueError:
        return error(400, "after and limit must be integers", "after")
    if not 0 <= after <= SEQ_MAX:  # a larger cursor would not fit the database's integer
        return error(400, f"after must be between 0 and {SEQ_MAX}", "after")
    if not 1 <= limit <= 5000:
        return error(400, "limit must be between 1 and 5000", "limit")
    with services().db.session() as session:
        rows = session.execute(
            select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(limit)
        ).scalars()
        events = [audit.as_record(e) for e in rows]
    next_after = events[-1]["seq"] if len(events) == limit else None
    response = jsonify({"events": events, "next_after": next_after})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(SPEC)
