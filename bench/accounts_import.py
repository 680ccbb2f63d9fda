"""`breachguard accounts import` at the insurer's size: wall time and peak RSS of the real
CLI, then of the same command again on the same file (every account unchanged).

For each size (default 1e5, 5e5 and 1e6) a seeded CSV `email,name,professional_id,password_hash`
is written: made-up people at made-up practices under reserved example domains, in random
order (an export's order, not the e-mail index's), each with an argon2id hash drawn from a
pool of 64 made at cheap test parameters (the import stores hashes, it never computes
one). Each database gets a fresh instance: the CLI imports the file, then imports it
again; both as child processes through GNU time, for their own peak RSS. The counts are
checked afterwards (accounts, account:created events).

Baseline in the same run, on the same file, in another fresh database: a minimal loader
reading the CSV with the csv module and loading the rows into `accounts` in one
transaction, by the backend's fastest plain load (binary COPY on PostgreSQL, executemany
on SQLite), with no checks, no look-up and no audit trail.

Floors (issue #23), judged on a run of 5e5: the import and the re-import of 500,000
accounts in <= 60 s on PostgreSQL, <= 40 s on SQLite (wall time, start-up included); peak
RSS flat: the largest size's within 10% of the smallest's. Beyond the database's caches
(PostgreSQL's shared buffers, SQLite's page cache) every index insert reads a page back,
so 1e6 costs more than twice 5e5 for the plain load too: the "x raw" column shows it.

    .venv/bin/python bench/accounts_import.py                      # 1e5, 5e5, 1e6, both dbs
    .venv/bin/python bench/accounts_import.py --sizes 1e5,5e5 --db sqlite
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sqlite3
import sys
import time
import unicodedata
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    CLI,
    PYTHON,
    BenchDB,
    bench_db,
    cli_env,
    human,
    parse_size,
    run_child,
    table,
    verdict,
    workdir,
)

FLOOR_SECONDS = {"sqlite": 40.0, "postgres": 60.0}  # for FLOOR_SIZE accounts
FLOOR_SIZE = 500_000
FLOOR_RSS_GROWTH = 0.10  # the largest size's peak RSS over the smallest's
THIS = str(Path(__file__).resolve())
FIRST = ["Claire", "Julien", "Amina", "Louis", "Sofia", "Hugo", "Léa", "Yanis", "Inès", "Noé"]
LAST = ["Martin", "Petit", "Durand", "Leroy", "Moreau", "Simon", "Laurent", "Michel", "Garcia"]
PRACTICES = ["cabinet", "pharmacie", "clinique", "chu", "maison-sante", "labo"]
DOMAINS = ["example.org", "example.net", "example.com"]


# --- data ---------------------------------------------------------------------------------


def hash_pool(n: int = 64) -> list[str]:
    """argon2id hashes of made-up passwords at cheap parameters, as a test instance makes."""
    from argon2 import PasswordHasher, Type

    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
    return [hasher.hash(f"bench-made-up-{i}") for i in range(n)]


def email_of(i: int) -> str:
    """Account i's address. ASCII only: notices to a non-ASCII local part are not sent
    today (the SMTP mailer refuses them)."""
    first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
    local = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
    practice = PRACTICES[i % len(PRACTICES)]
    return f"{local.lower()}.{i}@{practice}-{i % 997}.{DOMAINS[i % 3]}"


def write_csv(path: Path, n: int, seed: int, hashes: Mapping[int, str] | None = None) -> None:
    """Accounts 0..n-1 in a seeded random order, with a header line; `hashes` gives some
    accounts (by number) their own hash instead of one from the pool."""
    rng = random.Random(seed)
    order = list(range(n))
    rng.shuffle(order)
    pool, own = hash_pool(), hashes or {}
    with open(path, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["email", "name", "professional_id", "password_hash"])
        for i in order:
            name = f"Dr {FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}"
            stored = own.get(i) or rng.choice(pool)
            out.writerow([email_of(i), name, f"10{rng.randrange(10**9):09d}", stored])


# --- baseline: the plain load, in a child process -------------------------------------------


def child(argv: list[str]) -> None:
    """Load the CSV into `accounts` without checks; prints the seconds of the work."""
    import datetime as dt
    import hashlib

    path, db = argv[0], BenchDB(**json.loads(argv[1]))
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    columns: tuple[str, ...] = ("email", "email_sha1", "name", "professional_id")
    columns += ("password_hash", "status", "session_epoch", "created_at", "updated_at")
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        rows = (
            (e, hashlib.sha1(e.encode()).digest(), name, pid, pw, "active", 0)  # noqa: S324
            for e, name, pid, pw in reader
        )
        if db.kind == "sqlite":
            assert db.path is not None
            stamp = now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
            conn = sqlite3.connect(db.path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # as auth.db sets it
            conn.execute("BEGIN")
            marks = ", ".join("?" for _ in columns)
            sql = f"INSERT INTO accounts ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
            conn.executemany(sql, ((*r, stamp, stamp) for r in rows))
            conn.execute("COMMIT")
            conn.close()
        else:
            import psycopg

            types = ["text", "bytea", "text", "text", "text", "text", "int4"]
            with psycopg.connect(db.libpq) as pg, pg.cursor() as cur:
                sql = f"COPY accounts ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
                with cur.copy(sql) as copy:
                    copy.set_types([*types, "timestamptz", "timestamptz"])
                    for r in rows:
                        copy.write_row((*r, now, now))
                pg.commit()
    print(time.perf_counter() - started)


def baseline(db: BenchDB, path: Path) -> tuple[float, float]:
    spec = {"kind": db.kind, "url": db.url, "path": str(db.path) if db.path else None}
    run = run_child(
        [PYTHON, THIS, "--child", str(path), json.dumps({**spec, "pg_name": db.pg_name})]
    )
    return run.seconds, run.max_rss_mib


# --- the CLI --------------------------------------------------------------------------------

REPORT = re.compile(r"created (\d+), updated (\d+), unchanged (\d+), bad (\d+)")


def import_cli(db: BenchDB, work: Path, path: Path) -> tuple[float, float, tuple[int, ...]]:
    run = run_child([CLI, "accounts", "import", str(path)], env=cli_env(db, work / "instance"))
    m = REPORT.search(run.stdout)
    assert m, run.stdout[-2000:]
    return run.seconds, run.max_rss_mib, tuple(int(x) for x in m.groups())


def counts(db: BenchDB) -> tuple[int, int]:
    from sqlalchemy import text

    from auth.db import Database

    database = Database(db.url)
    try:
        with database.engine.connect() as conn:
            n = conn.execute(text("SELECT COUNT(*) FROM accounts")).scalar_one()
            created = conn.execute(
                text("SELECT COUNT(*) FROM audit_events WHERE action = 'account:created'")
            ).scalar_one()
    finally:
        database.dispose()
    return int(n), int(created)


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="1e5,5e5,1e6", help="comma-separated account counts")
    ap.add_argument(
        "--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (CSV files)")
    args = ap.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]

    rows: list[list[object]] = []
    runs: dict[tuple[str, int, str], tuple[float, float]] = {}
    with workdir(args.keep) as work:
        for n in sizes:
            path = work / f"accounts-{n}.csv"
            t = time.perf_counter()
            write_csv(path, n, args.seed + n)
            print(
                f"{human(n)} accounts written in {time.perf_counter() - t:.1f} s", file=sys.stderr
            )
            for kind in args.db:
                with bench_db(kind, work, f"raw{n}") as db:
                    raw, raw_rss = baseline(db, path)
                rows.append([kind, "plain load (baseline)", n, raw, n / raw, 1.0, raw_rss])
                with bench_db(kind, work, f"acc{n}") as db:
                    for what, expect in (("import", (n, 0, 0, 0)), ("re-import", (0, 0, n, 0))):
                        seconds, rss, got = import_cli(db, work, path)
                        assert got == expect, (what, got, expect)
                        rows.append([kind, f"CLI {what}", n, seconds, n / seconds, raw / seconds])
                        rows[-1].append(rss)
                        runs[(kind, n, what)] = (seconds, rss)
                        print(f"[{kind}] {human(n)} {what}: {seconds:.1f} s", file=sys.stderr)
                    assert counts(db) == (n, n), counts(db)

    print()
    print(
        "seconds are wall times of the whole command (start-up included); x raw = the "
        "CLI's accounts/s over the plain load's, same file, same minutes"
    )
    headers = ["db", "what", "accounts", "seconds", "accounts/s", "x raw", "peak RSS MiB"]
    print(table(headers, rows))
    print()
    for kind in args.db:
        for (k, n, what), (seconds, _) in runs.items():
            if k == kind:
                line = f"[{kind}] {human(n)} {what}: {seconds:.1f} s, {n / seconds:,.0f} accounts/s"
                if n == FLOOR_SIZE:
                    ok = seconds <= FLOOR_SECONDS[kind]
                    line += f" (floor <= {FLOOR_SECONDS[kind]:.0f} s: {verdict(ok)})"
                print(line)
        if len(sizes) > 1:
            small = max(runs[(kind, sizes[0], w)][1] for w in ("import", "re-import"))
            large = max(runs[(kind, sizes[-1], w)][1] for w in ("import", "re-import"))
            ok = large <= small * (1 + FLOOR_RSS_GROWTH)
            print(
                f"[{kind}] peak RSS {small:.0f} MiB at {human(sizes[0])}, {large:.0f} MiB at "
                f"{human(sizes[-1])} (flat within {FLOOR_RSS_GROWTH:.0%}: {verdict(ok)})"
            )


if __name__ == "__main__":
    main()
