"""Notice e-mails against a real SMTP server on 127.0.0.1 (aiosmtpd) and a real database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import ipaddress
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from auth import accounts, notify
from auth.audit import Actor
from auth.cli import main
from auth.config import Settings
from auth.db import Database
from auth.models import Account, Notice, NoticeStatus, ResetToken
from auth.reset import tokens
from auth.services import Services

LINK = re.compile(r"http://localhost:5000/reset/([A-Za-z0-9_-]+)")


# --- a real SMTP server on loopback -------------------------------------------------------


class _Loopback(Controller):
    """aiosmtpd 1.4 greets its own listener on `port`: with port 0, learn the real one first."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class _Collect:
    def __init__(self, reply: str = "250 OK") -> None:
        self.reply = reply
        self.messages: list[EmailMessage] = []
        self.logins: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply.startswith("250"):
            if "SMTPUTF8" in envelope.mail_options:  # headers in UTF-8 (RFC 6532)
                content = envelope.content.decode("utf-8")
                parsed = email.message_from_string(content, policy=email.policy.default)
            else:
                parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            self.messages.append(parsed)
            if session.auth_data is not None:
                self.logins.append(session.auth_data.login)
        return self.reply


class Smtp:
    def __init__(self, handler: _Collect, **kwargs: Any) -> None:
        self.handler = handler
        self.controller = _Loopback(handler, hostname="127.0.0.1", port=0, **kwargs)
        self.controller.start()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        return list(self.handler.messages)


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp(_Collect())
    yield server
    server.controller.stop()


@pytest.fixture
def deferring_smtp() -> Iterator[Smtp]:
    server = Smtp(_Collect("451 4.3.2 Try again later"))
    yield server
    server.controller.stop()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _server_tls(files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*files)
    return context


# --- notices in the database --------------------------------------------------------------

REASON = "votre mot de passe figure dans la fuite « Webmail 2022 »"


def queue(
    registry: Services,
    now: dt.datetime,
    emails: list[str],
    *,
    language: str | None = None,
    kind: str = "reset_forced",
    due: dt.datetime | None = None,
) -> list[int]:
    """Accounts with a reset token and a queued notice each; the notice ids."""
    with registry.db.session() as session:
        made = []
        for address in emails:
            account = accounts.create(
                session,
                email=address,
                name="Dr Claire Martin",
                hasher=registry.hasher,
                actor=Actor.cli("test"),
                now=now,
            )
            account.language = language
            made.append(account)
        token_ids = tokens.issue(
            session, [a.id for a in made], secret_key=registry.settings.secret_key, now=now
        )
        notices = [
            Notice(
                account_id=a.id,
                kind=kind,
                idempotency_key=f"reset:{a.id}",
                token_id=token_ids[a.id],
                reason=REASON,
                next_attempt_at=due or now,
            )
            for a in made
        ]
        session.add_all(notices)
        session.flush()
        return [n.id for n in notices]


def notice(registry: Services, notice_id: int) -> Notice:
    with registry.db.session() as session:
        return session.get_one(Notice, notice_id)


def send(registry: Services, smtp_url: str, now: dt.datetime, **kwargs: Any) -> notify.DrainReport:
    settings = kwargs.pop("settings", registry.settings)
    return notify.drain(
        registry.db,
        mailer=notify.SmtpMailer(smtp_url, timeout=5),
        settings=settings,
        now=lambda: now,
        **kwargs,
    )


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


# --- sending ------------------------------------------------------------------------------


def test_each_queued_notice_is_sent_once_with_text_and_html_parts(
    registry: Services, smtp: Smtp, now: dt.datetime
) -> None:
    ids = queue(registry, now, ["a@example.org", "b@example.org", "c@example.org"])

    report = send(registry, smtp.url, now)
    again = send(registry, smtp.url, now)

    assert (report.sent, report.retrying, report.failed) == (3, 0, 0)
    assert again == notify.DrainReport()
    assert sorted(m["To"].addresses[0].addr_spec for m in smtp.messages) == [
        "a@example.org",
        "b@example.org",
        "c@example.org",
    ]
    for message in smtp.messages:
        assert message.get_content_type() == "multipart/alternative"
        text, html = parts(message)
        assert LINK.search(text) and LINK.search(html)
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["From"] == registry.settings.mail_from
        assert message["To"].addresses[0].display_name == "Dr Claire Martin"
    for notice_id in ids:
        row = notice(registry, notice_id)
        assert (row.status, row.attempts, row.sent_at, row.lease_until) == ("sent", 1, now, None)


