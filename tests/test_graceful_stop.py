"""Stopping `breachguard serve` with SIGTERM (systemd's stop, a deploy): a request in flight
gets its answer, the notice drain finishes the notices in hand and claims no more, no
lease is left held, and nothing goes twice: the next server (or `notices send`) delivers
the rest, each notice once.

Real servers on loopback: `breachguard serve` (gunicorn) as a child process, an aiosmtpd
server that takes its time over each message, and an HTTP server standing in for HIBP's
range API that holds its answer until the test lets it go."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import http.server
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from auth import apikeys, audit, notify
from auth.cli import main
from auth.models import Notice, utcnow
from auth.services import Services
from tests.helpers_server import ServeProcess, closed_port
from tests.test_notify import Smtp, _Collect, queue

RECIPIENTS = [f"pro{i}@example.org" for i in range(12)]


class _Slow(_Collect):
    """Holds each message before accepting it, and counts acceptances per recipient: a
    message counts once the server has decided to say 250, as a real MTA queues it."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.in_flight = 0
        self.accepted: collections.Counter[str] = collections.Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.in_flight += 1
        try:
            await asyncio.sleep(self.delay)
            reply = await super().handle_DATA(server, session, envelope)
            for address in envelope.rcpt_tos:
                self.accepted[address] += 1
            return reply
        finally:
            self.in_flight -= 1


@pytest.fixture
def slow_smtp() -> Iterator[Smtp]:
    server = Smtp(_Slow(delay=0.4))
    yield server
    server.controller.stop()


def serve_env(cli_env: dict[str, str], **extra: str) -> dict[str, str]:
    env = {**os.environ, **cli_env, **extra}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def notice_states(registry: Services) -> list[tuple[str, object]]:
    with registry.db.session() as session:
        rows = session.execute(select(Notice.status, Notice.lease_until)).all()
    return [(status, lease) for status, lease in rows]


def test_sigterm_mid_drain_sends_nothing_twice_and_leaves_no_lease(
    registry: Services, cli_env: dict[str, str], slow_smtp: Smtp, tmp_path: Path
) -> None:
    queue(registry, utcnow(), RECIPIENTS)
    handler = slow_smtp.handler
    assert isinstance(handler, _Slow)
    env = serve_env(cli_env, SMTP_URL=slow_smtp.url, SMTP_CONNECTIONS="2")
    server = ServeProcess(env, closed_port(), tmp_path / "serve.log", "--workers", "1")
    try:
        server.wait_up()
        until(lambda: sum(handler.accepted.values()) >= 2, 20, "two notices sent")
        until(lambda: handler.in_flight > 0, 5, "a message in the middle of its exchange")
        os.killpg(server.proc.pid, signal.SIGTERM)
        assert server.proc.wait(timeout=20) == 0, server.log.read_text()
    finally:
        server.stop()

    sent_by_the_first_server = sum(handler.accepted.values())
    assert 2 <= sent_by_the_first_server < len(RECIPIENTS), "the stop did not land mid-drain"
    states = notice_states(registry)
    assert [s for s in states if s[0] == "sending"] == [], "a claimed notice was left behind"
    assert [s for s in states if s[1] is not None] == [], "a lease is still held"
    assert sum(1 for s in states if s[0] == "sent") == sent_by_the_first_server

    result = CliRunner(env={**cli_env, "SMTP_URL": slow_smtp.url}).invoke(main, ["notices", "send"])

    assert result.exit_code == 0, result.output
    assert handler.accepted == dict.fromkeys(RECIPIENTS, 1), "each notice exactly once"
    assert {s for s in notice_states(registry)} == {("sent", None)}


def test_stopping_the_background_drain_finishes_the_notices_in_hand_and_claims_no_more(
    registry: Services, slow_smtp: Smtp
) -> None:
    queue(registry, utcnow(), RECIPIENTS)
    handler = slow_smtp.handler
    assert isinstance(handler, _Slow)
    settings = dataclasses.replace(registry.settings, smtp_url=slow_smtp.url, smtp_connections=2)
    drain = notify.start_background(settings, interval=0.05)
    until(lambda: sum(handler.accepted.values()) >= 2, 20, "two notices sent")
    until(lambda: handler.in_flight > 0, 5, "a message in the middle of its exchange")

    assert drain.stop(timeout=10) is True

    assert not drain.thread.is_alive()
    sent = sum(handler.accepted.values())
    states = notice_states(registry)
    assert [s for s in states if s[0] == "sending" or s[1] is not None] == []
    assert sum(1 for s in states if s[0] == "sent") == sent < len(RECIPIENTS)
    time.sleep(2 * handler.delay)
    assert sum(handler.accepted.values()) == sent, "a notice went out after the stop"


class _HeldRange(http.server.BaseHTTPRequestHandler):
    """HIBP's /range/{prefix}, answering only once the test sets `release`."""

    asked = threading.Event()
    release = threading.Event()

    def do_GET(self) -> None:
        type(self).asked.set()
        type(self).release.wait(timeout=15)
        body = b"0000000000000000000000000000000000A:1\r\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def held_range() -> Iterator[tuple[str, type[_HeldRange]]]:
    handler = type(
        "Held", (_HeldRange,), {"asked": threading.Event(), "release": threading.Event()}
    )
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    handler.release.set()
    httpd.shutdown()
    httpd.server_close()


def test_a_request_in_flight_at_sigterm_gets_its_answer(
    registry: Services,
    cli_env: dict[str, str],
    held_range: tuple[str, type[_HeldRange]],
    tmp_path: Path,
) -> None:
    hibp_url, held = held_range
    with registry.db.session() as session:
        key = apikeys.create(
            session, role="security", name="soc", actor=audit.Actor.cli("t"), now=utcnow()
        ).token
    env = serve_env(cli_env, BREACH_SOURCES="hibp", HIBP_PASSWORDS_URL=hibp_url)
    server = ServeProcess(env, closed_port(), tmp_path / "serve.log", "--workers", "1")
    answers: list[requests.Response] = []

    def check() -> None:
        answers.append(
            requests.post(
                f"{server.base}/api/v1/check/password",
                json={"password": "correct horse battery staple"},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
        )

    try:
        server.wait_up()
        caller = threading.Thread(target=check)
        caller.start()
        assert held.asked.wait(timeout=10), "the check never reached the range server"
        os.killpg(server.proc.pid, signal.SIGTERM)
        until(lambda: "Handling signal: term" in server.log.read_text(), 5, "the stop")
        held.release.set()  # the answer the request waits for comes only after the signal
        caller.join(timeout=20)
        assert server.proc.wait(timeout=20) == 0, server.log.read_text()
    finally:
        held.release.set()
        server.stop()

    [answer] = answers
    assert answer.status_code == 200, answer.text
    assert answer.json()["pwned"] is False
