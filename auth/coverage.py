"""Second-factor coverage: how many accounts have none, TOTP, WebAuthn, or both.

Counted live from confirmed factors, and kept once a day in `coverage_daily`, because a
factor removed later must not rewrite the past: the console's chart and the incident
report's "before and after" read the daily rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, case, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import Case

from auth.models import Account, CoverageDay, FactorKind, MfaFactor, table

_A, _F, _C = table(Account), table(MfaFactor), table(CoverageDay)


@dataclass(frozen=True)
class Coverage:
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


def _has(kind: FactorKind) -> Case[int]:
    return case(
        (
            exists().where(
                _F.c.account_id == _A.c.id, _F.c.kind == kind, _F.c.confirmed_at.is_not(None)
            ),
            1,
        ),
        else_=0,
    )


def current(conn: Connection | Session, day: dt.date) -> Coverage:
    """Today's figures, counted from the factors (one pass over accounts)."""
    per_account = (
        select(
            _has(FactorKind.TOTP).label("t"),
            _has(FactorKind.WEBAUTHN).label("w"),
        )
        .select_from(_A)
        .subquery()
    )
    rows = conn.execute(
        select(per_account.c.t, per_account.c.w, func.count()).group_by(
            per_account.c.t, per_account.c.w
        )
    ).all()
    counts = {(int(t), int(w)): int(n) for t, w, n in rows}
    return Coverage(
        day=day,
        accounts=sum(counts.values()),
        none=counts.get((0, 0), 0),
        totp=counts.get((1, 0), 0),
        webauthn=counts.get((0, 1), 0),
        both=counts.get((1, 1), 0),
    )


def snapshot(conn: Connection | Session, day: dt.date) -> Coverage:
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
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(_C).values(**values)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[_C.c.day], set_={k: v for k, v in values.items() if k != "day"}
        )
    )
    return figures


def _row(r: object) -> Coverage:
    m = r._mapping  # type: ignore[attr-defined]
    return Coverage(m["day"], m["accounts"], m["none"], m["totp"], m["webauthn"], m["both"])


def history(conn: Connection | Session, since: dt.date) -> list[Coverage]:
    """The daily rows from `since` on, oldest first."""
    rows = conn.execute(select(_C).where(_C.c.day >= since).order_by(_C.c.day)).all()
    return [_row(r) for r in rows]


def on_or_before(conn: Connection | Session, day: dt.date) -> Coverage | None:
    """The latest daily row at or before `day`: coverage as it stood then."""
    row = conn.execute(select(_C).where(_C.c.day <= day).order_by(_C.c.day.desc()).limit(1)).first()
    return _row(row) if row is not None else None
