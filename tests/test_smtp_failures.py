"""When the SMTP server refuses, defers or hangs: a permanent refusal (5xx) fails the notice
at once with the server's reply; a temporary one (4xx) is retried; a server that does not
answer costs one timeout per connection, not one per notice, and the notices it never got
to lose no attempt. Connections are reused, several notices go at once, and `notices send`
exits 1 with the count whenever a notice it tried was not delivered."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auth import notify
from auth.cli import main
from auth.services import Services
from tests.test_notify import Smtp, _Collect, notice, queue, send

EMAILS = [f"pro{i}@example.org" for i in range(12)]


class _Counting(_Collect):
    """Counts EHLO greetings (one per connection) and the most messages it held at once."""

    def __init__(self, reply: str = "250 OK", delay: float = 0.0) -> None:
        super().__init__(reply)
        self.greetings = 0
        self.delay = delay
        self.holding = self.most_at_once = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.greetings += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.holding += 1
        self.most_at_once = max(self.most_at_once, self.holding)
        try:
            if self.delay:
                import asyncio

                await asyncio.sleep(self.delay)
            return await super().handle_DATA(server, session, envelope)
        finally:
            self.holding -= 1


def serve(reply: str = "250 OK", delay: float = 0.0) -> Smtp:
    return Smtp(_Counting(reply, delay))


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts TCP connections and never says a word (a hung mail server)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    running = True

    def accept() -> None:
        while running:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    yield f"smtp://127.0.0.1:{listener.getsockname()[1]}?timeout=1"
    running = False
    listener.close()
    for conn in held:
        conn.close()


def test_a_permanent_refusal_fails_the_notice_at_once_with_the_reply(
    registry: Services, now: dt.datetime
) -> None:
    server = serve("550 5.1.1 No such mailbox here")
    [notice_id] = queue(registry, now, ["gone@example.org"])

    report = send(registry, server.url, now)

    assert (report.sent, report.retrying, report.failed, report.refused) == (0, 0, 1, 1)
    row = notice(registry, notice_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == "SMTPDataError: 550 5.1.1 No such mailbox here"
    server.controller.stop()


def test_a_temporary_refusal_is_retried_later(registry: Services, now: dt.datetime) -> None:
    server = serve("451 4.3.0 Try again later")
    [notice_id] = queue(registry, now, ["busy@example.org"])

    report = send(registry, server.url, now)

    assert (report.sent, report.retrying, report.failed) == (0, 1, 0)
    row = notice(registry, notice_id)
    assert (row.status, row.attempts) == ("queued", 1)
    assert row.next_attempt_at == now + notify.FIRST_RETRY
    assert row.last_error == "SMTPDataError: 451 4.3.0 Try again later"
    server.controller.stop()


def test_a_hung_server_costs_one_timeout_per_connection_and_untried_notices_keep_attempts(
    registry: Services, now: dt.datetime, silent_server: str
) -> None:
    ids = queue(registry, now, EMAILS)
    mailer = notify.SmtpMailer(silent_server, connections=4)

    started = time.monotonic()
    report = notify.drain(
        registry.db, mailer=mailer, settings=registry.settings, now=lambda: now, parallel=4
    )
    elapsed = time.monotonic() - started

    assert elapsed < 2.5, elapsed  # one 1 s timeout per connection, in parallel
    assert report.sent == 0 and 1 <= report.retrying <= 4
    assert report.waiting == len(EMAILS) - report.retrying
    rows = [notice(registry, i) for i in ids]
    assert {r.status for r in rows} == {"queued"}
    assert sorted(r.attempts for r in rows) == [0] * report.waiting + [1] * report.retrying
    tried = [r for r in rows if r.attempts == 1]
    assert all("did not answer" in (r.last_error or "") for r in tried)


def test_connections_are_reused_and_notices_go_several_at_once(
    registry: Services, now: dt.datetime
) -> None:
    server = serve(delay=0.2)
    queue(registry, now, EMAILS)
    mailer = notify.SmtpMailer(server.url, connections=4)

    report = notify.drain(
        registry.db, mailer=mailer, settings=registry.settings, now=lambda: now, parallel=4
    )
    mailer.close()

    assert report.sent == len(EMAILS) and len(server.messages) == len(EMAILS)
    assert server.handler.greetings <= 4  # type: ignore[attr-defined]
    # Several at once, as the server saw them (a clock would read the machine's load too).
    assert server.handler.most_at_once >= 2  # type: ignore[attr-defined]
    server.controller.stop()


def test_notices_send_exits_1_and_says_how_many_were_not_delivered(
    registry: Services, runner: CliRunner, now: dt.datetime
) -> None:
    refusing = serve("550 5.7.1 Relaying denied")
    queue(registry, now, ["a@example.org", "b@example.org"])

    result = runner.invoke(
        main, ["notices", "send"], env={"SMTP_URL": refusing.url, "SMTP_CONNECTIONS": "2"}
    )

    assert result.exit_code == 1, result.output
    assert "sent 0, retrying 0, failed 2 (2 refused by the server)" in result.stdout
    assert "2 notice(s) not delivered" in result.stderr
    refusing.controller.stop()


def test_notices_send_exits_1_while_notices_wait_for_a_retry(
    registry: Services, runner: CliRunner, now: dt.datetime, silent_server: str
) -> None:
    queue(registry, now, ["a@example.org"])
    result = runner.invoke(main, ["notices", "send"], env={"SMTP_URL": silent_server})
    assert result.exit_code == 1, result.output
    assert "retrying 1" in result.stdout


def test_smtp_connections_comes_from_the_environment(tmp_path: Path) -> None:
    from auth.config import load_settings
    from auth.errors import InvalidInput

    env = {"BREACHGUARD_INSTANCE": str(tmp_path)}
    assert load_settings({**env, "SMTP_CONNECTIONS": "7"}).smtp_connections == 7
    with pytest.raises(InvalidInput, match="SMTP_CONNECTIONS must be between 1 and 32"):
        load_settings({**env, "SMTP_CONNECTIONS": "0"})
