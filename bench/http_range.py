"""HTTP throughput of GET /range/<5hex> under gunicorn, against /healthz of the same server.

A fresh database gets a corpus of random SHA-1 digests (default 1e6), then
`breachguard serve` (gunicorn, gthread, 2 workers x 4 threads by default) listens on
127.0.0.1. wrk loads /range/ with random prefixes (a Lua script) and, in the same run
and the same way, /healthz: a trivial endpoint of the same app, so the ratio is what the
range look-up costs on top of Flask, gunicorn and the rate limiter. `--rounds` pairs of
runs alternate the two (the order swapped every other round); the verdict is the median
of the rounds' ratios. wrk keeps its connections alive (`--close`: a connection per
request); which worker each connection lands on is then settled once per run, so single
runs swing, and the median of alternating rounds is the figure. Floor: ratio >= 0.5.

Needs wrk (`apt-get install -y wrk`, or build https://github.com/wg/wrk).

    .venv/bin/python bench/http_range.py                         # 1e6, SQLite and PostgreSQL
    .venv/bin/python bench/http_range.py --db sqlite --duration 5
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    add_breach,
    bench_db,
    bulk_load,
    cli_env,
    hibp_counts,
    human,
    parse_size,
    random_digests,
    run_wrk,
    served,
    table,
    verdict,
    wait_up,
    workdir,
)

FLOOR_RATIO = 0.5

LUA = r"""
math.randomseed(%(seed)d)
request = function()
  return wrk.format("GET", string.format("/range/%%05X", math.random(0, 0xFFFFF)),
    {%(close)s})
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH p50_us=%%d p99_us=%%d errors=%%d\n",
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout))
end
"""

DONE_ONLY = r"""
request = function()
  return wrk.format("GET", nil, {%(close)s})
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH p50_us=%%d p99_us=%%d errors=%%d\n",
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout))
end
"""


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", type=parse_size, default=1_000_000, help="corpus size")
    ap.add_argument(
        "--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--close", action="store_true", help="a new connection per request")
    ap.add_argument("--seed", type=int, default=20240603)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk (or build github.com/wg/wrk)")

    rows: list[list[object]] = []
    ratios: dict[str, float] = {}
    with workdir() as work:
        lua_range, lua_plain = work / "range.lua", work / "plain.lua"
        close = '["Connection"] = "close"' if args.close else ""
        lua_range.write_text(LUA % {"seed": args.seed, "close": close})
        lua_plain.write_text(DONE_ONLY % {"close": close})
        digests = random_digests(args.size, args.seed)
        counts = hibp_counts(args.size, args.seed)
        for kind in args.db:
            with bench_db(kind, work, "http") as db:
                breach = add_breach(db, "bench", "passwords")
                bulk_load(
                    db,
                    "pwned_passwords",
                    ((d, breach, c) for d, c in zip(digests, counts, strict=True)),
                    ("sha1", "breach_id", "count"),
                    skip_fk_checks=True,
                )
                env = cli_env(db, work / "instance")
                env["API_RATE_LIMIT"] = "1000000 per minute"
                with served(env, workers=args.workers, threads=args.threads) as base:
                    wait_up(base + "/range/ABCDE")

                    def wrk(url: str, script: Path, seconds: int = args.duration) -> dict[str, Any]:
                        return run_wrk(base + url, script, args, seconds)

                    # warm both endpoints (pool connections, statement caches) before timing
                    wrk("/range/00000", lua_range, 2)
                    wrk("/healthz", lua_plain, 2)
                    runs: list[tuple[dict[str, Any], dict[str, Any]]] = []
                    for r in range(args.rounds):
                        first_range = r % 2 == 0
                        if first_range:
                            rng = wrk("/range/00000", lua_range)
                        hz = wrk("/healthz", lua_plain)
                        if not first_range:
                            rng = wrk("/range/00000", lua_range)
                        runs.append((rng, hz))
                        print(
                            f"  {kind} round {r + 1}/{args.rounds}: /range/ {rng['rps']:,.0f}/s, "
                            f"/healthz {hz['rps']:,.0f}/s",
                            flush=True,
                        )
            ratios[kind] = statistics.median(rng["rps"] / hz["rps"] for rng, hz in runs)
            for label, side in (
                ("/healthz (baseline)", 1),
                (f"/range/ ({human(args.size)} digests)", 0),
            ):
                rows.append(
                    [
                        kind,
                        label,
                        statistics.median(run[side]["rps"] for run in runs),
                        statistics.median(run[side]["p50"] for run in runs),
                        statistics.median(run[side]["p99"] for run in runs),
                        sum(run[side]["errors"] + run[side]["non2xx"] for run in runs),
                        1.0 if side else ratios[kind],
                    ]
                )

    print()
    print(
        f"gunicorn gthread {args.workers} workers x {args.threads} threads on 127.0.0.1; "
        f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration}s on the same "
        f"2-core machine, {'a connection per request' if args.close else 'kept-alive connections'}; "
        f"medians of {args.rounds} alternating rounds"
    )
    print(table(["db", "endpoint", "requests/s", "p50 ms", "p99 ms", "errors", "x healthz"], rows))
    print()
    for kind, ratio in ratios.items():
        print(
            f"floor /range/ >= {FLOOR_RATIO} x /healthz ({kind}): {ratio:.2f}: "
            f"{verdict(ratio >= FLOOR_RATIO)}"
        )


if __name__ == "__main__":
    main()
