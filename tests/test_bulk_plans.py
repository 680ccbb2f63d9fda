"""Bulk work inside one long transaction: each batch's look-ups find their rows through an
index however many rows the transaction has just inserted, and a batch costs the same
statements whatever its size (issue #23: the accounts import's look-up was planned as a
scan of the whole table, so its time grew with the square of the file).

No timing: the plans are read with EXPLAIN (PostgreSQL) or EXPLAIN QUERY PLAN (SQLite),
in the import's own transaction, at the moment the import runs each statement."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

from auth import accounts, audit
from auth.breach import findings
from auth.services import Services

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
TABLES = ("accounts", "account_import_lines")
ACTOR = audit.Actor.cli("test")


def _csv(first: int, n: int) -> io.BytesIO:
    rows = "".join(f"user{i:06d}@example.org,User {i},{i}\n" for i in range(first, first + n))
    return io.BytesIO(rows.encode())


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    """The statements run through the engine meanwhile (an executemany counts once)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextmanager
def _plans(engine: Engine, marker: str) -> Iterator[list[str]]:
    """The plans of the SELECTs filtered by e-mail (of TABLES) whose parameters hold
    `marker` (an address of the batch to look at), each explained right after it ran, on
    its connection: inside the import's transaction."""
    plans: list[str] = []

    def explain(
        conn: Any, cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool
    ) -> None:
        if not statement.startswith("SELECT") or marker not in str(parameters):
            return
        if any(f"WHERE {t}.email" in statement for t in TABLES):
            how = "EXPLAIN " if conn.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
            raw = cursor.connection.cursor()
            raw.execute(how + statement, parameters)
            plans.append("\n".join(str(row[-1]) for row in raw.fetchall()))
            raw.close()

    event.listen(engine, "after_cursor_execute", explain)
    try:
        yield plans
    finally:
        event.remove(engine, "after_cursor_execute", explain)


def _scans(dialect: str, plan: str) -> list[str]:
    """The tables among TABLES that the plan reads whole."""
    if dialect == "postgresql":
        return [t for t in TABLES if f"Seq Scan on {t} " in plan]
    return [t for t in TABLES if re.search(rf"\bSCAN {t}\b", plan)]


# Enough rows for a scan of the table to cost more than a batch's index probes, even by
# the planner's reckoning; the last batch is the one looked at.
ROWS, BATCH = 20_000, 100
LAST = f"user{ROWS - BATCH:06d}@example.org"


def test_each_batch_finds_accounts_and_earlier_lines_through_their_index(
    registry: Services,
) -> None:
    engine = registry.db.engine
    with _plans(engine, LAST) as plans, registry.db.session() as session:
        report = accounts.import_csv(session, _csv(0, ROWS), actor=ACTOR, now=NOW, batch=BATCH)
    assert report.created == ROWS
    assert len(plans) == 3  # earlier lines, accounts, the new accounts' ids
    for plan in plans:
        assert not _scans(engine.dialect.name, plan), plan


def test_reimport_finds_accounts_and_earlier_lines_through_their_index(
    registry: Services,
) -> None:
    with registry.db.session() as session:
        accounts.import_csv(session, _csv(0, ROWS), actor=ACTOR, now=NOW, batch=10 * BATCH)
    engine = registry.db.engine
    with _plans(engine, LAST) as plans, registry.db.session() as session:
        report = accounts.import_csv(session, _csv(0, ROWS), actor=ACTOR, now=NOW, batch=BATCH)
    assert report.unchanged == ROWS
    assert len(plans) == 2, plans  # nothing new: the two look-ups alone
    for plan in plans:
        assert not _scans(engine.dialect.name, plan), plan


def test_a_batch_costs_the_same_statements_whatever_its_size(registry: Services) -> None:
    """Three batches of 100 new accounts and three of 200 run the same statements; so do
    their re-imports, where every account is unchanged."""
    counts = []
    for first, size in ((0, 100), (10_000, 200)):
        for _ in ("import", "re-import"):
            with _statements(registry.db.engine) as seen, registry.db.session() as session:
                accounts.import_csv(
                    session, _csv(first, 3 * size), actor=ACTOR, now=NOW, batch=size
                )
            counts.append(len(seen))
    assert counts[0] == counts[2] and counts[1] == counts[3], counts
    assert counts[0] <= 3 * 12 + 6, counts  # a dozen statements a batch at most


def test_recording_findings_costs_the_same_statements_however_many(registry: Services) -> None:
    """Known findings are found and bumped, new ones inserted, in a fixed number of
    statements: 60 known and 60 new cost what 500 and 500 cost."""
    with registry.db.session() as session:
        accounts.import_csv(session, _csv(0, 2000), actor=ACTOR, now=NOW)
    ids = list(range(1, 2001))
    key = ("valid_credential", "local", "Drill")
    counts = []
    for known, new in ((ids[:60], ids[60:120]), (ids[200:700], ids[700:1200])):
        with registry.db.session() as session:
            findings.record(session, [(a, *key) for a in known], actor=ACTOR, now=NOW)
        with _statements(registry.db.engine) as seen, registry.db.session() as session:
            added = findings.record(session, [(a, *key) for a in known + new], actor=ACTOR, now=NOW)
        assert added == len(new)
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
