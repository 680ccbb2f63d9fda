"""The facts a sign-in starts from, read in one statement: the active bans, the account
and what the rules may ask about it (factors, findings), and how often the local corpus
saw the password typed (a key look-up, used only once the password is right).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import LargeBinary, bindparam, exists, func, literal, select

from auth.activity.networks import network_of
from auth.activity.risk import is_new_network
from auth.breach.hashing import password_sha1
from auth.db import Database
from auth.models import (
    Account,
    AccountNetwork,
    FactorKind,
    Finding,
    FindingStatus,
    MfaFactor,
    PwnedPassword,
    table,
)
from auth.signin import bans
from auth.signin.rules import AccountFacts, Facts, MfaFacts

_A, _F, _FI, _PW = table(Account), table(MfaFactor), table(Finding), table(PwnedPassword)
_AN = table(AccountNetwork)


def _has_factor(kind: str) -> Any:
    return (
        exists()
        .where(_F.c.account_id == _A.c.id, _F.c.kind == kind, _F.c.confirmed_at.is_not(None))
        .label(f"has_{kind}")
    )


# One row even for an unknown address (the account's columns are then NULL).
_SEEN = (
    select(func.sum(_PW.c.count))
    .where(_PW.c.sha1 == bindparam("digest", type_=LargeBinary))
    .scalar_subquery()
)
_FACTS = select(
    bans.ACTIVE_NETWORKS.label("banned_networks"),
    _A.c.id,
    _A.c.status,
    _A.c.session_epoch,
    _A.c.failed_logins,
    _A.c.last_failed_login_at,
    _A.c.password_hash,
    _A.c.mfa_required,
    _A.c.mfa_grace_from,
    _has_factor(FactorKind.TOTP),
    _has_factor(FactorKind.WEBAUTHN),
    exists()
    .where(_FI.c.account_id == _A.c.id, _FI.c.status == FindingStatus.OPEN.value)
    .label("has_findings"),
    _SEEN.label("seen"),
    # The sign-in risk's new-network rule (auth/activity/risk.py): by the primary key.
    select(_AN.c.last_at)
    .where(_AN.c.account_id == _A.c.id, _AN.c.network == bindparam("network"))
    .scalar_subquery()
    .label("network_last_used"),
    exists().where(_AN.c.account_id == _A.c.id).label("known_any"),
).select_from(select(literal(1)).subquery().outerjoin(_A, _A.c.email == bindparam("email")))


@dataclass(frozen=True)
class Found:
    """What the sign-in read: the facts to decide on, and what it needs of the account's
    row later (its hash, the password's local count, its factors)."""

    facts: Facts
    account: Any  # the row; None for an unknown address

    @property
    def password_hash(self) -> str | None:
        return self.account.password_hash if self.account is not None else None

    @property
    def seen(self) -> int:
        """How often the local corpus saw the password typed."""
        return int(self.account.seen or 0) if self.account is not None else 0

    def mfa(self) -> MfaFacts:
        row = self.account
        kinds = tuple(k for k in FactorKind if getattr(row, f"has_{k}"))
        return MfaFacts(kinds, bool(row.mfa_required), bool(row.has_findings), row.mfa_grace_from)

    @property
    def new_network(self) -> bool:
        """Whether the address's network is new to the account (auth/activity/risk.py)."""
        row = self.account
        if row is None:
            return False
        known_here = row.network_last_used is not None
        return is_new_network(known_here=known_here, known_any=bool(row.known_any))

    @property
    def network_last_used(self) -> dt.datetime | None:
        """When the account last signed in from the address's network (None: never)."""
        return self.account.network_last_used if self.account is not None else None


def read(db: Database, *, address: str, password: str, ip: str, now: dt.datetime) -> Found:
    params = {
        "email": address,
        "digest": password_sha1(password),
        "now": now,
        "network": network_of(ip),
    }
    (row,) = db.run(_FACTS, params)
    banned = bans.banned_by(ip, bans.networks_of(row.banned_networks))
    if row.id is None:
        return Found(Facts(now=now, ip_banned=banned), None)
    account = AccountFacts(
        row.id, row.status, row.session_epoch, row.failed_logins, row.last_failed_login_at
    )
    return Found(Facts(now=now, ip_banned=banned, account=account), row)
