"""k-anonymity range look-up latency in-process: p50/p99 of store.password_range.

For each corpus size (default 1e6 and 1e7 random SHA-1 digests, one breach) and each
database, a fresh database is filled directly (COPY / executemany), then random 5-hex
prefixes are looked up one at a time on one engine connection, as the /range view does.
Measured in the same run:
  store      - store.password_range(db, prefix): what GET /range/ runs;
  view       - the whole Flask view through app.test_client() (formatting included);
  dbapi      - the same SQL straight on the DBAPI cursor (no SQLAlchemy), for reference;
  SELECT 1   - a round trip through the same SQLAlchemy connection: the floor per query;
  bisect     - a bisect over an in-memory sorted list of the same digests (no database).

    .venv/bin/python bench/range_lookup.py                   # 1e6 and 1e7, both databases
    .venv/bin/python bench/range_lookup.py --sizes 1e6 --db sqlite --lookups 5000
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from bisect import bisect_left
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH_KEY,
    add_breach,
    analyze,
    bench_db,
    bulk_load,
    hibp_counts,
    human,
    parse_size,
    percentile,
    random_digests,
    table,
    verdict,
    workdir,
)

TARGET_P99_US = 200.0


def timed(fn: Callable[[str], object], prefixes: list[str], warmup: int) -> list[float]:
    for p in prefixes[:warmup]:
        fn(p)
    out = []
    clock = time.perf_counter_ns
    for p in prefixes:
        t = clock()
        fn(p)
        out.append((clock() - t) / 1000)
    out.sort()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="1e6,1e7", help="comma-separated corpus sizes")
    ap.add_argument(
        "--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    ap.add_argument("--lookups", type=parse_size, default=20_000, help="timed look-ups per case")
    ap.add_argument("--no-view", action="store_true", help="skip the Flask test_client view")
    ap.add_argument("--seed", type=int, default=20240602)
    args = ap.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]

    from sqlalchemy import text

    from auth.breach import store
    from auth.breach.hashing import prefix_bounds
    from auth.config import Argon2Params, Settings
    from auth.db import Database
    from auth.services import build
    from auth.web.factory import create_app

    rng = random.Random(args.seed)
    prefixes = [f"{rng.getrandbits(20):05X}" for _ in range(args.lookups)]
    warmup = min(2000, len(prefixes))
    rows: list[list[object]] = []
    p50s: dict[tuple[str, int], float] = {}
    p99s: dict[tuple[str, int], float] = {}
    answers: dict[int, float] = {}
    with workdir() as work:
        for n in sizes:
            digests = random_digests(n, args.seed + n)
            counts = hibp_counts(n, args.seed)

            def bisect_range(prefix: str, digests: list[bytes] = digests) -> object:
                lo, hi = prefix_bounds(prefix)
                i, j = bisect_left(digests, lo), bisect_left(digests, hi)
                return [(d, 1) for d in digests[i:j]]

            answers[n] = sum(len(bisect_range(p)) for p in prefixes[:2000]) / 2000  # type: ignore[arg-type]
            base = timed(bisect_range, prefixes, warmup)
            rows.append(
                [human(n), "-", "bisect (memory)", percentile(base, 50), percentile(base, 99), 1.0]
            )
            for kind in args.db:
                with bench_db(kind, work, f"range{n}") as db:
                    breach = add_breach(db, "bench", "passwords")
                    t = time.perf_counter()
                    bulk_load(
                        db,
                        "pwned_passwords",
                        ((d, breach, c) for d, c in zip(digests, counts, strict=True)),
                        ("sha1", "breach_id", "count"),
                        skip_fk_checks=True,
                    )
                    analyze(db)
                    print(
                        f"# {kind} {human(n)} loaded in {time.perf_counter() - t:.0f} s",
                        file=sys.stderr,
                    )
                    database = Database(db.url)
                    with database.engine.connect() as conn:
                        one = timed(
                            lambda _p: conn.execute(text("SELECT 1")).scalar(), prefixes, warmup
                        )
                        got = timed(partial(store.password_range, database), prefixes, warmup)
                        sql = (
                            "SELECT sha1, SUM(count) FROM pwned_passwords WHERE sha1 >= ? "
                            "AND sha1 < ? GROUP BY sha1 ORDER BY sha1"
                        )
                        if kind == "postgres":
                            sql = sql.replace("?", "%s")
                        raw = conn.connection.driver_connection
                        cur = raw.cursor()

                        def dbapi(p: str, cur: object = cur, sql: str = sql) -> object:
                            cur.execute(sql, prefix_bounds(p))  # type: ignore[attr-defined]
                            return cur.fetchall()  # type: ignore[attr-defined]

                        direct = timed(dbapi, prefixes, warmup)
                        cur.close()
                        check = store.password_range(database, prefixes[0])
                        lo, hi = prefix_bounds(prefixes[0])
                        i, j = bisect_left(digests, lo), bisect_left(digests, hi)
                        expected = list(zip(digests[i:j], counts[i:j], strict=True))
                        assert check == expected, "wrong answer"
                        conn.rollback()
                    view: list[float] = []
                    if not args.no_view:
                        settings = Settings(
                            instance_path=work / "instance",
                            database_url=db.url,
                            secret_key="bench",  # noqa: S106 (a throw-away instance)
                            argon2=Argon2Params(1, 1024, 1),
                            log_level="WARNING",
                            mfa_encryption_keys=(BENCH_KEY,),
                        )
                        registry = build(settings, database)
                        client = create_app(registry=registry).test_client()
                        view = timed(
                            lambda p, client=client: client.get(f"/range/{p}").data,  # type: ignore[misc]
                            prefixes,
                            warmup,
                        )
                    database.dispose()
                p50, p99 = percentile(got, 50), percentile(got, 99)
                p50s[(kind, n)], p99s[(kind, n)] = p50, p99
                rows.append(
                    [
                        human(n),
                        kind,
                        "SELECT 1 round trip",
                        percentile(one, 50),
                        percentile(one, 99),
                        percentile(one, 50) / percentile(base, 50),
                    ]
                )
                rows.append(
                    [
                        human(n),
                        kind,
                        "dbapi, same SQL",
                        percentile(direct, 50),
                        percentile(direct, 99),
                        percentile(direct, 50) / percentile(base, 50),
                    ]
                )
                rows.append(
                    [human(n), kind, "store.password_range", p50, p99, p50 / percentile(base, 50)]
                )
                if view:
                    rows.append(
                        [
                            human(n),
                            kind,
                            "Flask view (test_client)",
                            percentile(view, 50),
                            percentile(view, 99),
                            percentile(view, 50) / percentile(base, 50),
                        ]
                    )
                rows.append(
                    [
                        human(n),
                        kind,
                        "  store / SELECT 1 (p50)",
                        p50 / percentile(one, 50),
                        "-",
                        "-",
                    ]
                )
            del digests, counts

    print()
    print(
        f"{args.lookups:,} random 5-hex prefixes per case (after {warmup:,} warm-up look-ups); "
        + ", ".join(f"{human(n)}: {answers[n]:.1f} rows per answer" for n in sizes)
    )
    print(table(["corpus", "db", "what", "p50 us", "p99 us", "p50 x bisect"], rows))
    print()
    top = max(sizes)
    for kind in args.db:
        ok = p99s[(kind, top)] <= TARGET_P99_US
        print(
            f"target p99 <= {TARGET_P99_US:.0f} us at {human(top)} ({kind}): "
            f"{p99s[(kind, top)]:.0f} us: {verdict(ok)}"
        )
    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        allowed = math.log(hi) / math.log(lo) * max(1.0, answers[hi] / max(answers[lo], 1.0))
        for kind in args.db:
            growth = p50s[(kind, hi)] / p50s[(kind, lo)]
            print(
                f"growth {kind} p50 {human(lo)} -> {human(hi)}: x{growth:.2f} "
                f"(log N x answer size allows x{allowed:.2f}): {verdict(growth <= allowed)}"
            )


if __name__ == "__main__":
    main()
