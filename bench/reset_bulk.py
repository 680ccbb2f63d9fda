"""Bulk forced reset: `breachguard reset --emails FILE --no-send` of many accounts.

A fresh database gets `--accounts` accounts (default 1e6; made-up addresses under reserved
example domains, password_hash NULL) loaded set-based (binary COPY on PostgreSQL, one
executemany on SQLite), then ANALYZE. For each run, a seeded random set of accounts
(disjoint from every other run's) is written to an e-mail file in random order and the
real CLI resets them as a child process (through GNU time, for its own peak RSS), with
RESET_BATCH set: every account gets a Reset row, its status/epoch/reason changed, its API
keys revoked, a reset token, one queued notice and an audit event (checked afterwards).

Baseline in the same run, over the same ids, just before the CLI: the raw set-based
UPDATE `SET status='reset_required', session_epoch=session_epoch+1`, committed, in one
statement and through a temp table of the ids (the faster is shown); the rows are then
put back, so the CLI finds them as they were.

Floors (runs of 1e5 accounts): <= 10 s on SQLite, <= 15 s on PostgreSQL, peak RSS
<= 200 MiB.

    .venv/bin/python bench/reset_bulk.py                       # 1e6 accounts, both dbs
    .venv/bin/python bench/reset_bulk.py --accounts 1e5 --runs 1e4:5000 --db sqlite
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    CLI,
    BenchDB,
    analyze,
    bench_db,
    bulk_load,
    cli_env,
    human,
    parse_size,
    run_child,
    table,
    verdict,
    workdir,
)

FLOOR_SECONDS = {"sqlite": 10.0, "postgres": 15.0}  # for 1e5 accounts
FLOOR_RSS_MIB = 200.0
COLUMNS = (
    "id",
    "email",
    "email_sha1",
    "name",
    "status",
    "session_epoch",
    "mfa_required",
    "created_at",
    "updated_at",
)


def email_of(i: int) -> str:
    return f"acct{i:07d}@org{i % 97}.example.org"


def parse_runs(text: str) -> list[tuple[int, int]]:
    """'1e4:1000,1e5:1000,1e5:5000' -> [(10000, 1000), ...] (accounts reset, RESET_BATCH)."""
    out = []
    for part in text.split(","):
        n, _, batch = part.partition(":")
        out.append((parse_size(n), parse_size(batch or "1000")))
    return out


# --- fixtures -----------------------------------------------------------------------------


def load_accounts(db: BenchDB, n: int) -> None:
    from auth.breach.hashing import email_sha1

    now = dt.datetime(2024, 6, 4, 12, 0, 0, tzinfo=dt.UTC)
    if db.kind == "sqlite":
        stamp = now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's form
        bulk_load(
            db,
            "accounts",
            (
                (i + 1, email_of(i), email_sha1(email_of(i)), "", "active", 0, 0, stamp, stamp)
                for i in range(n)
            ),
            COLUMNS,
        )
        with sqlite3.connect(db.path) as conn:  # type: ignore[arg-type]
            conn.execute("ANALYZE")
        return
    import psycopg

    types = ["int4", "text", "bytea", "text", "text", "int4", "bool", "timestamptz", "timestamptz"]
    with psycopg.connect(db.libpq) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY accounts ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for i in range(n):
                e = email_of(i)
                copy.write_row((i + 1, e, email_sha1(e), "", "active", 0, False, now, now))
        cur.execute("SELECT setval(pg_get_serial_sequence('accounts', 'id'), %s)", (n,))
        conn.commit()
    analyze(db)


# --- baseline: the raw set-based UPDATE -----------------------------------------------------

SET = "status = 'reset_required', session_epoch = session_epoch + 1"
UNDO = "status = 'active', session_epoch = session_epoch - 1"


def raw_update(db: BenchDB, ids: list[int], how: str, undo: bool = False) -> float:
    """Seconds for one committed set-based UPDATE of these ids (connection set up outside)."""
    assign = UNDO if undo else SET
    if db.kind == "sqlite":
        conn = sqlite3.connect(db.path, isolation_level=None)  # type: ignore[arg-type]
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # as auth.db sets it
        t = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        if how == "one":
            sql = f"UPDATE accounts SET {assign} WHERE id IN (SELECT value FROM json_each(?))"  # noqa: S608
            changed = conn.execute(sql, (json.dumps(ids),)).rowcount
        else:
            conn.execute("CREATE TEMP TABLE bench_ids (id INTEGER PRIMARY KEY)")
            conn.executemany("INSERT INTO bench_ids VALUES (?)", ((i,) for i in ids))
            changed = conn.execute(
                f"UPDATE accounts SET {assign} WHERE id IN (SELECT id FROM bench_ids)"  # noqa: S608
            ).rowcount
            conn.execute("DROP TABLE bench_ids")
        conn.execute("COMMIT")
        seconds = time.perf_counter() - t
        conn.close()
    else:
        import psycopg

        with psycopg.connect(db.libpq) as conn, conn.cursor() as cur:
            t = time.perf_counter()
            if how == "one":
                cur.execute(f"UPDATE accounts SET {assign} WHERE id = ANY(%s)", (ids,))  # noqa: S608
                changed = cur.rowcount
            else:
                cur.execute("CREATE TEMP TABLE bench_ids (id int4 PRIMARY KEY) ON COMMIT DROP")
                with cur.copy("COPY bench_ids (id) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["int4"])
                    for i in ids:
                        copy.write_row((i,))
                cur.execute("ANALYZE bench_ids")
                cur.execute(
                    f"UPDATE accounts a SET {assign} FROM bench_ids t WHERE a.id = t.id"  # noqa: S608
                )
                changed = cur.rowcount
            conn.commit()
            seconds = time.perf_counter() - t
    assert changed == len(ids), (changed, len(ids))
    return seconds


def settle(db: BenchDB) -> None:
    """Write back what earlier steps left dirty (PostgreSQL CHECKPOINT; SQLite's WAL into
    the database), so that no measurement pays for the one before it."""
    if db.kind == "sqlite":
        with sqlite3.connect(db.path) as conn:  # type: ignore[arg-type]
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    import psycopg

    with psycopg.connect(db.libpq, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def vacuum(db: BenchDB) -> None:
    if db.kind == "postgres":
        import psycopg

        with psycopg.connect(db.libpq, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) accounts")


def baseline(db: BenchDB, ids: list[int]) -> dict[str, float]:
    """Each way once, the rows put back after each (and the table vacuumed)."""
    out = {}
    for how in ("one", "temp"):
        settle(db)
        out[how] = raw_update(db, ids, how)
        raw_update(db, ids, "one", undo=True)
        vacuum(db)
    settle(db)
    return out


def check(db: BenchDB, ids: list[int]) -> dict[str, int]:
    """What the CLI left for these ids: resets, tokens, queued notices, audit events."""
    from sqlalchemy import text

    from auth.db import Database

    database = Database(db.url)
    lo, hi = min(ids), max(ids)
    idset = set(ids)
    counts = {}
    queries = {
        "reset_required": "SELECT id FROM accounts WHERE status = 'reset_required' "
        "AND session_epoch = 1 AND id BETWEEN :lo AND :hi",
        "resets": "SELECT account_id FROM resets WHERE account_id BETWEEN :lo AND :hi",
        "tokens": "SELECT account_id FROM reset_tokens WHERE revoked_at IS NULL "
        "AND account_id BETWEEN :lo AND :hi",
        "notices": "SELECT account_id FROM notices WHERE status = 'queued' "
        "AND token_id IS NOT NULL AND account_id BETWEEN :lo AND :hi",
    }
    try:
        with database.engine.connect() as conn:
            for name, sql in queries.items():
                got = [r[0] for r in conn.execute(text(sql), {"lo": lo, "hi": hi})]
                counts[name] = sum(1 for a in got if a in idset)
            counts["audit"] = int(
                conn.execute(
                    text("SELECT COUNT(*) FROM audit_events WHERE action = 'account:reset:forced'")
                ).scalar_one()
            )
    finally:
        database.dispose()
    return counts


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--accounts", type=parse_size, default=1_000_000, help="accounts in the db")
    ap.add_argument(
        "--runs",
        type=parse_runs,
        default=parse_runs("1e4:5000,1e5:5000"),
        help="comma-separated RESETS:RESET_BATCH, each over its own accounts",
    )
    ap.add_argument(
        "--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    ap.add_argument("--seed", type=int, default=20240604)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (e-mail files)")
    args = ap.parse_args()

    total = sum(n for n, _ in args.runs)
    if total > args.accounts:
        raise SystemExit(f"the runs need {total:,} distinct accounts; --accounts is smaller")
    rng = random.Random(args.seed)
    pool = rng.sample(range(args.accounts), total)  # disjoint sets, in random order
    sets: list[list[int]] = []
    for n, _ in args.runs:
        sets.append(pool[:n])
        pool = pool[n:]

    rows: list[list[object]] = []
    results: list[dict[str, object]] = []
    with workdir(args.keep) as work:
        files = []
        for k, chosen in enumerate(sets):
            path = work / f"emails-{k}.txt"
            path.write_text("".join(email_of(i) + "\n" for i in chosen))
            files.append(path)
        empty = work / "emails-startup.txt"
        empty.write_text("nobody@example.invalid\n")
        for kind in args.db:
            with bench_db(kind, work, "reset") as db:
                t = time.perf_counter()
                load_accounts(db, args.accounts)
                print(
                    f"[{kind}] {human(args.accounts)} accounts loaded in "
                    f"{time.perf_counter() - t:.1f} s",
                    file=sys.stderr,
                )
                env = cli_env(db, work / "instance")
                start = run_child([CLI, "reset", "--emails", str(empty), "--no-send"], env=env)
                startup = [kind, "CLI start-up (1 unknown address)", "-", "-", start.seconds]
                rows.append([*startup, "-", "-", start.max_rss_mib])
                for (n, batch), chosen, path in zip(args.runs, sets, files, strict=True):
                    ids = [i + 1 for i in chosen]
                    best = min(baseline(db, ids).values())
                    rows.append([kind, "raw UPDATE (baseline)", f"{n:,}", "-", best, n / best, 1.0])
                    rows[-1].append("-")
                    env_run = dict(env, RESET_BATCH=str(batch))
                    run = run_child([CLI, "reset", "--emails", str(path), "--no-send"], env=env_run)
                    m = re.search(r"job (\d+): reset (\d+), already reset (\d+)", run.stdout)
                    assert m and int(m.group(2)) == n, run.stdout[-2000:]
                    got = check(db, ids)
                    for name in ("reset_required", "resets", "tokens", "notices"):
                        assert got[name] == n, (name, got, n)
                    cli = [kind, "CLI reset --no-send", f"{n:,}", batch, run.seconds]
                    rows.append([*cli, n / run.seconds, best / run.seconds, run.max_rss_mib])
                    results.append(
                        {"db": kind, "n": n, "seconds": run.seconds, "rss": run.max_rss_mib}
                    )
                    print(f"[{kind}] {n:,} @ {batch}: {run.seconds:.1f} s", file=sys.stderr)

    print()
    print(
        f"{human(args.accounts)} accounts; each run resets its own random accounts "
        "(resets, status, epoch, API keys, token, queued notice, audit event); seconds are "
        "wall times (CLI: the whole command, start-up included); x raw = the CLI's "
        "accounts/s over the raw UPDATE's, same ids, just before"
    )
    headers = ["db", "what", "accounts", "RESET_BATCH", "seconds", "accounts/s", "x raw"]
    print(table([*headers, "peak RSS MiB"], rows))
    print()
    for kind in args.db:
        for r in (r for r in results if r["db"] == kind):
            seconds, rss = float(r["seconds"]), float(r["rss"])  # type: ignore[arg-type]
            line = f"[{kind}] {r['n']:,} accounts: {seconds:.1f} s, peak RSS {rss:.0f} MiB"
            if r["n"] == 100_000:
                ok = seconds <= FLOOR_SECONDS[kind] and rss <= FLOOR_RSS_MIB
                line += (
                    f" (floors <= {FLOOR_SECONDS[kind]:.0f} s, <= {FLOOR_RSS_MIB:.0f} MiB: "
                    f"{verdict(ok)})"
                )
            print(line)


if __name__ == "__main__":
    main()
