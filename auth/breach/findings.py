"""Findings: which account is exposed, by what evidence, first seen when. Recorded once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, insert, select, tuple_, update
from sqlalchemy.orm import Session

from auth import audit
from auth.models import Account, Finding, FindingKind, FindingStatus

Key = tuple[int, str, str, str]  # account id, kind, source, breach name


def record(session: Session, keys: Sequence[Key], *, actor: audit.Actor, now: dt.datetime) -> int:
    """Record findings; known ones get `last_seen` bumped. Returns how many are new."""
    keys = list(dict.fromkeys(keys))
    new: list[Key] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        cols = (Finding.account_id, Finding.kind, Finding.source, Finding.breach)
        known = set(session.execute(select(*cols).where(tuple_(*cols).in_(chunk))).all())
        if known:
            session.execute(
                update(Finding)
                .where(tuple_(*cols).in_(list(known)))
                .values(last_seen=now)
                .execution_options(synchronize_session=False)
            )
        new.extend(k for k in chunk if k not in known)
    if new:
        session.execute(
            insert(Finding),
            [
                {
                    "account_id": a,
                    "kind": k,
                    "source": s,
                    "breach": b,
                    "status": FindingStatus.OPEN,
                    "first_seen": now,
                    "last_seen": now,
                }
                for a, k, s, b in new
            ],
        )
        audit.append(session, [_event(actor, *k) for k in new], now=now)
    return len(new)


def _event(actor: audit.Actor, account_id: int, kind: str, source: str, breach: str) -> audit.Event:
    return audit.Event(
        actor,
        audit.Action.FINDING_RECORDED,
        f"account:{account_id}",
        {"kind": kind, "source": source, "breach": breach},
    )


@dataclass(frozen=True)
class FindingRow:
    email: str
    account_id: int
    kind: str
    source: str
    breach: str
    first_seen: dt.datetime
    last_seen: dt.datetime


URGENCY = {k: i for i, k in enumerate(FindingKind)}


def open_findings(session: Session) -> list[FindingRow]:
    """Open findings, most urgent kind first, then by e-mail."""
    rows = session.execute(
        select(
            Account.email,
            Finding.account_id,
            Finding.kind,
            Finding.source,
            Finding.breach,
            Finding.first_seen,
            Finding.last_seen,
        )
        .join(Account, and_(Account.id == Finding.account_id))
        .where(Finding.status == FindingStatus.OPEN)
    ).all()
    found = [FindingRow(*r) for r in rows]
    found.sort(key=lambda f: (URGENCY.get(FindingKind(f.kind), 99), f.email, f.source, f.breach))
    return found
