"""Alerts pushed to the security team: a real HTTP server on 127.0.0.1 receives the
webhook, a real SMTP server (aiosmtpd) the e-mail, and the deliveries go through the notice
queue's machinery (claim with a lease, retry_delay, refused for good, several workers)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import http.server
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select

from auth import i18n, logs, metrics
from auth.activity import alerts, deliveries, push
from auth.config import Settings
from auth.models import AlertDelivery, AlertKind, iso_utc
from auth.notify import mailer_from_settings, retry_delay, start_background
from auth.services import Services, build
from tests.test_admin_console import make_account
from tests.test_notify import Smtp, _Collect

SECRET = "whsec-test-0123456789abcdef"


# --- a webhook receiver on loopback -------------------------------------------------------


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """An HTTP server that records each POST and answers the next scripted status (then
    200 once the script runs out)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[Received] = []
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.arrived.set()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/team-token-42"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp(_Collect())
    yield server
    server.controller.stop()


def pushing(settings: Settings, **changes: Any) -> Services:
    return build(dataclasses.replace(settings, **changes))


def raise_one(
    site: Services, now: dt.datetime, accounts: list[int], cause: str = "198.51.100.0/24"
) -> alerts.Raised:
    with site.db.session() as session:
        return alerts.raise_alert(
            session,
            kind=AlertKind.CREDENTIAL_STUFFING,
            cause=cause,
            accounts=accounts,
            addresses=["198.51.100.7", "198.51.100.9"],
            evidence={"failures": 40, "timeline": [{"at": now.isoformat(), "count": 40}]},
            now=now,
            settings=site.settings,
        )


def drain(site: Services, at: dt.datetime) -> deliveries.DeliveryReport:
    mailer = mailer_from_settings(site.settings)
    webhook = push.webhook_from_settings(site.settings)
    try:
        return deliveries.drain(
            site.db, settings=site.settings, mailer=mailer, webhook=webhook, now=lambda: at
        )
    finally:
        mailer.close()
        webhook.close()


def rows(site: Services) -> list[AlertDelivery]:
    with site.db.session() as session:
        return list(session.execute(select(AlertDelivery).order_by(AlertDelivery.id)).scalars())


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The receiver's side, written from the README's scheme, not from our code."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def pushed(channel: str, outcome: str) -> float:
    return float(metrics.ALERT_DELIVERIES.labels(channel, outcome)._value.get())


# --- queuing ------------------------------------------------------------------------------


def test_a_new_alert_is_queued_once_per_configured_channel_and_a_repeat_is_not(
    settings: Settings, now: dt.datetime
) -> None:
    site = pushing(
        settings,
        alert_webhook_url="http://127.0.0.1:9/hook",
        alert_webhook_secret=SECRET,
        security_alert_email="secu@chu.example",
    )
    first = raise_one(site, now, [1, 2])
    again = raise_one(site, now + dt.timedelta(minutes=5), [3])

    assert first.new and not again.new and again.alert_id == first.alert_id
    assert [(r.alert_id, r.channel, r.status) for r in rows(site)] == [
        (first.alert_id, "webhook", "queued"),
        (first.alert_id, "email", "queued"),
    ]


def test_without_a_configured_channel_nothing_is_queued(
    settings: Settings, now: dt.datetime
) -> None:
    site = pushing(settings)
    assert alerts.channels(site.settings) == ()
    raise_one(site, now, [1])
    assert rows(site) == []


# --- the webhook --------------------------------------------------------------------------


def test_the_webhook_receives_the_alert_signed_with_the_secret_and_its_timestamp(
    settings: Settings, now: dt.datetime, receiver: Receiver
) -> None:
    site = pushing(settings, alert_webhook_url=receiver.url, alert_webhook_secret=SECRET)
    claire = make_account(site, "claire@cabinet.example")
    luc = make_account(site, "luc@infirmier.example")
    raised = raise_one(site, now, [claire, luc])

    report = drain(site, now)

    assert (report.sent, report.retrying, report.failed) == (1, 0, 0)
    [got] = receiver.received
    assert got.path == "/hooks/team-token-42"
    assert got.headers["content-type"] == "application/json"
    stamp = got.headers["x-breachguard-timestamp"]
    assert stamp == str(int(now.timestamp()))
    signature = got.headers["x-breachguard-signature"]
    assert hmac.compare_digest(signature, expected_signature(SECRET, stamp, got.body))
    assert got.headers["x-breachguard-delivery"] == str(rows(site)[0].id)
    alert = json.loads(got.body)
    assert alert["id"] == raised.alert_id and alert["kind"] == "credential_stuffing"
    assert alert["accounts"] == [
        {"id": claire, "email": "claire@cabinet.example"},
        {"id": luc, "email": "luc@infirmier.example"},
    ]
    assert alert["addresses"] == ["198.51.100.7", "198.51.100.9"]
    assert alert["occurrences"] == 1 and alert["first_at"] == "2026-11-28T12:00:00Z"
    assert alert["evidence"]["failures"] == 40 and len(alert["evidence"]["timeline"]) == 1
    assert alert["url"] == f"http://localhost:5000/admin/alerts/{raised.alert_id}"
    assert SECRET.encode() not in got.body
    [row] = rows(site)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, now)


