"""Redis down: sign-ins and hook calls go on with the same limits counted in memory, one
warning per outage (no traceback per request), /metrics says so, /readyz answers 503
naming Redis, and the limiter goes back to Redis once it answers again. Redis here is a
real redis-server on a loopback port that the test starts and stops."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from flask import Flask

from auth import apikeys, audit
from auth.config import Settings
from auth.models import utcnow
from auth.services import Services, build
from auth.web.factory import create_app
from tests.test_pages_mfa import csrf

FALLBACK = "falling back to in-memory storage"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *("redis-server", "--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    server = RedisServer(free_port())
    yield server
    server.stop()


@pytest.fixture
def site(settings: Settings, redis_server: RedisServer) -> Iterator[Services]:
    registry = build(
        dataclasses.replace(
            settings,
            redis_url=f"redis://127.0.0.1:{redis_server.port}/0",
            login_rate_limit="3 per minute",
        )
    )
    yield registry
    registry.close()


@pytest.fixture
def web(site: Services) -> Flask:
    return create_app(registry=site)


def wrong_sign_ins(web: Flask, n: int) -> list[int]:
    client = web.test_client()
    token = csrf(client)
    data = {"email": "x@example.fr", "password": "wrong", "csrf_token": token}
    return [client.post("/login", data=data).status_code for _ in range(n)]


def test_with_redis_down_the_limits_hold_in_memory_with_one_warning(
    web: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert wrong_sign_ins(web, 4) == [401, 401, 401, 429]  # nobody listens on the port
    warnings = [r for r in caplog.records if FALLBACK in r.getMessage()]
    assert len(warnings) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_hook_keeps_answering_with_redis_down(web: Flask, site: Services) -> None:
    with site.db.session() as s:
        key = apikeys.create(
            s, role="hook", name="portal", actor=audit.Actor.cli("t"), now=utcnow()
        ).token
    answer = web.test_client().post(
        "/api/v1/hook/login",
        json={"email": "nobody@example.fr", "password": "x", "ip": "192.0.2.7"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200 and answer.json["decision"] == "deny"


def test_metrics_say_whether_redis_answers_and_the_limiter_goes_back_to_it(
    web: Flask, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = web.test_client()
    assert "breachguard_redis_up 0.0" in client.get("/metrics").get_data(as_text=True)
    assert wrong_sign_ins(web, 1) == [401]  # counted in memory

    redis_server.start()
    assert "breachguard_redis_up 1.0" in client.get("/metrics").get_data(as_text=True)
    time.sleep(1.1)  # the limiter tries Redis again after a second, then less often
    wrong_sign_ins(web, 1)
    assert any("storage recovered" in r.getMessage() for r in caplog.records)
    keys = redis.Redis(port=redis_server.port).keys("*")
    assert keys, "the limits are counted in Redis again"


def test_readyz_is_503_naming_redis_while_the_configured_redis_is_down(
    web: Flask, redis_server: RedisServer
) -> None:
    """Each instance would count the limits alone: a load balancer should send the traffic
    to one whose Redis answers. /healthz (liveness) does not change."""
    client = web.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json == {"database": "up", "redis": "down"}
    assert ready.headers["Cache-Control"] == "no-store"
    assert client.get("/healthz").status_code == 200

    redis_server.start()
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json == {"database": "up", "redis": "up"}

    redis_server.stop()  # a Redis that goes away after answering
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
