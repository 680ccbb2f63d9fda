"""The OpenAPI path of the activity guard: POST /api/v1/activity."""

from __future__ import annotations

from typing import Any

from auth.web.openapi.hook import IP, hook_path
from auth.web.openapi.schemas import ERROR, json_response

RULING = {
    "type": "object",
    "properties": {
        "decision": {"type": "string", "enum": ["allow", "step_up", "block"]},
        "reasons": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Short stable codes: rate_minute, rate_hour, rate_day, "
            "distinct_subjects, regular_spacing, new_network, network_burst, blocked",
        },
        "continuation": {
            "type": ["string", "null"],
            "description": "With step_up, when the account has a second factor: send it to "
            "/api/v1/hook/mfa with the factor; once accepted the session goes on",
        },
        "continuation_expires_at": {"type": ["string", "null"], "format": "date-time"},
        "factors": {"type": "array", "items": {"type": "string", "enum": ["totp", "webauthn"]}},
        "enroll_required": {
            "type": "boolean",
            "description": "With step_up: the account has no second factor to ask for",
        },
    },
    "required": ["decision", "reasons"],
}

ACTIVITY_PATH: dict[str, Any] = hook_path(
    "A sensitive action the portal served: allow, step_up or block",
    {
        "account": {
            "type": "string",
            "minLength": 1,
            "maxLength": 320,
            "description": "The e-mail the person signed in with, or breachguard's account id",
        },
        "session": {
            "type": "string",
            "minLength": 1,
            "maxLength": 512,
            "description": "The portal's session id (only its SHA-256 is kept)",
        },
        "ip": IP,
        "action": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
            "description": "Picks the policy row (e.g. patient_lookup)",
        },
        "subject": {
            "type": "string",
            "maxLength": 128,
            "description": "The portal's opaque key for what the action touched (e.g. an HMAC "
            "of the patient identifier), never the identifier itself",
        },
        "at": {"type": "string", "format": "date-time", "description": "Default: now"},
    },
    ["account", "session", "ip", "action"],
    json_response(RULING, "The decision (every decision is a 200)"),
    more={
        "404": json_response(ERROR, "No account has this e-mail or id"),
        "503": json_response(ERROR, "The activity counters (Redis) did not answer"),
    },
)
