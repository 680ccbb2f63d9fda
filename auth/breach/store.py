"""The local corpus in the database: k-anonymity range reads and bulk writes.

Digests are 20-byte keys of `WITHOUT ROWID` (SQLite) or B-tree primary keys (PostgreSQL),
so a 5- or 6-hex prefix is one index range scan. Writes are set-based: SQLite gets one
executemany upsert per batch; PostgreSQL gets COPY into a temp table and one INSERT..SELECT.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, text

from auth.breach.hashing import prefix_bounds


def password_range(conn: Connection, prefix: str) -> list[tuple[bytes, int]]:
    """(digest, times seen over all breaches) for every digest under a 5-hex prefix, sorted."""
    lo, hi = prefix_bounds(prefix)
    rows = conn.execute(
        text(
            "SELECT sha1, SUM(count) FROM pwned_passwords WHERE sha1 >= :lo AND sha1 < :hi "
            "GROUP BY sha1 ORDER BY sha1"
        ),
        {"lo": lo, "hi": hi},
    ).all()
    return [(bytes(r[0]), int(r[1])) for r in rows]


def email_range(conn: Connection, prefix: str) -> dict[bytes, list[str]]:
    """digest -> breach names for every e-mail digest under a 6-hex prefix."""
    lo, hi = prefix_bounds(prefix)
    rows = conn.execute(
        text(
            "SELECT e.sha1, b.name FROM breached_emails e JOIN breaches b ON b.id = e.breach_id "
            "WHERE e.sha1 >= :lo AND e.sha1 < :hi ORDER BY e.sha1, b.name"
        ),
        {"lo": lo, "hi": hi},
    ).all()
    out: dict[bytes, list[str]] = {}
    for digest, name in rows:
        out.setdefault(bytes(digest), []).append(name)
    return out


def password_count(conn: Connection, digest: bytes) -> int:
    row = conn.execute(
        text("SELECT SUM(count) FROM pwned_passwords WHERE sha1 = :d"), {"d": digest}
    ).scalar()
    return int(row or 0)


def email_breaches(conn: Connection, digest: bytes) -> list[str]:
    rows = conn.execute(
        text(
            "SELECT b.name FROM breached_emails e JOIN breaches b ON b.id = e.breach_id "
            "WHERE e.sha1 = :d ORDER BY b.name"
        ),
        {"d": digest},
    ).scalars()
    return list(rows)


@dataclass(frozen=True)
class CorpusStats:
    breaches: list[dict[str, Any]]
    password_digests: int
    email_digests: int


def stats(conn: Connection) -> CorpusStats:
    breaches = [
        dict(r._mapping)
        for r in conn.execute(
            text(
                "SELECT name, kind, breach_date, imported_at, lines_read, lines_bad, "
                "password_entries, email_entries FROM breaches ORDER BY name"
            )
        )
    ]
    pw = conn.execute(text("SELECT COUNT(DISTINCT sha1) FROM pwned_passwords")).scalar()
    em = conn.execute(text("SELECT COUNT(DISTINCT sha1) FROM breached_emails")).scalar()
    return CorpusStats(breaches, int(pw or 0), int(em or 0))


class CorpusWriter:
    """Bulk writes of one breach's digests inside the caller's transaction."""

    def __init__(self, conn: Connection, breach_id: int) -> None:
        self.conn = conn
        self.breach_id = breach_id
        self.dbapi: Any = cast(Any, conn.connection.driver_connection)
        self.postgres = conn.dialect.name == "postgresql"
        if self.postgres:
            with self.dbapi.cursor() as cur:
                cur.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS bg_stage (sha1 bytea, count integer) "
                    "ON COMMIT DROP"
                )

    def clear(self, *, passwords: bool, emails: bool) -> None:
        """Forget what an earlier import of this breach stored, so a re-import replaces it."""
        if passwords:
            self.conn.execute(
                text("DELETE FROM pwned_passwords WHERE breach_id = :b"), {"b": self.breach_id}
            )
        if emails:
            self.conn.execute(
                text("DELETE FROM breached_emails WHERE breach_id = :b"), {"b": self.breach_id}
            )

    def add_passwords(self, counts: Mapping[bytes, int]) -> None:
        """Add counts (already summed within the batch) to this breach's totals."""
        if not counts:
            return
        items = sorted(counts.items())
        if self.postgres:
            self._copy_stage(items)
            self._pg(
                "INSERT INTO pwned_passwords (sha1, breach_id, count) "
                "SELECT sha1, %s, count FROM bg_stage "
                "ON CONFLICT (sha1, breach_id) DO UPDATE "
                "SET count = pwned_passwords.count + EXCLUDED.count"
            )
        else:
            b = self.breach_id
            self.dbapi.executemany(
                "INSERT INTO pwned_passwords (sha1, breach_id, count) VALUES (?, ?, ?) "
                "ON CONFLICT (sha1, breach_id) DO UPDATE SET count = count + excluded.count",
                ((d, b, c) for d, c in items),
            )

    def add_emails(self, digests: Iterable[bytes]) -> None:
        items = sorted(set(digests))
        if not items:
            return
        if self.postgres:
            self._copy_stage((d, 0) for d in items)
            self._pg(
                "INSERT INTO breached_emails (sha1, breach_id) SELECT sha1, %s FROM bg_stage "
                "ON CONFLICT DO NOTHING"
            )
        else:
            b = self.breach_id
            self.dbapi.executemany(
                "INSERT INTO breached_emails (sha1, breach_id) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                ((d, b) for d in items),
            )

    def _copy_stage(self, rows: Iterable[tuple[bytes, int]]) -> None:
        with self.dbapi.cursor() as cur:
            cur.execute("TRUNCATE bg_stage")
            with cur.copy("COPY bg_stage (sha1, count) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def _pg(self, sql: str) -> None:
        with self.dbapi.cursor() as cur:
            cur.execute(sql, (self.breach_id,))

    def entries(self) -> tuple[int, int]:
        """How many password and e-mail digests this breach now holds."""
        b = {"b": self.breach_id}
        pw = self.conn.execute(
            text("SELECT COUNT(*) FROM pwned_passwords WHERE breach_id = :b"), b
        ).scalar()
        em = self.conn.execute(
            text("SELECT COUNT(*) FROM breached_emails WHERE breach_id = :b"), b
        ).scalar()
        return int(pw or 0), int(em or 0)
