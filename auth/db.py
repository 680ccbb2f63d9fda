"""Engine and session handling, in one place, for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from auth.errors import BreachguardError

SQLITE_NEEDED = (3, 38)  # RETURNING (3.35) and JSON's ->> (3.38); Debian 12 ships 3.40


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so the CLI and server can share it."""
    if url.startswith("sqlite"):
        if sqlite3.sqlite_version_info < SQLITE_NEEDED:
            raise BreachguardError(
                f"this Python's SQLite library is {sqlite3.sqlite_version}; breachguard needs "
                f"{'.'.join(map(str, SQLITE_NEEDED))} or later (or PostgreSQL: DATABASE_URL)"
            )
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pool_pre_ping: it costs a round trip per checkout (~100 us, most of a /range/ look-up);
    # a connection broken by a server restart fails one request and is then replaced.
    return create_engine(url, pool_recycle=3600, **kwargs)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Database:
    """The engine and a session factory; build once per process."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # PostgreSQL: statements that stand alone get a pool of their own, opened in
        # autocommit, so that no checkout switches a connection's isolation level and the
        # return switches it back (two passes through SQLAlchemy's machinery, ~0.1 ms of a
        # sign-in's CPU). Connections open lazily: as many as threads use it at once.
        self.autocommit_engine = (
            make_engine(url, isolation_level="AUTOCOMMIT", **engine_kwargs)
            if self.engine.dialect.name == "postgresql"
            else self.engine
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        """A connection for reads that need no transaction around them.

        On PostgreSQL it comes from the autocommit pool: each statement stands alone, so it
        is spared a BEGIN and the pool's ROLLBACK on return (two of the three round trips of
        a one-query look-up on the sign-in and page-view paths). On SQLite it is an ordinary
        connection (its driver opens no transaction for a SELECT anyway): a write made on it
        is committed by the caller, as the API key's last-used mark is."""
        with self.autocommit_engine.connect() as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()
        if self.autocommit_engine is not self.engine:
            self.autocommit_engine.dispose()
