"""Shared helpers for the bench/ scripts: throw-away databases, synthetic data, child
processes with their own peak RSS, percentiles and a small table printer.

Everything here is synthetic and deterministic (seeded): random SHA-1 digests and made-up
e-mail addresses under reserved example domains; never real passwords.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
CLI = str(VENV_BIN / "breachguard")
PG_HOST = "127.0.0.1"  # loopback only
PG_USER = "postgres"
# the MFA_ENCRYPTION_KEYS of every throw-away instance
BENCH_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"bench-mfa-key").digest()).decode()

sys.path.insert(0, str(ROOT))


def parse_size(text: str) -> int:
    """'1e6' or '1000000' or '1_000_000' -> int."""
    return int(float(text.replace("_", "")))


def human(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.3g}"


# --- databases ----------------------------------------------------------------------------


@dataclass
class BenchDB:
    kind: str  # "sqlite" | "postgres"
    url: str  # SQLAlchemy URL
    path: Path | None = None  # SQLite file
    pg_name: str | None = None

    @property
    def libpq(self) -> str:
        """A plain libpq conninfo, for psycopg directly."""
        return f"host={PG_HOST} port=5432 user={PG_USER} dbname={self.pg_name}"


@contextmanager
def bench_db(kind: str, workdir: Path, tag: str, *, migrate: bool = True) -> Iterator[BenchDB]:
    """A fresh, migrated database, dropped (or deleted) afterwards."""
    if kind == "sqlite":
        path = workdir / f"{tag}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        db = BenchDB(kind, f"sqlite:///{path}", path=path)
    elif kind == "postgres":
        name = f"bgbench_{tag}_{os.getpid()}"
        _pg(["dropdb", "--if-exists", "--force", name])
        _pg(["createdb", name])
        db = BenchDB(kind, f"postgresql+psycopg://{PG_USER}@{PG_HOST}:5432/{name}", pg_name=name)
    else:
        raise SystemExit(f"unknown --db {kind}")
    try:
        if migrate:
            from auth import migrate as migrations

            migrations.upgrade(db.url)
        yield db
    finally:
        if db.path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(str(db.path) + suffix).unlink(missing_ok=True)
        if db.pg_name is not None:
            _pg(["dropdb", "--if-exists", "--force", db.pg_name])


def _pg(cmd: list[str]) -> None:
    subprocess.run([*cmd, "-h", PG_HOST, "-U", PG_USER], check=True, capture_output=True)


@contextmanager
def workdir(keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bgbench-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def cli_env(db: BenchDB, instance: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        BREACHGUARD_INSTANCE=str(instance),
        DATABASE_URL=db.url,
        SECRET_KEY="bench-secret-key",  # noqa: S106 (a throw-away instance)
        BREACH_SOURCES="local",
        REDIS_URL="",
        LOG_LEVEL="WARNING",
        # accounts carry no password hash in the benchmarks; cheap argon2 all the same
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_COST="1024",
    )
    return env


def add_breach(db: BenchDB, name: str, kind: str) -> int:
    """Insert a breaches row directly; returns its id."""
    from sqlalchemy import insert, select

    from auth.db import Database
    from auth.models import Breach, utcnow

    database = Database(db.url)
    try:
        with database.engine.begin() as conn:
            conn.execute(insert(Breach), [{"name": name, "kind": kind, "imported_at": utcnow()}])
            return int(conn.execute(select(Breach.id).where(Breach.name == name)).scalar_one())
    finally:
        database.dispose()


def bulk_load(
    db: BenchDB,
    table: str,
    rows: Iterable[tuple[Any, ...]],
    columns: Sequence[str],
    *,
    skip_fk_checks: bool = False,
) -> None:
    """The fastest plain load each backend offers, in one transaction: SQLite executemany of
    a plain INSERT (rows given in key order), PostgreSQL binary COPY. No upsert.

    skip_fk_checks (PostgreSQL, superuser): session_replication_role=replica, so COPY skips
    the per-row foreign-key trigger. Only to build fixtures quickly in a throw-away database;
    the import baseline keeps the checks, as the real import pays them."""
    if db.kind == "sqlite":
        assert db.path is not None
        conn = sqlite3.connect(db.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-262144")
        if skip_fk_checks:
            conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("BEGIN")
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        conn.close()
        return
    import psycopg

    types = {"sha1": "bytea", "breach_id": "int4", "count": "int4"}
    with psycopg.connect(db.libpq) as conn, conn.cursor() as cur:
        if skip_fk_checks:
            cur.execute("SET LOCAL session_replication_role = replica")
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([types[c] for c in columns])
            for row in rows:
                copy.write_row(row)
        conn.commit()
    analyze(db)


def analyze(db: BenchDB) -> None:
    """Planner statistics after a bulk load (autovacuum would do this a little later)."""
    if db.kind == "postgres":
        import psycopg

        with psycopg.connect(db.libpq, autocommit=True) as conn:
            conn.execute("ANALYZE")


# --- synthetic data -----------------------------------------------------------------------


def random_digests(n: int, seed: int, *, sort: bool = True) -> list[bytes]:
    """n distinct-with-overwhelming-probability random 20-byte digests, sorted like HIBP's file."""
    rng = random.Random(seed)
    out: list[bytes] = []
    chunk = 1_000_000
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        blob = rng.randbytes(20 * m)
        out.extend(blob[i : i + 20] for i in range(0, 20 * m, 20))
    if sort:
        out.sort()
    return out


def hibp_counts(n: int, seed: int) -> list[int]:
    """Skewed counts like HIBP's (most small, a few huge)."""
    rng = random.Random(seed)
    return [max(1, int(rng.paretovariate(1.2))) for _ in range(n)]


