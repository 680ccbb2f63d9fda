"""The OpenAPI description of /api/v1 and the HIBP-compatible ranges."""

from __future__ import annotations

from typing import Any

SEQ_MAX = 2**63 - 1  # audit cursors are SQL BIGINTs

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
    "required": ["error"],
}
_DENIED = {
    "type": "object",
    "properties": {"statusCode": {"type": "integer"}, "message": {"type": "string"}},
    "required": ["statusCode", "message"],
}
_SOURCES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "source": {"type": "string", "enum": ["local", "hibp"]},
            "count": {"type": "integer", "minimum": 0},
            "breaches": {"type": "array", "items": {"type": "string"}},
            "error": {"type": ["string", "null"]},
        },
        "required": ["source", "count", "breaches", "error"],
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    """A required JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_LIMITED = _json(_ERROR, "Too many requests for this key, or too many bad keys from this address")


def _check(field: str, result: dict[str, Any], scope: str) -> dict[str, Any]:
    value: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 1024}
    if field == "email":
        value["format"] = "email"  # the code's own check decides: a 400 if it disagrees
    return {
        "post": {
            "summary": f"Check a {field} against every configured breach source",
            "description": f"Needs an API key whose role grants `{scope}`.",
            "security": [{"bearer": []}],
            "requestBody": _body(
                {
                    "type": "object",
                    "properties": {field: value},
                    "required": [field],
                }
            ),
            "responses": {
                "200": _json(result, "The check's answer"),
                "400": _json(_ERROR, "The body is not what was expected; `field` names it"),
                "401": _json(_DENIED, "No key, or an invalid or revoked one"),
                "403": _json(_DENIED, "The key's role does not grant this call"),
                "429": _LIMITED,
                "503": _json(result, "A source failed and the policy is fail_closed"),
            },
        }
    }


def _ceremony(summary: str, *, body: bool, result: dict[str, Any]) -> dict[str, Any]:
    """The browser's WebAuthn calls: signed-in (or half-signed-in) session cookie + CSRF header."""
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"session": []}],
        "parameters": [
            {"name": "X-CSRFToken", "in": "header", "required": True, "schema": {"type": "string"}}
        ],
        "responses": {
            "200": _json(result, "The next step of the ceremony"),
            "400": _json(_ERROR, "Rejected: the message says why"),
            "401": _json(_ERROR, "No session (or the sign-in took too long)"),
            "429": _json(_ERROR, "Too many attempts"),
        },
    }
    if body:
        op["requestBody"] = _body(
            {
                "type": "object",
                "properties": {
                    "credential": {"type": "object"},
                    "name": {"type": "string", "maxLength": 100},
                },
                "required": ["credential"],
            }
        )
    return {"post": op}


_OPTIONS = {"type": "object", "description": "PublicKeyCredential options, base64url fields"}

