"""API-key authentication for routes: `@require("scope")`."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Response, current_app, g, jsonify, request
from sqlalchemy import Connection

from auth import apikeys
from auth.models import utcnow
from auth.prepared import Read
from auth.signin import Gate
from auth.web.context import services

F = TypeVar("F", bound=Callable[..., Any])


def presented_token() -> str | None:
    """The key from `Authorization: Bearer …`, or HIBP's `hibp-api-key` header."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.headers.get("hibp-api-key") or None


def presented_key_id() -> str:
    """The id part of the presented key (`bg_<id>_<secret>`), not yet checked."""
    parts = (presented_token() or "").split("_", 2)
    return parts[1] if len(parts) == 3 else ""


def _deny(status: int, message: str) -> Response:
    response = jsonify({"statusCode": status, "message": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="breachguard"'
    return response


def current_key() -> apikeys.Caller | None:
    key: apikeys.Caller | None = g.get("api_key")
    return key


class _Refused(Exception):
    """A gate's key was refused: the answer to send instead of the view's."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _refusal(key: apikeys.Caller | None, scope: str) -> Response | None:
    if key is None:
        return _deny(401, "Access denied: the API key is invalid or revoked.")
    if not apikeys.allows(key.role, scope):
        return _deny(403, f"Forbidden: the {key.role} role cannot use {scope}.")
    return None


def _authenticate(token: str, scope: str) -> Response | None:
    """Check the key in its own round trip: None when it may call, else the refusal."""
    # The transaction commits the last-used mark when one is due; on PostgreSQL the
    # reader autocommits and no BEGIN or COMMIT is sent.
    with services().db.reader() as conn, conn.begin():
        key = apikeys.authenticate(conn, token, now=utcnow())
    refusal = _refusal(key, scope)
    if refusal is None:
        g.api_key = key
    return refusal


# Keys a gate admitted in the last second, by the SHA-256 of the token (never the token)
# and scope, per app: what a remembered refusal settles for (see Gate.admitted_lately).
RECENT = "breachguard.recent_keys"
RECENT_SECONDS = 1.0


def _gate(token: str, scope: str, read: Read) -> Gate:
    recent: dict[tuple[bytes, str], tuple[float, apikeys.Caller]]
    recent = current_app.extensions.setdefault(RECENT, {})
    mark = (hashlib.sha256(token.encode()).digest(), scope)

    def admit(conn: Connection, rows: list[Any]) -> None:
        key = apikeys.admit(conn, token, rows, now=utcnow())
        refusal = _refusal(key, scope)
        if refusal is not None:
            raise _Refused(refusal)
        assert key is not None  # _refusal refuses a missing key
        g.api_key = key
        recent[mark] = (time.monotonic() + RECENT_SECONDS, key)  # an entry per key, not call

    def admitted_lately() -> bool:
        entry = recent.get(mark)
        if entry is None or entry[0] < time.monotonic():
            return False
        g.api_key = entry[1]
        return True

    return Gate(read, admit, admitted_lately)


def require(scope: str, *, gate: bool = False) -> Callable[[F], F]:
    """Admit a request only with an active key whose role grants `scope`.

    gate=True (the login hook): the view gets `gate`, to hand to SignIn.login, which looks
    the key up with the sign-in's own reads (one round trip fewer per sign-in) and checks
    it before hashing or writing anything. Such a view must do nothing but check its input
    before that; when it answers without having passed the gate (a malformed request), the
    key is checked here before its answer goes out, so a bad key still gets 401 first.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = presented_token()
            if token is None:
                return _deny(
                    401, "Access denied: an API key is required (Authorization: Bearer …)."
                )
            read = apikeys.lookup(token, now=utcnow()) if gate else None
            if read is None:  # no gate, or a malformed token: checked (refused) here
                refusal = _authenticate(token, scope)
                return refusal if refusal is not None else view(*args, **kwargs)
            try:
                answer = view(*args, gate=_gate(token, scope, read), **kwargs)
            except _Refused as refused:
                return refused.response
            if current_key() is None:  # answered before the gate: check the key now
                return _authenticate(token, scope) or answer
            return answer

        wrapper.required_scope = scope  # type: ignore[attr-defined]  # read by the role tests
        return wrapper  # type: ignore[return-value]

    return decorate