def write_hibp_file(path: Path, n: int, seed: int) -> None:
    """`SHA1:COUNT` lines, uppercase hex, CRLF, sorted by hash: HIBP's ordered-by-hash file."""
    digests = random_digests(n, seed)
    counts = hibp_counts(n, seed + 1)
    with open(path, "wb", buffering=1 << 20) as fh:
        step = 200_000
        for i in range(0, n, step):
            fh.write(
                "".join(
                    f"{d.hex().upper()}:{c}\r\n"
                    for d, c in zip(digests[i : i + step], counts[i : i + step], strict=True)
                ).encode("ascii")
            )


def write_plain_file(path: Path, n: int, seed: int) -> None:
    """Random made-up passwords (8-16 letters/digits), one per line, some repeated."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    pool: list[str] = []
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as fh:
        for _ in range(n):
            if pool and rng.random() < 0.1:
                pw = rng.choice(pool)
            else:
                pw = "".join(rng.choices(alphabet, k=rng.randint(8, 16)))
                if len(pool) < 10_000:
                    pool.append(pw)
            fh.write(pw + "\n")


# --- processes ----------------------------------------------------------------------------


@dataclass
class ChildRun:
    seconds: float
    max_rss_mib: float
    stdout: str
    stderr: str
    returncode: int


GNU_TIME = "/usr/bin/time"


def run_child(
    cmd: list[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)
) -> ChildRun:
    """Run a command; its wall time and its own peak RSS.

    Linux carries the parent's RSS high-water mark over fork+exec into the child's
    ru_maxrss, and this parent holds the generated data, so the command is started by GNU
    time (a tiny process) whose `%M` is the peak of the command alone. Without GNU time,
    os.wait4's rusage is used, which over-states small children.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as rss,
    ):
        wrapped = [GNU_TIME, "-f", "%M", "-o", rss.name, *cmd] if os.path.exists(GNU_TIME) else cmd
        started = time.perf_counter()
        proc = subprocess.Popen(wrapped, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        measured = rss.read().strip().splitlines()
        kib = int(measured[-1]) if measured and measured[-1].isdigit() else usage.ru_maxrss
        run = ChildRun(
            seconds,
            kib / 1024,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            proc.returncode,
        )
    if run.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)} failed ({run.returncode}):\n{run.stderr[-3000:]}")
    return run


# --- statistics and output ----------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer {url}")


@contextmanager
def listening(
    command: Callable[[int], list[str]], env: dict[str, str]
) -> Iterator[tuple[str, int]]:
    """A server started by `command(port)` on a free loopback port, up (its /healthz
    answers); yields its base URL and pid, and stops it afterwards."""
    port = free_port()
    server = subprocess.Popen(
        command(port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base + "/healthz")
        yield base, server.pid
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a loaded machine: gunicorn's graceful stop lags
            server.kill()
            server.wait(timeout=30)


def wait_listeners(port: int, count: int, timeout: float = 30.0) -> None:
    """Until `count` sockets listen on the loopback port: `serve`'s workers each bind their
    own (SO_REUSEPORT) once booted, and the first answers /healthz before the others do;
    a pool opened earlier would be held by that first worker alone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listening = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()  # local address, remote, state ("0A": listening)
                listening += int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A"
        if listening >= count:
            return
        time.sleep(0.05)
    raise SystemExit(f"{count} workers were not listening on port {port} after {timeout:g} s")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children, from /proc: what a server
    and its workers spent, to divide by the requests they answered."""
    total, todo = 0.0, [pid]
    while todo:
        here = todo.pop()
        try:
            fields = Path(f"/proc/{here}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{here}/task/{here}/children").read_text().split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        todo += [int(c) for c in children]
    return total


def serve_command(workers: int, threads: int) -> Callable[[int], list[str]]:
    """`breachguard serve` on a given port, as in production."""
    return lambda port: [
        *(CLI, "serve", "--host", "127.0.0.1", "--port", str(port)),
        *("--workers", str(workers), "--threads", str(threads)),
    ]


@contextmanager
def served(env: dict[str, str], *, workers: int, threads: int) -> Iterator[str]:
    """`breachguard serve` on a free loopback port; yields its base URL."""
    with listening(serve_command(workers, threads), env) as (base, _pid):
        yield base


def insert_accounts(
    db: Any,
    ids: Iterable[int],
    *,
    prefix: str,
    now: dt.datetime,
    password_hash: str | None = None,
) -> list[int]:
    """Made-up active accounts <prefix>-<id:06d>@example.org, inserted directly in chunks;
    returns their ids."""
    from sqlalchemy import insert

    from auth.models import Account, AccountStatus

    ids = list(ids)
    rows = []
    for i in ids:
        email = f"{prefix}-{i:06d}@example.org"
        rows.append(
            {
                "id": i,
                "email": email,
                "email_sha1": hashlib.sha1(email.encode()).digest(),  # noqa: S324 (a fixture)
                "name": f"Bench {i}",
                "password_hash": password_hash,
                "status": AccountStatus.ACTIVE,
                "session_epoch": 0,
                "mfa_required": False,
                "created_at": now,
                "updated_at": now,
            }
        )
    with db.engine.begin() as conn:
        for start in range(0, len(rows), 2000):
            conn.execute(insert(Account), rows[start : start + 2000])
    return ids


# --- wrk ----------------------------------------------------------------------------------


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
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    s = re.search(r"STATUS (.*)", out)
    if s:
        result["status"] = {k: int(v) for k, v in (kv.split("=") for kv in s.group(1).split())}
    return result