def test_a_server_error_is_retried_after_the_delay_and_sent_once(
    settings: Settings, now: dt.datetime
) -> None:
    receiver = Receiver([500])
    try:
        site = pushing(settings, alert_webhook_url=receiver.url, alert_webhook_secret=SECRET)
        raise_one(site, now, [1])
        before = (pushed("webhook", "retrying"), pushed("webhook", "sent"))

        first = drain(site, now)
        [row] = rows(site)
        assert (first.retrying, row.status, row.attempts) == (1, "queued", 1)
        assert row.next_attempt_at == now + retry_delay(1)
        assert row.last_error is not None and "500" in row.last_error
        assert drain(site, now + retry_delay(1) - dt.timedelta(seconds=1)).handled == 0

        second = drain(site, now + retry_delay(1))
        [row] = rows(site)
        assert (second.sent, row.status, row.attempts, row.last_error) == (1, "sent", 2, None)
        assert drain(site, now + dt.timedelta(days=1)).handled == 0
        assert len(receiver.received) == 2
        assert (pushed("webhook", "retrying"), pushed("webhook", "sent")) == (
            before[0] + 1,
            before[1] + 1,
        )
    finally:
        receiver.stop()


@pytest.mark.parametrize("status", [400, 401, 404, 410])
def test_a_client_error_is_refused_for_good(
    settings: Settings, now: dt.datetime, status: int
) -> None:
    receiver = Receiver([status])
    try:
        site = pushing(settings, alert_webhook_url=receiver.url, alert_webhook_secret=SECRET)
        raise_one(site, now, [1])
        report = drain(site, now)
        [row] = rows(site)
        assert (report.failed, row.status, row.attempts) == (1, "failed", 1)
        assert row.last_error is not None and str(status) in row.last_error
        assert drain(site, now + dt.timedelta(days=1)).handled == 0
        assert len(receiver.received) == 1
    finally:
        receiver.stop()


@pytest.mark.parametrize("status", [408, 429, 502, 503])
def test_a_timeout_or_too_many_requests_answer_is_retried(
    settings: Settings, now: dt.datetime, status: int
) -> None:
    receiver = Receiver([status])
    try:
        site = pushing(settings, alert_webhook_url=receiver.url, alert_webhook_secret=SECRET)
        raise_one(site, now, [1])
        assert drain(site, now).retrying == 1
        assert drain(site, now + retry_delay(1)).sent == 1
    finally:
        receiver.stop()


def test_a_webhook_that_does_not_answer_is_retried_and_its_url_never_logged(
    settings: Settings, now: dt.datetime, receiver: Receiver
) -> None:
    gone = receiver.url
    receiver.stop()  # its port now refuses connections
    site = pushing(settings, alert_webhook_url=gone, alert_webhook_secret=SECRET)
    raise_one(site, now, [1])

    assert drain(site, now).retrying == 1
    [row] = rows(site)
    assert row.status == "queued" and row.last_error
    assert "team-token-42" not in row.last_error and SECRET not in row.last_error


