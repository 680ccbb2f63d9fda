"""Where notices go: an SMTP server, or a folder of .eml files when there is none."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import smtplib
import socket
import ssl
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from auth.config import Settings
from auth.errors import BreachguardError, InvalidInput


class MailError(BreachguardError):
    """The mail server could not be used as configured (e.g. STARTTLS required, not offered)."""


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...

    def close(self) -> None: ...


class OutboxMailer:
    """Writes each message as an .eml file: the default, so nothing needs an SMTP server.

    The files hold live reset links, hence the private folder and files.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def close(self) -> None:
        pass

    def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.folder.stat().st_mode & 0o077:  # made earlier with the umask's mode
            self.folder.chmod(0o700)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        key = hashlib.sha256(str(message["Message-ID"] or "").encode()).hexdigest()[:16]
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(message.as_bytes())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.folder / f"{stamp}-{key}.eml")  # readers never see half a file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class ServerUnreachable(MailError):
    """The SMTP server did not answer (refused, timed out, dropped the line). `tried`: this
    notice met the failure; otherwise it was not tried, the server having failed a moment
    ago, and it waits without losing an attempt."""

    def __init__(self, why: str, *, tried: bool) -> None:
        super().__init__(why)
        self.tried = tried


class SmtpMailer:
    """SMTP from a URL: smtp://user:pass@host:port[?starttls=auto|never|required&cafile=…
    &timeout=SECONDS], or smtps://… for implicit TLS.

    Connections are kept open and reused while they work, at most `connections` of them
    (one per sending thread); an idle one is checked with NOOP before it carries a message.
    Once the server fails to answer, it is not tried again for PAUSE seconds: a hanging
    server costs one timeout per connection, not one per notice.
    """

    PAUSE = 30.0

    def __init__(self, url: str, *, timeout: float = 10, connections: int = 1) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise InvalidInput(
                f"SMTP_URL must look like smtp://user:pass@host:port; got {parts.scheme}://…"
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname
        try:
            self.port = parts.port or (465 if self.implicit_tls else 25)
        except ValueError:
            raise InvalidInput("SMTP_URL: the port is not a number") from None
        self.starttls = query.get("starttls", "auto")
        if self.starttls not in ("auto", "never", "required"):
            raise InvalidInput(
                f"SMTP_URL: starttls must be auto, never or required; got {self.starttls!r}"
            )
        self.user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password or "")
        try:
            self.timeout = float(query.get("timeout", timeout))
        except ValueError:
            raise InvalidInput("SMTP_URL: timeout must be a number of seconds") from None
        if not 0 < self.timeout <= 300:
            raise InvalidInput("SMTP_URL: timeout must be between 0 and 300 seconds")
        try:
            self._tls = ssl.create_default_context(cafile=query.get("cafile"))
        except (OSError, ssl.SSLError) as exc:
            raise InvalidInput(
                f"SMTP_URL: cannot read cafile {query.get('cafile')}: {exc}"
            ) from None
        self._ehlo_name = socket.getfqdn()
        self._idle: list[smtplib.SMTP] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max(1, connections))
        self._unreachable: tuple[float, str] | None = None  # (not before, why)

    def __repr__(self) -> str:  # the password must not reach a log line
        who = f"{self.user}@" if self.user else ""
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"SmtpMailer({scheme}://{who}{self.host}:{self.port}, starttls={self.starttls})"

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, self._ehlo_name, timeout=self.timeout, context=self._tls
            )
        else:
            client = smtplib.SMTP(self.host, self.port, self._ehlo_name, timeout=self.timeout)
        try:
            client.ehlo()
            if not self.implicit_tls and self.starttls != "never":
                if client.has_extn("starttls"):
                    client.starttls(context=self._tls)
                    client.ehlo()
                elif self.starttls == "required":
                    raise MailError(f"{self.host}:{self.port} does not offer STARTTLS")
            if self.user is not None:
                client.login(self.user, self._password)
        except BaseException:
            _close(client)
            raise
        return client

    def send(self, message: EmailMessage) -> None:
        with self._slots:
            if self._unreachable is not None and time.monotonic() < self._unreachable[0]:
                raise ServerUnreachable(self._unreachable[1], tried=False)
            with self._lock:
                client = self._idle.pop() if self._idle else None
            if client is not None:
                try:
                    client.noop()  # the server may have closed it while it sat idle
                except (OSError, smtplib.SMTPException):
                    _close(client)
                    client = None
            try:
                if client is None:
                    client = self._connect()
                client.send_message(message)
            except (
                smtplib.SMTPResponseException,
                smtplib.SMTPRecipientsRefused,
                smtplib.SMTPNotSupportedError,  # an address needs SMTPUTF8, not offered
            ):
                # The server answered, about this message: the connection still serves.
                self._keep(client, reset=True)
                raise
            except (OSError, smtplib.SMTPServerDisconnected) as exc:
                if client is not None:
                    _close(client)
                why = f"{self.host}:{self.port} did not answer: {str(exc) or type(exc).__name__}"
                self._unreachable = (time.monotonic() + self.PAUSE, why)
                raise ServerUnreachable(why, tried=True) from exc
            except BaseException:
                if client is not None:
                    _close(client)
                raise
            self._unreachable = None
            self._keep(client)

    def _keep(self, client: smtplib.SMTP | None, *, reset: bool = False) -> None:
        if client is None:
            return
        if reset:
            try:
                client.rset()
            except (OSError, smtplib.SMTPException):
                _close(client)
                return
        with self._lock:
            self._idle.append(client)

    def close(self) -> None:
        """Say goodbye on every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for client in idle:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                _close(client)


def _close(client: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        client.close()


def mailer_from_settings(settings: Settings) -> Mailer:
    """SMTP when SMTP_URL is set; otherwise the outbox folder, so a fresh install still works."""
    if settings.smtp_url:
        return SmtpMailer(settings.smtp_url, connections=settings.smtp_connections)
    return OutboxMailer(settings.outbox_path)