def test_an_address_with_accents_is_sent_over_smtputf8_when_the_server_offers_it(
    registry: Services, now: dt.datetime
) -> None:
    server = Smtp(_Collect(), enable_SMTPUTF8=True)
    try:
        [notice_id] = queue(registry, now, ["jérôme.lefèvre@exemple.fr"])
        report = send(registry, server.url, now)
    finally:
        server.controller.stop()

    assert (report.sent, report.failed) == (1, 0)
    [message] = server.messages
    assert message["To"].addresses[0].addr_spec == "jérôme.lefèvre@exemple.fr"
    text, _ = parts(message)
    assert LINK.search(text)
    assert notice(registry, notice_id).status == "sent"


def test_an_address_with_accents_fails_at_once_on_a_server_without_smtputf8(
    registry: Services, now: dt.datetime
) -> None:
    smtp = Smtp(_Collect(), enable_SMTPUTF8=False)
    try:
        [notice_id] = queue(registry, now, ["jérôme.lefèvre@exemple.fr"])
        report = send(registry, smtp.url, now)
    finally:
        smtp.controller.stop()

    assert (report.sent, report.retrying, report.refused) == (0, 0, 1)
    row = notice(registry, notice_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "SMTPUTF8" in (row.last_error or "")
    assert smtp.messages == []


def test_outbox_mode_keeps_an_address_with_accents(
    registry: Services, tmp_path: Path, now: dt.datetime
) -> None:
    queue(registry, now, ["zoé@exemple.fr"])

    report = notify.drain(
        registry.db,
        mailer=notify.OutboxMailer(tmp_path),
        settings=registry.settings,
        now=lambda: now,
    )

    assert report.sent == 1
    [eml] = tmp_path.glob("*.eml")
    # Headers in UTF-8, as RFC 6532 writes them (mail programs open such a file as text)
    parsed = email.message_from_string(eml.read_text("utf-8"), policy=email.policy.default)
    assert parsed["To"].addresses[0].addr_spec == "zoé@exemple.fr"


def test_the_link_carries_a_live_token_that_expires_its_lifetime_after_sending(
    registry: Services, smtp: Smtp, now: dt.datetime
) -> None:
    [notice_id] = queue(registry, now, ["a@example.org"])
    sent_at = now + dt.timedelta(hours=3)  # a backlog does not eat the link's lifetime

    send(registry, smtp.url, sent_at)

    text, _ = parts(smtp.messages[0])
    match = LINK.search(text)
    assert match is not None
    token = match.group(1)
    with registry.db.session() as session:
        # a forced reset's notice: RESET_FORCED_TOKEN_HOURS
        row = tokens.find_valid(session, token, now=sent_at + dt.timedelta(hours=71))
        assert row is not None and row.id == notice(registry, notice_id).token_id
        assert row.expires_at == sent_at + dt.timedelta(hours=72)
        assert tokens.find_valid(session, token, now=sent_at + dt.timedelta(hours=72)) is None


def test_notices_are_in_french_by_default_and_in_english_for_an_english_account(
    registry: Services, smtp: Smtp, now: dt.datetime
) -> None:
    queue(registry, now, ["fr@example.org"])
    queue(registry, now, ["en@example.org"], language="en")
    queue(registry, now, ["de@example.org"], language="de")  # not offered: the default

    send(registry, smtp.url, now)

    by_to = {m["To"].addresses[0].addr_spec: m for m in smtp.messages}
    for address in ("fr@example.org", "de@example.org"):
        text, html = parts(by_to[address])
        assert by_to[address]["Subject"] == "Action requise\u00a0: changez votre mot de passe"
        assert "Nous ne vous demanderons jamais votre mot de passe" in text
        assert '<html lang="fr">' in html
        assert REASON in text
    text, html = parts(by_to["en@example.org"])
    assert by_to["en@example.org"]["Subject"] == "Action required: change your password"
    assert "We will never ask for your password" in text
    assert '<html lang="en">' in html


def test_the_email_contains_no_secret_other_than_the_link(
    registry: Services, smtp: Smtp, now: dt.datetime
) -> None:
    [notice_id] = queue(registry, now, ["a@example.org"])
    token_id = notice(registry, notice_id).token_id
    assert token_id is not None

    send(registry, smtp.url, now)

    message = smtp.messages[0]
    text, html = parts(message)
    token = tokens.derive(registry.settings.secret_key, token_id)
    link = f"http://localhost:5000/reset/{token}"
    assert text.count(token) == text.count(link) == 1
    assert html.count(token) == html.count(link) == 3  # the button, the copyable link (href, text)
    headers = "".join(f"{k}: {v}\n" for k, v in message.items())
    for secret in (token, token_id, tokens.digest(token), registry.settings.secret_key):
        assert secret not in headers
    for secret in (tokens.digest(token), registry.settings.secret_key):
        assert secret not in text and secret not in html
    # the (public) token id opens the token, and appears nowhere else
    assert token.startswith(token_id)
    assert text.count(token_id) == text.count(token) and html.count(token_id) == html.count(token)


def test_the_forced_notice_says_why_how_long_and_how_to_protect_the_account() -> None:
    context = {
        "name": "",
        "reason": "<b>leak</b>",
        "link": "http://localhost:5000/reset/abc",
        "minutes": 30,
        "hours": 72,
        "security_url": "http://localhost:5000/account/security",
        "forgot_url": "http://localhost:5000/forgot",
    }
    _, text, html = notify.render("reset_forced", language="en", context=context)
    for needed in ("<b>leak</b>", "72 hours", "/account/security", "authenticator app"):
        assert needed in text
    assert "security key" in text and "never ask for your password" in text
    assert "&lt;b&gt;leak&lt;/b&gt;" in html and "<b>leak</b>" not in html  # escaped in HTML
    _, text, _ = notify.render("reset_requested", language="fr", context=context)
    assert "ignorez cet e-mail" in text and "30 minutes" in text
    with pytest.raises(Exception, match="link"):  # StrictUndefined: a missing value fails
        notify.render("reset_requested", language="en", context={"name": "", "minutes": 30})


def test_a_resent_notice_keeps_its_message_id(registry: Services, now: dt.datetime) -> None:
    [notice_id] = queue(registry, now, ["a@example.org"])
    row = notice(registry, notice_id)
    with registry.db.session() as session:
        account = session.get_one(Account, row.account_id)
    first = notify.build_message(row, account, link="x", settings=registry.settings)
    second = notify.build_message(row, account, link="y", settings=registry.settings)
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Message-ID"].endswith("@localhost>")
    assert row.idempotency_key not in first["Message-ID"]


def test_outbox_mode_writes_one_eml_file_per_notice(
    registry: Services, settings: Settings, now: dt.datetime
) -> None:
    queue(registry, now, ["a@example.org", "b@example.org"])
    mailer = notify.mailer_from_settings(settings)
    assert isinstance(mailer, notify.OutboxMailer)

    report = notify.drain(registry.db, mailer=mailer, settings=settings, now=lambda: now)

    files = sorted(settings.outbox_path.iterdir())
    assert report.sent == 2 and [f.suffix for f in files] == [".eml", ".eml"]
    assert settings.outbox_path.stat().st_mode & 0o777 == 0o700
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    recipients = set()
    for path in files:
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        assert LINK.search(parts(parsed)[0])
        recipients.add(parsed["To"].addresses[0].addr_spec)
    assert recipients == {"a@example.org", "b@example.org"}


def test_a_limited_drain_claims_no_more_than_its_limit(
    registry: Services, smtp: Smtp, now: dt.datetime
) -> None:
    queue(registry, now, [f"user{i}@example.org" for i in range(30)])

    report = send(registry, smtp.url, now, limit=12, batch=5)

    assert report.sent == 12 and len(smtp.messages) == 12
    with registry.db.session() as session:
        statuses = session.execute(select(Notice.status)).scalars().all()
    assert sorted(statuses).count("queued") == 18


# --- failures and retries -----------------------------------------------------------------


def test_a_deferring_server_leaves_the_notice_queued_for_a_later_retry(
    registry: Services, deferring_smtp: Smtp, runner: CliRunner, now: dt.datetime
) -> None:
    [notice_id] = queue(registry, now, ["a@example.org"])

    report = send(registry, deferring_smtp.url, now)

    assert (report.sent, report.retrying, report.failed) == (0, 1, 0)
    row = notice(registry, notice_id)
    assert (row.status, row.attempts, row.lease_until) == ("queued", 1, None)
    assert row.next_attempt_at == now + dt.timedelta(seconds=30)
    assert row.last_error == "SMTPDataError: 451 4.3.2 Try again later"
    assert send(registry, deferring_smtp.url, now + dt.timedelta(seconds=29)).retrying == 0

    result = runner.invoke(main, ["notices", "status"])
    assert result.exit_code == 0, result.output
    assert "queued 1, sending 0, sent 0, failed 0" in result.output
    assert "a@example.org" in result.output and "attempts 1" in result.output
    assert "451 4.3.2 Try again later" in result.output and "/reset/" not in result.output


def test_after_the_last_attempt_the_notice_is_failed(
    registry: Services, settings: Settings, deferring_smtp: Smtp, now: dt.datetime
) -> None:
    [notice_id] = queue(registry, now, ["a@example.org"])
    settings = dataclasses.replace(settings, notice_max_attempts=3)
    clock, delays = now, []
    for _ in range(3):
        report = send(registry, deferring_smtp.url, clock, settings=settings)
        row = notice(registry, notice_id)
        delays.append(row.next_attempt_at - clock)
        clock = row.next_attempt_at

    assert (report.retrying, report.failed) == (0, 1)
    assert (row.status, row.attempts) == ("failed", 3)
    assert delays[:2] == [dt.timedelta(seconds=30), dt.timedelta(seconds=60)]
    assert send(registry, deferring_smtp.url, clock + dt.timedelta(days=1)) == notify.DrainReport()
    assert [notify.retry_delay(n).total_seconds() for n in (1, 2, 3, 8, 20)] == [
        30,
        60,
        120,
        3600,
        3600,
    ]


def test_a_notice_whose_token_was_revoked_is_not_sent(
    registry: Services, smtp: Smtp, now: dt.datetime
) -> None:
    [notice_id] = queue(registry, now, ["a@example.org"])
    with registry.db.session() as session:
        tokens.revoke_open(session, [notice(registry, notice_id).account_id], now=now)

    report = send(registry, smtp.url, now)

    assert smtp.messages == []
    assert (report.sent, report.failed, report.skipped) == (0, 0, 1)
    row = notice(registry, notice_id)
    assert (row.status, row.last_error) == ("failed", notify.SUPERSEDED)


def test_a_crashed_workers_lease_is_picked_up_again_and_a_live_one_is_left_alone(
    registry: Services, smtp: Smtp, now: dt.datetime
) -> None:
    crashed, busy = queue(registry, now, ["crashed@example.org", "busy@example.org"])
    with registry.db.session() as session:
        for notice_id, lease in ((crashed, -1), (busy, +1)):
            row = session.get_one(Notice, notice_id)
            row.status, row.attempts = NoticeStatus.SENDING, 1
            row.lease_until = now + dt.timedelta(seconds=lease)

    report = send(registry, smtp.url, now)

    assert report.sent == 1
    assert [m["To"].addresses[0].addr_spec for m in smtp.messages] == ["crashed@example.org"]
    assert (notice(registry, crashed).status, notice(registry, crashed).attempts) == ("sent", 2)
    assert notice(registry, busy).status == "sending"


def test_a_worker_that_keeps_dying_on_a_notice_gives_it_up(
    registry: Services, smtp: Smtp, now: dt.datetime
) -> None:
    [notice_id] = queue(registry, now, ["a@example.org"])
    with registry.db.session() as session:
        row = session.get_one(Notice, notice_id)
        row.status, row.attempts = NoticeStatus.SENDING, registry.settings.notice_max_attempts
        row.lease_until = now - dt.timedelta(seconds=1)

    assert send(registry, smtp.url, now).failed == 1
    assert smtp.messages == [] and notice(registry, notice_id).status == "failed"


# --- concurrency --------------------------------------------------------------------------


def test_two_drains_at_once_send_every_notice_exactly_once(
    registry: Services, settings: Settings, smtp: Smtp, now: dt.datetime
) -> None:
    queue(registry, now, [f"user{i}@example.org" for i in range(200)])
    barrier = threading.Barrier(2)
    reports: list[notify.DrainReport] = []
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        db = Database(settings.database_url)  # as a second process would have
        try:
            barrier.wait()
            reports.append(
                notify.drain(
                    db,
                    mailer=notify.SmtpMailer(smtp.url),
                    settings=settings,
                    now=lambda: now,
                    batch=10,
                    worker=name,
                )
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert errors == []
    assert len(smtp.messages) == 200
    assert len({m["Message-ID"] for m in smtp.messages}) == 200
    assert sum(r.sent for r in reports) == 200
    assert all(r.sent > 0 for r in reports), reports  # both really took part
    with registry.db.session() as session:
        rows = session.execute(select(Notice.status, Notice.attempts)).all()
    assert set(rows) == {("sent", 1)}


def test_two_cli_processes_sending_at_once_send_every_notice_exactly_once(
    registry: Services, cli_env: dict[str, str], smtp: Smtp, now: dt.datetime
) -> None:
    queue(registry, now, [f"user{i}@example.org" for i in range(60)])
    env = {**os.environ, **cli_env, "SMTP_URL": smtp.url}
    command = [str(Path(sys.executable).parent / "breachguard"), "notices", "send"]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in "ab"]
    outputs = [p.communicate(timeout=120)[0] for p in procs]

    assert [p.returncode for p in procs] == [0, 0], outputs
    sent = [int(re.search(r"sent (\d+)", out).group(1)) for out in outputs]  # type: ignore[union-attr]
    assert sum(sent) == 60
    assert len(smtp.messages) == len({m["Message-ID"] for m in smtp.messages}) == 60


# --- SMTP options -------------------------------------------------------------------------


def _auth_ok(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = (data.login, data.password) == (b"notices", b"p@ss:w/rd%")
    return AuthResult(success=ok, auth_data=data)


def test_smtp_login_over_starttls_with_a_url_encoded_password(
    registry: Services, tls_files: tuple[Path, Path], now: dt.datetime
) -> None:
    handler = _Collect()
    server = Smtp(
        handler,
        tls_context=_server_tls(tls_files),
        require_starttls=True,
        authenticator=_auth_ok,
    )
    try:
        queue(registry, now, ["a@example.org"])
        url = f"smtp://notices:p%40ss%3Aw%2Frd%25@127.0.0.1:{server.port}?cafile={tls_files[0]}"
        mailer = notify.SmtpMailer(url)
        assert "p@ss" not in repr(mailer) and "%40" not in repr(mailer)
        report = notify.drain(
            registry.db, mailer=mailer, settings=registry.settings, now=lambda: now
        )
    finally:
        server.controller.stop()
    assert report.sent == 1 and handler.logins == [b"notices"]


def test_smtps_uses_implicit_tls(
    registry: Services, tls_files: tuple[Path, Path], now: dt.datetime
) -> None:
    handler = _Collect()
    server = Smtp(handler, ssl_context=_server_tls(tls_files))
    try:
        queue(registry, now, ["a@example.org"])
        url = f"smtps://127.0.0.1:{server.port}?cafile={tls_files[0]}"
        report = send(registry, url, now)
    finally:
        server.controller.stop()
    assert report.sent == 1 and len(handler.messages) == 1


def test_required_starttls_that_is_not_offered_fails_the_attempt(
    registry: Services, smtp: Smtp, now: dt.datetime
) -> None:
    [notice_id] = queue(registry, now, ["a@example.org"])

    report = send(registry, smtp.url + "?starttls=required", now)

    assert report.retrying == 1 and smtp.messages == []
    assert notice(registry, notice_id).last_error == (
        f"MailError: 127.0.0.1:{smtp.port} does not offer STARTTLS"
    )


def test_a_bad_smtp_url_is_refused_with_a_clear_message() -> None:
    with pytest.raises(Exception, match="SMTP_URL must look like"):
        notify.SmtpMailer("http://mail.example.org")
    with pytest.raises(Exception, match="starttls must be"):
        notify.SmtpMailer("smtp://127.0.0.1?starttls=maybe")


# --- the command line and the server ------------------------------------------------------


def test_cli_notices_send_and_status_use_smtp_url(
    registry: Services, runner: CliRunner, smtp: Smtp, deferring_smtp: Smtp, now: dt.datetime
) -> None:
    queue(registry, now, ["a@example.org", "b@example.org"])

    result = runner.invoke(main, ["notices", "send"], env={"SMTP_URL": smtp.url})
    assert result.exit_code == 0, result.output
    assert "sent 2, retrying 0, failed 0" in result.output
    assert len(smtp.messages) == 2

    queue(registry, now, ["c@example.org"])
    env = {"SMTP_URL": deferring_smtp.url, "NOTICE_MAX_ATTEMPTS": "1"}
    result = runner.invoke(main, ["notices", "send"], env=env)
    assert result.exit_code == 1, result.output
    assert "sent 0, retrying 0, failed 1" in result.output

    result = runner.invoke(main, ["notices", "status"])
    assert result.exit_code == 0, result.output
    assert "queued 0, sending 0, sent 2, failed 1" in result.output
    assert "c@example.org" in result.output and "Try again later" in result.output
    assert "a@example.org" not in result.output and "/reset/" not in result.output


def test_the_server_drains_the_queue_in_the_background(
    registry: Services, cli_env: dict[str, str], smtp: Smtp, now: dt.datetime, tmp_path: Path
) -> None:
    queue(registry, now, ["a@example.org"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [Path(sys.executable).parent / "breachguard", "serve", "--port", str(port)],
            env={**os.environ, **cli_env, "SMTP_URL": smtp.url},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 20
            while not smtp.messages and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail("the server did not stop:\n" + log.read_text())
    assert [m["To"].addresses[0].addr_spec for m in smtp.messages] == ["a@example.org"], (
        log.read_text()
    )
    with registry.db.session() as session:
        assert session.execute(select(ResetToken.expires_at)).scalar_one() is not None
