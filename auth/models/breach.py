"""The local corpus (SHA-1 digests only), findings and the monitor's cursor."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from auth.models.base import Base, UTCDateTime, utcnow


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
# row by row, which would dominate a corpus import. Only the importer writes these rows,
# always for a breach row it holds in the same transaction.
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


class MonitorState(Base):
    """Where a monitor pass stands (a cursor, a watermark), so a restart resumes it."""

    __tablename__ = "monitor_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
