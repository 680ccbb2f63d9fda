"""Where notices go: an SMTP server, or a folder of .eml files when there is none."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import smtplib
import socket
import ssl
import tempfile
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


class OutboxMailer:
    """Writes each message as an .eml file: the default, so nothing needs an SMTP server.

    The files hold live reset links, hence the private folder and files.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

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


class SmtpMailer:
    """SMTP from a URL: smtp://user:pass@host:port[?starttls=auto|never|required&cafile=…],
    or smtps://… for implicit TLS. One connection per message: notices are few and sparse."""

    def __init__(self, url: str, *, timeout: float = 10) -> None:
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
        self.timeout = timeout
        try:
            self._tls = ssl.create_default_context(cafile=query.get("cafile"))
        except (OSError, ssl.SSLError) as exc:
            raise InvalidInput(
                f"SMTP_URL: cannot read cafile {query.get('cafile')}: {exc}"
            ) from None
        self._ehlo_name = socket.getfqdn()

    def __repr__(self) -> str:  # the password must not reach a log line
        who = f"{self.user}@" if self.user else ""
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"SmtpMailer({scheme}://{who}{self.host}:{self.port}, starttls={self.starttls})"

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            return smtplib.SMTP_SSL(
                self.host, self.port, self._ehlo_name, timeout=self.timeout, context=self._tls
            )
        return smtplib.SMTP(self.host, self.port, self._ehlo_name, timeout=self.timeout)

    def send(self, message: EmailMessage) -> None:
        with self._connect() as client:
            client.ehlo()
            if not self.implicit_tls and self.starttls != "never":
                if client.has_extn("starttls"):
                    client.starttls(context=self._tls)
                    client.ehlo()
                elif self.starttls == "required":
                    raise MailError(f"{self.host}:{self.port} does not offer STARTTLS")
            if self.user is not None:
                client.login(self.user, self._password)
            client.send_message(message)


def mailer_from_settings(settings: Settings) -> Mailer:
    """SMTP when SMTP_URL is set; otherwise the outbox folder, so a fresh install still works."""
    if settings.smtp_url:
        return SmtpMailer(settings.smtp_url)
    return OutboxMailer(settings.outbox_path)
