"""The JSON API's conventions, for every route under /api/: a body is parsed strictly
before any other work, and every error answers in JSON (404, 405, 413 and 500 included).

Strict means: UTF-8, standard JSON (no NaN or Infinity), nested at most MAX_DEPTH deep,
and no lone surrogate in any string (`"\\ud800"` parses in Python, then fails wherever the
text is encoded: a 500 that anyone could trigger before the API key is even read).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Request, Response, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, InternalServerError

PREFIX = "/api/"
MAX_DEPTH = 32


class MalformedJSON(ValueError):
    """A body that is not the strict JSON the API takes; the message says why."""


def loads(text: str | bytes) -> Any:
    """Parse strictly, or raise MalformedJSON."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJSON(f"not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise MalformedJSON(f"nested deeper than {MAX_DEPTH} levels") from None
    except MalformedJSON:
        raise
    except ValueError as exc:
        raise MalformedJSON(str(exc)) from None
    _check(value)
    return value


def _no_constant(name: str) -> Any:
    raise MalformedJSON(f"{name} is not JSON")


def _check(value: Any) -> None:
    """Depth and string validity, without recursion."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _text(item)
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise MalformedJSON(f"nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for key in item:
                    _text(key)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)


def _text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedJSON("a string holds a lone surrogate (\\ud800-\\udfff)") from None


class StrictProvider(DefaultJSONProvider):
    """Flask's JSON provider, reading with loads() above (request.get_json uses it)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


class StrictRequest(Request):
    """A body loads() refused raises its MalformedJSON, whose message says why, rather than
    Flask's generic BadRequest."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if isinstance(e, MalformedJSON):
            raise e
        return super().on_json_loading_failed(e)


def _error(status: int, message: str, *, field: str | None = None) -> Response:
    """The API's error body: {"error": ...}, and the field at fault when there is one."""
    response = jsonify({"error": message} | ({"field": field} if field else {}))
    response.status_code = status
    return response


def init_app(app: Flask) -> None:
    """Strict bodies and JSON errors under PREFIX; the rest of the site is left alone."""
    app.json = StrictProvider(app)
    app.request_class = StrictRequest

    @app.before_request
    def parse_body() -> Response | None:
        if not request.path.startswith(PREFIX) or not request.is_json:
            return None
        if request.get_data(cache=True):
            try:
                request.get_json()  # parsed once: the view's get_json() has it cached
            except MalformedJSON as exc:
                return _error(400, f"malformed JSON body: {exc}", field="body")
        return None

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return error_response(exc) if request.path.startswith(PREFIX) else exc

    @app.errorhandler(InternalServerError)
    def server_error(exc: InternalServerError) -> Any:
        return error_response(exc) if request.path.startswith(PREFIX) else exc


def error_response(exc: HTTPException) -> Response:
    """An HTTP error as the API answers it: JSON, and never the text of an exception of
    ours (a 500 says only that it was logged). The pages' handlers call it for PREFIX."""
    if isinstance(exc, InternalServerError):
        return _error(500, "internal error: it was logged; try again later")
    response = _error(exc.code or 500, exc.description or exc.name)
    for name, value in exc.get_headers():  # Allow on a 405, Retry-After, ...
        if name.lower() != "content-type":
            response.headers[name] = value
    return response
