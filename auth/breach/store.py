"""The local corpus in the database: k-anonymity range reads and bulk writes.

Digests are 20-byte keys of `WITHOUT ROWID` (SQLite) or B-tree primary keys (PostgreSQL),
so a 5- or 6-hex prefix is one index range scan. Writes are set-based, a statement per
batch: on SQLite the digests go as one blob and the counts as JSON; PostgreSQL gets COPY,
straight into the table while a sorted file's batches cannot meet rows already written,
else into a temp table and one INSERT..SELECT.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, text

from auth.breach.formats import MAX_COUNT
from auth.breach.hashing import prefix_bounds
from auth.db import Database

# One round trip: a row without a digest holds when the corpus last changed (NULL when
# nothing was imported); the others are the range's digests, counts summed over breaches.
_PASSWORD_RANGE = (
    "SELECT NULL, NULL, MAX(imported_at) FROM breaches UNION ALL "
    "SELECT sha1, SUM(count), NULL FROM pwned_passwords WHERE sha1 >= ? AND sha1 < ? "
    "GROUP BY sha1"
)
_PASSWORD_RANGE_PG = _PASSWORD_RANGE.replace("?", "%s")


@dataclass(frozen=True)
class PasswordRange:
    rows: list[tuple[bytes, int]]  # (digest, times seen over all breaches), sorted
    changed: dt.datetime | None  # when the corpus last changed (None: nothing imported)


def password_range(db: Database, prefix: str) -> PasswordRange:
    """Every digest under a 5-hex prefix, and when the corpus last changed: one statement
    that stands alone (GET /range/ asks nothing else of the database)."""
    lo, hi = prefix_bounds(prefix)
    with db.standalone() as conn:
        # GET /range/ is the public hot path: its one fixed statement goes straight to the
        # driver, spared SQLAlchemy's per-statement work (about half the call's CPU).
        sql = _PASSWORD_RANGE if conn.dialect.paramstyle == "qmark" else _PASSWORD_RANGE_PG
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(sql, (lo, hi))
            rows = cur.fetchall()
        finally:
            cur.close()
    [changed] = [when for digest, _, when in rows if digest is None]
    found = sorted((bytes(d), int(seen)) for d, seen, _ in rows if d is not None)
    return PasswordRange(found, _utc(changed))


def _utc(value: dt.datetime | str | None) -> dt.datetime | None:
    """A timestamp as the driver hands it back (SQLite: naive ISO text) -> aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


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


_PASSWORD_COUNT = text("SELECT SUM(count) FROM pwned_passwords WHERE sha1 = :d")


def password_count(conn: Connection, digest: bytes) -> int:
    """Times one password was seen over all breaches."""
    return int(conn.execute(_PASSWORD_COUNT, {"d": digest}).scalar() or 0)


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


# PostgreSQL binary COPY of (sha1 bytea, count int4): whole batches packed with struct,
# rather than psycopg's write_row per row, which was most of an import's client time.
_PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
_PG_COPY_ROW = struct.Struct("!hi20sii")  # 2 fields: (length 20, digest), (length 4, int4)
_PG_COPY_ROW3 = struct.Struct("!hi20siiii")  # 3 fields: digest, breach_id int4, count int4
_PG_COPY_TRAILER = b"\xff\xff"

# SQLite: a batch goes in as one statement whose rows SQLite unpacks itself from a blob of
# digests and a JSON array of counts, instead of one executemany step per row.
_PW_INSERT_SQLITE = (
    "INSERT INTO pwned_passwords (sha1, breach_id, count) "
    "SELECT substr(?1, key * 20 + 1, 20), ?2, value FROM json_each(?3) WHERE true"
)
_PW_UPSERT_SQLITE = (
    "INSERT INTO pwned_passwords (sha1, breach_id, count) "
    "SELECT substr(?1, key * 20 + 1, 20), ?2, value FROM json_each(?3) WHERE true "
    "ON CONFLICT (sha1, breach_id) DO UPDATE SET count = MIN(count + excluded.count, 2147483647)"
)
# PostgreSQL: batches that may meet rows already written are appended to unindexed
# temporary tables (not WAL-logged) and merged once, in digest order, by finish(): one
# upsert walking the index in order instead of a random upsert per batch.
_PW_MERGE_PG = (
    "INSERT INTO pwned_passwords (sha1, breach_id, count) "
    "SELECT sha1, %s, LEAST(SUM(count), 2147483647) FROM bg_pending_passwords "
    "GROUP BY sha1 ORDER BY sha1 "
    "ON CONFLICT (sha1, breach_id) DO UPDATE "
    "SET count = LEAST(pwned_passwords.count::int8 + EXCLUDED.count, 2147483647)"
)
_EMAIL_MERGE_PG = (
    "INSERT INTO breached_emails (sha1, breach_id) "
    "SELECT DISTINCT sha1, %s FROM bg_pending_emails ORDER BY sha1"
)


