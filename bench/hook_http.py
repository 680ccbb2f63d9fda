"""Latency and throughput of the login hook, POST /api/v1/hook/login, under gunicorn, against
argon2 verify alone at the same parameters and concurrency, in the same run.

A fresh database gets made-up accounts that all carry one argon2id hash of one made-up
password at the production parameters (OWASP's m=19 MiB, t=2, p=1 unless --argon2 says
otherwise), a hook API key, and no second factor (policy `findings`: the decision is
`allow`). `breachguard serve` (gunicorn gthread) listens on 127.0.0.1 with the limits set
out of reach; wrk posts JSON with a Lua script, each request a different account and
end-user address, and counts `"decision":"allow"` answers.

Baseline: bench/argon2_app.py, a Flask app whose one route parses the same JSON and runs
argon2-cffi's verify on the same hash, under gunicorn with the same workers and threads,
loaded by the same wrk settings. Rounds alternate baseline and hook (order swapped every
other round) and the medians are reported.

Each request opens its own connection (Connection: close), for both servers. With wrk's
few connections kept alive, which gunicorn worker each one lands on is settled once per
run (at c=2: both in one worker, or one in each), and runs of the same code differed by
4.6 ms (SQLite c=2, six runs: +2.5 .. +7.1 ms); a connection per request mixes the
placements within each run (three runs: +1.8 .. +4.7 ms). --keep-alive: the old way.

What the hook adds on top: the key check, the ban look-up, the account row, the breach
look-up of the password (local corpus), the factors and findings, and the write that
confirms the decision with its hash-chained audit event.

Floor: hook p50 <= argon2 p50 + 5 ms, judged up to as many connections as cores (beyond,
both servers queue and p50 is ~connections / throughput: printed, not judged). The
requests/s ratio is printed for information.

    .venv/bin/python bench/hook_http.py                  # SQLite and PostgreSQL
    .venv/bin/python bench/hook_http.py --db sqlite --duration 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    VENV_BIN,
    analyze,
    bench_db,
    cli_env,
    insert_accounts,
    listening,
    run_wrk,
    served,
    table,
    verdict,
    workdir,
)

PASSWORD = "bench-Correct-Horse-42"  # made up
NO_LIMIT = "1000000 per second"

LUA = r"""
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  tid = tid or 0
  nthreads = tonumber(args[2])
  n = tonumber(args[1])
  path = args[3]
  key = args[4]
  idx = tid
  ok, denied, other, s429, s5xx, wrapped = 0, 0, 0, 0, 0, 0
end

function request()
  idx = idx + nthreads
  if idx > n then idx = tid + 1; wrapped = wrapped + 1 end
  local body = string.format(
    '{"email":"hook-%%06d@example.org","password":"%(password)s","ip":"10.%%d.%%d.%%d",'
    .. '"user_agent":"wrk"}', idx, math.floor(idx / 65536) %% 256, math.floor(idx / 256) %% 256,
    idx %% 256)
  local headers = {["Content-Type"] = "application/json"%(close)s}
  if key ~= "-" then headers["Authorization"] = "Bearer " .. key end
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status == 200 then
    if body:find('"decision":"allow"', 1, true) or body:find('"ok":true', 1, true) then
      ok = ok + 1
    elseif body:find('"decision":"deny"', 1, true) then denied = denied + 1
    else other = other + 1 end
  elseif status == 429 then s429 = s429 + 1
  elseif status >= 500 then s5xx = s5xx + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local t = {ok = 0, denied = 0, other = 0, s429 = 0, s5xx = 0, wrapped = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (thread:get(k) or 0) end
  end
  io.write(string.format("BENCH p50_us=%%d p99_us=%%d errors=%%d\n",
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout))
  io.write(string.format("STATUS ok=%%d denied=%%d other=%%d s429=%%d s5xx=%%d wrapped=%%d\n",
    t.ok, t.denied, t.other, t.s429, t.s5xx, t.wrapped))
end
"""


def add_accounts(db: Any, n: int, password_hash: str, now: dt.datetime) -> None:
    """hook-000001@example.org.. (the Lua scripts name them), all with one password."""
    insert_accounts(db, range(1, n + 1), prefix="hook", now=now, password_hash=password_hash)


@contextmanager
def argon2_only(env: dict[str, str], *, workers: int, threads: int) -> Iterator[str]:
    """bench/argon2_app.py under gunicorn with the server's own worker settings."""
    command = lambda port: [  # noqa: E731
        *(str(VENV_BIN / "gunicorn"), "--chdir", str(Path(__file__).resolve().parent)),
        *("-k", "gthread", "-w", str(workers), "--threads", str(threads)),
        *("-b", f"127.0.0.1:{port}", "--log-level", "warning", "argon2_app:app"),
    ]
    with listening(command, env) as (base, _pid):
        yield base


def add_argon2_option(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--argon2",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        default=(2, 19 * 1024, 1),
        help="time_cost,memory_cost_kib,parallelism (default OWASP: 2,19456,1)",
    )


def bench_one(kind: str, work: Path, args: argparse.Namespace, lua: Path) -> list[list[Any]]:
    from argon2 import PasswordHasher, Type

    from auth import apikeys, audit
    from auth.config import load_settings
    from auth.models import utcnow
    from auth.services import build

    rows: list[list[Any]] = []
    with bench_db(kind, work, "hook") as db:
        env = cli_env(db, work / "instance")
        t, m, p = args.argon2
        env.update(
            ARGON2_TIME_COST=str(t),
            ARGON2_MEMORY_COST=str(m),
            ARGON2_PARALLELISM=str(p),
            HOOK_RATE_LIMIT=NO_LIMIT,
            LOGIN_RATE_LIMIT=NO_LIMIT,
            API_RATE_LIMIT=NO_LIMIT,
            BENCH_ARGON2_HASH="",
        )
        registry = build(load_settings(env))
        hashed = PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, type=Type.ID).hash(
            PASSWORD
        )
        env["BENCH_ARGON2_HASH"] = hashed
        add_accounts(registry.db, args.accounts, hashed, utcnow())
        with registry.db.session() as s:
            key = apikeys.create(
                s, role="hook", name="bench", actor=audit.Actor.cli(), now=utcnow()
            )
        registry.close()
        analyze(db)

        results: dict[str, list[dict[str, Any]]]
        with (
            served(env, workers=args.workers, threads=args.threads) as hook_base,
            argon2_only(env, workers=args.workers, threads=args.threads) as argon_base,
        ):

            def load(which: str, connections: int, duration: int) -> dict[str, Any]:
                if which == "hook":
                    url, path, token = hook_base, "/api/v1/hook/login", key.token
                else:
                    url, path, token = argon_base, "/verify", "-"
                threads = min(args.wrk_threads, connections)  # wrk: a connection per thread
                run = argparse.Namespace(
                    **{**vars(args), "connections": connections, "wrk_threads": threads}
                )
                extra = [str(args.accounts), str(threads), path, token]
                return run_wrk(url + path, lua, run, duration, *extra)

            for c in args.connections:
                results = {"argon2": [], "hook": []}
                load("argon2", c, 2)
                load("hook", c, 2)  # warm-up: pools, imports, caches
                for r in range(args.rounds):
                    order = ("argon2", "hook") if r % 2 == 0 else ("hook", "argon2")
                    for which in order:
                        results[which].append(load(which, c, args.duration))
                    a, h = results["argon2"][-1], results["hook"][-1]
                    print(
                        f"  {kind} c={c} round {r + 1}/{args.rounds}: argon2-only "
                        f"{a['rps']:.1f}/s p50 {a['p50']:.1f} ms; hook {h['rps']:.1f}/s "
                        f"p50 {h['p50']:.1f} ms",
                        flush=True,
                    )
                rows += _rows(kind, c, results)
    return rows


