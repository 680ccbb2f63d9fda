"""Accounts and API keys."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from auth.models.base import Base, UTCDateTime, utcnow


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    RESET_REQUIRED = "reset_required"
    LOCKED = "locked"
    DISABLED = "disabled"


class Role(enum.StrEnum):
    HOOK = "hook"
    SECURITY = "security"
    ADMIN = "admin"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    email_sha1: Mapped[bytes] = mapped_column(LargeBinary(20), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    professional_id: Mapped[str | None] = mapped_column(String(64), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default=AccountStatus.ACTIVE)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    # Set by policy (a forced reset, a finding): the last second factor cannot be removed.
    mfa_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Chosen with the pages' language switch; pages and e-mails use it. None: the default.
    language: Mapped[str | None] = mapped_column(String(8))
    # While a reset is required: why (a ResetReason code), and a person's note, if any.
    reset_reason_code: Mapped[str | None] = mapped_column(String(32))
    reset_reason: Mapped[str | None] = mapped_column(Text)
    # Consecutive wrong passwords (auth/signin/lockout.py): backoff after a few, a lock after more.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_failed_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # MFA_REQUIRED=all: when this account's grace period to enroll a factor began.
    mfa_grace_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # May open the security console (/admin), and only after a second factor.
    admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """A scoped API key; only the SHA-256 of its secret part is kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # A key that acts for one person (revoked with that account's forced reset).
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
