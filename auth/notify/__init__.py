"""Notice e-mails: render them (messages), send them (mailers), drain the queue (queue, worker).

Callers import this package (`from auth import notify`).
"""

from auth.notify.mailers import (
    Mailer,
    MailError,
    OutboxMailer,
    SmtpMailer,
    mailer_from_settings,
)
from auth.notify.messages import KINDS, TEMPLATES, build_message, message_id, render
from auth.notify.queue import (
    FIRST_RETRY,
    LEASE,
    MAX_RETRY,
    SUPERSEDED,
    DrainReport,
    NoticeRow,
    NoticeStatusReport,
    describe,
    drain,
    retry_delay,
    status,
)
from auth.notify.worker import BackgroundDrain, start_background

__all__ = [
    "FIRST_RETRY",
    "KINDS",
    "LEASE",
    "MAX_RETRY",
    "SUPERSEDED",
    "TEMPLATES",
    "BackgroundDrain",
    "DrainReport",
    "MailError",
    "Mailer",
    "NoticeRow",
    "NoticeStatusReport",
    "OutboxMailer",
    "SmtpMailer",
    "build_message",
    "describe",
    "drain",
    "mailer_from_settings",
    "message_id",
    "render",
    "retry_delay",
    "start_background",
    "status",
]
