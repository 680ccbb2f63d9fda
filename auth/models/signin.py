"""What the sign-in keeps: bans, failures per address, continuations, and the pages'
sessions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from auth.models.base import Base, UTCDateTime, utcnow


class IpBan(Base):
    """A banned address or network, set by hand (`breachguard ban`) or by the login flow."""

    __tablename__ = "ip_bans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network: Mapped[str] = mapped_column(String(49), index=True)  # CIDR, e.g. 203.0.113.7/32
    reason: Mapped[str] = mapped_column(Text, default="")
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # None: until removed
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class IpFailure(Base):
    """Wrong passwords per client address in the current window (automatic bans)."""

    __tablename__ = "ip_failures"

    ip: Mapped[str] = mapped_column(String(45), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class LoginContinuation(Base):
    """Between the password and the second factor: a single-use, short-lived token.

    Only the token's SHA-256 is stored. It is bound to the account's session epoch, so a
    forced reset between the two steps voids it.
    """

    __tablename__ = "login_continuations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the token
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    session_epoch: Mapped[int] = mapped_column(Integer)
    ip: Mapped[str] = mapped_column(String(45), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    challenge_id: Mapped[str | None] = mapped_column(String(32))  # WebAuthn, when asked


class WebSession(Base):
    """A signed-in browser on the pages. The cookie holds a random secret; only its SHA-256
    is kept here, so deleting the row (sign-out) makes a copy of the cookie useless. It
    ends at `expires_at`: the earlier of the sign-in plus SESSION_LIFETIME and the last
    request plus SESSION_IDLE_TIMEOUT, moved on as the person works."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the secret
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    session_epoch: Mapped[int] = mapped_column(Integer)  # the account's, at sign-in
    mfa: Mapped[bool] = mapped_column(Boolean, default=False)  # a second factor was checked
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