def _rows(kind: str, c: int, results: dict[str, list[dict[str, Any]]]) -> list[list[Any]]:
    rows = []
    for which, label in (("argon2", "argon2 verify alone (baseline)"), ("hook", "hook/login")):
        runs = results[which]
        bad = {k: sum(r["status"][k] for r in runs) for k in ("denied", "other", "s429", "s5xx")}
        med = {x: statistics.median(r[x] for r in runs) for x in ("rps", "p50", "p99")}
        rows.append(
            [
                kind,
                c,
                label,
                med["rps"],
                med["p50"],
                med["p99"],
                sum(r["status"]["ok"] for r in runs),
                ", ".join(f"{k}={v}" for k, v in bad.items() if v) or "none",
            ]
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    ap.add_argument("--accounts", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument(
        "--connections",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 2, 8],
        help="wrk connections, one set of rounds each: up to the cores, latency without "
        "queueing; beyond (8), saturated: throughput",
    )
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument(
        "--keep-alive",
        action="store_true",
        help="reuse wrk's connections (default: a new connection per request, see above)",
    )
    add_argon2_option(ap)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    rows: list[list[Any]] = []
    with workdir() as work:
        lua = work / "hook.lua"
        close = "" if args.keep_alive else ', ["Connection"] = "close"'
        lua.write_text(LUA % {"password": PASSWORD, "close": close})
        for kind in args.db:
            rows += bench_one(kind, work, args, lua)
    print()
    t, m, p = args.argon2
    print(
        f"argon2id t={t} m={m} KiB p={p}; gunicorn gthread {args.workers}x{args.threads} on "
        f"127.0.0.1; wrk -t{args.wrk_threads} -c(see table) -d{args.duration}s on the "
        f"same {os.cpu_count()}-core machine; "
        f"{'kept-alive connections' if args.keep_alive else 'a connection per request'}; "
        f"medians of {args.rounds} alternating rounds"
    )
    headers = ["db", "conns", "endpoint", "requests/s", "p50 ms", "p99 ms", "allowed", "other"]
    print(table(headers, rows))
    print()
    cores = os.cpu_count() or 1
    for i in range(0, len(rows), 2):
        base, hook = rows[i], rows[i + 1]
        extra_ms = hook[4] - base[4]
        ratio = hook[3] / base[3]
        # Beyond the cores both servers queue, and p50 ~ connections / throughput: the
        # latency floor is judged where nothing queues.
        latency = (
            f"floor <= 5 ms: {verdict(extra_ms <= 5)}"
            if base[1] <= cores
            else f"queueing, not judged: ~{base[1]} / throughput"
        )
        print(
            f"{base[0]} c={base[1]}: hook p50 = argon2 p50 + {extra_ms:.1f} ms ({latency}); "
            f"requests/s ratio {ratio:.2f}"
        )


if __name__ == "__main__":
    main()
