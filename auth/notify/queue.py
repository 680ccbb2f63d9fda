"""The notice queue: claim due notices, send them through a Mailer, record the outcome.

Delivery is at least once. A notice is claimed (status `sending`, a lease, attempts + 1) in
a short transaction, sent with no transaction open (SMTP can take seconds; SQLite would
hold its write lock all that time), then marked in another. A worker that dies between
sending and marking leaves a lease that expires, and the notice goes again with the same
Message-ID, so a duplicate is recognisable.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import logging
import re
import smtplib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from auth.config import Settings
from auth.db import Database
from auth.models import Account, Notice, NoticeStatus, utcnow
from auth.notify.mailers import Mailer, ServerUnreachable
from auth.notify.messages import build_message
from auth.reset import tokens

# Log lines keep the logger name they had before the split (JSON logs show it).
log = logging.getLogger("auth.notify")

LEASE = dt.timedelta(minutes=5)  # longer than one SMTP exchange with its timeout
FIRST_RETRY = dt.timedelta(seconds=30)
MAX_RETRY = dt.timedelta(hours=1)
SUPERSEDED = "superseded: the reset link is no longer valid"


@dataclass(frozen=True)
class DrainReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0  # for good: refused, or out of attempts
    skipped: int = 0  # superseded: the link died before sending (stored as failed)
    refused: int = 0  # of `failed`: the server refused the message or its recipient (5xx)
    waiting: int = 0  # not tried: the server had stopped answering; no attempt spent


class SendResult(enum.Enum):
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"
    REFUSED = "refused"  # failed at once: a permanent refusal
    SKIPPED = "skipped"
    WAITING = "waiting"  # put back untried
    LOST = "lost"  # our lease ran out and another worker took the notice


@dataclass(frozen=True)
class Claim:
    id: int
    attempts: int  # after the claim's increment: it names this claim, whatever the clock says


# A queued row's class: the notices, and the alerts' deliveries (auth/activity/deliveries.py),
# both with id, status (NoticeStatus's values), attempts, next_attempt_at and lease_until.
Queued = Any


@dataclass(frozen=True)
class _Ready:
    message: EmailMessage
    secrets: tuple[str, ...]  # what must never reach last_error


def _claimable(now: dt.datetime, model: Queued = Notice) -> Any:
    return or_(
        and_(model.status == NoticeStatus.QUEUED, model.next_attempt_at <= now),
        and_(model.status == NoticeStatus.SENDING, model.lease_until < now),
    )


def claim_due(db: Database, model: Queued, *, now: dt.datetime, batch: int) -> list[Claim]:
    """One WITH pick AS (SELECT … LIMIT n) UPDATE … RETURNING. On PostgreSQL the pick locks
    with SKIP LOCKED, so two workers take disjoint rows without waiting; on SQLite (where
    FOR UPDATE renders as nothing) the UPDATE takes the write lock before it reads."""
    pick = (
        select(model.id)
        .where(_claimable(now, model))
        .order_by(model.next_attempt_at, model.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
        # Materialised: as an IN (sub-select), PostgreSQL may rescan it and claim past LIMIT.
        .cte("pick")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    stmt = (
        update(model)
        .where(model.id.in_(select(pick.c.id)), _claimable(now, model))
        .values(status=NoticeStatus.SENDING, lease_until=now + LEASE, attempts=model.attempts + 1)
        .returning(model.id, model.attempts)
        .execution_options(synchronize_session=False)
    )
    with db.session() as session:
        return sorted((Claim(i, a) for i, a in session.execute(stmt)), key=lambda c: c.id)


def _ours(claim: Claim, model: Queued = Notice) -> Any:
    return and_(
        model.id == claim.id,
        model.status == NoticeStatus.SENDING,
        model.attempts == claim.attempts,
    )


def finish(session: Session, model: Queued, claim: Claim, **values: object) -> bool:
    """Record a claim's outcome (its lease let go); False when the claim is no longer ours."""
    result = session.execute(
        update(model)
        .where(_ours(claim, model))
        .values(lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def renew(session: Session, model: Queued, claim: Claim, *, now: dt.datetime) -> bool:
    """Extend a claim's lease before sending; False when another worker has taken it."""
    renewed = session.execute(
        update(model)
        .where(_ours(claim, model))
        .values(lease_until=now + LEASE)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(renewed, "rowcount", 0))


def _prepare(
    db: Database, claim: Claim, *, settings: Settings, now: dt.datetime
) -> _Ready | SendResult:
    with db.session() as session:
        # Written first: SQLite takes its write lock now, and a lost lease shows here.
        if not renew(session, Notice, claim, now=now):
            return SendResult.LOST
        notice = session.get_one(Notice, claim.id)
        account = session.get_one(Account, notice.account_id)
        if claim.attempts > settings.notice_max_attempts:  # workers kept dying on this one
            finish(
                session,
                Notice,
                claim,
                status=NoticeStatus.FAILED,
                last_error="gave up: no worker finished sending it",
            )
            return SendResult.FAILED
        link = _link(session, notice, settings=settings, now=now)
        if link is None:  # used, revoked (newer link, password changed): do not send
            finish(session, Notice, claim, status=NoticeStatus.FAILED, last_error=SUPERSEDED)
            return SendResult.SKIPPED
        message = build_message(notice, account, link=link, settings=settings, now=now)
        token = link.removeprefix(f"{settings.public_url}/reset/")
        return _Ready(message, secrets=(link, token))


def _link(session: Session, notice: Notice, *, settings: Settings, now: dt.datetime) -> str | None:
    """The reset link, its token's lifetime started now; None if the token is dead."""
    if notice.token_id is None:  # its row is gone: point to the page that issues a new one
        return f"{settings.public_url}/forgot"
    token = tokens.activate(
        session,
        notice.token_id,
        secret_key=settings.secret_key,
        lifetime=tokens.lifetime(notice.kind, settings),
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


def refused_for_good(exc: BaseException) -> bool:
    """A 5xx about this message (its recipient, its content) will not change on a retry.
    A 5xx to our greeting, sender or login is about the configuration: that is retried,
    so fixing SMTP_URL or MAIL_FROM lets the queue drain."""
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return True  # an address needs SMTPUTF8, which this server does not offer
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(500 <= code < 600 for code, _ in exc.recipients.values())
    if isinstance(
        exc,
        smtplib.SMTPConnectError
        | smtplib.SMTPHeloError
        | smtplib.SMTPAuthenticationError
        | smtplib.SMTPSenderRefused,
    ):
        return False
    return isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600


def after_failure(
    refused: bool, claim: Claim, *, max_attempts: int, now: dt.datetime
) -> tuple[SendResult, dict[str, object]]:
    """A failed attempt's outcome and the row's new values: refused for good, retried
    after retry_delay, or failed once out of attempts."""
    if refused:
        return SendResult.REFUSED, {"status": NoticeStatus.FAILED}
    if claim.attempts < max_attempts:
        return SendResult.RETRYING, {
            "status": NoticeStatus.QUEUED,
            "next_attempt_at": now + retry_delay(claim.attempts),
        }
    return SendResult.FAILED, {"status": NoticeStatus.FAILED}


def put_back_untried(
    session: Session, model: Queued, claim: Claim, *, now: dt.datetime
) -> SendResult:
    """The mail server had stopped answering before this claim was tried: it waits again,
    its attempt given back and its last_error as it was."""
    back = finish(
        session,
        model,
        claim,
        status=NoticeStatus.QUEUED,
        attempts=claim.attempts - 1,
        next_attempt_at=now + FIRST_RETRY,
    )
    return SendResult.WAITING if back else SendResult.LOST


def _record_failure(
    db: Database,
    claim: Claim,
    exc: Exception,
    *,
    settings: Settings,
    now: dt.datetime,
    secrets: tuple[str, ...],
) -> SendResult:
    error = describe(exc, secrets)
    with db.session() as session:
        if isinstance(exc, ServerUnreachable) and not exc.tried:
            return put_back_untried(session, Notice, claim, now=now)
        outcome, values = after_failure(
            refused_for_good(exc), claim, max_attempts=settings.notice_max_attempts, now=now
        )
        if not finish(session, Notice, claim, last_error=error, **values):
            return SendResult.LOST
    log.warning("notice %s: attempt %s %s: %s", claim.id, claim.attempts, outcome.value, error)
    return outcome


def _deliver(
    db: Database,
    claim: Claim,
    *,
    mailer: Mailer,
    settings: Settings,
    now: Callable[[], dt.datetime],
    worker: str,
) -> SendResult:
    secrets: tuple[str, ...] = ()
    try:
        prepared = _prepare(db, claim, settings=settings, now=now())
        if isinstance(prepared, SendResult):
            return prepared
        secrets = prepared.secrets
        mailer.send(prepared.message)
    except Exception as exc:  # any failure of one notice must not stop the others
        return _record_failure(db, claim, exc, settings=settings, now=now(), secrets=secrets)
    with db.session() as session:
        if not finish(
            session, Notice, claim, status=NoticeStatus.SENT, sent_at=now(), last_error=None
        ):
            log.warning("notice %s was sent, but its lease had run out: it may go twice", claim.id)
    log.info(
        "notice %s sent (attempt %s)%s", claim.id, claim.attempts, f" by {worker}" if worker else ""
    )
    return SendResult.SENT


def drain_due(
    db: Database,
    model: Queued,
    deliver: Callable[[Claim], SendResult],
    *,
    now: Callable[[], dt.datetime],
    batch: int,
    limit: int | None,
    send_each: Callable[..., Iterable[SendResult]] = map,
) -> dict[SendResult, int]:
    """Claim the rows of `model` due now, `batch` at a time, and deliver each (through
    `send_each`, a thread pool's map when several go at once); stop claiming once one
    waits for the mail server. The results, counted: notices and alert deliveries alike."""
    counts = dict.fromkeys(SendResult, 0)
    handled = 0
    while limit is None or handled < limit:
        size = batch if limit is None else min(batch, limit - handled)
        claims = claim_due(db, model, now=now(), batch=size)
        if not claims:
            break
        for result in send_each(deliver, claims):
            counts[result] += 1
        handled += len(claims)
        if counts[SendResult.WAITING]:
            break
    return counts


def drain(
    db: Database,
    *,
    mailer: Mailer,
    settings: Settings,
    now: Callable[[], dt.datetime] = utcnow,
    batch: int = 50,
    worker: str = "",
    limit: int | None = None,
    parallel: int = 1,
) -> DrainReport:
    """Send every notice due now, claiming `batch` at a time; safe with several workers.
    `parallel` notices are sent at once (threads: an SMTP exchange is mostly waiting,
    and after a mass reset the queue holds one notice per account). The run stops
    claiming once the server stops answering; what it had claimed waits, untried."""
    deliver = functools.partial(
        _deliver, db, mailer=mailer, settings=settings, now=now, worker=worker
    )
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="notice") as pool:
        counts = drain_due(
            db, Notice, deliver, now=now, batch=batch, limit=limit, send_each=pool.map
        )
    return DrainReport(
        sent=counts[SendResult.SENT],
        retrying=counts[SendResult.RETRYING],
        failed=counts[SendResult.FAILED] + counts[SendResult.REFUSED],
        skipped=counts[SendResult.SKIPPED],
        refused=counts[SendResult.REFUSED],
        waiting=counts[SendResult.WAITING],
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
