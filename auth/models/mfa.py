"""Second factors, their throttle, and the daily second-factor census."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from auth.models.base import Base, UTCDateTime, utcnow


class FactorKind(enum.StrEnum):
    TOTP = "totp"
    WEBAUTHN = "webauthn"


class MfaFactor(Base):
    """A second factor: an authenticator app (TOTP) or a security key / passkey (WebAuthn)."""

    __tablename__ = "mfa_factors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # None: pending
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # TOTP: the secret, AES-GCM encrypted; the last accepted time step (replay guard).
    secret_enc: Mapped[str | None] = mapped_column(Text)
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    # WebAuthn credential.
    credential_id: Mapped[bytes | None] = mapped_column(LargeBinary(1023), unique=True)
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[str] = mapped_column(Text, default="[]")
    aaguid: Mapped[str | None] = mapped_column(String(36))
    backup_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    backup_state: Mapped[bool] = mapped_column(Boolean, default=False)
    possibly_cloned: Mapped[bool] = mapped_column(Boolean, default=False)


class RecoveryCode(Base):
    """A single-use recovery code; only its SHA-256 is kept (80 random bits each)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    code_sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class WebauthnChallenge(Base):
    """A server-side WebAuthn challenge: single-use, short-lived, shared by every instance."""

    __tablename__ = "webauthn_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16))  # register | authenticate
    challenge: Mapped[bytes] = mapped_column(LargeBinary(64))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class MfaThrottle(Base):
    """Second-factor failures per account, in the database so every worker sees them."""

    __tablename__ = "mfa_throttle"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    locks: Mapped[int] = mapped_column(Integer, default=0)  # grows the next lock's length


class CoverageDay(Base):
    """Second-factor coverage, one row per day: the console's chart and the incident
    report's "before and after" read these (factors removed later do not rewrite history)."""

    __tablename__ = "coverage_daily"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    accounts: Mapped[int] = mapped_column(Integer, default=0)
    none: Mapped[int] = mapped_column(Integer, default=0)
    totp: Mapped[int] = mapped_column(Integer, default=0)
    webauthn: Mapped[int] = mapped_column(Integer, default=0)
    both: Mapped[int] = mapped_column(Integer, default=0)
