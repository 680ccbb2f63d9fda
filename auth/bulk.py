"""Bulk inserts for the hot paths of bulk work (forced resets, audit rows).

PostgreSQL gets COPY (one stream, no per-row statement or parsing); SQLite gets the
driver's executemany, which is a C loop over one prepared statement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Integer, Table, any_, insert, literal
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session


def insert_rows(
    session: Session | Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert rows (dicts with the same keys) into `table` in the caller's transaction."""
    if not rows:
        return
    conn = session.connection() if isinstance(session, Session) else session
    columns = list(rows[0])
    for name in columns:  # names come from our own code; refuse anything else
        if name not in table.c:
            raise ValueError(f"{table.name} has no column {name!r}")
    driver = cast(Any, conn.connection.driver_connection)
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        with driver.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([_plain(row[c]) for c in columns])
    elif conn.dialect.name == "sqlite":
        # The driver's own executemany, with values stored as SQLAlchemy stores them.
        marks = ", ".join("?" * len(columns))
        driver.executemany(
            f"INSERT INTO {table.name} ({names}) VALUES ({marks})",  # noqa: S608 (checked names)
            ([_sqlite(row[c]) for c in columns] for row in rows),
        )
    else:
        session.execute(insert(table), list(rows))


def _plain(value: Any) -> Any:
    # StrEnum members are str subclasses psycopg may not know: send the plain string.
    return str(value) if isinstance(value, str) and type(value) is not str else value


def _sqlite(value: Any) -> Any:
    """SQLAlchemy's SQLite storage: naive UTC datetimes as text, booleans as integers."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return _plain(value)


def among(session: Session, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column IN ids`, as `= ANY(array)` on PostgreSQL: one constant statement text
    (cached and prepared by the driver) instead of a new one per list length."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(ColumnElement[bool], column == any_(literal(list(ids), ARRAY(Integer))))
    return cast(ColumnElement[bool], column.in_(list(ids)))
