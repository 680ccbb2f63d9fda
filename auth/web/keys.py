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


def presented_key() -> apikeys.Caller | None:
    """The active key this request presents, or None: checked once per request (the rate
    limiter asks before the view does)."""
    if "presented_key" not in g:
        token = presented_token()
        db = services().db
        g.presented_key = None if token is None else apikeys.authenticate(db, token, now=utcnow())
    key: apikeys.Caller | None = g.presented_key
    return key


def holds_a_valid_key() -> bool:
    """Exempts a request from its address's budget of wrong keys: anyone's bad guesses
    from a shared address (a NAT, the portal itself) must not shut out a valid key."""
    return presented_key() is not None


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
            if presented_token() is None:
                return _deny(
                    401, "Access denied: an API key is required (Authorization: Bearer …)."
                )
            key = presented_key()
            refusal = _refusal(key, scope)
            if refusal is not None:
                return refusal
            g.api_key = key
            return view(*args, **kwargs)

        wrapper.required_scope = scope  # type: ignore[attr-defined]  # read by the role tests
        return wrapper  # type: ignore[return-value]

    return decorate
