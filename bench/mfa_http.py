"""HTTP throughput of the second step, POST /login/mfa with a TOTP code, under gunicorn,
against /healthz of the same server.

A fresh database gets made-up accounts, each with one confirmed TOTP factor (inserted
directly, secret encrypted as enrollment does; see bench/mfa_verify.py). `breachguard serve`
(gunicorn gthread, 2 workers x 4 threads by default) listens on 127.0.0.1 with
LOGIN_RATE_LIMIT / MFA_IP_RATE_LIMIT set far out of reach. For every account the benchmark
builds what a browser holds after the password step: a signed session cookie carrying the
pending sign-in and a CSRF token (flask_wtf.csrf.generate_csrf in a test request context of
the same app, the cookie signed with app.session_interface's serializer), and the account's
TOTP code. wrk posts them with a Lua script, each request a different account (each wrk
thread reads its own slice of the tuples), and counts the answers in its `response`
callback: a success is a 302 to /account/security. Afterwards the `session:started` audit
events are counted too. Then /healthz is loaded the same way (same server, same wrk
settings): the ratio is what the second step costs on top of Flask, gunicorn and wrk.
Target ratio >= 0.4.

Each request runs: the rate limiter, the CSRF check, the pending account's row, the throttle
row, the factor (decrypt, check), the replay guard (last_step) and its commit, then the
session start with its hash-chained audit event (a second transaction, serialised on the
audit head row).

Last, the floor: the same rounds against bench/stack_floor_app.py under the same gunicorn
settings, a POST /login/mfa that runs only what the stack runs (Flask-WTF's CSRF check, a
Flask-Limiter limit, the session cookie read and rewritten, a 302): how much of /healthz's
rate is left before the second step does any work of its own. --no-floor skips it.

Codes are made for the middle of each wrk run, so a run may last up to ~50 s.

Each request opens its own connection (Connection: close), for both endpoints, as in
bench/hook_http.py. With wrk's 16 connections kept alive, which worker each one lands on is
settled once per run: in one run (per-process CPU read from /proc each second) two of the
three /healthz runs had one worker at a full core and the other idle, and gave 832 and
903 req/s against 2,026 for the run that used both; the ratios were 0.29, 0.19 and 0.47.
A connection per request spreads the requests over the workers within each run.
--keep-alive: the old way.

    .venv/bin/python bench/mfa_http.py                          # SQLite and PostgreSQL
    .venv/bin/python bench/mfa_http.py --db sqlite --duration 5
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    VENV_BIN,
    analyze,
    bench_db,
    cli_env,
    listening,
    served,
    table,
    verdict,
    workdir,
)
from http_range import DONE_ONLY
from mfa_verify import BENCH_KEY, add_accounts, add_totp_factors, totp_code_for

TARGET_RATIO = 0.4
NO_LIMIT = "1000000 per second"  # a moving window of 1 s keeps the limiter's list short
CLOSING = """
function request()
  return wrk.format("GET", nil, {["Connection"] = "close"})
end
"""

LUA = r"""
-- each wrk thread posts its own slice of the prepared (cookie, csrf token, code) tuples
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  nthreads = tonumber(args[2])
  mine = {}
  local i = 0
  for line in io.lines(args[1]) do
    if i %% nthreads == tid then
      local cookie, token, code = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)$")
      table.insert(mine, {cookie, token, code})
    end
    i = i + 1
  end
  idx = 0
  ok, other302, s400, s401, s429, s5xx, other, wrapped = 0, 0, 0, 0, 0, 0, 0, 0
end

function request()
  idx = idx + 1
  if idx > #mine then
    idx = 1
    wrapped = wrapped + 1
  end
  local t = mine[idx]
  return wrk.format("POST", "/login/mfa", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = "%(cookie_name)s=" .. t[1],%(close)s
  }, "csrf_token=" .. t[2] .. "&code=" .. t[3])
end

