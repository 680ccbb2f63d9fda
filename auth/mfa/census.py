"""The second-factor census: how many accounts have none, TOTP, WebAuthn, or both (the
second-factor coverage the console and the incident report show).

Counted live from confirmed factors, and kept once a day in `coverage_daily`, because a
factor removed later must not rewrite the past: the console's chart and the incident
report's "before and after" read the daily rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, func, select
from sqlalchemy.orm import Session

from auth.db import dialect_insert
from auth.models import Account, CoverageDay, FactorKind, MfaFactor, table

_A, _F, _C = table(Account), table(MfaFactor), table(CoverageDay)


@dataclass(frozen=True)
class Census:
    """One day's figures."""

    day: dt.date
    accounts: int
    none: int
    totp: int  # TOTP only
    webauthn: int  # WebAuthn only
    both: int

    @property
    def covered(self) -> int:
        return self.totp + self.webauthn + self.both

    @property
    def share(self) -> float:
        """Accounts with at least one second factor, as a fraction of all accounts."""
        return self.covered / self.accounts if self.accounts else 0.0


def _kind(kind: FactorKind) -> Any:
    return func.max(case((_F.c.kind == kind, 1), else_=0))


# Per account that has a confirmed factor: which kinds. Grouped over the factors table
# (small) rather than probing it once per account (a million probes on a large base).
_PER_ACCOUNT = (
    select(_kind(FactorKind.TOTP).label("t"), _kind(FactorKind.WEBAUTHN).label("w"))
    .where(_F.c.confirmed_at.is_not(None))
    .group_by(_F.c.account_id)
    .subquery()
)
_BY_KINDS = select(_PER_ACCOUNT.c.t, _PER_ACCOUNT.c.w, func.count()).group_by(
    _PER_ACCOUNT.c.t, _PER_ACCOUNT.c.w
)


def current(conn: Connection | Session, day: dt.date) -> Census:
    """Today's figures, counted from the confirmed factors."""
    accounts = int(conn.execute(select(func.count()).select_from(_A)).scalar() or 0)
    counts = {(int(t), int(w)): int(n) for t, w, n in conn.execute(_BY_KINDS).all()}
    totp, webauthn, both = counts.get((1, 0), 0), counts.get((0, 1), 0), counts.get((1, 1), 0)
    return Census(
        day=day,
        accounts=accounts,
        none=accounts - totp - webauthn - both,
        totp=totp,
        webauthn=webauthn,
        both=both,
    )


def snapshot(conn: Connection | Session, day: dt.date) -> Census:
    """Count now and keep the figures as `day`'s row (replacing an earlier count that day)."""
    figures = current(conn, day)
    values = {
        "day": day,
        "accounts": figures.accounts,
        "none": figures.none,
        "totp": figures.totp,
        "webauthn": figures.webauthn,
        "both": figures.both,
    }
    insert = dialect_insert(conn)(_C).values(**values)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[_C.c.day], set_={k: v for k, v in values.items() if k != "day"}
        )
    )
    return figures


def _row(r: object) -> Census:
    m = r._mapping  # type: ignore[attr-defined]
    return Census(m["day"], m["accounts"], m["none"], m["totp"], m["webauthn"], m["both"])


def history(conn: Connection | Session, since: dt.date) -> list[Census]:
    """The daily rows from `since` on, oldest first."""
    rows = conn.execute(select(_C).where(_C.c.day >= since).order_by(_C.c.day)).all()
    return [_row(r) for r in rows]


def on_or_before(conn: Connection | Session, day: dt.date) -> Census | None:
    """The latest daily row at or before `day`: coverage as it stood then."""
    row = conn.execute(select(_C).where(_C.c.day <= day).order_by(_C.c.day.desc()).limit(1)).first()
    return _row(row) if row is not None else None
