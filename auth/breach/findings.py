"""Findings: which account is exposed, by what evidence, first seen when. Recorded once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, insert, select, update
from sqlalchemy.orm import Session

from auth import audit
from auth.db import among
from auth.models import Account, Finding, FindingKind, FindingStatus

Key = tuple[int, str, str, str]  # account id, kind, source, breach name


def record(session: Session, keys: Sequence[Key], *, actor: audit.Actor, now: dt.datetime) -> int:
    """Record findings; known ones get `last_seen` bumped. Returns how many are new.

    Per kind, source and breach, the known ones are found and bumped in a statement each,
    the accounts as one array parameter, however many: a corpus import calls this for
    every batch, inside its one transaction, on the findings it is adding to."""
    keys = list(dict.fromkeys(keys))
    known: set[Key] = set()
    for (kind, source, breach), ids in _by_evidence(keys).items():
        same = (Finding.kind == kind, Finding.source == source, Finding.breach == breach)
        found = session.execute(
            select(Finding.account_id).where(*same, among(Finding.account_id, ids))
        ).scalars()
        there = sorted(found)
        if there:
            session.execute(
                update(Finding)
                .where(*same, among(Finding.account_id, there))
                .values(last_seen=now)
                .execution_options(synchronize_session=False)
            )
        known.update((a, kind, source, breach) for a in there)
    new = [k for k in keys if k not in known]
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


def _by_evidence(keys: Sequence[Key]) -> dict[tuple[str, str, str], list[int]]:
    """Account ids by (kind, source, breach)."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for account_id, kind, source, breach in keys:
        groups.setdefault((kind, source, breach), []).append(account_id)
    return groups


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
