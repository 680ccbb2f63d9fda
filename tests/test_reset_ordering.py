"""A job's list of addresses, resolved and sorted by account outside the service's database."""

from __future__ import annotations

import contextlib
import os
import random
import threading
from pathlib import Path

import pytest

from auth.reset.ordering import AccountOrder


def address(i: int) -> str:
    return f"a{i}@example.org"


def by_lookup(emails: list[str]) -> dict[str, int]:
    """A look-up that knows a<i>@example.org as account i, for even i only."""
    ids = {e: int(e[1 : e.index("@")]) for e in emails}
    return {e: i for e, i in ids.items() if i % 2 == 0}


def test_batches_come_back_in_account_order_size_at_a_time_each_account_once() -> None:
    rng = random.Random(7)
    ids = [2 * i for i in rng.sample(range(1, 25_000), 2_500)]  # all known
    order = AccountOrder()
    try:
        order.stage(address(i) for i in ids)
        order.stage(address(i) for i in ids[:300])  # listed twice, staged later
        assert [e for chunk in order.resolve_with(by_lookup) for e in chunk] == []
        out = list(order.batches(1000))
    finally:
        order.close()
    assert [len(b.items) for b in out] == [1000, 1000, 500]
    got = [t.account_id for b in out for t in b.items]
    assert got == sorted(ids)
    assert all(b.emails == {t.account_id: address(t.account_id) for t in b.items} for b in out)


def test_unknown_addresses_come_out_in_list_order_each_once() -> None:
    listed = [7, 4, 9, 7, 2, 3, 9]
    order = AccountOrder()
    try:
        order.stage(address(i) for i in listed)
        unknown = [e for chunk in order.resolve_with(by_lookup) for e in chunk]
        out = [t.account_id for b in order.batches(10) for t in b.items]
    finally:
        order.close()
    assert unknown == [address(7), address(9), address(3)]
    assert out == [2, 4]


def test_what_one_thread_stages_another_reads() -> None:
    """The job reads batches ahead on a helper thread."""
    order = AccountOrder()
    seen: list[int] = []
    try:
        order.stage(address(i) for i in (8, 2, 6))
        list(order.resolve_with(by_lookup))
        reader = threading.Thread(
            target=lambda: seen.extend(t.account_id for b in order.batches(2) for t in b.items)
        )
        reader.start()
        reader.join()
    finally:
        order.close()
    assert seen == [2, 6, 8]


def test_nothing_staged_gives_no_batch() -> None:
    order = AccountOrder()
    try:
        assert list(order.resolve_with(by_lookup)) == []
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
    order.stage(address(i) for i in range(200_000))  # ~8 MB of rows: more than the cache
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
        order.stage(listed)
        unknown = [e for chunk in order.resolve(str(service)) for e in chunk]
        out = list(order.batches(2))
    finally:
        order.close()
    assert unknown == ["z@example.org", "y@example.org", "x@example.org"]
    assert [[t.account_id for t in b.items] for b in out] == [[2, 4], [9]]
    assert out[0].emails == {2: "a2@example.org", 4: "a4@example.org"}
