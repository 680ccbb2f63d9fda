"""`scan`: every account against every configured source, findings recorded once.

Against the local corpus it is one INSERT..SELECT over a join (no per-account look-ups).
Against HIBP, accounts are grouped by the 6-hex prefix of their e-mail digest so each
prefix is asked once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import groupby

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from auth import audit
from auth.breach import findings
from auth.breach.hashing import EMAIL_PREFIX_LEN
from auth.breach.hibp import HibpClient
from auth.errors import BreachSourceError
from auth.models import FindingKind, FindingStatus, UTCDateTime

# E-mail-in-breach findings from the local corpus, set-based, for every account and
# breach or for a scope (one breach, a range of account ids): `scan`, and `monitor`'s
# re-checks of what changed, run the same two statements.
_LOCAL_NEW = """
INSERT INTO findings (account_id, kind, source, breach, status, first_seen, last_seen)
SELECT a.id, CAST(:kind AS VARCHAR(32)), 'local', b.name, CAST(:open AS VARCHAR(16)), :now, :now
FROM accounts a
JOIN breached_emails e ON e.sha1 = a.email_sha1
JOIN breaches b ON b.id = e.breach_id
WHERE {scope} AND NOT EXISTS (
    SELECT 1 FROM findings f
    WHERE f.account_id = a.id AND f.kind = :kind AND f.source = 'local' AND f.breach = b.name
)
RETURNING account_id, breach
"""

_LOCAL_SEEN = """
UPDATE findings SET last_seen = :now
WHERE kind = :kind AND source = 'local' AND EXISTS (
    SELECT 1 FROM accounts a
    JOIN breached_emails e ON e.sha1 = a.email_sha1
    JOIN breaches b ON b.id = e.breach_id
    WHERE a.id = findings.account_id AND b.name = findings.breach AND {scope}
)
"""

EVERYTHING = "1 = 1"
ONE_BREACH = "e.breach_id = :breach_id"  # the join on (sha1, breach_id): the primary key
ACCOUNT_RANGE = "a.id > :lo AND a.id <= :hi"
_STAMP = bindparam("now", type_=UTCDateTime())


def record_local(
    session: Session,
    *,
    actor: audit.Actor,
    now: dt.datetime,
    scope: str = EVERYTHING,
    **bounds: int,
) -> list[tuple[int, str]]:
    """Record e-mail-in-breach findings (known ones get `last_seen`), within `scope` (one
    of this module's constants, with its bounds); returns the new (account id, breach)."""
    params = {"kind": FindingKind.EMAIL_IN_BREACH, "open": FindingStatus.OPEN, "now": now}
    params |= bounds
    conn = session.connection()
    conn.execute(text(_LOCAL_SEEN.format(scope=scope)).bindparams(_STAMP), params)
    rows = conn.execute(text(_LOCAL_NEW.format(scope=scope)).bindparams(_STAMP), params).all()
    new = [(int(a), str(b)) for a, b in rows]
    audit.append(
        session,
        [
            findings._event(actor, account_id, FindingKind.EMAIL_IN_BREACH, "local", breach)
            for account_id, breach in new
        ],
        now=now,
    )
    return new


@dataclass
class ScanReport:
    accounts: int = 0
    new_findings: int = 0
    prefixes_asked: int = 0
    # Accounts a source could not be asked about: not known to be clean, whatever the policy.
    failed_accounts: int = 0
    errors: list[str] = field(default_factory=list)


def scan_local(session: Session, *, actor: audit.Actor, now: dt.datetime) -> int:
    """Record e-mail-in-breach findings from the local corpus; returns how many are new."""
    return len(record_local(session, actor=actor, now=now))


def _accounts_by_prefix(session: Session) -> Iterator[tuple[str, list[tuple[int, str]]]]:
    rows = session.connection().execute(
        text("SELECT id, email_sha1 FROM accounts ORDER BY email_sha1")
    )
    hexed = ((aid, bytes(d).hex().upper()) for aid, d in rows)
    for prefix, group in groupby(hexed, key=lambda r: r[1][:EMAIL_PREFIX_LEN]):
        yield prefix, [(aid, h[EMAIL_PREFIX_LEN:]) for aid, h in group]


def scan_hibp(
    session: Session,
    client: HibpClient,
    *,
    actor: audit.Actor,
    now: dt.datetime,
    report: ScanReport,
    on_prefix: Callable[[], None] | None = None,
) -> int:
    """Ask HIBP once per prefix that holds an account; returns the number of new findings."""
    keys: list[findings.Key] = []
    for prefix, members in _accounts_by_prefix(session):
        report.prefixes_asked += 1
        try:
            found = client.email_range(prefix)
        except BreachSourceError as exc:
            report.errors.append(f"hibp {prefix}: {exc}")
            report.failed_accounts += len(members)
            continue
        finally:
            if on_prefix:
                on_prefix()
        for account_id, suffix in members:
            for breach in found.get(suffix, ()):
                keys.append((account_id, FindingKind.EMAIL_IN_BREACH, "hibp", breach))
    return findings.record(session, keys, actor=actor, now=now)


def scan(
    session: Session,
    *,
    sources: tuple[str, ...],
    hibp: HibpClient | None,
    actor: audit.Actor,
    now: dt.datetime,
) -> ScanReport:
    report = ScanReport()
    report.accounts = int(
        session.connection().execute(text("SELECT COUNT(*) FROM accounts")).scalar() or 0
    )
    if "local" in sources:
        report.new_findings += scan_local(session, actor=actor, now=now)
    if "hibp" in sources and hibp is not None:
        report.new_findings += scan_hibp(session, hibp, actor=actor, now=now, report=report)
    audit.append(
        session,
        [
            audit.Event(
                actor,
                audit.Action.SCAN_COMPLETED,
                "accounts",
                {
                    "accounts": report.accounts,
                    "new_findings": report.new_findings,
                    "sources": list(sources),
                    "errors": len(report.errors),
                    "failed_accounts": report.failed_accounts,
                },
            )
        ],
        now=now,
    )
    return report
