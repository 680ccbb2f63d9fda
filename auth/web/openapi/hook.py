"""The OpenAPI paths of the login hook and of HIBP's breach callback."""

from __future__ import annotations

from typing import Any

from auth.web.openapi.schemas import DENIED, ERROR, LIMITED, json_body, json_response

OPTIONS = {"type": "object", "description": "PublicKeyCredential options, base64url fields"}

DECISION = {
    "type": "object",
    "properties": {
        "decision": {
            "type": "string",
            "enum": ["allow", "mfa_required", "enroll_required", "reset_required", "deny"],
        },
        "reasons": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Machine-readable; a deny always says only invalid_credentials "
            "(or breach_check_unavailable under fail_closed)",
        },
        "factors": {"type": "array", "items": {"type": "string", "enum": ["totp", "webauthn"]}},
        "continuation": {
            "type": ["string", "null"],
            "description": "With mfa_required: send it back with the second factor",
        },
        "continuation_expires_at": {"type": ["string", "null"], "format": "date-time"},
        "enroll_by": {"type": ["string", "null"], "format": "date-time"},
        "message": {"type": ["string", "null"], "description": "For the person"},
    },
    "required": ["decision", "reasons", "factors", "continuation"],
}
IP = {
    "type": "string",
    "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}],
    "description": "The address the person signs in from (anything else is a 400)",
}
CONTINUATION = {"type": "string", "minLength": 1, "maxLength": 200}


def hook_path(
    summary: str,
    properties: dict[str, Any],
    required: list[str],
    ok: Any,
    one_of: list[dict[str, Any]] | None = None,
    more: dict[str, Any] | None = None,
) -> Any:
    body: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if one_of:
        body["oneOf"] = one_of
    return {
        "post": {
            "summary": summary,
            "description": "Needs an API key whose role grants `hook`.",
            "security": [{"bearer": []}],
            "requestBody": json_body(body),
            "responses": {
                "200": ok,
                "400": json_response(ERROR, "The body is not what was expected; `field` names it"),
                "401": json_response(DENIED, "No key, or an invalid or revoked one"),
                "403": json_response(DENIED, "The key's role does not grant hook"),
                "429": json_response(ERROR, "Too many attempts for this key or this address"),
                **(more or {}),
            },
        }
    }


HOOK_PATHS: dict[str, Any] = {
    "/api/v1/hook/login": hook_path(
        "May this person in? allow, mfa_required, enroll_required, reset_required or deny",
        {
            "email": {"type": "string", "minLength": 1, "maxLength": 320},
            "password": {"type": "string", "minLength": 1, "maxLength": 1024},
            "ip": IP,
            "user_agent": {"type": ["string", "null"], "maxLength": 512},
        },
        ["email", "password", "ip"],
        json_response(DECISION, "The decision (every decision is a 200)"),
    ),
    "/api/v1/hook/mfa": hook_path(
        "The second step: a TOTP code, a recovery code or a WebAuthn assertion",
        {
            "continuation": CONTINUATION,
            "ip": IP,
            "code": {"type": "string", "minLength": 1, "maxLength": 64},
            "webauthn": {"type": "object", "description": "The PublicKeyCredential as JSON"},
        },
        ["continuation", "ip"],
        json_response(DECISION, "allow or deny"),
        one_of=[{"required": ["code"]}, {"required": ["webauthn"]}],
    ),
    "/api/v1/hook/mfa/webauthn/options": hook_path(
        "Options for navigator.credentials.get() for this sign-in",
        {"continuation": CONTINUATION},
        ["continuation"],
        json_response(OPTIONS, "PublicKeyCredentialRequestOptions"),
        more={
            "404": json_response(ERROR, "No live sign-in with a security key has this continuation")
        },
    ),
}

HEX = "^[0-9A-Fa-f]{%d}$"
HIBP_NOTIFY = {
    "post": {
        "summary": "HIBP's breach notification callback (the push model)",
        "description": "Authenticated by the bearer token agreed with HIBP (HIBP_NOTIFY_TOKEN), "
        "not an API key. Records an e-mail-in-breach finding for each account whose "
        "e-mail digest is hashPrefix + one of hashSuffixes, then applies the finding "
        "policy. Idempotent: a repeated notification records nothing new.",
        "security": [{"bearer": []}],
        "requestBody": json_body(
            {
                "type": "object",
                "properties": {
                    "breachName": {"type": "string", "minLength": 1, "maxLength": 200},
                    "hashPrefix": {"type": "string", "pattern": HEX % 6},
                    "hashSuffixes": {
                        "type": "array",
                        "items": {"type": "string", "pattern": HEX % 34},
                        "maxItems": 1000,
                    },
                },
                "required": ["breachName", "hashPrefix", "hashSuffixes"],
            }
        ),
        "responses": {
            "200": json_response(
                {
                    "type": "object",
                    "properties": {
                        "breach": {"type": "string"},
                        "matched_accounts": {"type": "integer", "minimum": 0},
                        "new_findings": {"type": "integer", "minimum": 0},
                        "policy": {"type": "object"},
                    },
                    "required": ["breach", "matched_accounts", "new_findings", "policy"],
                },
                "How many accounts matched and how many findings are new",
            ),
            "400": json_response(ERROR, "A field is missing or malformed; `field` names it"),
            "401": json_response(ERROR, "No bearer token, or a wrong one"),
            "413": json_response(ERROR, "The body is larger than 64 KiB"),
            "429": LIMITED,
            "503": json_response(
                ERROR, "Notifications are off: no HIBP_NOTIFY_TOKEN is configured"
            ),
        },
    }
}
