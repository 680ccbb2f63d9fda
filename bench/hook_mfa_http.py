"""Throughput of the login hook's second step, POST /api/v1/hook/mfa with a TOTP code,
under `breachguard serve`, against another checkout of the code in the same run (A/B).

For each side (this checkout, and --baseline DIR, e.g. a `git worktree` of an earlier
commit) a fresh database is migrated by that side's own code, then filled directly with
made-up accounts, one confirmed TOTP factor each (secret encrypted as enrollment does), a
live sign-in continuation each (as the first step issues it: only its SHA-256 stored), and
a hook API key. Each side's `breachguard serve` (gunicorn gthread) runs from its own
checkout (PYTHONPATH), with the limits out of reach. wrk posts
`{"continuation", "code", "ip"}` with a Lua script, each request a different account, a new
connection per request, and counts `"decision":"allow"` answers.

Rounds alternate the sides (the order swapped every other round), each run with fresh
accounts and codes made for the middle of the run; the verdict is the median of the
rounds' ratios (this checkout / baseline). Target: >= 0.8.

    git worktree add /tmp/base <commit>
    .venv/bin/python bench/hook_mfa_http.py --baseline /tmp/base        # SQLite and PostgreSQL
    .venv/bin/python bench/hook_mfa_http.py --db sqlite                 # this checkout alone
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH_KEY,
    PYTHON,
    ROOT,
    analyze,
    bench_db,
    cli_env,
    listening,
    run_wrk,
    table,
    verdict,
    workdir,
)
from mfa_verify import add_accounts, add_totp_factors, totp_code_for

TARGET_RATIO = 0.8
NO_LIMIT = "1000000 per second"

LUA = r"""
-- each wrk thread posts its own slice of the prepared (continuation, code, ip) lines
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  nthreads = tonumber(args[2])
  key = args[3]
  mine = {}
  local i = 0
  for line in io.lines(args[1]) do
    if i % nthreads == tid then
      local token, code, ip = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)$")
      table.insert(mine, {token, code, ip})
    end
    i = i + 1
  end
  idx = 0
  ok, denied, s4xx, s5xx, other, wrapped = 0, 0, 0, 0, 0, 0
end

function request()
  idx = idx + 1
  if idx > #mine then
    idx = 1
    wrapped = wrapped + 1
  end
  local t = mine[idx]
  return wrk.format("POST", "/api/v1/hook/mfa", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
    ["Connection"] = "close",
  }, '{"continuation":"' .. t[1] .. '","code":"' .. t[2] .. '","ip":"' .. t[3] .. '"}')
end

function response(status, headers, body)
  if status == 200 then
    if body:find('"decision":"allow"', 1, true) then ok = ok + 1 else denied = denied + 1 end
  elseif status >= 500 then s5xx = s5xx + 1
  elseif status >= 400 then s4xx = s4xx + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local t = {ok = 0, denied = 0, s4xx = 0, s5xx = 0, other = 0, wrapped = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (thread:get(k) or 0) end
  end
  io.write(string.format(
    "BENCH p50_us=%d p99_us=%d errors=%d\n",
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout))
  io.write(string.format(
    "STATUS ok=%d denied=%d s4xx=%d s5xx=%d other=%d wrapped=%d\n",
    t.ok, t.denied, t.s4xx, t.s5xx, t.other, t.wrapped))
end
"""


def side_env(env: dict[str, str], tree: Path) -> dict[str, str]:
    """The environment that runs `tree`'s code (its `auth` and `migrations` come first;
    the commands run with `python -P`, so the working folder does not come before it)."""
    return {**env, "PYTHONPATH": str(tree)}


def migrate_with(tree: Path, url: str, env: dict[str, str]) -> None:
    script = "import sys; from auth import migrate; migrate.upgrade(sys.argv[1])"
    subprocess.run([PYTHON, "-P", "-c", script, url], env=side_env(env, tree), cwd=tree, check=True)


def serve_with(tree: Path, args: argparse.Namespace) -> Callable[[int], list[str]]:
    script = "import sys; sys.argv[0] = 'breachguard'; from auth.cli import main; main()"
    return lambda port: [
        *(PYTHON, "-P", "-c", script, "serve", "--host", "127.0.0.1", "--port", str(port)),
        *("--workers", str(args.workers), "--threads", str(args.threads)),
    ]


def add_continuations(db: Any, ids: list[int], now: dt.datetime) -> dict[int, str]:
    """A live continuation per account, as the first step issues it; account id -> token."""
    from sqlalchemy import insert

    from auth.models import LoginContinuation

    tokens = {a: secrets.token_urlsafe(32) for a in ids}
    rows = [
        {
            "id": hashlib.sha256(t.encode()).hexdigest(),
            "account_id": a,
            "session_epoch": 0,
            "ip": "198.51.100.7",
            "created_at": now,
            "expires_at": now + dt.timedelta(hours=2),
            "failures": 0,
        }
        for a, t in tokens.items()
    ]
    with db.engine.begin() as conn:
        for start in range(0, len(rows), 2000):
            conn.execute(insert(LoginContinuation), rows[start : start + 2000])
    return tokens


class Side:
    """One checkout's server, database and accounts (a fresh slice per run)."""

    def __init__(
        self, name: str, tree: Path, db: Any, env: dict[str, str], n: int, runs: int
    ) -> None:
        from auth import apikeys, audit
        from auth.config import load_settings
        from auth.models import utcnow
        from auth.services import build

        self.name, self.tree, self.env = name, tree, env
        self.registry = build(load_settings(env))
        now = utcnow()
        total = n * runs
        ids = add_accounts(self.registry.db, 1, total, now)
        self.secrets = add_totp_factors(self.registry.db, self.registry.keys, ids, now)
        self.tokens = add_continuations(self.registry.db, ids, now)
        with self.registry.db.session() as s:
            self.key = apikeys.create(
                s, role="hook", name="bench", actor=audit.Actor.cli(), now=now
            ).token
        analyze(db)
        self.slices = [ids[i : i + n] for i in range(0, total, n)]

    def lines(self, path: Path, duration: int) -> None:
        when = time.time() + duration / 2
        accounts = self.slices.pop(0)
        path.write_text(
            "".join(
                f"{self.tokens[a]}\t{totp_code_for(self.secrets[a], when)}\t"
                f"198.51.{a // 250 % 250}.{a % 250 + 1}\n"
                for a in accounts
            )
        )


