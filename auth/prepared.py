"""Prebuilt Core statements run straight on the DBAPI cursor, for the hottest paths.

SQLAlchemy's per-execute work (cache key, execution context, parameter and result
processing) costs ~12-20 us a statement on SQLite, more than the statement itself (~2-10 us);
a WebAuthn sign-in runs three. `Prepared` keeps the statement written in Core (one source of
truth for the SQL) and compiles it once per dialect with SQLAlchemy's own compiler; each call
then applies the compiled statement's own bind processors (so values are stored exactly as
SQLAlchemy stores them: UTC datetimes as text on SQLite, booleans as integers) and runs the
SQL on the caller's connection, in the caller's transaction. Rows come back as the driver
gives them (no result processing): callers convert what they read (bytes(), bool()) and
should not read datetimes this way.

Drivers other than sqlite3 (qmark) and psycopg (pyformat) get the ordinary `conn.execute`.
Statements run this way do not fire SQLAlchemy's cursor events; `Prepared.runs` counts them
(for the benchmarks' statements-per-call figures).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from sqlalchemy import Connection, CursorResult
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Plan:
    compiled: SQLCompiler
    sql: str
    order: tuple[str, ...] | None  # parameter names in order (qmark), None: by name
    processors: dict[str, Processor]


class Prepared:
    """A Core statement compiled once per dialect and run on the bare DBAPI cursor."""

    runs: ClassVar[int] = 0  # statements run on the DBAPI cursor, all instances together

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._plans: dict[tuple[str, str], _Plan | None] = {}

    def _plan(self, dialect: Dialect) -> _Plan | None:
        key = (dialect.name, dialect.paramstyle)
        if key in self._plans:
            return self._plans[key]
        plan = None
        if dialect.paramstyle in ("qmark", "pyformat"):
            compiled = cast(
                SQLCompiler, cast(ClauseElement, self.statement).compile(dialect=dialect)
            )
            processors: dict[str, Processor] = {}
            for bind in compiled.binds.values():
                process = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if process is not None:  # keyed as construct_params names it (anonymous too)
                    processors[compiled.bind_names[bind]] = process
            order = None
            if dialect.paramstyle == "qmark":
                order = tuple(compiled.positiontup or ())
            plan = _Plan(compiled, compiled.string, order, processors)
        self._plans[key] = plan
        return plan

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run the statement; every row it returns, as plain driver tuples."""
        plan = self._plan(conn.dialect)
        if plan is None:
            return [tuple(r) for r in conn.execute(self.statement, dict(params))]
        cur = self._run(conn, plan, params)
        try:
            return cur.fetchall() if cur.description is not None else []
        finally:
            cur.close()

    def rowcount(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run a statement without RETURNING; how many rows it changed."""
        plan = self._plan(conn.dialect)
        if plan is None:
            result = conn.execute(self.statement, dict(params))
            return cast(CursorResult[Any], result).rowcount
        cur = self._run(conn, plan, params)
        try:
            return int(cur.rowcount)
        finally:
            cur.close()

    def driver_args(self, conn: Connection, params: Mapping[str, Any]) -> tuple[str, Any]:
        """(SQL, parameters) as the driver's cursor.execute takes them, e.g. to queue the
        statement in a psycopg pipeline; only for sqlite3 and psycopg."""
        plan = self._plan(conn.dialect)
        if plan is None:
            raise TypeError(f"no driver-level form for {conn.dialect.driver}")
        return plan.sql, self._values(plan, params)

    @staticmethod
    def _values(plan: _Plan, params: Mapping[str, Any]) -> Any:
        values = plan.compiled.construct_params(dict(params))  # adds the statement's literals
        for name, process in plan.processors.items():
            values[name] = process(values[name])
        Prepared.runs += 1
        return values if plan.order is None else tuple(values[name] for name in plan.order)

    @staticmethod
    def _run(conn: Connection, plan: _Plan, params: Mapping[str, Any]) -> Any:
        values = Prepared._values(plan, params)
        cur = cast(Any, conn.connection.driver_connection).cursor()
        try:
            cur.execute(plan.sql, values)
        except BaseException:
            cur.close()
            raise
        return cur


Read = tuple[Prepared, Mapping[str, Any]]


def rows_together(conn: Connection, reads: Sequence[Read]) -> list[list[Any]]:
    """The rows of independent reads, each row readable by column name.

    On PostgreSQL the statements go out together in one round trip (a psycopg pipeline)
    and their rows come back as the driver gives them (aware datetimes, booleans): on a
    sign-in this is the ban list, the account and the breach count at the cost of one.
    Elsewhere they run one after the other through SQLAlchemy.
    """
    if conn.dialect.name != "postgresql":
        return [list(conn.execute(p.statement, dict(params))) for p, params in reads]
    from psycopg.rows import namedtuple_row

    driver = cast(Any, conn.connection.driver_connection)
    cursors = [driver.cursor(row_factory=namedtuple_row) for _ in reads]
    try:
        with driver.pipeline():
            for cur, (statement, params) in zip(cursors, reads, strict=True):
                cur.execute(*statement.driver_args(conn, params), prepare=True)
        return [cur.fetchall() for cur in cursors]
    finally:
        for cur in cursors:
            cur.close()
