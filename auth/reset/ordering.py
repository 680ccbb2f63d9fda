"""A job's resolved targets put in account order, in bounded memory.

The sort runs in a private temporary SQLite database (`sqlite3.connect("")`): its pages
stay in a small cache and spill to an unnamed file that the operating system removes when
the connection closes or the process dies, so a killed run leaves nothing behind, and the
service's database takes no writes for it. It replaced a staging table in the service's
database (reset_job_targets, dropped by migration 0009): staging 1e5 addresses there cost
0.9 s of a 5.7 s reset on SQLite (each batch's rows committed through the WAL, then read
back with their addresses), and a killed run's rows waited hours to be removed.

When the service's database is an SQLite file, the whole list is resolved in SQL
(`resolve`): the addresses go into the private database, keyed by address, and one join
against the service's database, attached read-only, finds their accounts. Scanned in
address order, the look-ups walk the e-mail index from one page to the next. Elsewhere
(PostgreSQL; an in-memory database, which no other connection sees) the job resolves a
batch at a time and `add`s each.
"""

from __future__ import annotations

import itertools
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path

from auth.reset.forced import Target
from auth.reset.sources import Batch

CACHE_KIB = 4096  # the sort's page cache; beyond it, pages go to the unnamed file
CHUNK = 5000  # addresses per executemany, and unknown addresses per list handed back


class AccountOrder:
    """Collect batches with `add`, then read them back `size` at a time in account order
    with `batches`; an account added twice comes out once. `add` and `batches` may run on
    different threads, one after the other (the job reads ahead on a helper thread)."""

    def __init__(self) -> None:
        # "file:" names no file, as "" does: a private database. As a URI it lets `resolve`
        # attach the service's database read-only.
        self._conn = sqlite3.connect(
            "file:", isolation_level=None, check_same_thread=False, uri=True
        )
        for pragma in ("journal_mode = OFF", "synchronous = OFF", f"cache_size = -{CACHE_KIB}"):
            self._conn.execute(f"PRAGMA {pragma}")
        self._conn.execute(
            "CREATE TABLE targets (account_id INTEGER PRIMARY KEY, email TEXT NOT NULL)"
        )

    def add(self, part: Batch) -> None:
        """One transaction per batch: with a transaction per row (the connection's
        autocommit), adding 1e5 rows took 0.7-1.0 s instead of 0.16 s."""
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany(
                "INSERT OR IGNORE INTO targets VALUES (?, ?)",
                [(t.account_id, part.emails.get(t.account_id, "")) for t in part.items],
            )

    def resolve(self, database: str, addresses: Iterable[str]) -> Iterator[list[str]]:
        """Resolve a whole list of (normalised) addresses against the accounts of the SQLite
        file `database`; yields the unknown ones, in list order, each once, in lists of up
        to CHUNK. An address listed twice is taken once. For 1e5 of 1e6 accounts this took
        0.07 s in SQL after 0.14 s of staging, against 0.8 s for the look-up a batch at a
        time (the addresses in list order, a random page of the index each) and `add`."""
        conn = self._conn
        conn.execute(
            "CREATE TABLE listed (email TEXT PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID"
        )
        conn.execute("CREATE TABLE unknown (line INTEGER PRIMARY KEY, email TEXT NOT NULL)")
        numbered = enumerate(addresses)
        with conn:
            conn.execute("BEGIN")
            while chunk := list(itertools.islice(numbered, CHUNK)):
                conn.executemany(
                    "INSERT OR IGNORE INTO listed VALUES (?, ?)", [(e, n) for n, e in chunk]
                )
        uri = "file:" + urllib.parse.quote(str(Path(database).resolve())) + "?mode=ro"
        conn.execute("ATTACH DATABASE ? AS service", (uri,))
        try:
            with conn:  # one read of the service's database: each address lands in one table
                conn.execute("BEGIN")
                conn.execute(
                    "INSERT INTO targets SELECT a.id, l.email FROM listed l "
                    "CROSS JOIN service.accounts a ON a.email = l.email"
                )
                conn.execute(
                    "INSERT INTO unknown SELECT l.line, l.email FROM listed l WHERE NOT EXISTS "
                    "(SELECT 1 FROM service.accounts a WHERE a.email = l.email)"
                )
        finally:
            conn.execute("DETACH DATABASE service")
        conn.execute("DROP TABLE listed")
        after = -1
        while rows := conn.execute(
            "SELECT line, email FROM unknown WHERE line > ? ORDER BY line LIMIT ?", (after, CHUNK)
        ).fetchall():
            yield [email for _, email in rows]
            after = rows[-1][0]

    def batches(self, size: int) -> Iterator[Batch]:
        """Keyset paging by account id: no cursor stays open across a yield."""
        after = 0
        while True:
            rows = self._conn.execute(
                "SELECT account_id, email FROM targets WHERE account_id > ? "
                "ORDER BY account_id LIMIT ?",
                (after, size),
            ).fetchall()
            if not rows:
                return
            yield Batch([Target(a) for a, _ in rows], dict(rows))
            after = rows[-1][0]

    def close(self) -> None:
        self._conn.close()
