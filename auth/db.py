"""The database: the engine, sessions and connections in transactions, and the SQL
helpers bulk statements share. SQLite (embedded) and PostgreSQL (production) only.

One way to get each:

    with db.session() as session:    # ORM, one transaction: committed, or rolled back
    with db.connection() as conn:    # Core, one transaction: committed, or rolled back
    rows = db.run(statement, params) # one statement that stands alone
    with db.standalone() as conn:    # the connection run() uses, for GET /range/'s driver call
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    Connection,
    Engine,
    Integer,
    Row,
    String,
    Table,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from auth.errors import BreachguardError

# RETURNING came in 3.35, the built-in JSON functions (among(), the corpus import) in 3.38.
SQLITE_NEEDED = (3, 38)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine; SQLite gets WAL and a busy timeout so the CLI and the server share it."""
    if url.startswith("sqlite"):
        if sqlite3.sqlite_version_info < SQLITE_NEEDED:
            raise BreachguardError(
                f"this Python's SQLite library is {sqlite3.sqlite_version}; breachguard needs "
                f"{'.'.join(map(str, SQLITE_NEEDED))} or later (or PostgreSQL: DATABASE_URL)"
            )
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_recycle=3600, **kwargs)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Database:
    """The engine and its sessions; build once per process."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """An ORM session in one transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A Core connection in one transaction: committed on success, rolled back on error."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def standalone(self) -> Iterator[Connection]:
        """A connection whose statements each stand alone: autocommit on PostgreSQL, where a
        statement is its own transaction and BEGIN and COMMIT would be two more round trips
        (a sign-in runs three such statements, each on its way to the person waiting)."""
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn
            conn.commit()

    def run(self, statement: Executable, params: Mapping[str, Any] | None = None) -> list[Row[Any]]:
        """Run one statement that stands alone (a read, or a write atomic by itself) and
        return its rows."""
        with self.standalone() as conn:
            result = conn.execute(statement, dict(params or {}))
            return list(result) if result.returns_rows else []

    def dispose(self) -> None:
        self.engine.dispose()


class _Values(TypeDecorator[Sequence[Any]]):
    """A list sent as one parameter: an array on PostgreSQL, JSON text on SQLite."""

    impl = String
    cache_ok = True

    def __init__(self, item: type[TypeEngine[Any]]) -> None:
        super().__init__()
        self.item = item

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(self.item()))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return list(value) if dialect.name == "postgresql" else json.dumps(list(value))


class _Among(FunctionElement[bool]):
    type = Boolean()
    name = "among"
    inherit_cache = True
    _is_implicitly_boolean = True  # a condition as it stands: no "= 1" after it on SQLite


def among(column: Any, values: Sequence[Any], item: type[TypeEngine[Any]] = Integer) -> Any:
    """`column IN values` with the values as one parameter, however many: `= ANY(array)` on
    PostgreSQL, `IN (SELECT value FROM json_each(?))` on SQLite. The statement's text is
    the same for every list, so it is compiled once and prepared once, and a batch of ids
    needs neither chunks nor one parameter per id."""
    return _Among(column, bindparam(None, list(values), type_=_Values(item)))


@compiles(_Among, "postgresql")
def _among_postgresql(element: _Among, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = element.clauses
    return f"{compiler.process(column, **kw)} = ANY({compiler.process(values, **kw)})"


@compiles(_Among, "sqlite")
def _among_sqlite(element: _Among, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = element.clauses
    listed = f"SELECT value FROM json_each({compiler.process(values, **kw)})"  # noqa: S608 (a bind marker)
    return f"{compiler.process(column, **kw)} IN ({listed})"


def insert_rows(
    conn: Connection | Session, table: Table, rows: Sequence[Mapping[str, Any]], **shared: Any
) -> None:
    """INSERT rows as each database loads many fastest: the driver's executemany (a C
    loop over one prepared statement), or on PostgreSQL, for more than a few rows, COPY
    (one stream: a statement per row cost most of a bulk reset there; for a few rows,
    COPY's start and end would cost more than it saves). Row values are plain (int, str,
    None); `shared` values, which every row has (e.g. the batch's time), are converted
    once by their column's type, as SQLAlchemy stores them."""
    if not rows:
        return
    connection = conn.connection() if isinstance(conn, Session) else conn
    dialect = connection.dialect
    names = [*rows[0], *shared]
    columns = ", ".join(table.c[name].name for name in names)  # known names only
    fixed = tuple(_stored(table.c[name].type, value, dialect) for name, value in shared.items())
    if dialect.name == "postgresql" and len(rows) > COPY_FROM:
        # COPY's text for a time is ISO 8601: written once here, not once per row.
        text = tuple(v.isoformat() if isinstance(v, dt.datetime) else v for v in fixed)
        driver = connection.connection.driver_connection
        with driver.cursor() as cur, cur.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row((*row.values(), *text))
        return
    marks = ", ".join(["?" if dialect.paramstyle == "qmark" else "%s"] * len(names))
    sql = f"INSERT INTO {table.name} ({columns}) VALUES ({marks})"  # noqa: S608 (known names)
    connection.exec_driver_sql(sql, [(*row.values(), *fixed) for row in rows])


COPY_FROM = 50  # rows: from here on, COPY on PostgreSQL


def _stored(type_: TypeEngine[Any], value: Any, dialect: Dialect) -> Any:
    """A value as SQLAlchemy hands it to the driver for a column of this type."""
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    return value if process is None else process(value)


def dialect_insert(conn: Connection | Session) -> Callable[[Table], Any]:
    """The insert() of the connection's dialect, whose ON CONFLICT makes upserts."""
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    if bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
