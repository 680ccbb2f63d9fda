"""Latency of POST /api/v1/activity under an open-loop load, against /healthz of the same
server at the same rate.

A fresh database gets --accounts accounts, each with its known network; `breachguard
serve` (gunicorn gthread, 2 workers x 4 threads by default) listens on 127.0.0.1 with
REDIS_URL set, so the counters are Redis sorted sets. The load is open-loop: request i is
due at start + i / rate whatever the earlier answers did, and its latency runs from that
due time to the last byte of its answer (a closed loop would wait for slow answers and
hide them). Each report names a random account with its own portal session and subject,
from its known network, at a person's pace: the answers are `allow`, the path every
ordinary look-up takes. The client's kept-alive connections are opened once every worker
listens and warmed before any timing, as a portal keeps its pool. `--rounds` pairs of runs
alternate /healthz and the reports (the order swapped every other round); figures are over
every round's requests. "server CPU" is what the server's processes (gunicorn and its
workers) spent per request, from /proc. After the server, the same reports go through
`Guard.report` in this process at each rate: the guard's own cost, without HTTP. Floor from
issue #25: p99 <= 5 ms at 500 requests/s with Redis.

    .venv/bin/python bench/activity_latency.py            # 500/s, Redis db 1, SQLite
    .venv/bin/python bench/activity_latency.py --rates 200 300 400 500 --seconds 5
    .venv/bin/python bench/activity_latency.py --db postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    bench_db,
    cli_env,
    insert_accounts,
    listening,
    percentile,
    serve_command,
    table,
    tree_cpu_seconds,
    verdict,
    wait_listeners,
    workdir,
)

FLOOR_P99_MS = 5.0
FLOOR_RATE = 500.0
ACTION = "patient_lookup"
IN_PROCESS = "Guard.report (in process)"
T = TypeVar("T")


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)  # seconds, from the due time
    statuses: Counter[int] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    server_cpu: float = 0.0  # seconds the server's processes spent on the timed runs


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--rates", type=float, nargs="+", default=[FLOOR_RATE], help="requests per second"
    )
    ap.add_argument("--seconds", type=float, default=10.0, help="per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--accounts", type=int, default=5000)
    ap.add_argument("--connections", type=int, default=32, help="kept-alive client connections")
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/1")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--seed", type=int, default=25)
    args = ap.parse_args()

    with workdir() as work, bench_db(args.db, work, "activity") as db:
        token = _prepare(db.url, args.accounts)
        env = cli_env(db, work / "instance")
        prefix = f"bgbench-activity-{random.Random().getrandbits(32):08x}"
        env.update(
            REDIS_URL=args.redis,
            RATELIMIT_KEY_PREFIX=prefix,
            HOOK_RATE_LIMIT="10000000 per minute",
            LOG_LEVEL="WARNING",
        )
        try:
            server = serve_command(args.workers, args.threads)
            with listening(server, env) as (base, pid):
                wait_listeners(int(urlsplit(base).port or 80), args.workers)
                runs = {rate: _measure(base, pid, token, args, rate) for rate in args.rates}
            for rate in args.rates:
                runs[rate][IN_PROCESS] = _in_process(env, args, rate)
        finally:
            _forget(args.redis, prefix)

    rows, floor = [], None
    for rate, by_endpoint in runs.items():
        for name, run in by_endpoint.items():
            ms = sorted(t * 1000 for t in run.latencies)
            errors = sum(n for status, n in run.statuses.items() if status != 200)
            row = [
                name,
                rate,
                len(ms),
                percentile(ms, 50),
                percentile(ms, 99),
                ms[-1] if ms else float("nan"),
                run.server_cpu * 1000 / len(ms) if ms else float("nan"),
                errors,
                ", ".join(f"{d} {n}" for d, n in sorted(run.decisions.items())) or "-",
            ]
            rows.append(row)
            if rate == FLOOR_RATE and name.startswith("POST"):
                floor = row
    print()
    print(
        f"open loop, {args.rounds} x {args.seconds:g} s per endpoint and rate, "
        f"{args.connections} kept-alive connections; gunicorn gthread {args.workers} workers x "
        f"{args.threads} threads; {args.db} + Redis ({urlsplit(args.redis).hostname}), the same "
        f"{os.cpu_count()}-core machine"
    )
    headers = ["endpoint", "per s", "requests", "p50 ms", "p99 ms", "max ms", "server CPU ms"]
    headers += ["errors", "answers"]
    print(table(headers, rows))
    if floor is not None:
        p99, errors = floor[4], floor[7]
        print()
        print(
            f"floor POST /api/v1/activity p99 <= {FLOOR_P99_MS:g} ms at {FLOOR_RATE:g}/s: "
            f"{p99:.2f} ms: {verdict(p99 <= FLOOR_P99_MS and errors == 0)}"
        )


def _prepare(url: str, accounts: int) -> str:
    """The accounts, each with its known network, and a hook key; returns the key."""
    from auth import apikeys, audit
    from auth.db import Database
    from auth.models import AccountNetwork, utcnow

    database = Database(url)
    now = utcnow()
    try:
        ids = insert_accounts(database, range(1, accounts + 1), prefix="pro", now=now)
        with database.engine.begin() as conn:
            conn.execute(
                AccountNetwork.__table__.insert(),
                [
                    {"account_id": i, "network": _network(i), "first_at": now, "last_at": now}
                    for i in ids
                ],
            )
        with database.session() as s:
            created = apikeys.create(
                s, role="hook", name="bench", actor=audit.Actor.cli("bench"), now=now
            )
            return created.token
    finally:
        database.dispose()


def _ip(i: int) -> str:
    return f"10.{i // 256 % 256}.{i % 256}.7"


def _network(i: int) -> str:
    return f"10.{i // 256 % 256}.{i % 256}.0/24"


def _measure(
    base: str, pid: int, token: str, args: argparse.Namespace, rate: float
) -> dict[str, Run]:
    return _loop_run(_measure_on_pool(base, pid, token, args, rate))


async def _measure_on_pool(
    base: str, pid: int, token: str, args: argparse.Namespace, rate: float
) -> dict[str, Run]:
    """Every run of one rate over one pool of kept-alive connections, opened and warmed
    before any timing: a portal keeps its connections open, and opening them inside a timed
    run would measure the server's accept path rather than its answers."""
    rng = random.Random(args.seed)
    runs = {"GET /healthz (baseline)": Run(), "POST /api/v1/activity": Run()}
    healthz, activity = runs.values()
    pool = await Pool.open(base, args.connections)
    try:
        # warm both endpoints (statement caches, Redis scripts, every connection) first
        for warm in (False, True):
            await _open_loop(pool, token, args, Run(), rng, rate, activity=warm, seconds=1)
        for r in range(args.rounds):
            order = [(False, healthz), (True, activity)]
            for is_activity, run in order if r % 2 == 0 else reversed(order):
                before = tree_cpu_seconds(pid)
                await _open_loop(pool, token, args, run, rng, rate, activity=is_activity)
                run.server_cpu += tree_cpu_seconds(pid) - before
            print(f"  {rate:g}/s: round {r + 1}/{args.rounds} done", flush=True)
    finally:
        pool.close()
    return runs


