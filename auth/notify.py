"""Notice e-mails: render them, send them through a Mailer, and drain the queue.

Delivery is at least once. A notice is claimed (status `sending`, a lease, attempts + 1) in
a short transaction, sent with no transaction open (SMTP can take seconds; SQLite would
hold its write lock all that time), then marked in another. A worker that dies between
sending and marking leaves a lease that expires, and the notice goes again with the same
Message-ID, so a duplicate is recognisable.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import os
import re
import smtplib
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import jinja2
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from auth.config import LANGUAGES, Settings
from auth.db import Database
from auth.errors import BreachguardError, InvalidInput
from auth.models import Account, Notice, NoticeStatus, utcnow
from auth.reset import tokens

log = logging.getLogger(__name__)

KINDS = ("reset_forced", "reset_requested")
LEASE = dt.timedelta(minutes=5)  # longer than one SMTP exchange with its timeout
FIRST_RETRY = dt.timedelta(seconds=30)
MAX_RETRY = dt.timedelta(hours=1)
SUPERSEDED = "superseded: the reset link is no longer valid"
TEMPLATES = Path(__file__).resolve().parent / "templates" / "email"


class MailError(BreachguardError):
    """The mail server could not be used as configured (e.g. STARTTLS required, not offered)."""


# --- mailers ------------------------------------------------------------------------------


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


# --- messages -----------------------------------------------------------------------------

_html = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_text = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=False,  # noqa: S701 - plain text, never parsed as HTML
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def render(kind: str, *, language: str, context: Mapping[str, str]) -> tuple[str, str, str]:
    """(subject, text, html). The text template's first line is `Subject: …`, so a
    translation keeps its subject and body together; the HTML gets it as `subject`."""
    if kind not in KINDS or language not in LANGUAGES:
        raise InvalidInput(f"no e-mail template for kind {kind!r} in language {language!r}")
    text = _text.get_template(f"{kind}.{language}.txt").render(context)
    first, _, body = text.partition("\n")
    if not first.startswith("Subject: "):
        raise InvalidInput(f"{kind}.{language}.txt must start with a `Subject: ` line")
    subject = first.removeprefix("Subject: ").strip()
    html = _html.get_template(f"{kind}.{language}.html").render({**context, "subject": subject})
    return subject, body.lstrip("\n"), html


def message_id(idempotency_key: str, mail_from: str) -> str:
    """The same notice always gets the same Message-ID, so a resend after a crash is visible."""
    digest = hashlib.sha256(b"notice:" + idempotency_key.encode()).hexdigest()[:32]
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "breachguard.invalid"
    return f"<{digest}@{domain}>"


def build_message(
    notice: Notice,
    account: Account,
    *,
    link: str,
    settings: Settings,
    now: dt.datetime | None = None,
) -> EmailMessage:
    """The notice as an e-mail. Nothing from the person goes into a header but their name and
    address (both encoded by the e-mail library), so no header can be injected."""
    language = account.language if account.language in LANGUAGES else settings.default_language
    subject, text, html = render(
        notice.kind,
        language=language,
        context={
            "name": account.name,
            "reason": notice.reason or account.reset_reason or "",
            "link": link,
            "minutes": str(settings.reset_token_minutes),
            "security_url": f"{settings.public_url}/account/security",
            "forgot_url": f"{settings.public_url}/forgot",
        },
    )
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = Address(display_name=" ".join(account.name.split()), addr_spec=account.email)
    message["Subject"] = subject
    message["Date"] = format_datetime(now or utcnow())
    message["Message-ID"] = message_id(notice.idempotency_key, settings.mail_from)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message["X-Auto-Response-Suppress"] = "All"  # the same, for Exchange
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


# --- the queue ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DrainReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0  # superseded: the link died before sending (stored as failed)


class _Outcome(enum.Enum):
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"
    SKIPPED = "skipped"
    LOST = "lost"  # our lease ran out and another worker took the notice


@dataclass(frozen=True)
class _Claim:
    id: int
    attempts: int  # after the claim's increment: it names this claim, whatever the clock says


@dataclass(frozen=True)
class _Prepared:
    message: EmailMessage
    secrets: tuple[str, ...]  # what must never reach last_error


def _claimable(now: dt.datetime) -> Any:
    return or_(
        and_(Notice.status == NoticeStatus.QUEUED, Notice.next_attempt_at <= now),
        and_(Notice.status == NoticeStatus.SENDING, Notice.lease_until < now),
    )


def _claim(db: Database, *, now: dt.datetime, batch: int) -> list[_Claim]:
    """One WITH pick AS (SELECT … LIMIT n) UPDATE … RETURNING. On PostgreSQL the pick locks
    with SKIP LOCKED, so two workers take disjoint rows without waiting; on SQLite (where
    FOR UPDATE renders as nothing) the UPDATE takes the write lock before it reads."""
    pick = (
        select(Notice.id)
        .where(_claimable(now))
        .order_by(Notice.next_attempt_at, Notice.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
        # Materialised: as an IN (sub-select), PostgreSQL may rescan it and claim past LIMIT.
        .cte("pick")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    stmt = (
        update(Notice)
        .where(Notice.id.in_(select(pick.c.id)), _claimable(now))
        .values(status=NoticeStatus.SENDING, lease_until=now + LEASE, attempts=Notice.attempts + 1)
        .returning(Notice.id, Notice.attempts)
        .execution_options(synchronize_session=False)
    )
    with db.session() as session:
        return sorted((_Claim(i, a) for i, a in session.execute(stmt)), key=lambda c: c.id)


def _ours(claim: _Claim) -> Any:
    return and_(
        Notice.id == claim.id,
        Notice.status == NoticeStatus.SENDING,
        Notice.attempts == claim.attempts,
    )


def _finish(session: Session, claim: _Claim, **values: object) -> bool:
    result = session.execute(
        update(Notice)
        .where(_ours(claim))
        .values(lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def _prepare(
    db: Database, claim: _Claim, *, settings: Settings, now: dt.datetime
) -> _Prepared | _Outcome:
    with db.session() as session:
        # Written first: SQLite takes its write lock now, and a lost lease shows here.
        renewed = session.execute(
            update(Notice)
            .where(_ours(claim))
            .values(lease_until=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        if not getattr(renewed, "rowcount", 0):
            return _Outcome.LOST
        notice = session.get_one(Notice, claim.id)
        account = session.get_one(Account, notice.account_id)
        if claim.attempts > settings.notice_max_attempts:  # workers kept dying on this one
            _finish(
                session,
                claim,
                status=NoticeStatus.FAILED,
                last_error="gave up: no worker finished sending it",
            )
            return _Outcome.FAILED
        link = _link(session, notice, settings=settings, now=now)
        if link is None:  # used, revoked (newer link, password changed): do not send
            _finish(session, claim, status=NoticeStatus.FAILED, last_error=SUPERSEDED)
            return _Outcome.SKIPPED
        message = build_message(notice, account, link=link, settings=settings, now=now)
        token = link.removeprefix(f"{settings.public_url}/reset/")
        return _Prepared(message, secrets=(link, token))


def _link(session: Session, notice: Notice, *, settings: Settings, now: dt.datetime) -> str | None:
    """The reset link, its token's lifetime started now; None if the token is dead."""
    if notice.token_id is None:  # its row is gone: point to the page that issues a new one
        return f"{settings.public_url}/forgot"
    token = tokens.activate(
        session,
        notice.token_id,
        secret_key=settings.secret_key,
        lifetime=dt.timedelta(minutes=settings.reset_token_minutes),
        now=now,
    )
    return None if token is None else f"{settings.public_url}/reset/{token}"