def test_even_at_debug_level_the_webhooks_path_is_never_logged(
    settings: Settings, now: dt.datetime, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    logs.configure("text", "DEBUG")
    caplog.set_level(logging.DEBUG)
    try:
        site = pushing(settings, alert_webhook_url=receiver.url, alert_webhook_secret=SECRET)
        raise_one(site, now, [1])
        assert drain(site, now).sent == 1
    finally:
        logs.configure("text", "INFO")
    assert receiver.received and caplog.records  # it was pushed, and logs were written
    assert "team-token-42" not in caplog.text and SECRET not in caplog.text


def test_the_last_attempt_fails_for_good(settings: Settings, now: dt.datetime) -> None:
    receiver = Receiver([503, 503])
    try:
        site = pushing(
            settings,
            alert_webhook_url=receiver.url,
            alert_webhook_secret=SECRET,
            notice_max_attempts=2,
        )
        raise_one(site, now, [1])
        assert drain(site, now).retrying == 1
        assert drain(site, now + retry_delay(1)).failed == 1
        assert rows(site)[0].status == "failed"
    finally:
        receiver.stop()


def test_a_webhook_without_its_secret_waits_until_it_is_set(
    settings: Settings, now: dt.datetime, receiver: Receiver
) -> None:
    site = pushing(settings, alert_webhook_url=receiver.url)
    raise_one(site, now, [1])
    assert drain(site, now).retrying == 1
    assert "ALERT_WEBHOOK_SECRET" in (rows(site)[0].last_error or "")
    fixed = pushing(settings, alert_webhook_url=receiver.url, alert_webhook_secret=SECRET)
    assert drain(fixed, now + retry_delay(1)).sent == 1
    assert len(receiver.received) == 1


def test_two_drains_at_once_send_each_delivery_once(
    settings: Settings, now: dt.datetime, receiver: Receiver
) -> None:
    site = pushing(settings, alert_webhook_url=receiver.url, alert_webhook_secret=SECRET)
    for n in range(12):
        raise_one(site, now, [n + 1], cause=f"203.0.113.{n}/32")
    other = pushing(settings, alert_webhook_url=receiver.url, alert_webhook_secret=SECRET)
    start = threading.Barrier(2)

    def run(s: Services) -> deliveries.DeliveryReport:
        start.wait()
        mailer, webhook = mailer_from_settings(s.settings), push.webhook_from_settings(s.settings)
        return deliveries.drain(
            s.db, settings=s.settings, mailer=mailer, webhook=webhook, now=lambda: now, batch=2
        )

    with ThreadPoolExecutor(2) as pool:  # result() raises what a drain raised
        reports = [f.result() for f in [pool.submit(run, s) for s in (site, other)]]

    ids = [r.headers["x-breachguard-delivery"] for r in receiver.received]
    assert sorted(ids) == sorted({str(r.id) for r in rows(site)}) and len(ids) == 12
    assert sum(r.sent for r in reports) == 12
    assert {r.status for r in rows(site)} == {"sent"}


def test_the_servers_background_drain_pushes_alerts_beside_the_notices(
    settings: Settings, now: dt.datetime, receiver: Receiver
) -> None:
    site = pushing(settings, alert_webhook_url=receiver.url, alert_webhook_secret=SECRET)
    raise_one(site, now, [1])
    background = start_background(site.settings, interval=0.05)
    try:
        assert receiver.arrived.wait(timeout=20), "the background drain pushed nothing"
    finally:
        assert background.stop(timeout=10)
    assert [r.status for r in rows(site)] == ["sent"] and len(receiver.received) == 1


# --- the e-mail ---------------------------------------------------------------------------


def test_the_security_team_receives_an_email_with_the_link_and_no_secret(
    settings: Settings, now: dt.datetime, smtp: Smtp
) -> None:
    site = pushing(
        settings,
        smtp_url=smtp.url,
        security_alert_email="secu@chu.example",
        alert_webhook_secret=SECRET,
        default_language="en",
    )
    claire = make_account(site, "claire@cabinet.example")
    luc = make_account(site, "luc@infirmier.example")
    raised = raise_one(site, now, [claire, luc])

    assert drain(site, now).sent == 1
    [message] = smtp.messages
    assert message["To"] == "secu@chu.example"
    assert message["Subject"] == "[breachguard] Credential stuffing: 2 accounts"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    link = f"http://localhost:5000/admin/alerts/{raised.alert_id}"
    for part in (text, html):
        assert link in part
        assert "claire@cabinet.example" in part and "luc@infirmier.example" in part
        assert "198.51.100.7" in part and SECRET not in part
    assert "Failures: 40" in text
    assert "Credential stuffing: 2 accounts</h1>" in html
    assert "Hello" not in html and "never ask for your password" not in html  # not a person's
    assert [r.status for r in rows(site)] == ["sent"]


def test_the_email_is_in_the_console_language_french_by_default(
    settings: Settings, now: dt.datetime, smtp: Smtp
) -> None:
    site = pushing(settings, smtp_url=smtp.url, security_alert_email="secu@chu.example")
    raise_one(site, now, [make_account(site, "claire@cabinet.example")])
    assert site.settings.default_language == "fr"

    assert drain(site, now).sent == 1
    [message] = smtp.messages
    assert message["Subject"] == "[breachguard] Bourrage d’identifiants : 1 compte"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Ouvrir l’alerte dans la console de sécurité" in text
    assert "Alerte : #" in text and "1 compte :" in text  # French puts a space before ":"
    # when, as the French write it in Paris time, not the webhook's ISO time
    seen = i18n.format_datetime(now, "fr")
    assert f"Vue en premier : {seen}" in text and iso_utc(now) not in text


def test_an_email_refused_by_the_server_is_failed_for_good(
    settings: Settings, now: dt.datetime
) -> None:
    server = Smtp(_Collect("550 5.1.1 No such mailbox"))
    try:
        site = pushing(settings, smtp_url=server.url, security_alert_email="nobody@chu.example")
        raise_one(site, now, [1])
        assert drain(site, now).failed == 1
        [row] = rows(site)
        assert row.status == "failed" and "550" in (row.last_error or "")
    finally:
        server.controller.stop()


def test_an_alert_still_pushes_when_an_account_it_names_is_gone(
    settings: Settings, now: dt.datetime, receiver: Receiver
) -> None:
    site = pushing(settings, alert_webhook_url=receiver.url, alert_webhook_secret=SECRET)
    claire = make_account(site, "claire@cabinet.example")
    raise_one(site, now, [claire, 999_999])
    assert drain(site, now).sent == 1
    assert json.loads(receiver.received[0].body)["accounts"] == [
        {"id": claire, "email": "claire@cabinet.example"}
    ]