def bench_one(kind: str, work: Path, args: argparse.Namespace, lua: Path) -> list[list[Any]]:
    sides = [("this checkout", ROOT)] + ([("baseline", args.baseline)] if args.baseline else [])
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in sides}
    with (
        bench_db(kind, work, "hm_a", migrate=False) as db_a,
        bench_db(kind, work, "hm_b", migrate=False) as db_b,
    ):
        built: list[Side] = []
        for (name, tree), db in zip(sides, (db_a, db_b), strict=False):
            env = cli_env(db, work / f"instance-{kind}-{len(built)}")
            env.update(
                MFA_ENCRYPTION_KEYS=BENCH_KEY,
                HOOK_RATE_LIMIT=NO_LIMIT,
                MFA_IP_RATE_LIMIT=NO_LIMIT,
                API_RATE_LIMIT=NO_LIMIT,
            )
            migrate_with(tree, db.url, env)
            built.append(Side(name, tree, db, env, args.accounts, args.rounds + 1))
        with_servers = [listening(serve_with(s.tree, args), side_env(s.env, s.tree)) for s in built]
        bases = [stack.__enter__()[0] for stack in with_servers]
        try:
            lines = work / f"{kind}-lines.tsv"

            def load(i: int, duration: int) -> dict[str, Any]:
                built[i].lines(lines, duration)
                url = bases[i] + "/api/v1/hook/mfa"
                threads = str(args.wrk_threads)
                return run_wrk(url, lua, args, duration, str(lines), threads, built[i].key)

            for i in range(len(built)):
                load(i, 2)  # warm-up: pools, imports, caches
            for r in range(args.rounds):
                order = list(range(len(built)))
                if r % 2:
                    order.reverse()
                for i in order:
                    results[built[i].name].append(load(i, args.duration))
                summary = ", ".join(
                    f"{name} {runs[-1]['rps']:,.0f}/s" for name, runs in results.items()
                )
                print(f"  {kind} round {r + 1}/{args.rounds}: {summary}", flush=True)
        finally:
            for stack in reversed(with_servers):
                stack.__exit__(None, None, None)
            for s in built:
                s.registry.close()
    rows = []
    for name, runs in results.items():
        failed = {k: sum(r["status"][k] for r in runs) for k in ("denied", "s4xx", "s5xx")}
        rows.append(
            [
                kind,
                name,
                statistics.median(r["rps"] for r in runs),
                statistics.median(r["p50"] for r in runs),
                statistics.median(r["p99"] for r in runs),
                sum(r["status"]["ok"] for r in runs),
                ", ".join(f"{k}={v}" for k, v in failed.items() if v) or "none",
            ]
        )
    if args.baseline:
        ratios = [
            a["rps"] / b["rps"]
            for a, b in zip(results["this checkout"], results["baseline"], strict=True)
        ]
        rows.append([kind, "ratio (median of rounds)", statistics.median(ratios), "", "", "", ""])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    ap.add_argument("--baseline", type=Path, help="another checkout, served as side B")
    ap.add_argument("--accounts", type=int, default=15000, help="accounts per run")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--wrk-threads", type=int, default=2)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    if args.baseline is not None:
        args.baseline = args.baseline.resolve()
    rows: list[list[Any]] = []
    with workdir() as work:
        lua = work / "hook_mfa.lua"
        lua.write_text(LUA)
        for kind in args.db:
            rows += bench_one(kind, work, args, lua)
    print()
    print(
        f"gunicorn gthread {args.workers}x{args.threads} on 127.0.0.1; wrk -t{args.wrk_threads} "
        f"-c{args.connections} -d{args.duration}s, a connection per request, on the same "
        f"{os.cpu_count()}-core machine; medians of {args.rounds} alternating rounds"
    )
    headers = ["db", "side", "requests/s", "p50 ms", "p99 ms", "allowed", "failed"]
    print(table(headers, rows))
    if args.baseline:
        for row in rows:
            if row[1].startswith("ratio"):
                ok = row[2] >= TARGET_RATIO
                print(f"{row[0]}: ratio {row[2]:.2f} (target >= {TARGET_RATIO}: {verdict(ok)})")


if __name__ == "__main__":
    main()
