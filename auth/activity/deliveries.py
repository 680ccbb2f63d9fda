"""Alerts pushed to the security team: the queue of AlertDelivery rows that `raise_alert`
fills, drained with the notice queue's machinery (auth/notify/queue.py).

The same rules as notices: a delivery is claimed with a lease (several workers take
disjoint rows), sent with no transaction open, then marked. A failure is retried after
`retry_delay` up to NOTICE_MAX_ATTEMPTS, unless the other end refused it for good: a 4xx
from the webhook (but 408 and 429), or a 5xx about the message from the mail server.
Errors are kept with the webhook's secret and URL cut out. Delivery is at least once: a
worker that dies after sending and before marking leaves a lease that expires, and the
alert goes again with the same X-Breachguard-Delivery (webhook) or Message-ID (e-mail).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth import metrics
from auth.activity import push
from auth.activity.alerts import EMAIL, WEBHOOK
from auth.config import Settings
from auth.db import Database
from auth.errors import NotFound
from auth.models import Account, Alert, AlertDelivery, NoticeStatus, utcnow
from auth.notify import queue
from auth.notify.mailers import Mailer, ServerUnreachable
from auth.notify.queue import Claim, SendResult

log = logging.getLogger("auth.alerts")


@dataclass(frozen=True)
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0  # for good: refused, or out of attempts
    waiting: int = 0  # not tried: the mail server had stopped answering; no attempt spent

    @property
    def handled(self) -> int:
        return self.sent + self.retrying + self.failed


def view(session: Session, alert_id: int) -> push.AlertView:
    """The alert and its accounts' e-mails (an account deleted since is left out)."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert #{alert_id}")
    rows = session.execute(
        select(Account.id, Account.email).where(Account.id.in_(alert.accounts or []))
    ).all()
    emails = dict(rows)
    return push.AlertView(alert, [(i, emails[i]) for i in alert.accounts if i in emails])


@dataclass(frozen=True)
class _Ready:
    channel: str
    body: bytes = b""  # the webhook's
    message: EmailMessage | None = None  # the e-mail


def _prepare(
    db: Database, claim: Claim, *, settings: Settings, now: dt.datetime
) -> _Ready | SendResult:
    with db.session() as session:
        # Written first: SQLite takes its write lock now, and a lost lease shows here.
        if not queue.renew(session, AlertDelivery, claim, now=now):
            return SendResult.LOST
        delivery = session.get_one(AlertDelivery, claim.id)
        if claim.attempts > settings.notice_max_attempts:  # workers kept dying on this one
            queue.finish(
                session,
                AlertDelivery,
                claim,
                status=NoticeStatus.FAILED,
                last_error="gave up: no worker finished sending it",
            )
            metrics.alert_pushed(delivery.channel, "failed")
            return SendResult.FAILED
        alert = view(session, delivery.alert_id)
        if delivery.channel == WEBHOOK:
            return _Ready(WEBHOOK, body=push.body_of(push.payload(alert, settings=settings)))
        if delivery.channel == EMAIL:
            if not settings.security_alert_email:
                raise push.NotConfigured("SECURITY_ALERT_EMAIL must be set to e-mail alerts")
            message = push.email_message(alert, delivery=claim.id, settings=settings, now=now)
            return _Ready(EMAIL, message=message)
        raise push.NotConfigured(f"unknown channel {delivery.channel!r}")


def _record_failure(
    db: Database, claim: Claim, exc: Exception, *, settings: Settings, now: dt.datetime
) -> SendResult:
    error = queue.describe(exc, push.secrets_of(settings))
    with db.session() as session:
        channel = session.execute(
            select(AlertDelivery.channel).where(AlertDelivery.id == claim.id)
        ).scalar_one()
        if isinstance(exc, ServerUnreachable) and not exc.tried:
            return queue.put_back_untried(session, AlertDelivery, claim, now=now)
        refused = (isinstance(exc, push.WebhookError) and exc.permanent) or (
            channel == EMAIL and queue.refused_for_good(exc)
        )
        outcome, values = queue.after_failure(
            refused, claim, max_attempts=settings.notice_max_attempts, now=now
        )
        if not queue.finish(session, AlertDelivery, claim, last_error=error, **values):
            return SendResult.LOST
    failed = outcome in (SendResult.FAILED, SendResult.REFUSED)
    metrics.alert_pushed(channel, "failed" if failed else "retrying")
    log.warning(
        "alert delivery %s (%s): attempt %s %s: %s",
        claim.id,
        channel,
        claim.attempts,
        outcome.value,
        error,
    )
    return outcome


def _deliver(
    db: Database,
    claim: Claim,
    *,
    settings: Settings,
    mailer: Mailer,
    webhook: push.Webhook,
    now: Callable[[], dt.datetime],
) -> SendResult:
    try:
        ready = _prepare(db, claim, settings=settings, now=now())
        if isinstance(ready, SendResult):
            return ready
        if ready.message is not None:
            mailer.send(ready.message)
        else:
            webhook.post(ready.body, delivery=claim.id, timestamp=int(now().timestamp()))
    except Exception as exc:  # any failure of one delivery must not stop the others
        return _record_failure(db, claim, exc, settings=settings, now=now())
    with db.session() as session:
        if not queue.finish(
            session, AlertDelivery, claim, status=NoticeStatus.SENT, sent_at=now(), last_error=None
        ):
            log.warning("alert delivery %s was sent, but its lease had run out", claim.id)
    metrics.alert_pushed(ready.channel, "sent")
    log.info("alert delivery %s sent by %s (attempt %s)", claim.id, ready.channel, claim.attempts)
    return SendResult.SENT


def drain(
    db: Database,
    *,
    settings: Settings,
    mailer: Mailer,
    webhook: push.Webhook,
    now: Callable[[], dt.datetime] = utcnow,
    batch: int = 20,
    limit: int | None = None,
) -> DeliveryReport:
    """Push every alert delivery due now, `batch` claimed at a time; safe with several
    workers. Stops claiming once the mail server stops answering."""
    deliver = functools.partial(
        _deliver, db, settings=settings, mailer=mailer, webhook=webhook, now=now
    )
    counts = queue.drain_due(db, AlertDelivery, deliver, now=now, batch=batch, limit=limit)
    return DeliveryReport(
        sent=counts[SendResult.SENT],
        retrying=counts[SendResult.RETRYING],
        failed=counts[SendResult.FAILED] + counts[SendResult.REFUSED],
        waiting=counts[SendResult.WAITING],
    )


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    alert_id: int
    channel: str
    status: str
    attempts: int
    last_error: str | None


def troubled(db: Database, *, limit: int = 50) -> list[DeliveryRow]:
    """The deliveries that failed or wait for a retry, newest first."""
    with db.session() as session:
        rows = session.execute(
            select(
                AlertDelivery.id,
                AlertDelivery.alert_id,
                AlertDelivery.channel,
                AlertDelivery.status,
                AlertDelivery.attempts,
                AlertDelivery.last_error,
            )
            .where(AlertDelivery.last_error.is_not(None), AlertDelivery.status != NoticeStatus.SENT)
            .order_by(AlertDelivery.id.desc())
            .limit(limit)
        ).all()
    return [DeliveryRow(*row) for row in rows]
