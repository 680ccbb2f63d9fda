"""What the activity guard and the sign-in risk rules keep: alerts, the subjects a
compromised account touched, the networks each account signs in from, sign-ins, and the
activity counters when there is no Redis.

No patient identifier is ever stored: a `subject` is the portal's opaque key (an HMAC it
derives from the identifier), and a portal session id only as its SHA-256.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from auth.models.base import Base, UTCDateTime, utcnow


class AlertKind(enum.StrEnum):
    PASSWORD_SPRAY = "password_spray"
    CREDENTIAL_STUFFING = "credential_stuffing"
    ACTIVITY_BLOCK = "activity_block"
    ACTIVITY_STEP_UP = "activity_step_up"
    NEW_SIGN_IN = "new_sign_in"
    NOT_ME = "not_me"


class Alert(Base):
    """One alert for the security team. Repeats of the same cause (`kind` and `cause`, e.g.
    one network's stuffing) while it is open are grouped into it: `occurrences` and
    `last_at` move, the accounts and addresses are merged, nothing is raised twice."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_kind_cause", "kind", "cause", "last_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    cause: Mapped[str] = mapped_column(String(200))  # the grouping key within a kind
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    accounts: Mapped[list[int]] = mapped_column(JSON, default=list)  # account ids
    addresses: Mapped[list[str]] = mapped_column(JSON, default=list)  # IPs or networks
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # counts, timeline
    # When the compromise is thought to have started (exposure reports count from here).
    suspected_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ExposedSubject(Base):
    """A subject key that a blocked (or disowned) account's sessions touched between the
    suspected start of the compromise and the block: what `report exposure` hands to the
    portal. Deleted after EXPOSURE_RETENTION_DAYS."""

    __tablename__ = "exposed_subjects"

    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    subject: Mapped[str] = mapped_column(String(128), primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    kept_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class AccountNetwork(Base):
    """A network an account has signed in or worked from (/24 for IPv4, /48 for IPv6)."""

    __tablename__ = "account_networks"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    network: Mapped[str] = mapped_column(String(49), primary_key=True)
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SignInRecord(Base):
    """A sign-in attempt that named an existing account: the console's and the person's
    list of recent sign-ins, and the start of a suspected compromise."""

    __tablename__ = "sign_ins"
    __table_args__ = (Index("ix_sign_ins_account_at", "account_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    ip: Mapped[str] = mapped_column(String(45), default="")
    network: Mapped[str] = mapped_column(String(49), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    outcome: Mapped[str] = mapped_column(String(20))  # the login flow's decision
    new_network: Mapped[bool] = mapped_column(Boolean, default=False)
    via: Mapped[str] = mapped_column(String(10), default="hook")  # hook | pages


class ActivityEvent(Base):
    """One reported action, kept no longer than the guard's longest window: the counters
    when there is no Redis, and the subjects an exposure report may need."""

    __tablename__ = "activity_events"
    __table_args__ = (
        Index("ix_activity_events_account_at", "account_id", "at"),
        Index("ix_activity_events_session_at", "session", "at"),
        Index("ix_activity_events_network_at", "network", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer)
    session: Mapped[str] = mapped_column(String(64))  # SHA-256 hex of the portal's session id
    ip: Mapped[str] = mapped_column(String(45))
    network: Mapped[str] = mapped_column(String(49))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128), default="")
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class ActivitySession(Base):
    """A portal session the guard has ruled on, with Redis or without: when a second
    factor was last checked for it (a step-up), and when it was blocked."""

    __tablename__ = "activity_sessions"

    session: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 hex
    account_id: Mapped[int] = mapped_column(Integer, index=True)
    stepped_up_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    blocked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class AlertDelivery(Base):
    """One alert to push to one channel (the webhook, the security team's address), with
    the notice queue's retry and lease fields."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(10))  # webhook | email
    status: Mapped[str] = mapped_column(String(10), default="queued")  # queued, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
