"""Tables. Digests are stored as 20 raw bytes (SHA-1), never as plaintext."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        result: dt.datetime = value.astimezone(dt.UTC)
        return result if dialect.name != "sqlite" else result.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
        return value.astimezone(dt.UTC)  # type: ignore[no-any-return]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table(model: type[Base]) -> Table:
    """A model's Core table, for executemany and set-based statements on hot paths."""
    result: Table = model.__table__  # type: ignore[assignment]
    return result


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    RESET_REQUIRED = "reset_required"
    LOCKED = "locked"
    DISABLED = "disabled"


class BreachKind(enum.StrEnum):
    PASSWORDS = "passwords"
    EMAILS = "emails"
    COMBOS = "combos"


class FindingKind(enum.StrEnum):
    """Ordered from most to least urgent."""

    VALID_CREDENTIAL = "valid_credential"  # a leaked e-mail:password still signs in
    PASSWORD_IN_BREACH = "password_in_breach"  # the password is in a corpus
    EMAIL_IN_BREACH = "email_in_breach"  # the e-mail address appears in a breach


class FindingStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


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
    language: Mapped[str | None] = mapped_column(String(8))  # notices; None: the default
    reset_reason: Mapped[str | None] = mapped_column(Text)  # why a reset is required
    # Consecutive wrong passwords (auth/signin/lockout.py): backoff after a few, a lock after more.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_failed_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # MFA_REQUIRED=all: when this account's grace period to enroll a factor began.
    mfa_grace_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # May open the security console (/admin), and only after a second factor.
    admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Breach(Base):
    """One imported corpus; re-importing the same name replaces its entries."""

    __tablename__ = "breaches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    breach_date: Mapped[dt.date | None] = mapped_column(Date)
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    lines_read: Mapped[int] = mapped_column(BigInteger, default=0)
    lines_bad: Mapped[int] = mapped_column(BigInteger, default=0)
    password_entries: Mapped[int] = mapped_column(BigInteger, default=0)
    email_entries: Mapped[int] = mapped_column(BigInteger, default=0)
    # When `monitor` last checked the accounts against this import (None: not yet, or
    # re-imported since): the monitor re-checks only breaches where this lags imported_at.
    checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


# The corpus tables carry breach_id without a foreign key: PostgreSQL checks a foreign key
# row by row, which cut bulk loads from ~400k to ~90k rows/s. Only the importer writes
# these rows, always for a breach row it holds in the same transaction.


class PwnedPassword(Base):
    """SHA-1 of a leaked password and how often one breach saw it."""

    __tablename__ = "pwned_passwords"
    __table_args__ = ({"sqlite_with_rowid": False},)

    sha1: Mapped[bytes] = mapped_column(LargeBinary(20), primary_key=True)
    breach_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class BreachedEmail(Base):
    """SHA-1 of a normalised e-mail address found in one breach."""

    __tablename__ = "breached_emails"
    __table_args__ = ({"sqlite_with_rowid": False},)

    sha1: Mapped[bytes] = mapped_column(LargeBinary(20), primary_key=True)
    breach_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class Finding(Base):
    """An account found exposed: by which kind of evidence, from which source and breach."""

    __tablename__ = "findings"
    # Its leading column serves the look-ups by account: no index of account_id alone.
    __table_args__ = (UniqueConstraint("account_id", "kind", "source", "breach"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    breach: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=FindingStatus.OPEN)
    # The forced reset that acted on this finding: `reset --from-scan` skips it afterwards.
    reset_id: Mapped[int | None] = mapped_column(
        ForeignKey("resets.id", ondelete="SET NULL", use_alter=True), index=True
    )
    first_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What was done about it, once: by the policy table or from the console.
    action: Mapped[str | None] = mapped_column(String(16))  # reset | mfa | dismiss | none
    acted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acted_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)  # e.g. why it was dismissed


class AuditEvent(Base):
    """Append-only; each row carries the hash of the one before it."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)  # export/report ranges
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(320), index=True)
    details: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's tip, one row: the lock appenders queue on, and proof against tail deletion."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


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
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # new password set


class ResetToken(Base):
    """A reset link's token, kept only as SHA-256; it lives from the notice's sending.

    The link's token starts with the row's id, so a presented token is found by primary key
    and its digest compared in constant time: no index of the digests (random keys; in a
    bulk reset of 1e5 accounts on SQLite, the tokens INSERT took 1.1-1.7 s less without it)."""

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
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=NoticeStatus.QUEUED, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


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


class MonitorState(Base):
    """Where a monitor pass stands (a cursor, a watermark), so a restart resumes it."""

    __tablename__ = "monitor_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


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
