"""The database down: JSON endpoints answer 503 with Retry-After and a JSON body, pages a
short "try again" page, one log line per kind of failure (no traceback per request), and
/metrics says database_up 1 on the first scrape after the database is back.

PostgreSQL is reached through a loopback TCP relay that the test cuts and restores; on
SQLite, a database opened read-only stands in for a disk that refuses writes."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.engine import make_url

from auth import apikeys, audit
from auth.config import Settings
from auth.models import utcnow
from auth.services import Services, build
from auth.web import outage
from auth.web.factory import create_app
from tests.tcp_relay import Relay
from tests.test_pages_mfa import csrf

UNAVAILABLE = "database unavailable"


def hook_key(registry: Services) -> str:
    with registry.db.session() as s:
        return apikeys.create(
            s, role="hook", name="portal", actor=audit.Actor.cli("t"), now=utcnow()
        ).token


def hook_login(web: Flask, key: str) -> tuple[int, dict[str, object], str | None]:
    answer = web.test_client().post(
        "/api/v1/hook/login",
        json={"email": "nobody@example.fr", "password": "x", "ip": "192.0.2.9"},
        headers={"Authorization": f"Bearer {key}"},
    )
    return answer.status_code, answer.json or {}, answer.headers.get("Retry-After")


def database_up(web: Flask) -> str:
    text = web.test_client().get("/metrics").get_data(as_text=True)
    [line] = [ln for ln in text.splitlines() if ln.startswith("breachguard_database_up ")]
    return line.split()[1]


@pytest.fixture
def relay(settings: Settings) -> Iterator[Relay]:
    url = make_url(settings.database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("the relay stands between the service and PostgreSQL (TEST_DATABASE_URL)")
    cut = Relay(url.host or "127.0.0.1", url.port or 5432)
    yield cut
    cut.close()


def test_postgresql_cut_then_back(
    settings: Settings, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    url = make_url(settings.database_url).set(host="127.0.0.1", port=relay.port)
    registry = build(
        dataclasses.replace(
            settings,
            database_url=url.render_as_string(hide_password=False),
            login_rate_limit="1000 per minute",
        )
    )
    web = create_app(registry=registry)
    key = hook_key(registry)
    assert hook_login(web, key)[0] == 200
    caplog.set_level(logging.INFO)

    relay.cut()
    answers = [hook_login(web, key) for _ in range(5)]
    assert {status for status, _, _ in answers} == {503}
    # Retry-After: at least the outage's; the rate limiter may push it to its own reset
    assert all(int(retry or 0) >= outage.RETRY_AFTER for _, _, retry in answers)
    assert all("try again" in str(body["error"]) for _, body, _ in answers)
    client = web.test_client()
    page = client.post(
        "/login",
        data={"email": "x@example.fr", "password": "wrong", "csrf_token": csrf(client)},
    )
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "try again in a moment" in page.get_data(as_text=True)
    assert int(page.headers["Retry-After"]) >= outage.RETRY_AFTER
    assert float(database_up(web)) == 0
    ready = web.test_client().get("/readyz")
    redis = "up" if settings.redis_url else "not used"
    assert ready.status_code == 503 and ready.json == {"database": "down", "redis": redis}
    lines = [r for r in caplog.records if UNAVAILABLE in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].exc_info is None  # one line, no traceback
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    relay.restore()
    assert float(database_up(web)) == 1  # the first scrape after the recovery
    ready = web.test_client().get("/readyz")
    assert ready.status_code == 200 and ready.json == {"database": "up", "redis": redis}
    assert hook_login(web, key)[0] == 200
    registry.close()


def test_a_sqlite_database_that_refuses_writes_answers_503(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite":
        pytest.skip("SQLite only")
    writable = build(settings)
    key = hook_key(writable)
    writable.close()
    path = Path(url.database or "")
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    registry = build(dataclasses.replace(settings, database_url=read_only))
    web = create_app(registry=registry)
    caplog.set_level(logging.INFO)

    status, body, retry = hook_login(web, key)

    assert status == 503 and "try again" in str(body["error"])
    assert int(retry or 0) >= outage.RETRY_AFTER
    assert [r.getMessage() for r in caplog.records if UNAVAILABLE in r.getMessage()]
    registry.close()


def test_a_command_whose_database_does_not_answer_is_one_line_exit_2(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "BREACHGUARD_INSTANCE": str(tmp_path),
        "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{port}/gone",
        "SECRET_KEY": "k" * 40,
    }
    result = subprocess.run(
        [sys.executable, "-c", "from auth.cli import main; main()", "apikey", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and f"127.0.0.1:{port}/gone" in lines[0], lines
    assert "Traceback" not in result.stderr
