"""Bulk inserts for the hot paths of bulk work (forced resets, audit rows).

PostgreSQL gets COPY (one stream, no per-row statement or parsing); SQLite gets the
driver's executemany, which is a C loop over one prepared statement.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Sequence
from types import ModuleType
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    Subquery,
    Table,
    any_,
    bindparam,
    func,
    insert,
    literal,
    literal_column,
    select,
)
from sqlalchemy.orm import Session


def insert_tuples(
    session: Session | Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    plain: bool = False,
) -> None:
    """Insert rows given as tuples in `columns` order (the bulk paths' cheaper form: no dict
    per row, and values converted a column at a time, only where a column needs it).
    `plain`: the caller built every value as a str, int, float, bytes or None (times with
    stamp()), so none is looked at: the check took ~0.02 s per 1e5 notice rows (timeit),
    and a reset batch has three such inserts."""
    if not rows:
        return
    conn = session.connection() if isinstance(session, Session) else session
    for name in columns:  # names come from our own code; refuse anything else
        if name not in table.c:
            raise ValueError(f"{table.name} has no column {name!r}")
    driver = cast(Any, conn.connection.driver_connection)
    names = ", ".join(columns)
    streamed = conn.dialect.name == "postgresql" and len(rows) > FEW  # COPY
    if streamed:
        convert, as_is = _copy_text, _COPY_PLAIN
    elif conn.dialect.name == "postgresql":
        convert, as_is = _plain, _PG_PLAIN
    elif conn.dialect.name == "sqlite":
        convert, as_is = _sqlite, _SQLITE_PLAIN
    else:
        session.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    # Only the columns holding a value the driver must not get as is (an enum member; a
    # datetime on SQLite or in a COPY; a bool on SQLite) are converted, found by their
    # types (a C-level pass).
    # Each distinct value is converted once (a batch shares its timestamps and statuses).
    # Rows built with stamp() hold only plain values: one pass over them all says so, and
    # the columns are not taken apart (0.3 ms a call of 1000 rows: 0.12 s of a 1e5 reset).
    if not plain and not set(map(type, itertools.chain.from_iterable(rows))) <= as_is:
        cols = list(zip(*rows, strict=True))
        odd = [i for i, col in enumerate(cols) if not set(map(type, col)) <= as_is]
        for i in odd:
            memo = {v: convert(v) for v in set(cols[i])}
            cols[i] = tuple(map(memo.__getitem__, cols[i]))
        rows = list(zip(*cols, strict=True))
    if conn.dialect.name == "postgresql" and not streamed:
        # COPY costs two round trips (start, end); a few rows (a sign-in's audit event)
        # go as one prepared INSERT, or one pipelined executemany.
        marks = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608 (checked names)
        with driver.cursor() as cur:
            if len(rows) == 1:
                cur.execute(sql, rows[0], prepare=True)
            else:
                cur.executemany(sql, rows)
    elif streamed:
        with driver.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        # The driver's own executemany, with values stored as SQLAlchemy stores them.
        marks = ", ".join("?" * len(columns))
        driver.executemany(
            f"INSERT INTO {table.name} ({names}) VALUES ({marks})",  # noqa: S608 (checked names)
            rows,
        )


def stamp(session: Session | Connection, at: dt.datetime) -> str:
    """A time as insert_tuples stores it, made once for a whole batch: SQLAlchemy's SQLite
    text (naive UTC), or ISO 8601 with its offset, which PostgreSQL reads in a COPY and as
    a parameter alike."""
    bind = session.get_bind() if isinstance(session, Session) else session
    return cast(str, _sqlite(at)) if bind.dialect.name == "sqlite" else at.isoformat()


FEW = 16  # up to this many rows, INSERT rather than COPY on PostgreSQL
_SQLITE_PLAIN = frozenset({str, int, float, bytes, type(None)})
_PG_PLAIN = _SQLITE_PLAIN | {bool, dt.datetime}
_COPY_PLAIN = _SQLITE_PLAIN | {bool}


def _plain(value: Any) -> Any:
    # StrEnum members are str subclasses psycopg may not know: send the plain string.
    return str(value) if isinstance(value, str) and type(value) is not str else value


def _copy_text(value: Any) -> Any:
    """COPY's text for a datetime, made once per distinct value: psycopg formats each
    datetime cell anew (~4 us): 16% of a 1e5-account reset's CPU samples on PostgreSQL."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return _plain(value)


def _sqlite(value: Any) -> Any:
    """SQLAlchemy's SQLite storage: naive UTC datetimes as text, booleans as integers."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return _plain(value)


def ids_value(dialect: str, ids: Sequence[Any]) -> Any:
    """A list as one parameter's value: an array on PostgreSQL, JSON text on SQLite."""
    return list(ids) if dialect == "postgresql" else json.dumps(list(ids))


def _listed(dialect: str, param: BindParameter[Any]) -> Select[Any]:
    """The list in `param` as a one-column table (`id`), in its order: unnest(array) on
    PostgreSQL, json_each(text) on SQLite."""
    if dialect == "postgresql":
        return select(func.unnest(param).label("id"))
    return select(literal_column("value").label("id")).select_from(func.json_each(param))


def _list_type(dialect: str, item_type: Any) -> Any:
    return dialect_module(dialect).ARRAY(item_type) if dialect == "postgresql" else String


def dialect_module(name: str) -> ModuleType:
    """SQLAlchemy's module for the dialect `name` (its insert() with ON CONFLICT, ARRAY),
    imported on first use: the PostgreSQL one takes ~40 ms to import, which a command on
    SQLite need not pay."""
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql
    from sqlalchemy.dialects import sqlite

    return sqlite


def _bound(dialect: str, name: str, item_type: Any) -> BindParameter[Any]:
    return bindparam(name, type_=_list_type(dialect, item_type))


def among_bound(
    dialect: str, column: Any, name: str = "ids", item_type: Any = Integer
) -> ColumnElement[bool]:
    """`column IN ids` as among() writes it, with the ids left to a bound parameter `name`,
    for a statement built once per database and run many times (auth.prepared); its value
    is ids_value(dialect, ids)."""
    return _in(dialect, column, _bound(dialect, name, item_type))


def ids_bound(dialect: str, name: str = "ids", item_type: Any = Integer) -> Subquery:
    """The ids of among_bound's parameter `name` as a one-column table (`id`), in their
    order: to INSERT ... SELECT rows that differ only by their id."""
    return _listed(dialect, _bound(dialect, name, item_type)).subquery()


def _in(dialect: str, column: Any, param: BindParameter[Any]) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return cast(ColumnElement[bool], column == any_(param))
    return cast(ColumnElement[bool], column.in_(_listed(dialect, param)))


def among(
    session: Session, column: Any, ids: Sequence[Any], item_type: Any = Integer
) -> ColumnElement[bool]:
    """`column IN ids` with one parameter, not one per id: `= ANY(array)` on PostgreSQL,
    `IN (SELECT value FROM json_each(?))` on SQLite. One constant statement text (cached,
    prepared) instead of a new one per list length; on SQLite, SQLAlchemy's expansion of a
    5,000-id IN list took 1.5 s of a 1e5-account reset."""
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        return cast(ColumnElement[bool], column.in_(list(ids)))
    listed = literal(ids_value(dialect, ids), _list_type(dialect, item_type))
    return _in(dialect, column, listed)
