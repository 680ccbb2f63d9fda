"""Open findings written straight into the table, as a scan leaves them, for tests that
need findings without running a scan (and without the audit events a scan appends)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from auth.models import Finding, FindingStatus


def open_finding(
    session: Session, account_id: int, kind: str, breach: str, now: dt.datetime
) -> int:
    """One open local finding; returns its id."""
    finding = Finding(
        account_id=account_id,
        kind=kind,
        source="local",
        breach=breach,
        status=FindingStatus.OPEN,
        first_seen=now,
        last_seen=now,
    )
    session.add(finding)
    session.flush()
    return finding.id
