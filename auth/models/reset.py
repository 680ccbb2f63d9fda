"""Forced resets, their jobs and tokens, and the notice queue."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from auth.models.base import Base, UTCDateTime, utcnow


class ResetReason(enum.StrEnum):
    """Why a reset was forced, stored as a code and worded in the reader's language
    (auth/reset/reasons.py). A person's own words, when they gave some, are kept beside it
    as a note and quoted as such."""

    PASSWORD_BREACHED = "password_breached"  # the password is in a breach corpus
    POSSIBLE_EXPOSURE = "possible_exposure"  # a leak may have exposed it
    SECURITY_TEAM = "security_team"  # a person of the security team asked, with a note
    NOT_ME = "not_me"  # the person said a sign-in to their account was not them
    ACTIVITY_BLOCK = "activity_block"  # the activity guard blocked robot-like activity


class JobStatus(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"


class ResetJob(Base):
    """One `breachguard reset` run; the same input finds the same job, so a rerun resumes it."""

    __tablename__ = "reset_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(200))  # what was targeted, for people
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.RUNNING)
    targets: Mapped[int] = mapped_column(Integer, default=0)
    reset: Mapped[int] = mapped_column(Integer, default=0)
    already: Mapped[int] = mapped_column(Integer, default=0)
    unknown: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Reset(Base):
    """One forced reset of one account; `reset_key` makes it happen once per finding or job."""

    __tablename__ = "resets"
    # Its leading column serves the look-ups by account: no index of account_id alone.
    __table_args__ = (UniqueConstraint("account_id", "reset_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("reset_jobs.id"), index=True)
    finding_id: Mapped[int | None] = mapped_column(ForeignKey("findings.id", ondelete="SET NULL"))
    reset_key: Mapped[str] = mapped_column(String(64))  # finding:<id> or job:<id>
    reason_code: Mapped[str] = mapped_column(
        String(32), default=ResetReason.POSSIBLE_EXPOSURE, server_default="possible_exposure"
    )
    reason: Mapped[str] = mapped_column(Text)  # the note: a person's own words, or ""
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # new password set


class ResetToken(Base):
    """A reset link's token, kept only as SHA-256; it lives from the notice's sending.

    The link's token starts with the row's id, so a presented token is found by primary key
    and its digest compared in constant time: no index of the digests is needed (their
    random keys would make every bulk insert touch pages all over such an index)."""

    __tablename__ = "reset_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public: time, random
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    reset_id: Mapped[int | None] = mapped_column(ForeignKey("resets.id", ondelete="CASCADE"))
    token_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # set when sent
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class NoticeStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the last retry; still listed by `notices status`


class Notice(Base):
    """An e-mail to send, once: the idempotency key is unique (account + reset)."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))  # reset_forced | reset_requested
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    token_id: Mapped[str | None] = mapped_column(ForeignKey("reset_tokens.id", ondelete="SET NULL"))
    reason_code: Mapped[str] = mapped_column(
        String(32), default=ResetReason.POSSIBLE_EXPOSURE, server_default="possible_exposure"
    )
    reason: Mapped[str] = mapped_column(Text, default="")  # the note, quoted in the e-mail
    status: Mapped[str] = mapped_column(String(16), default=NoticeStatus.QUEUED, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
