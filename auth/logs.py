"""Logs a machine can read: one JSON object per line (LOG_FORMAT=json) or plain text, each
line carrying the id of the request it came from, and one access line per request.

The request id comes from the caller's X-Request-ID when it is a plain token (so a load
balancer's id follows the request through), or is made here; it is echoed in the
response. The access line names the route (`/reset/<token>`, never the token itself), not
the raw path, and never the query string: links and keys must not end up in log files.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # the CLI logs too, and need not import Flask to start
    from flask import Flask, Response

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_RESET_LINK = re.compile(r"/reset/[^/?#\s\"]+")
_ROUTE = "breachguard.route"

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
access_log = logging.getLogger("breachguard.access")

# Attributes every LogRecord has: anything else on a record came from `extra=` and is a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
}


def current_request_id() -> str | None:
    return _request_id.get()


def accept_request_id(raw: str | None) -> str:
    """The caller's id if it is a plain token of at most 64 characters, else a new one."""
    if raw and _VALID_ID.match(raw):
        return raw
    return secrets.token_hex(8)


def redact_path(path: str) -> str:
    return _RESET_LINK.sub("/reset/[redacted]", path)


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, request_id, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or _request_id.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class RedactResetLinks(logging.Filter):
    """Rewrites any line holding a reset link (gunicorn's debug lines name each request's
    path): a live link in a log file is a live key."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/reset/" in message:
            record.msg, record.args = redact_path(message), ()
        return True


REDACT_RESET_LINKS = RedactResetLinks()


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        current = _request_id.get()
        if current is not None and getattr(record, "request_id", None) is None:
            record.request_id = current
        return True


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is now (test runners swap it), like logging's
    last-resort handler."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT, defaults={"request_id": "-"})


def configure(log_format: str, level: str) -> None:
    """The root logger writes to stderr in `log_format`; called again, it only updates."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_breachguard", False)), None)
    if handler is None:
        handler = _Stderr()
        handler._breachguard = True  # type: ignore[attr-defined]
        handler.addFilter(_RequestIdFilter())
        handler.addFilter(REDACT_RESET_LINKS)
        root.addHandler(handler)
    handler.setFormatter(formatter(log_format))
    root.setLevel(level.upper())
    # At DEBUG, urllib3 logs each request's path, and a webhook's path may be its secret.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, root.level))


def configure_cli(log_format: str, level: str) -> None:
    """Commands print their own report, so their logs show warnings and errors only,
    unless the level asked for is DEBUG (a person looking into a problem)."""
    asked = logging.getLevelName(level.upper())
    asked = asked if isinstance(asked, int) else logging.INFO
    chosen = asked if asked <= logging.DEBUG else max(asked, logging.WARNING)
    configure(log_format, logging.getLevelName(chosen))


StartResponse = Callable[..., Any]
Wsgi = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class RequestLog:
    """WSGI middleware: the request id for every log line of the request, echoed in
    X-Request-ID, and one access line when the response starts."""

    def __init__(self, app: Wsgi) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request_id = accept_request_id(environ.get("HTTP_X_REQUEST_ID"))
        token = _request_id.set(request_id)
        started = time.perf_counter()
        status: list[str] = []

        def respond(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[:] = [code]
            headers = [(k, v) for k, v in headers if k.lower() != REQUEST_ID_HEADER.lower()]
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(code, headers, exc_info)

        try:
            return self.app(environ, respond)
        finally:
            _access(environ, status[0] if status else "500", time.perf_counter() - started)
            _request_id.reset(token)


def _access(environ: dict[str, Any], status: str, seconds: float) -> None:
    method = environ.get("REQUEST_METHOD", "")
    path = environ.get(_ROUTE) or redact_path(environ.get("PATH_INFO", ""))[:200]
    code = int(status.split(" ", 1)[0]) if status[:3].isdigit() else 0
    remote = environ.get("REMOTE_ADDR", "")
    ms = round(seconds * 1000, 1)
    access_log.info(
        "%s %s %s %sms %s",
        method,
        path,
        code,
        ms,
        remote,
        extra={"method": method, "path": path, "status": code, "duration_ms": ms, "remote": remote},
    )


def init_app(app: Flask, *, log_format: str, level: str) -> None:
    """Logging for the app: the root logger's format, the request id, the access line."""
    from flask import request

    configure(log_format, level)

    @app.after_request
    def remember_route(response: Response) -> Response:
        # The matched rule, e.g. /reset/<token>: the access line never shows the token.
        if request.url_rule is not None:
            request.environ[_ROUTE] = request.url_rule.rule
        return response

    app.wsgi_app = RequestLog(app.wsgi_app)  # type: ignore[method-assign]