class CorpusWriter:
    """Bulk writes of one breach's digests inside the caller's transaction."""

    def __init__(self, conn: Connection, breach_id: int) -> None:
        self.conn = conn
        self.breach_id = breach_id
        # After clear(passwords=True) this breach holds no password rows; while every batch
        # starts above the highest digest written so far (a sorted file such as HIBP's), no
        # row can exist yet, so a plain INSERT does what the upsert would, for less.
        self._pw_cleared = False
        self._emails_cleared = False  # then every e-mail row waits in bg_pending_emails
        self._pw_highest: bytes | None = None
        self.dbapi: Any = cast(Any, conn.connection.driver_connection)
        self.postgres = conn.dialect.name == "postgresql"
        if self.postgres:
            with self.dbapi.cursor() as cur:
                for name in ("bg_pending_passwords", "bg_pending_emails"):
                    cur.execute(
                        f"CREATE TEMP TABLE IF NOT EXISTS {name} (sha1 bytea, count integer) "
                        "ON COMMIT DROP"
                    )

    def clear(self, *, passwords: bool, emails: bool) -> None:
        """Forget what an earlier import of this breach stored, so a re-import replaces it."""
        if passwords:
            self.conn.execute(
                text("DELETE FROM pwned_passwords WHERE breach_id = :b"), {"b": self.breach_id}
            )
            self._pw_cleared, self._pw_highest = True, None
        if emails:
            self.conn.execute(
                text("DELETE FROM breached_emails WHERE breach_id = :b"), {"b": self.breach_id}
            )
            self._emails_cleared = True

    def add_passwords(self, counts: Mapping[bytes, int]) -> None:
        """Add counts (already summed within the batch) to this breach's totals."""
        if not counts:
            return
        # Counts saturate at the column's int4 maximum rather than fail the whole import.
        items = sorted((d, min(c, MAX_COUNT)) for d, c in counts.items())
        first, last = items[0][0], items[-1][0]
        fresh = self._pw_cleared and (self._pw_highest is None or first > self._pw_highest)
        self._pw_highest = last if self._pw_highest is None else max(self._pw_highest, last)
        if self.postgres and fresh:
            # No row of this batch can exist yet: COPY straight into the table, one write
            # instead of stage + INSERT..SELECT.
            self._copy_direct(items)
        elif self.postgres:
            self._copy_pending("bg_pending_passwords", items)
        else:
            digests = b"".join([d for d, _ in items])
            if len(digests) != 20 * len(items):
                raise ValueError("SHA-1 digests are 20 bytes")
            self.dbapi.execute(
                _PW_INSERT_SQLITE if fresh else _PW_UPSERT_SQLITE,
                (digests, self.breach_id, json.dumps([c for _, c in items])),
            )

    def add_emails(self, digests: Iterable[bytes]) -> None:
        items = sorted(set(digests))
        if not items:
            return
        if self.postgres:
            self._copy_pending("bg_pending_emails", [(d, 0) for d in items])
        else:
            b = self.breach_id
            self.dbapi.executemany(
                "INSERT INTO breached_emails (sha1, breach_id) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                ((d, b) for d in items),
            )

    def finish(self) -> None:
        """Merge what waits in the pending tables (PostgreSQL); call once the batches are in."""
        if self.postgres:
            with self.dbapi.cursor() as cur:
                cur.execute(_PW_MERGE_PG, (self.breach_id,))
                conflicts = "" if self._emails_cleared else " ON CONFLICT DO NOTHING"
                cur.execute(_EMAIL_MERGE_PG + conflicts, (self.breach_id,))
                cur.execute("TRUNCATE bg_pending_passwords, bg_pending_emails")

    def _copy_pending(self, table: str, rows: list[tuple[bytes, int]]) -> None:
        if any(len(d) != 20 for d, _ in rows):  # "20s" would pad or cut silently
            raise ValueError("SHA-1 digests are 20 bytes")
        pack = _PG_COPY_ROW.pack
        try:
            data = b"".join([pack(2, 20, d, 4, c) for d, c in rows])
        except struct.error as exc:  # a count beyond int4, which the text COPY refused too
            raise ValueError(f"count out of range for the corpus: {exc}") from None
        with (
            self.dbapi.cursor() as cur,
            cur.copy(f"COPY {table} (sha1, count) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.write(_PG_COPY_HEADER + data + _PG_COPY_TRAILER)

    def _copy_direct(self, rows: list[tuple[bytes, int]]) -> None:
        if any(len(d) != 20 for d, _ in rows):
            raise ValueError("SHA-1 digests are 20 bytes")
        pack, b = _PG_COPY_ROW3.pack, self.breach_id
        data = b"".join([pack(3, 20, d, 4, b, 4, c) for d, c in rows])
        with (
            self.dbapi.cursor() as cur,
            cur.copy(
                "COPY pwned_passwords (sha1, breach_id, count) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.write(_PG_COPY_HEADER + data + _PG_COPY_TRAILER)

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