function response(status, headers, body)
  if status == 302 then
    local loc = headers["Location"] or headers["location"] or ""
    if loc == "/account/security" or loc:sub(-17) == "/account/security" then
      ok = ok + 1
    else
      other302 = other302 + 1
    end
  elseif status == 400 then s400 = s400 + 1
  elseif status == 401 then s401 = s401 + 1
  elseif status == 429 then s429 = s429 + 1
  elseif status >= 500 then s5xx = s5xx + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local t = {ok = 0, other302 = 0, s400 = 0, s401 = 0, s429 = 0, s5xx = 0, other = 0, wrapped = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (thread:get(k) or 0) end
  end
  io.write(string.format(
    "BENCH p50_us=%%d p99_us=%%d errors=%%d\n",
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout))
  io.write(string.format(
    "STATUS ok=%%d other302=%%d s400=%%d s401=%%d s429=%%d s5xx=%%d other=%%d wrapped=%%d\n",
    t.ok, t.other302, t.s400, t.s401, t.s429, t.s5xx, t.other, t.wrapped))
end
"""


def run_wrk(
    url: str, script: Path, args: argparse.Namespace, duration: int, *extra: str
) -> dict[str, Any]:
    cmd = [
        "wrk",
        "-t",
        str(args.wrk_threads),
        "-c",
        str(args.connections),
        "-d",
        f"{duration}s",
        "-s",
        str(script),
        url,
    ]
    if extra:
        cmd += ["--", *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    b = re.search(r"BENCH p50_us=(\d+) p99_us=(\d+) errors=(\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    assert m and b and total, out
    result: dict[str, Any] = {
        "rps": float(m.group(1)),
        "requests": int(total.group(1)),
        "p50": int(b.group(1)) / 1000,
        "p99": int(b.group(2)) / 1000,
        "errors": int(b.group(3)),
    }
    s = re.search(r"STATUS (.*)", out)
    if s:
        result["status"] = {k: int(v) for k, v in (kv.split("=") for kv in s.group(1).split())}
    return result


def prepare(app: Any, ids: Iterable[int], code_for: Callable[[int], str], path: Path) -> None:
    """One line per account, as the wrk script reads them: a signed session cookie holding
    the pending sign-in, its CSRF token, the code to post."""
    from flask import session
    from flask_wtf.csrf import generate_csrf

    serializer = app.session_interface.get_signing_serializer(app)
    lines = []
    now = int(time.time())
    for a in ids:
        with app.test_request_context("/login/mfa", base_url="http://127.0.0.1/"):
            session["pending"] = {"aid": a, "epoch": 0, "at": now}
            token = generate_csrf()
            cookie = serializer.dumps(dict(session))
        lines.append(f"{cookie}\t{token}\t{code_for(a)}\n")
    path.write_text("".join(lines))


def sessions_started(db: Any) -> int:
    from sqlalchemy import func, select

    from auth.models import AuditEvent

    with db.session() as s:
        return int(
            s.execute(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "session:started")
            ).scalar_one()
        )


def bench_one(
    kind: str, work: Path, args: argparse.Namespace, lua: Path, plain: Path
) -> tuple[list[list[Any]], float, bool]:
    """--rounds alternating pairs of runs on one server: /healthz then POST /login/mfa, the
    order swapped every other round, so a disturbance on the shared machine (or a trend:
    caches, the database growing) hits both alike; each round's ratio is of its own pair."""
    from auth.config import load_settings
    from auth.models import utcnow
    from auth.web.factory import create_app

    per_round = args.accounts
    with bench_db(kind, work, "mfahttp") as db:
        env = cli_env(db, work / "instance")
        env.update(
            MFA_ENCRYPTION_KEYS=BENCH_KEY,
            LOGIN_RATE_LIMIT=NO_LIMIT,
            MFA_IP_RATE_LIMIT=NO_LIMIT,
        )
        app = create_app(load_settings(env))  # same SECRET_KEY as the server: signs cookies
        registry = app.extensions["breachguard"]
        now = utcnow()
        ids = add_accounts(registry.db, 1, args.warmup_accounts + args.rounds * per_round, now)
        secrets_ = add_totp_factors(registry.db, registry.keys, ids, now)
        analyze(db)
        warm_ids = ids[: args.warmup_accounts]
        round_ids = [
            ids[args.warmup_accounts + r * per_round : args.warmup_accounts + (r + 1) * per_round]
            for r in range(args.rounds)
        ]
        tuples = work / f"{kind}-tuples.tsv"

        def load_mfa(accounts: list[int], duration: int) -> tuple[dict[str, Any], int]:
            # codes for the middle of the run; success counted by wrk and by audit events
            when = time.time() + duration / 2
            prepare(app, accounts, lambda a: totp_code_for(secrets_[a], when), tuples)
            before = sessions_started(registry.db)
            result = run_wrk(
                base + "/login/mfa", lua, args, duration, str(tuples), str(args.wrk_threads)
            )
            time.sleep(0.5)  # let the requests still in flight when wrk stopped finish
            return result, sessions_started(registry.db) - before

        rounds: list[tuple[dict[str, Any], dict[str, Any], int]] = []
        try:
            with served(env, workers=args.workers, threads=args.threads) as base:
                # warm both endpoints (pools, caches, imports, the limiter) before timing
                run_wrk(base + "/healthz", plain, args, 2)
                warm, _ = load_mfa(warm_ids, 2)
                if warm["status"]["ok"] != warm["requests"]:
                    print(f"warning ({kind}): warm-up statuses {warm['status']}")
                for r in range(args.rounds):
                    if r % 2 == 0:
                        hz = run_wrk(base + "/healthz", plain, args, args.duration)
                        mfa, started = load_mfa(round_ids[r], args.duration)
                    else:
                        mfa, started = load_mfa(round_ids[r], args.duration)
                        hz = run_wrk(base + "/healthz", plain, args, args.duration)
                    rounds.append((hz, mfa, started))
                    print(
                        f"  {kind} round {r + 1}/{args.rounds}: /healthz {hz['rps']:,.0f}/s, "
                        f"/login/mfa {mfa['rps']:,.0f}/s, ratio {mfa['rps'] / hz['rps']:.3f}",
                        flush=True,
                    )
        finally:
            registry.close()

    rows: list[list[Any]] = []
    all_ok = True
    for r, (hz, mfa, started) in enumerate(rounds, 1):
        st = mfa["status"]
        if st["wrapped"]:
            print(f"warning ({kind}): the tuples ran out, accounts were reused: raise --accounts")
        fail = {k: v for k, v in st.items() if k not in ("ok", "wrapped") and v}
        # the audit count also holds the requests in flight when wrk stopped
        all_ok &= st["ok"] == mfa["requests"] and 0 <= started - st["ok"] <= args.connections
        failures = ", ".join(f"{k}={v}" for k, v in fail.items()) or "none"
        base_row = ["/healthz (baseline)", hz["rps"], hz["p50"], hz["p99"], hz["requests"]]
        rows.append([kind, r, *base_row, "-", "-", 1.0])
        mfa_row = ["POST /login/mfa (TOTP)", mfa["rps"], mfa["p50"], mfa["p99"], mfa["requests"]]
        succeeded = f"{st['ok']:,} (audit: {started:,})"
        rows.append([kind, r, *mfa_row, succeeded, failures, mfa["rps"] / hz["rps"]])
    hz_med = statistics.median(hz["rps"] for hz, _, _ in rounds)
    mfa_med = statistics.median(mfa["rps"] for _, mfa, _ in rounds)
    ratio = statistics.median(mfa["rps"] / hz["rps"] for hz, mfa, _ in rounds)
    rows.append([kind, "median", "/healthz (baseline)", hz_med, "", "", "", "", "", 1.0])
    rows.append([kind, "median", "POST /login/mfa (TOTP)", mfa_med, "", "", "", "", "", ratio])
    return rows, ratio, all_ok


def bench_floor(
    work: Path, args: argparse.Namespace, lua: Path, plain: Path
) -> tuple[list[list[Any]], float]:
    """The same rounds against bench/stack_floor_app.py under the same gunicorn settings:
    what the stack alone (Flask, Flask-WTF, Flask-Limiter, the cookie session) leaves of
    /healthz's rate, before the second step does any work of its own."""
    import stack_floor_app

    tuples = work / "floor-tuples.tsv"
    gunicorn = str(VENV_BIN / "gunicorn")

    def command(port: int) -> list[str]:
        return [
            *(gunicorn, "-k", "gthread", "-w", str(args.workers), "--threads", str(args.threads)),
            *("-b", f"127.0.0.1:{port}", "--chdir", str(Path(__file__).resolve().parent)),
            "stack_floor_app:app",
        ]

    rounds = []
    # as many lines as a database run gets: no wrk thread wraps around within a run
    prepare(stack_floor_app.app, range(1, args.accounts + 1), lambda _: "000000", tuples)
    with listening(command, dict(os.environ)) as (base, _pid):
        run_wrk(base + "/healthz", plain, args, 2)
        run_wrk(base + "/login/mfa", lua, args, 2, str(tuples), str(args.wrk_threads))
        for r in range(args.rounds):  # the order swapped every other round, as above

            def step() -> dict[str, Any]:
                return run_wrk(
                    base + "/login/mfa",
                    lua,
                    args,
                    args.duration,
                    str(tuples),
                    str(args.wrk_threads),
                )

            if r % 2 == 0:
                hz = run_wrk(base + "/healthz", plain, args, args.duration)
                post = step()
            else:
                post = step()
                hz = run_wrk(base + "/healthz", plain, args, args.duration)
            if post["status"]["ok"] != post["requests"]:
                print(f"warning (floor): statuses {post['status']}")
            rounds.append((hz, post))
            print(
                f"  floor round {r + 1}/{args.rounds}: /healthz {hz['rps']:,.0f}/s, "
                f"stack-only POST {post['rps']:,.0f}/s, ratio {post['rps'] / hz['rps']:.3f}",
                flush=True,
            )
    ratio = statistics.median(p["rps"] / h["rps"] for h, p in rounds)
    rows = [
        [
            "none",
            "median",
            "POST, the stack alone (floor)",
            statistics.median(p["rps"] for _, p in rounds),
            "",
            "",
            "",
            "",
            "",
            ratio,
        ]
    ]
    return rows, ratio


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    ap.add_argument(
        "--accounts",
        type=int,
        default=16000,
        help="accounts per timed /login/mfa run (more than it will send)",
    )
    ap.add_argument(
        "--rounds", type=int, default=3, help="alternating /healthz + /login/mfa pairs (median)"
    )
    ap.add_argument("--warmup-accounts", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--duration", type=int, default=8, help="seconds per wrk run (<= 50)")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument(
        "--no-floor",
        action="store_true",
        help="skip the floor: the same rounds against bench/stack_floor_app.py",
    )
    ap.add_argument(
        "--keep-alive",
        action="store_true",
        help="keep wrk's connections open (the old way: see the docstring)",
    )
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk (or build github.com/wg/wrk)")
    if args.duration > 50:
        raise SystemExit("--duration: at most 50 s (the codes must stay within the TOTP window)")

    rows: list[list[Any]] = []
    ratios: dict[str, float] = {}
    all_ok: dict[str, bool] = {}
    with workdir() as work:
        lua, plain = work / "mfa.lua", work / "plain.lua"
        close = "" if args.keep_alive else '\n    ["Connection"] = "close",'
        lua.write_text(LUA % {"cookie_name": "bg_session", "close": close})
        plain.write_text(DONE_ONLY if args.keep_alive else CLOSING + DONE_ONLY)
        for kind in args.db:
            out, ratios[kind], all_ok[kind] = bench_one(kind, work, args, lua, plain)
            rows += out
        floor = None
        if not args.no_floor:
            out, floor = bench_floor(work, args, lua, plain)
            rows += out

    print()
    print(
        f"gunicorn gthread {args.workers} workers x {args.threads} threads on 127.0.0.1; "
        f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration}s on the same "
        "2-core machine; "
        f"{'kept-alive connections' if args.keep_alive else 'a connection per request'}; "
        f"each POST a different account; {args.rounds} alternating rounds, "
        "ratio = median of the rounds' ratios"
    )
    print(
        table(
            [
                "db",
                "round",
                "endpoint",
                "requests/s",
                "p50 ms",
                "p99 ms",
                "requests",
                "succeeded (302)",
                "failures",
                "x healthz",
            ],
            rows,
        )
    )
    print()
    for kind, ratio in ratios.items():
        print(
            f"target POST /login/mfa >= {TARGET_RATIO} x /healthz ({kind}): {ratio:.2f}: "
            f"{verdict(ratio >= TARGET_RATIO)}"
            + ("" if all_ok[kind] else "  (NOT every request succeeded: see failures)")
        )
    if floor is not None:
        print(
            f"floor: the stack alone (CSRF check, rate limit, session cookie read and rewritten; "
            f"no database, TOTP or audit) reaches {floor:.2f} x /healthz; the target leaves "
            f"the second step's own work {floor / TARGET_RATIO - 1:.0%} of the stack's cost"
        )


if __name__ == "__main__":
    main()
