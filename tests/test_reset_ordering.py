"""A job's resolved list, sorted by account outside the service's database."""

from __future__ import annotations

import contextlib
import os
import random
import threading
from pathlib import Path

import pytest

from auth.reset.forced import Target
from auth.reset.ordering import AccountOrder
from auth.reset.sources import Batch


def batch(ids: list[int]) -> Batch:
    return Batch([Target(a) for a in ids], {a: f"a{a}@example.org" for a in ids})


def test_batches_come_back_in_account_order_size_at_a_time_each_account_once() -> None:
    rng = random.Random(7)
    ids = rng.sample(range(1, 50_000), 2_500)
    listed = ids + ids[:300]  # listed twice, in later batches
    order = AccountOrder()
    try:
        for start in range(0, len(listed), 400):
            order.add(batch(listed[start : start + 400]))
        out = list(order.batches(1000))
    finally:
        order.close()
    assert [len(b.items) for b in out] == [1000, 1000, 500]
    got = [t.account_id for b in out for t in b.items]
    assert got == sorted(ids)
    assert all(
        b.emails == {t.account_id: f"a{t.account_id}@example.org" for t in b.items} for b in out
    )
    assert all(b.unknown == [] for b in out)


def test_what_one_thread_adds_another_reads() -> None:
    """The job reads batches ahead on a helper thread."""
    order = AccountOrder()
    seen: list[int] = []
    try:
        order.add(batch([9, 3, 7]))
        reader = threading.Thread(
            target=lambda: seen.extend(t.account_id for b in order.batches(2) for t in b.items)
        )
        reader.start()
        reader.join()
    finally:
        order.close()
    assert seen == [3, 7, 9]


def test_nothing_added_gives_no_batch() -> None:
    order = AccountOrder()
    try:
        assert list(order.batches(10)) == []
    finally:
        order.close()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
def test_what_spills_to_disk_has_no_name_and_is_gone_once_closed() -> None:
    """A killed run leaves nothing behind: the sort's file is unlinked from the start."""

    def open_files() -> dict[str, str]:
        found = {}
        for fd in Path("/proc/self/fd").iterdir():
            with contextlib.suppress(OSError):
                found[fd.name] = os.readlink(fd)
        return found

    before = open_files()
    order = AccountOrder()
    for start in range(1, 200_001, 5000):  # ~8 MB of rows: more than the sort's cache
        order.add(batch(list(range(start, start + 5000))))
    # Files opened meanwhile (not sockets or pipes; another thread may reuse a number).
    spilled = {t for fd, t in open_files().items() if before.get(fd) != t and t[:1] == "/"}
    order.close()
    assert spilled and all(target.endswith("(deleted)") for target in spilled)
    assert not spilled & set(open_files().values())


def test_a_whole_list_is_resolved_in_sql_unknown_addresses_in_list_order_each_once(
    tmp_path: Path,
) -> None:
    """On an SQLite file the list is looked up in one join, against the database attached
    read-only; an address listed twice is taken once, known or not."""
    import sqlite3

    service = tmp_path / "a service ?#%.db"  # a URI, quoted
    with contextlib.closing(sqlite3.connect(service)) as conn, conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT UNIQUE)")
        conn.executemany(
            "INSERT INTO accounts VALUES (?, ?)", [(i, f"a{i}@example.org") for i in (4, 9, 2)]
        )
    listed = ["z@example.org", "a9@example.org", "y@example.org", "a2@example.org"]
    listed += ["z@example.org", "a9@example.org", "a4@example.org", "x@example.org"]
    order = AccountOrder()
    try:
        unknown = [e for chunk in order.resolve(str(service), iter(listed)) for e in chunk]
        out = list(order.batches(2))
    finally:
        order.close()
    assert unknown == ["z@example.org", "y@example.org", "x@example.org"]
    assert [[t.account_id for t in b.items] for b in out] == [[2, 4], [9]]
    assert out[0].emails == {2: "a2@example.org", 4: "a4@example.org"}
