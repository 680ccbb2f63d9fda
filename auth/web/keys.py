"""API-key authentication for routes: `@require("scope")`."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Response, g, jsonify, request

from auth import apikeys
from auth.models import utcnow
from auth.web.context import services

F = TypeVar("F", bound=Callable[..., Any])


def presented_token() -> str | None:
    """The key from `Authorization: Bearer …`, or HIBP's `hibp-api-key` header."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.headers.get("hibp-api-key") or None


def _deny(status: int, message: str) -> Response:
    response = jsonify({"statusCode": status, "message": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="breachguard"'
    return response


def current_key() -> apikeys.Caller | None:
    key: apikeys.Caller | None = g.get("api_key")
    return key


def _refusal(key: apikeys.Caller | None, scope: str) -> Response | None:
    if key is None:
        return _deny(401, "Access denied: the API key is invalid or revoked.")
    if not apikeys.allows(key.role, scope):
        return _deny(403, f"Forbidden: the {key.role} role cannot use {scope}.")
    return None


def require(scope: str) -> Callable[[F], F]:
    """Admit a request only with an active key whose role grants `scope`; the view finds
    the key with current_key()."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = presented_token()
            if token is None:
                return _deny(
                    401, "Access denied: an API key is required (Authorization: Bearer …)."
                )
            key = apikeys.authenticate(services().db, token, now=utcnow())
            refusal = _refusal(key, scope)
            if refusal is not None:
                return refusal
            g.api_key = key
            return view(*args, **kwargs)

        wrapper.required_scope = scope  # type: ignore[attr-defined]  # read by the role tests
        return wrapper  # type: ignore[return-value]

    return decorate
