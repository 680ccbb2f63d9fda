"""Structured logs: JSON lines with a request id (the caller's, when it is a plain token),
echoed in X-Request-ID; one access line per request naming the route, never a reset token
or a query string."""

from __future__ import annotations

import dataclasses
import json
import logging
import re

import pytest
from flask import Flask

from auth import logs
from auth.config import Settings
from auth.services import build
from auth.web.factory import create_app

TOKEN = "Zr3-secret-reset-token-value"


def _lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def _access(err: str) -> list[dict[str, object]]:
    return [e for e in _lines(err) if e["logger"] == "breachguard.access"]


@pytest.fixture
def web(app: Flask, capsys: pytest.CaptureFixture[str]) -> Flask:
    capsys.readouterr()  # what creating the app wrote
    return app


def test_a_json_line_has_the_fields_and_the_extras() -> None:
    record = logging.LogRecord("auth.x", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    record.account = 7
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["level"] == "WARNING" and entry["logger"] == "auth.x"
    assert entry["message"] == "hello you" and entry["account"] == 7
    assert entry["request_id"] is None and entry["time"].endswith("+00:00")


def test_a_plain_incoming_request_id_is_kept_and_echoed(
    web: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    response = web.test_client().get("/healthz", headers={"X-Request-ID": "lb-1234.abc_DEF"})
    assert response.headers["X-Request-ID"] == "lb-1234.abc_DEF"
    (line,) = _access(capsys.readouterr().err)
    assert line["request_id"] == "lb-1234.abc_DEF"


@pytest.mark.parametrize("bad", ["has space", "x" * 65, "<script>", "a\u00e9b", ""])
def test_an_unsafe_incoming_request_id_is_replaced(
    web: Flask, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    response = web.test_client().get("/healthz", headers={"X-Request-ID": bad})
    made = response.headers["X-Request-ID"]
    assert made != bad and re.fullmatch(r"[0-9a-f]{16}", made)
    assert _access(capsys.readouterr().err)[0]["request_id"] == made


def test_each_request_gets_its_own_id(web: Flask) -> None:
    client = web.test_client()
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3


def test_lines_logged_while_serving_carry_the_request_id(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    web = create_app(registry=build(dataclasses.replace(settings, ip_ban_after=1)))
    client = web.test_client()
    capsys.readouterr()
    page = client.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    for _ in range(2):  # the first wrong password bans the address; the second is refused
        answer = client.post(
            "/login",
            data={"email": "nobody@example.org", "password": "pw", "csrf_token": csrf},
            headers={"X-Request-ID": "req-two"},
        )
    assert answer.status_code in (200, 401, 403)
    refused = [e for e in _lines(capsys.readouterr().err) if "refused" in str(e["message"])]
    assert refused and all(e["request_id"] == "req-two" for e in refused)


def test_the_access_line_names_the_route_not_the_token_nor_the_query(
    web: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    web.test_client().get(
        f"/reset/{TOKEN}?next=/secret-query", environ_base={"REMOTE_ADDR": "192.0.2.4"}
    )
    err = capsys.readouterr().err
    assert TOKEN not in err and "secret-query" not in err
    (line,) = _access(err)
    assert line["method"] == "GET" and line["path"] == "/reset/<token>"
    assert line["status"] == 410 and line["remote"] == "192.0.2.4"
    assert isinstance(line["duration_ms"], float) and line["request_id"]


def test_an_unmatched_path_is_logged_with_any_reset_token_redacted(
    web: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    web.test_client().get(f"/reset/{TOKEN}/extra")
    err = capsys.readouterr().err
    assert TOKEN not in err
    assert _access(err)[0]["path"] == "/reset/[redacted]/extra"


def test_text_format_shows_the_request_id(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    web = create_app(registry=build(dataclasses.replace(settings, log_format="text")))
    try:
        capsys.readouterr()
        web.test_client().get("/healthz", headers={"X-Request-ID": "plain-7"})
        err = capsys.readouterr().err
        assert re.search(r"INFO breachguard\.access \[plain-7\] GET /healthz 200 ", err), err
    finally:
        logs.configure("json", "INFO")


def test_gunicorn_debug_lines_never_show_a_reset_token(capsys: pytest.CaptureFixture[str]) -> None:
    from gunicorn.config import Config

    from auth.web.server import RedactingLogger

    config = Config()
    config.set("loglevel", "debug")
    RedactingLogger(config).debug("%s %s", "POST", f"/reset/{TOKEN}")
    err = capsys.readouterr().err
    assert "POST /reset/[redacted]" in err and TOKEN not in err
