"""What the OpenAPI paths share: error bodies, the check endpoints, the ceremonies."""

from __future__ import annotations

from typing import Any

SEQ_MAX = 2**63 - 1  # audit cursors are SQL BIGINTs
# Free text refuses control characters, except those it reads as spaces (auth/errors.py).
NO_CONTROL = "^[^\\x00-\\x08\\x0e-\\x1b\\x7f-\\x84\\x86-\\x9f]*$"
REASON_MAX = 500  # characters of a reset's reason: it goes into every notice

ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
    "required": ["error"],
}
DENIED = {
    "type": "object",
    "properties": {"statusCode": {"type": "integer"}, "message": {"type": "string"}},
    "required": ["statusCode", "message"],
}
SOURCES = {
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


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """A required JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


LIMITED = json_response(
    ERROR, "Too many requests for this key, or too many bad keys from this address"
)


def check_result(answer: dict[str, Any], *, failed: bool) -> dict[str, Any]:
    """A check's answer: its own fields, then the status every check has. A check that a
    source could not complete is `failed` (503), whatever BREACH_FAILURE_POLICY is."""
    statuses = ["failed"] if failed else ["exposed", "not_found"]
    return {
        "type": "object",
        "properties": {
            **answer,
            "status": {"type": "string", "enum": statuses},
            "sources": SOURCES,
            "failed": {
                "type": "boolean",
                "enum": [failed],
                "description": "`status` is `failed`: a source could not answer, none saw it",
            },
        },
        "required": [*answer, "status", "sources", "failed"],
    }


def check_path(field: str, answer: dict[str, Any], scope: str) -> dict[str, Any]:
    value: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 1024}
    if field == "email":
        value["format"] = "email"  # the code's own check decides: a 400 if it disagrees
    return {
        "post": {
            "summary": f"Check a {field} against every configured breach source",
            "description": (
                f"Needs an API key whose role grants `{scope}`. `status` is `exposed` "
                "(a source saw it; a source that failed is still listed in `sources`), "
                "`not_found` (every source answered) or `failed` (none saw it and a source "
                "could not answer: 503, under either BREACH_FAILURE_POLICY)."
            ),
            "security": [{"bearer": []}],
            "requestBody": json_body(
                {
                    "type": "object",
                    "properties": {field: value},
                    "required": [field],
                }
            ),
            "responses": {
                "200": json_response(
                    check_result(answer, failed=False), "Every source answered, or one saw it"
                ),
                "400": json_response(ERROR, "The body is not what was expected; `field` names it"),
                "401": json_response(DENIED, "No key, or an invalid or revoked one"),
                "403": json_response(DENIED, "The key's role does not grant this call"),
                "429": LIMITED,
                "503": json_response(
                    check_result(answer, failed=True),
                    "No source saw it and one could not answer (its error is in `sources`)",
                ),
            },
        }
    }


def ceremony_path(summary: str, *, body: bool, result: dict[str, Any]) -> dict[str, Any]:
    """The browser's WebAuthn calls: signed-in (or half-signed-in) session cookie + CSRF header."""
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"session": []}],
        "parameters": [
            {"name": "X-CSRFToken", "in": "header", "required": True, "schema": {"type": "string"}}
        ],
        "responses": {
            "200": json_response(result, "The next step of the ceremony"),
            "400": json_response(ERROR, "Rejected: the message says why"),
            "401": json_response(ERROR, "No session (or the sign-in took too long)"),
            "403": json_response(ERROR, "The X-CSRFToken header is missing or wrong"),
            "429": json_response(ERROR, "Too many attempts"),
        },
    }
    if body:
        op["requestBody"] = json_body(
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