_DECISION = {
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
_IP = {
    "type": "string",
    "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}],
    "description": "The address the person signs in from (anything else is a 400)",
}
_CONTINUATION = {"type": "string", "minLength": 1, "maxLength": 200}


def _hook(
    summary: str,
    properties: dict[str, Any],
    required: list[str],
    ok: Any,
    one_of: list[dict[str, Any]] | None = None,
) -> Any:
    body: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if one_of:
        body["oneOf"] = one_of
    return {
        "post": {
            "summary": summary,
            "description": "Needs an API key whose role grants `hook`.",
            "security": [{"bearer": []}],
            "requestBody": _body(body),
            "responses": {
                "200": ok,
                "400": _json(_ERROR, "The body is not what was expected; `field` names it"),
                "401": _json(_DENIED, "No key, or an invalid or revoked one"),
                "403": _json(_DENIED, "The key's role does not grant hook"),
                "429": _json(_ERROR, "Too many attempts for this key or this address"),
            },
        }
    }


HOOK_PATHS: dict[str, Any] = {
    "/api/v1/hook/login": _hook(
        "May this person in? allow, mfa_required, enroll_required, reset_required or deny",
        {
            "email": {"type": "string", "minLength": 1, "maxLength": 320},
            "password": {"type": "string", "minLength": 1, "maxLength": 1024},
            "ip": _IP,
            "user_agent": {"type": "string", "maxLength": 512},
        },
        ["email", "password", "ip"],
        _json(_DECISION, "The decision (every decision is a 200)"),
    ),
    "/api/v1/hook/mfa": _hook(
        "The second step: a TOTP code, a recovery code or a WebAuthn assertion",
        {
            "continuation": _CONTINUATION,
            "ip": _IP,
            "code": {"type": "string", "minLength": 1, "maxLength": 64},
            "webauthn": {"type": "object", "description": "The PublicKeyCredential as JSON"},
        },
        ["continuation", "ip"],
        _json(_DECISION, "allow or deny"),
        one_of=[{"required": ["code"]}, {"required": ["webauthn"]}],
    ),
    "/api/v1/hook/mfa/webauthn/options": _hook(
        "Options for navigator.credentials.get() for this sign-in",
        {"continuation": _CONTINUATION},
        ["continuation"],
        _json(_OPTIONS, "PublicKeyCredentialRequestOptions"),
    ),
}

_HEX = "^[0-9A-Fa-f]{%d}$"
_HIBP_NOTIFY = {
    "post": {
        "summary": "HIBP's breach notification callback (the push model)",
        "description": "Authenticated by the bearer token agreed with HIBP (HIBP_NOTIFY_TOKEN), "
        "not an API key. Records an e-mail-in-breach finding for each account whose "
        "e-mail digest is hashPrefix + one of hashSuffixes, then applies the finding "
        "policy. Idempotent: a repeated notification records nothing new.",
        "security": [{"bearer": []}],
        "requestBody": _body(
            {
                "type": "object",
                "properties": {
                    "breachName": {"type": "string", "minLength": 1, "maxLength": 200},
                    "hashPrefix": {"type": "string", "pattern": _HEX % 6},
                    "hashSuffixes": {
                        "type": "array",
                        "items": {"type": "string", "pattern": _HEX % 34},
                        "maxItems": 1000,
                    },
                },
                "required": ["breachName", "hashPrefix", "hashSuffixes"],
            }
        ),
        "responses": {
            "200": _json(
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
            "400": _json(_ERROR, "A field is missing or malformed; `field` names it"),
            "401": _json(_ERROR, "No bearer token, or a wrong one"),
            "413": _json(_ERROR, "The body is larger than 64 KiB"),
            "429": _LIMITED,
            "503": _json(_ERROR, "Notifications are off: no HIBP_NOTIFY_TOKEN is configured"),
        },
    }
}


SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "breachguard", "version": "1"},
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "bg_session"},
        }
    },
    "paths": {
        "/api/v1/check/password": _check(
            "password",
            {
                "type": "object",
                "properties": {
                    "pwned": {"type": "boolean"},
                    "count": {"type": "integer", "minimum": 0},
                    "sources": _SOURCES,
                    "failed": {"type": "boolean"},
                },
                "required": ["pwned", "count", "sources", "failed"],
            },
            "check:password",
        ),
        "/api/v1/check/email": _check(
            "email",
            {
                "type": "object",
                "properties": {
                    "breached": {"type": "boolean"},
                    "breaches": {"type": "array", "items": {"type": "string"}},
                    "sources": _SOURCES,
                    "failed": {"type": "boolean"},
                },
                "required": ["breached", "breaches", "sources", "failed"],
            },
            "check:email",
        ),
        "/api/v1/mfa/webauthn/register/options": _ceremony(
            "Start adding a security key or passkey", body=False, result=_OPTIONS
        ),
        "/api/v1/mfa/webauthn/register/verify": _ceremony(
            "Finish adding it; the first factor also returns ten recovery codes",
            body=True,
            result={
                "type": "object",
                "properties": {
                    "ok": {"type": "boolean"},
                    "factor": {"type": "integer"},
                    "name": {"type": "string"},
                    "recovery_codes": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["ok", "factor", "name", "recovery_codes"],
            },
        ),
        "/api/v1/mfa/webauthn/authenticate/options": _ceremony(
            "Second step of a sign-in: ask for an assertion", body=False, result=_OPTIONS
        ),
        "/api/v1/mfa/webauthn/authenticate/verify": _ceremony(
            "Second step of a sign-in: check the assertion and open the session",
            body=True,
            result={
                "type": "object",
                "properties": {"ok": {"type": "boolean"}, "redirect": {"type": "string"}},
                "required": ["ok", "redirect"],
            },
        ),
        "/api/v1/resets": {
            "post": {
                "summary": "Force password resets (security or admin key)",
                "security": [{"bearer": []}],
                "requestBody": _body(
                    {
                        "type": "object",
                        "properties": {
                            "emails": {"type": "array", "items": {"type": "string"}},
                            "from_scan": {"type": "boolean"},
                            "kinds": {"type": "array", "items": {"type": "string"}},
                            "reason": {"type": "string"},
                            "dry_run": {"type": "boolean"},
                        },
                    }
                ),
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "job": {"type": ["integer", "null"]},
                                "dry_run": {"type": "boolean"},
                                "summary": {"type": "object"},
                                "accounts": {"type": "array", "items": {"type": "object"}},
                            },
                            "required": ["job", "dry_run", "summary", "accounts"],
                        },
                        "What was done (or would be, in a dry run), per account",
                    ),
                    "400": _json(_ERROR, "Bad input; `field` names it"),
                    "401": _json(_DENIED, "No key, or an invalid or revoked one"),
                    "403": _json(_DENIED, "The key's role does not grant reset"),
                    "429": _LIMITED,
                },
            }
        },
        **HOOK_PATHS,
        "/api/v1/audit": {
            "get": {
                "summary": "The audit trail, oldest first (security or admin key)",
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "after",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "maximum": SEQ_MAX},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 5000},
                    },
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "events": {"type": "array", "items": {"type": "object"}},
                                "next_after": {"type": ["integer", "null"]},
                            },
                            "required": ["events", "next_after"],
                        },
                        "A page of events; next_after is the cursor for the next page",
                    ),
                    "400": _json(_ERROR, "after or limit is not a number in range"),
                    "401": _json(_DENIED, "No key, or an invalid or revoked one"),
                    "403": _json(_DENIED, "The key's role does not grant audit"),
                    "429": _LIMITED,
                },
            }
        },
        "/api/v1/hibp/notify": _HIBP_NOTIFY,
        "/range/{prefix}": {
            "get": {
                "summary": "Pwned Passwords range (HIBP-compatible, from the local corpus)",
                "parameters": [
                    {
                        "name": "prefix",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9A-Fa-f]{5}$"},
                    },
                    {"name": "Add-Padding", "in": "header", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "SUFFIX:COUNT lines joined by CRLF",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "400": {"description": "The prefix is not 5 hexadecimal characters"},
                },
            }
        },
        "/api/v3/breachedaccount/range/{prefix}": {
            "get": {
                "summary": "HIBP e-mail range search (security role)",
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "prefix",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9A-Fa-f]{6}$"},
                    }
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "hashSuffix": {"type": "string"},
                                    "websites": {"type": "array", "items": {"type": "string"}},
                                },
                                "required": ["hashSuffix", "websites"],
                            },
                        },
                        "Digests under the prefix and the breaches they appear in",
                    ),
                    "400": {"description": "The prefix is not 6 hexadecimal characters"},
                    "401": _json(_DENIED, "No key, or an invalid one"),
                    "403": _json(_DENIED, "The key's role does not grant range:email"),
                    "404": {"description": "No breached e-mail under this prefix"},
                    "429": _json(_ERROR, "Too many bad keys from this address"),
                },
            }
        },
    },
}
