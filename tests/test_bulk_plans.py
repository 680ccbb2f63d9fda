"""Bulk work inside one long transaction: each batch's look-ups find their rows through an
index however many rows the transaction has just inserted, and a batch costs the same
statements whatever its size (issue #23: the accounts import's look-up was planned as a
scan of the whole table, so its time grew with the square of the file).

No timing: the plans are read with EXPLAIN (PostgreSQL) or EXPLAIN QUERY PLAN (SQLite),
in the import's own transaction, at the moment the import runs each statement."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

from auth import accounts, audit
from auth.services import Services

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
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
def _plans(engine: Engine, marker: str) -> Iterator[dict[str, str]]:
    """table -> plan of the SELECTs filtered by e-mail whose parameters hold `marker` (an
    address of the batch to look at), explained right after each ran, on its connection:
    inside the import's transaction."""
    plans: dict[str, str] = {}

    def explain(
        conn: Any, cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool
    ) -> None:
        if not statement.startswith("SELECT") or marker not in str(parameters):
            return
        for name in ("accounts", "account_import_lines"):
            if f"WHERE {name}.email" in statement:
                how = "EXPLAIN " if conn.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
                raw = cursor.connection.cursor()
                raw.execute(how + statement, parameters)
                plans[name] = "\n".join(str(row[-1]) for row in raw.fetchall())
                raw.close()

    event.listen(engine, "after_cursor_execute", explain)
    try:
        yield plans
    finally:
        event.remove(engine, "after_cursor_execute", explain)


def _uses_index(dialect: str, table: str, plan: str) -> bool:
    if dialect == "postgresql":
        return f"Seq Scan on {table}" not in plan and "Index" in plan
    return f"SEARCH {table} USING" in plan and f"SCAN {table}" not in plan


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
    assert set(plans) == {"accounts", "account_import_lines"}
    for name, plan in plans.items():
        assert _uses_index(engine.dialect.name, name, plan), plan


def test_reimport_finds_accounts_through_the_email_index(registry: Services) -> None:
    with registry.db.session() as session:
        accounts.import_csv(session, _csv(0, ROWS), actor=ACTOR, now=NOW, batch=10 * BATCH)
    engine = registry.db.engine
    with _plans(engine, LAST) as plans, registry.db.session() as session:
        report = accounts.import_csv(session, _csv(0, ROWS), actor=ACTOR, now=NOW, batch=BATCH)
    assert report.unchanged == ROWS
    assert _uses_index(engine.dialect.name, "accounts", plans["accounts"]), plans


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
