"""`breachguard scan` of many accounts against the local e-mail corpus.

A fresh database gets one e-mail breach of random e-mail digests (default 1e6) and
accounts (default 1e5, inserted set-based, password_hash NULL: no argon2), of which a
fraction (default 1%) have their address in the breach. The real CLI runs twice, each
time as a child process: the first scan records every finding, the second finds them all
known (it only refreshes last_seen). Baseline in the same run: the bare join
`SELECT COUNT(*)` of accounts x breached e-mails x breaches. Target: under 10 s.

Addresses are made up under reserved example domains; never real ones.

    .venv/bin/python bench/scan.py                     # 1e5 accounts x 1e6 digests, both dbs
    .venv/bin/python bench/scan.py --accounts 1e4 --emails 1e5 --db sqlite
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    CLI,
    add_breach,
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

TARGET_SECONDS = 10.0
JOIN = (
    "SELECT COUNT(*) FROM accounts a JOIN breached_emails e ON e.sha1 = a.email_sha1 "
    "JOIN breaches b ON b.id = e.breach_id"
)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--accounts", type=parse_size, default=100_000)
    ap.add_argument("--emails", type=parse_size, default=1_000_000, help="breached e-mails")
    ap.add_argument("--breached", type=float, default=0.01, help="fraction of accounts breached")
    ap.add_argument(
        "--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    ap.add_argument("--seed", type=int, default=20240604)
    args = ap.parse_args()

    from sqlalchemy import insert, text

    from auth.breach.hashing import email_sha1
    from auth.db import Database
    from auth.models import Account, utcnow

    rng = random.Random(args.seed)
    accounts = [f"pro{i:07d}@clinic{i % 97}.example.org" for i in range(args.accounts)]
    hit = sorted(rng.sample(range(args.accounts), round(args.accounts * args.breached)))
    leaked = {email_sha1(accounts[i]) for i in hit}
    while len(leaked) < args.emails:  # the rest of the breach: addresses of nobody here
        leaked.add(email_sha1(f"user{rng.getrandbits(40):x}@mail.example.net"))
    digests = sorted(leaked)
    now = utcnow()

    rows: list[list[object]] = []
    worst = 0.0
    with workdir() as work:
        for kind in args.db:
            with bench_db(kind, work, "scan") as db:
                breach = add_breach(db, "BenchLeak2024", "emails")
                bulk_load(
                    db,
                    "breached_emails",
                    ((d, breach) for d in digests),
                    ("sha1", "breach_id"),
                    skip_fk_checks=True,
                )
                database = Database(db.url)
                with database.engine.begin() as conn:
                    conn.execute(
                        insert(Account),
                        [
                            {
                                "email": e,
                                "email_sha1": email_sha1(e),
                                "name": f"Pro {i}",
                                "professional_id": None,
                                "password_hash": None,
                                "status": "active",
                                "session_epoch": 0,
                                "created_at": now,
                                "updated_at": now,
                            }
                            for i, e in enumerate(accounts)
                        ],
                    )
                analyze(db)
                times = []
                for _ in range(3):
                    with database.engine.connect() as conn:
                        t = time.perf_counter()
                        joined = int(conn.execute(text(JOIN)).scalar() or 0)
                        times.append(time.perf_counter() - t)
                base = min(times)
                assert joined == len(hit), (joined, len(hit))
                database.dispose()
                rows.append([kind, "join SELECT COUNT(*) (baseline)", base, joined, 1.0])
                env = cli_env(db, work / "instance")
                for label in ("scan (first: all new)", "scan (again: all known)"):
                    run = run_child([CLI, "scan", "--format", "csv"], env=env, ok=(0, 1))
                    m = re.search(r"(\d+) accounts scanned, (\d+) new finding", run.stderr)
                    assert m, run.stderr
                    assert int(m.group(1)) == args.accounts
                    new = int(m.group(2))
                    expected = len(hit) if label.startswith("scan (first") else 0
                    assert new == expected, (label, new, expected)
                    rows.append([kind, f"CLI {label}", run.seconds, new, run.seconds / base])
                    worst = max(worst, run.seconds)

    print()
    print(
        f"{args.accounts:,} accounts x {human(args.emails)} breached e-mail digests, "
        f"{len(hit):,} accounts breached; CLI times are wall times of the whole command "
        "(start-up and the findings listing included)"
    )
    print(table(["db", "what", "seconds", "rows / new findings", "x join"], rows))
    print()
    print(
        f"target scan < {TARGET_SECONDS:.0f} s: slowest {worst:.1f} s: "
        f"{verdict(worst < TARGET_SECONDS)}"
    )


if __name__ == "__main__":
    main()
