"""What a request gets while the database does not answer: a 503 with Retry-After, in JSON
under /api/ or as a short page, and one log line per kind of failure a minute, not a
traceback per request (a flood of those would bury the line that says what is wrong)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flask import Flask, jsonify, render_template, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from auth.web import json_api

RETRY_AFTER = 5  # seconds, in the answer's Retry-After
LOG_EVERY = 60.0  # seconds between two lines about the same kind of failure
log = logging.getLogger(__name__)

_logged: dict[str, float] = {}
_logged_lock = threading.Lock()


def _log_once(exc: Exception) -> None:
    cause = getattr(exc, "orig", None) or exc
    kind = type(cause).__name__
    now = time.monotonic()
    with _logged_lock:
        if now - _logged.get(kind, -LOG_EVERY) < LOG_EVERY:
            return
        _logged[kind] = now
    first_line = (str(cause).strip().splitlines() or [""])[0][:300]
    log.warning(
        "database unavailable: %s: %s (answering 503; logged again after %.0f s if it lasts)",
        kind,
        first_line,
        LOG_EVERY,
        extra={"failure": kind},
    )


def init_app(app: Flask) -> None:
    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    def database_unavailable(exc: Exception) -> Any:
        _log_once(exc)
        if request.path.startswith(json_api.PREFIX):
            response = jsonify({"error": "the database does not answer: try again in a moment"})
        else:
            page = render_template(
                "base.html", error="The service is briefly unavailable: try again in a moment."
            )
            response = app.make_response(page)
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response