def _loop_run(coroutine: Coroutine[Any, Any, T]) -> T:
    """uvloop when installed (the dev extra): the load generator shares the server's two
    cores, and uvloop's loop spends less of them per request than asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


@dataclass
class Pool:
    """Kept-alive connections to the server, reused by every run."""

    host: str
    port: int
    connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]

    @classmethod
    async def open(cls, base: str, size: int) -> Pool:
        parts = urlsplit(base)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        opened = [await asyncio.open_connection(host, port) for _ in range(size)]
        return cls(host, port, opened)

    def close(self) -> None:
        for _reader, writer in self.connections:
            writer.close()


def _in_process(env: dict[str, str], args: argparse.Namespace, rate: float) -> Run:
    """The same reports at the same rate through Guard.report in this process (what a
    Python portal embedding the guard waits for), open loop on one thread: the guard's own
    cost, without HTTP. "server CPU" is this process's CPU per report."""
    from auth.activity.guard import ActivityReport, Guard
    from auth.config import load_settings
    from auth.services import build

    guard = Guard(build(load_settings(env)))
    rng, run = random.Random(args.seed), Run()
    reports = [
        ActivityReport(**json.loads(_report(rng, args.accounts)))
        for _ in range(int(rate * args.seconds * args.rounds))
    ]
    for report in reports[: int(rate)]:  # warm: statement caches, the Redis script
        guard.report(report)
    cpu, start = time.process_time(), time.perf_counter() + 0.05
    for i, report in enumerate(reports):
        scheduled = start + i / rate
        wait = scheduled - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        run.decisions[guard.report(report).decision.value] += 1
        run.latencies.append(time.perf_counter() - scheduled)
        run.statuses[200] += 1
    run.server_cpu = time.process_time() - cpu
    return run


def _request(host: str, token: str, body: bytes | None) -> bytes:
    if body is None:
        return f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    head = (
        f"POST /api/v1/activity HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _report(rng: random.Random, accounts: int) -> bytes:
    i = rng.randint(1, accounts)
    return json.dumps(
        {
            "account": f"pro-{i:06d}@example.org",
            "session": f"portal-session-{i}",
            "ip": _ip(i),
            "action": ACTION,
            "subject": f"{rng.getrandbits(64):016x}",
        }
    ).encode()


async def _open_loop(
    pool: Pool,
    token: str,
    args: argparse.Namespace,
    run: Run,
    rng: random.Random,
    rate: float,
    *,
    activity: bool,
    seconds: float | None = None,
) -> None:
    """Requests due at start + i / rate, sent over the pool's connections; a request waits
    for a free connection, and that wait is part of its latency. Times come from
    perf_counter (uvloop's clock counts whole milliseconds)."""
    total = int(rate * (seconds or args.seconds))
    due: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

    async def connection(index: int) -> None:
        reader, writer = pool.connections[index]
        while (item := await due.get()) is not None:
            scheduled, payload = item
            for _attempt in range(2):  # the server may have closed an idle connection
                try:
                    writer.write(payload)
                    status, body = await _answer(reader)
                    break
                except (ConnectionError, asyncio.IncompleteReadError):
                    writer.close()
                    reader, writer = await asyncio.open_connection(pool.host, pool.port)
                    pool.connections[index] = reader, writer
            else:
                status, body = 0, b""
            run.latencies.append(time.perf_counter() - scheduled)
            run.statuses[status] += 1
            if activity and status == 200:
                run.decisions[json.loads(body)["decision"]] += 1

    workers = [asyncio.create_task(connection(i)) for i in range(len(pool.connections))]
    start = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = start + i / rate
        payload = _request(pool.host, token, _report(rng, args.accounts) if activity else None)
        wait = scheduled - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        due.put_nowait((scheduled, payload))
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length) if length else b""


def _forget(url: str, prefix: str) -> None:
    """The run's counters, out of the shared Redis database."""
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


if __name__ == "__main__":
    main()
