"""Tables, one module per feature; every name is importable from `auth.models`.

Digests are stored as 20 raw bytes (SHA-1), never as plaintext.
"""

from __future__ import annotations

from auth.models.accounts import Account, AccountStatus, ApiKey, Role
from auth.models.activity import (
    AccountNetwork,
    ActivityEvent,
    ActivitySession,
    Alert,
    AlertDelivery,
    AlertKind,
    ExposedSubject,
    SignInRecord,
)
from auth.models.audit import AuditEvent, AuditHead
from auth.models.base import Base, UTCDateTime, iso_utc, table, utcnow
from auth.models.breach import (
    Breach,
    BreachedEmail,
    BreachKind,
    Finding,
    FindingKind,
    FindingStatus,
    MonitorState,
    PwnedPassword,
)
from auth.models.mfa import (
    CoverageDay,
    FactorKind,
    MfaFactor,
    MfaThrottle,
    RecoveryCode,
    WebauthnChallenge,
)
from auth.models.reset import (
    JobStatus,
    Notice,
    NoticeStatus,
    Reset,
    ResetJob,
    ResetReason,
    ResetToken,
)
from auth.models.signin import IpBan, IpFailure, LoginContinuation, WebSession

__all__ = [
    "Account",
    "AccountNetwork",
    "AccountStatus",
    "ActivityEvent",
    "ActivitySession",
    "Alert",
    "AlertDelivery",
    "AlertKind",
    "ApiKey",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Breach",
    "BreachKind",
    "BreachedEmail",
    "CoverageDay",
    "ExposedSubject",
    "FactorKind",
    "Finding",
    "FindingKind",
    "FindingStatus",
    "IpBan",
    "IpFailure",
    "JobStatus",
    "LoginContinuation",
    "MfaFactor",
    "MfaThrottle",
    "MonitorState",
    "Notice",
    "NoticeStatus",
    "PwnedPassword",
    "RecoveryCode",
    "Reset",
    "ResetJob",
    "ResetReason",
    "ResetToken",
    "Role",
    "SignInRecord",
    "UTCDateTime",
    "WebSession",
    "WebauthnChallenge",
    "iso_utc",
    "table",
    "utcnow",
]
