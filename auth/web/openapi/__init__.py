"""The OpenAPI description of /api/v1 and the HIBP-compatible ranges."""

from __future__ import annotations

from typing import Any

from auth.models import FindingKind
from auth.web.openapi.activity import ACTIVITY_PATH
from auth.web.openapi.hook import HIBP_NOTIFY, HOOK_PATHS, OPTIONS
from auth.web.openapi.schemas import (
    DENIED,
    ERROR,
    LIMITED,
    NO_CONTROL,
    REASON_MAX,
    SEQ_MAX,
    ceremony_path,
    check_path,
    json_body,
    json_response,
)

__all__ = ["REASON_MAX", "SEQ_MAX", "SPEC"]

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
        "/api/v1/check/password": check_path(
            "password",
            {
                "pwned": {"type": "boolean", "description": "seen by a source that answered"},
                "count": {"type": "integer", "minimum": 0},
            },
            "check:password",
        ),
        "/api/v1/check/email": check_path(
            "email",
            {
                "breached": {"type": "boolean", "description": "seen by a source that answered"},
                "breaches": {"type": "array", "items": {"type": "string"}},
            },
            "check:email",
        ),
        "/api/v1/mfa/webauthn/register/options": ceremony_path(
            "Start adding a security key or passkey", body=False, result=OPTIONS
        ),
        "/api/v1/mfa/webauthn/register/verify": ceremony_path(
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
        "/api/v1/mfa/webauthn/authenticate/options": ceremony_path(
            "Second step of a sign-in: ask for an assertion", body=False, result=OPTIONS
        ),
        "/api/v1/mfa/webauthn/authenticate/verify": ceremony_path(
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
                "requestBody": json_body(
                    {
                        "type": "object",
                        "properties": {
                            "emails": {
                                "type": "array",
                                "items": {"type": "string", "format": "email", "maxLength": 320},
                                "minItems": 1,
                            },
                            "from_scan": {"const": True},
                            "kinds": {
                                "type": "array",
                                "items": {"enum": [str(k) for k in FindingKind]},
                            },
                            "reason": {
                                "type": "string",
                                "maxLength": REASON_MAX,
                                "pattern": NO_CONTROL,
                            },
                            "dry_run": {"type": "boolean"},
                        },
                        "oneOf": [{"required": ["emails"]}, {"required": ["from_scan"]}],
                    }
                ),
                "responses": {
                    "200": json_response(
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
                    "400": json_response(ERROR, "Bad input; `field` names it"),
                    "401": json_response(DENIED, "No key, or an invalid or revoked one"),
                    "403": json_response(DENIED, "The key's role does not grant reset"),
                    "429": LIMITED,
                },
            }
        },
        **HOOK_PATHS,
        "/api/v1/activity": ACTIVITY_PATH,
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
                    "200": json_response(
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
                    "400": json_response(ERROR, "after or limit is not a number in range"),
                    "401": json_response(DENIED, "No key, or an invalid or revoked one"),
                    "403": json_response(DENIED, "The key's role does not grant audit"),
                    "429": LIMITED,
                },
            }
        },
        "/api/v1/hibp/notify": HIBP_NOTIFY,
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
                        "description": "SUFFIX:COUNT lines joined by CRLF (ETag, "
                        "Last-Modified; gzip or brotli when asked)",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "304": {"description": "Not modified (If-None-Match, If-Modified-Since)"},
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
                    "200": json_response(
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
                    "401": json_response(DENIED, "No key, or an invalid one"),
                    "403": json_response(DENIED, "The key's role does not grant range:email"),
                    "404": {"description": "No breached e-mail under this prefix"},
                    "429": json_response(
                        DENIED,
                        "Too many bad keys from this address, as HIBP answers it (and Retry-After)",
                    ),
                },
            }
        },
    },
}