def retry_delay(attempts: int) -> dt.timedelta:
    """30 s, 1 min, 2 min, … capped at an hour: a mail server outage is ridden out, not hammered."""
    delay: dt.timedelta = FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(delay, MAX_RETRY)


def describe(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """A short, single-line error for `notices status`; secrets are cut out."""
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        error = error.decode("utf-8", "replace") if isinstance(error, bytes) else error
        detail = f"{exc.smtp_code} {error}"
    else:
        detail = str(exc)
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return re.sub(r"\s+", " ", text).strip()[:500]


def _record_failure(
    db: Database,
    claim: _Claim,
    exc: Exception,
    *,
    settings: Settings,
    now: dt.datetime,
    secrets: tuple[str, ...],
) -> _Outcome:
    error = describe(exc, secrets)
    with db.session() as session:
        if claim.attempts < settings.notice_max_attempts:
            outcome = _Outcome.RETRYING
            values: dict[str, object] = {
                "status": NoticeStatus.QUEUED,
                "next_attempt_at": now + retry_delay(claim.attempts),
            }
        else:
            outcome, values = _Outcome.FAILED, {"status": NoticeStatus.FAILED}
        if not _finish(session, claim, last_error=error, **values):
            return _Outcome.LOST
    log.warning("notice %s: attempt %s %s: %s", claim.id, claim.attempts, outcome.value, error)
    return outcome


def _deliver(
    db: Database,
    claim: _Claim,
    *,
    mailer: Mailer,
    settings: Settings,
    now: Callable[[], dt.datetime],
    worker: str,
) -> _Outcome:
    secrets: tuple[str, ...] = ()
    try:
        prepared = _prepare(db, claim, settings=settings, now=now())
        if isinstance(prepared, _Outcome):
            return prepared
        secrets = prepared.secrets
        mailer.send(prepared.message)
    except Exception as exc:  # any failure of one notice must not stop the others
        return _record_failure(db, claim, exc, settings=settings, now=now(), secrets=secrets)
    with db.session() as session:
        if not _finish(session, claim, status=NoticeStatus.SENT, sent_at=now(), last_error=None):
            log.warning("notice %s was sent, but its lease had run out: it may go twice", claim.id)
    log.info(
        "notice %s sent (attempt %s)%s", claim.id, claim.attempts, f" by {worker}" if worker else ""
    )
    return _Outcome.SENT


def drain(
    db: Database,
    *,
    mailer: Mailer,
    settings: Settings,
    now: Callable[[], dt.datetime] = utcnow,
    batch: int = 50,
    worker: str = "",
    limit: int | None = None,
) -> DrainReport:
    """Send every notice due now, claiming `batch` at a time; safe with several workers."""
    counts = dict.fromkeys(_Outcome, 0)
    handled = 0
    while limit is None or handled < limit:
        size = batch if limit is None else min(batch, limit - handled)
        claims = _claim(db, now=now(), batch=size)
        if not claims:
            break
        for claim in claims:
            counts[
                _deliver(db, claim, mailer=mailer, settings=settings, now=now, worker=worker)
            ] += 1
        handled += len(claims)
    return DrainReport(
        sent=counts[_Outcome.SENT],
        retrying=counts[_Outcome.RETRYING],
        failed=counts[_Outcome.FAILED],
        skipped=counts[_Outcome.SKIPPED],
    )


# --- status -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeRow:
    id: int
    email: str
    kind: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None


@dataclass(frozen=True)
class NoticeStatusReport:
    counts: dict[str, int]  # every status, zero included
    problems: list[NoticeRow] = field(default_factory=list)  # failed, then retrying
    more: int = 0  # problems beyond the listed ones


def status(db: Database, *, limit: int = 100) -> NoticeStatusReport:
    """Counts per status, and the notices that failed or are waiting for a retry.

    A fresh queued notice is only counted: after a bulk reset there are thousands.
    """
    troubled = or_(
        Notice.status == NoticeStatus.FAILED,
        and_(Notice.status == NoticeStatus.QUEUED, Notice.attempts > 0),
    )
    with db.session() as session:
        counts = dict.fromkeys((s.value for s in NoticeStatus), 0)
        for name, count in session.execute(
            select(Notice.status, func.count()).group_by(Notice.status)
        ):
            counts[name] = count
        total = session.execute(select(func.count()).where(troubled)).scalar_one()
        rows = session.execute(
            select(
                Notice.id,
                Account.email,
                Notice.kind,
                Notice.status,
                Notice.attempts,
                Notice.next_attempt_at,
                Notice.last_error,
            )
            .join(Account, Account.id == Notice.account_id)
            .where(troubled)
            .order_by(
                (Notice.status == NoticeStatus.FAILED).desc(), Notice.next_attempt_at, Notice.id
            )
            .limit(limit)
        ).all()
    problems = [NoticeRow(*row) for row in rows]
    return NoticeStatusReport(counts, problems, total - len(problems))


# --- in the background --------------------------------------------------------------------


def start_background(
    settings: Settings,
    *,
    interval: float = 10.0,
    idle: Callable[[Database], object] | None = None,
) -> threading.Thread:
    """Drain every `interval` seconds (at once, too) in a daemon thread that never raises:
    a mail or database outage is logged and retried, the server it lives in carries on.
    `idle` runs when the queue is empty (other housekeeping, under the same fork guard).

    The thread lives in gunicorn's master, which forks workers. A fork in the middle of a
    database call would give the child a C-level lock (SQLite's) that nobody will release,
    and the worker hangs. So a fork waits for the notice in hand (one at a time, so at most
    one SMTP exchange), and the child drops its copies of our connections without closing
    them, which would break them for the master.
    """
    db = Database(settings.database_url)
    mailer = mailer_from_settings(settings)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    guard = threading.Lock()

    def in_child() -> None:
        guard.release()
        db.engine.dispose(close=False)

    os.register_at_fork(
        before=guard.acquire, after_in_parent=guard.release, after_in_child=in_child
    )

    def loop() -> None:
        while True:
            handled = 0
            try:
                with guard:
                    report = drain(db, mailer=mailer, settings=settings, worker=worker, limit=1)
                    handled = report.sent + report.retrying + report.failed + report.skipped
                    if not handled and idle is not None:
                        idle(db)
            except Exception:
                log.exception("notice drain failed; trying again in %s s", interval)
            # A short pause even when busy: a fork waiting for the guard gets it first.
            time.sleep(0.01 if handled else interval)

    thread = threading.Thread(target=loop, name="notice-drain", daemon=True)
    thread.start()
    return thread
