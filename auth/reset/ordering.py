"""A job's resolved targets put in account order, in bounded memory.

The sort runs in a private temporary SQLite database (`sqlite3.connect("")`): its pages
stay in a small cache and spill to an unnamed file that the operating system removes when
the connection closes or the process dies, so a killed run leaves nothing behind, and the
service's database takes no writes for it. It replaced a staging table in the service's
database (reset_job_targets, dropped by migration 0009): staging 1e5 addresses there cost
0.9 s of a 5.7 s reset on SQLite (each batch's rows committed through the WAL, then read
back with their addresses), and a killed run's rows waited hours to be removed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from auth.reset.forced import Target
from auth.reset.sources import Batch

CACHE_KIB = 4096  # the sort's page cache; beyond it, pages go to the unnamed file


class AccountOrder:
    """Collect batches with `add`, then read them back `size` at a time in account order
    with `batches`; an account added twice comes out once. `add` and `batches` may run on
    different threads, one after the other (the job reads ahead on a helper thread)."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect("", isolation_level=None, check_same_thread=False)
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
