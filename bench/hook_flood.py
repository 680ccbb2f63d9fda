"""Throttling before hashing: what a flood of wrong passwords for one account costs the
server, in CPU seconds and in argon2 runs.

`breachguard serve` (production argon2 parameters, default limits) gets a flood of
POST /api/v1/hook/login with wrong passwords for one account from wrk, in two shapes:

* one address: the per-address limit (LOGIN_RATE_LIMIT, 30/min) answers 429 before any
  work is done;
* a different address per request (a botnet): no address limit helps, the account's own
  backoff (from the 5th failure) refuses without hashing, and the lock (20 failures) is
  far away because the delays double.

Measured: the server's CPU seconds during the flood (master and workers, /proc), how many
attempts reached argon2 (the audit trail's `login:failed` events with reason
`wrong_password`), the server's own count of its CPU inside argon2 (/metrics:
breachguard_password_hash_cpu_seconds_total), and the rest per refused attempt. Baseline,
same run: one argon2 verify's CPU time at the same parameters, in-process, alone.
Target: the flood costs no more than a few argon2 runs once throttled — refused attempts
cost a small fraction of one hash each.

    .venv/bin/python bench/hook_flood.py                 # SQLite and PostgreSQL
    .venv/bin/python bench/hook_flood.py --db sqlite --duration 5
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_db, cli_env, listening, run_wrk, serve_command, table, verdict, workdir
from hook_http import PASSWORD, add_accounts, add_argon2_option

LUA = r"""
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", counter); counter = counter + 1; table.insert(threads, thread)
end
function init(args)
  key = args[1]; spread = args[2] == "spread"; n = 0
  ok, denied, s429, other = 0, 0, 0, 0
end
function request()
  n = n + 1
  local ip = "192.0.2.1"
  if spread then ip = string.format("10.%d.%d.%d", tid, math.floor(n / 256) % 256, n % 256) end
  local body = '{"email":"hook-000001@example.org","password":"wrong-' .. n .. '","ip":"'
    .. ip .. '"}'
  return wrk.format("POST", "/api/v1/hook/login",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, body)
end
function response(status, headers, body)
  if status == 200 and body:find('"decision":"deny"', 1, true) then denied = denied + 1
  elseif status == 429 then s429 = s429 + 1
  else other = other + 1 end
end
function done(summary, latency, requests)
  local t = {denied = 0, s429 = 0, other = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (thread:get(k) or 0) end
  end
  io.write(string.format("BENCH p50_us=%d p99_us=%d errors=%d\n",
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout))
  io.write(string.format("STATUS denied=%d s429=%d other=%d\n", t.denied, t.s429, t.other))
end
"""

TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """utime + stime of a process and its live descendants (gunicorn master and workers)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / TICK
    members, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == pid and p not in members]
        members.update(kids)
        frontier.extend(kids)
    return sum(times.get(p, 0.0) for p in members)


def argon2_cpu_seconds(t: int, m: int, p: int, runs: int = 10) -> float:
    from argon2 import PasswordHasher, Type
    from argon2.exceptions import VerificationError

    ph = PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, type=Type.ID)
    hashed = ph.hash(PASSWORD)
    started = time.process_time()
    for _ in range(runs):
        with suppress(VerificationError):
            ph.verify(hashed, "wrong")
    return (time.process_time() - started) / runs


def hashing_cpu_seconds(base: str) -> float:
    """The server's breachguard_password_hash_cpu_seconds_total (CPU time of the threads
    inside argon2, summed over the workers), scraped from /metrics on loopback."""
    import requests

    text = requests.get(base + "/metrics", timeout=10).text
    found = re.findall(
        r"^breachguard_password_hash_cpu_seconds_total\{.*\} ([\d.e+-]+)$", text, re.M
    )
    return sum(map(float, found))


def hashed_attempts(db: Any) -> int:
    from sqlalchemy import select

    from auth.models import AuditEvent

    with db.session() as s:
        details = s.execute(
            select(AuditEvent.details).where(AuditEvent.action == "login:failed")
        ).scalars()
        return sum(json.loads(d).get("reason") == "wrong_password" for d in details)


def bench_one(
    kind: str, work: Path, args: argparse.Namespace, lua: Path, one_hash: float
) -> list[list[Any]]:
    from argon2 import PasswordHasher, Type

    from auth import apikeys, audit
    from auth.config import load_settings
    from auth.models import utcnow
    from auth.services import build

    t, m, p = args.argon2
    rows: list[list[Any]] = []
    for shape in ("one-address", "spread"):
        with bench_db(kind, work, f"flood{shape[:3]}") as db:
            env = cli_env(db, work / f"instance-{shape}")
            env.update(
                ARGON2_TIME_COST=str(t), ARGON2_MEMORY_COST=str(m), ARGON2_PARALLELISM=str(p)
            )
            registry = build(load_settings(env))
            hashed = PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, type=Type.ID).hash(
                PASSWORD
            )
            add_accounts(registry.db, 1, hashed, utcnow())
            with registry.db.session() as s:
                key = apikeys.create(
                    s, role="hook", name="bench", actor=audit.Actor.cli(), now=utcnow()
                ).token
            with listening(serve_command(args.workers, args.threads), env) as (base, pid):
                time.sleep(1)
                before, hashing_before = tree_cpu_seconds(pid), hashing_cpu_seconds(base)
                result = run_wrk(base + "/api/v1/hook/login", lua, args, args.duration, key, shape)
                time.sleep(0.5)
                spent = tree_cpu_seconds(pid) - before
                hashing = hashing_cpu_seconds(base) - hashing_before
            hashes = hashed_attempts(registry.db)
            registry.close()
        attempts = result["requests"]
        st = result["status"]
        # The server's own count of its CPU inside argon2, not hashes x one_hash: eight
        # threads hashing at once on two cores each take more CPU per hash than one alone.
        per_refused = (spent - hashing) / max(1, attempts - hashes)
        rows.append(
            [
                kind,
                shape,
                attempts,
                f"{st['denied']:,} deny / {st['s429']:,} 429",
                hashes,
                spent,
                hashing,
                per_refused / one_hash,
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
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    add_argon2_option(ap)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    rows: list[list[Any]] = []
    with workdir() as work:
        lua = work / "flood.lua"
        lua.write_text(LUA)
        t, m, p = args.argon2
        one_hash = argon2_cpu_seconds(t, m, p)  # the baseline, measured once per run
        for kind in args.db:
            rows += bench_one(kind, work, args, lua, one_hash)
    print()
    print(
        f"argon2id t={t} m={m} KiB p={p}; one verify = {one_hash * 1000:.1f} "
        f"ms CPU here; wrk -c{args.connections} -d{args.duration}s of wrong passwords for one "
        f"account; gunicorn {args.workers}x{args.threads}"
    )
    headers = [
        "db",
        "flood",
        "attempts",
        "answers",
        "argon2 runs",
        "server CPU s",
        "of which in argon2 s",
        "CPU per refused / argon2",
    ]
    print(table(headers, rows))
    print()
    for row in rows:
        ok = row[4] <= 10 and row[7] <= 0.1
        print(
            f"{row[0]} {row[1]}: {row[2]:,} attempts reached argon2 {row[4]} times; a refused "
            f"attempt costs {row[7]:.3f} of a hash ({verdict(ok)}: <= 10 hashes, <= 0.1 each)"
        )


if __name__ == "__main__":
    main()
