"""The seed incident replayed at full size, stage by stage, on SQLite and PostgreSQL.

A credential leak reaches the security team: a combo list of 2,000,000 `email:password`
lines, 19 of them pairs that still sign in to our accounts and 40 stale ones (an account's
old password, changed since). Everything is made up and seeded: addresses under reserved
example domains, passwords no person uses.

Set-up (timed, not part of the incident): a fresh database and instance, 500,000 accounts
loaded with the real `breachguard accounts import`, a hook API key, `breachguard serve` on
a loopback port, and a real SMTP server on loopback (aiosmtpd, as tests/test_notify.py),
which SMTP_URL points at. The 59 leaked accounts carry real argon2id hashes at the
production parameters (OWASP's m=19 MiB, t=2, p=1: the instance's own, so the drill
verifies them at full cost); the other 499,941 carry hashes from a pool made at cheap test
parameters (bench/accounts_import.py), which the import stores as it would any argon2 hash.

The incident, each stage timed, from the leak to the last refusal:
  1. `breachguard corpus import LEAK --type combos`: the digests are stored, each pair
     naming an account is tried on its hash, and the follow-up the import runs by itself
     (`monitor` for this breach, then the finding policy: valid_credential=reset,
     email_in_breach=mfa) forces the reset of the 19 and queues their notices;
  2. `breachguard notices send`, until the SMTP server has received the 19 notices (the
     live server drains the queue too, every 10 s: each notice goes through one of them);
  3. the login hook, `POST /api/v1/hook/login` on the live server: the 19 pairs are
     refused (reset_required), the 40 stale ones denied, and one untouched account with
     its own password still allowed (the control).
Checked afterwards in the database: the 19 accounts wait for a reset, the 40 do not.

Floor (issue #23): the incident in <= 60 s on PostgreSQL (SQLite judged the same way).

    .venv/bin/python bench/drill.py                   # both databases
    .venv/bin/python bench/drill.py --db postgres --accounts 1e5 --lines 4e5
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    CLI,
    BenchDB,
    bench_db,
    cli_env,
    human,
    parse_size,
    run_child,
    served,
    table,
    verdict,
    workdir,
)
from accounts_import import email_of, write_csv

FLOOR_SECONDS = 60.0
NA = float("nan")  # printed as "-"
WORKING, STALE = 19, 40
BREACH = "Drill-Webmail-2026"
# "working" / "stale" / "control" -> (account number, leaked password, current password)
Leaked = dict[str, list[tuple[int, str, str]]]


# --- the made-up leak -----------------------------------------------------------------------


def made_up_password(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(9, 14)))


def leaked_accounts(n: int, rng: random.Random) -> Leaked:
    """Account numbers with (leaked password, current password): `working` ones are the
    same, `stale` ones differ; and one `control` account nobody leaked."""
    chosen = rng.sample(range(n), WORKING + STALE + 1)
    out: dict[str, list[tuple[int, str, str]]] = {"working": [], "stale": [], "control": []}
    for k, i in enumerate(chosen):
        leaked = made_up_password(rng)
        if k < WORKING:
            out["working"].append((i, leaked, leaked))
        elif k < WORKING + STALE:
            out["stale"].append((i, leaked, made_up_password(rng)))
        else:
            out["control"].append((i, "", made_up_password(rng)))
    return out


def write_leak(path: Path, lines: int, leaked: Leaked, seed: int) -> None:
    """`lines` combo lines: the 59 pairs at random places, the rest addresses of another
    service (none of them an account)."""
    rng = random.Random(seed)
    pairs = [(email_of(i), pw) for kind in ("working", "stale") for i, pw, _ in leaked[kind]]
    places = dict(zip(rng.sample(range(lines), len(pairs)), pairs, strict=True))
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as fh:
        chunk = []
        for n in range(lines):
            email, pw = places.get(n) or (
                f"user{n}@webmail{n % 50}.example.net",
                made_up_password(rng),
            )
            chunk.append(f"{email}:{pw}\n")
            if len(chunk) >= 100_000:
                fh.write("".join(chunk))
                chunk = []
        fh.write("".join(chunk))


def real_hashes(leaked: Leaked) -> dict[int, str]:
    """The leaked and control accounts' hashes of their current password, at the
    production parameters (the instance's own)."""
    from auth.config import Argon2Params
    from auth.passwords import Hasher

    hasher = Hasher(Argon2Params())
    return {i: hasher.hash(current) for kind in leaked.values() for i, _, current in kind}


# --- the live pieces: SMTP server, hook -----------------------------------------------------


class Recipients:
    """An aiosmtpd handler that accepts every message and keeps its recipients."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.seen.extend(envelope.rcpt_tos)
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[int, Recipients]]:
    """aiosmtpd on a free loopback port; yields the port and what it received."""
    from aiosmtpd.controller import Controller

    class Loopback(Controller):
        def _trigger_server(self) -> None:  # aiosmtpd 1.4 greets its own port: learn it first
            self.port = self.server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            super()._trigger_server()  # type: ignore[no-untyped-call]

    received = Recipients()
    controller = Loopback(received, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield int(controller.port), received
    finally:
        controller.stop()


def hook(base: str, key: str, email: str, password: str, ip: str) -> str:
    body = json.dumps({"email": email, "password": password, "ip": ip, "user_agent": "drill"})
    request = urllib.request.Request(
        base + "/api/v1/hook/login",
        data=body.encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(json.loads(answer.read())["decision"])


# --- one database ---------------------------------------------------------------------------


def waiting_for_reset(db: BenchDB, emails: list[str]) -> int:
    from sqlalchemy import String, select

    from auth.db import Database, among
    from auth.models import Account, AccountStatus

    database = Database(db.url)
    try:
        with database.engine.connect() as conn:
            query = select(Account.email).where(
                among(Account.email, emails, String),
                Account.status == AccountStatus.RESET_REQUIRED.value,
            )
            return len(conn.execute(query).all())
    finally:
        database.dispose()


def drill(kind: str, work: Path, args: argparse.Namespace, leaked: Leaked) -> list[list[Any]]:
    rows: list[list[Any]] = []
    with bench_db(kind, work, "drill") as db, smtp_server() as (port, received):
        env = cli_env(db, work / f"instance-{kind}")
        for name in ("ARGON2_TIME_COST", "ARGON2_MEMORY_COST"):  # the production parameters
            env.pop(name)
        env["SMTP_URL"] = f"smtp://127.0.0.1:{port}"

        def stage(what: str, cmd: list[str], check: str = "") -> Any:
            run = run_child(cmd, env=env)
            rows.append([kind, what, run.seconds, run.max_rss_mib, check])
            print(f"[{kind}] {what}: {run.seconds:.1f} s", file=sys.stderr)
            return run

        imported = stage(
            "set-up: accounts import", [CLI, "accounts", "import", str(work / "accounts.csv")]
        )
        assert f"created {args.accounts}," in imported.stdout, imported.stdout
        key = stage("set-up: hook API key", [CLI, "apikey", "create", "--role", "hook"])
        token = key.stdout.split()[-1]
        with served(env, workers=1, threads=4) as base:
            started = time.perf_counter()
            options = ("--type", "combos", "--breach", BREACH, "--date", "2026-11-30", "--json")
            leak = stage(
                "1. corpus import of the leak (+ monitor, policy)",
                [CLI, "corpus", "import", str(work / "leak.txt"), *options],
            )
            report = json.loads(leak.stdout)
            policy = report["monitor"]["policy"]
            assert report["valid_credentials"] == WORKING, report
            assert policy["reset_accounts"] == WORKING, report
            rows[-1][-1] = (
                f"{report['lines']:,} lines, {report['valid_credentials']} valid pairs, "
                f"{policy['reset_accounts']} reset, {policy['mfa_accounts']} must use a 2nd factor"
            )
            t = time.perf_counter()
            sent = run_child([CLI, "notices", "send"], env=env)
            by_cli = int(sent.stdout.split()[1].rstrip(","))  # "sent N, retrying ..."
            while len(received.seen) < WORKING and time.perf_counter() - t < 60:
                time.sleep(0.1)  # the rest goes through serve's own drain
            got = sorted(received.seen)
            assert got == sorted(email_of(i) for i, _, _ in leaked["working"]), got
            what = f"{by_cli} sent by the CLI, {WORKING - by_cli} by serve's drain"
            rows.append([kind, "2. notices send, until SMTP has all", time.perf_counter() - t])
            rows[-1] += [sent.max_rss_mib, f"{what}; the SMTP server received {len(got)}"]
            t = time.perf_counter()
            decisions: dict[str, list[str]] = {}
            for n, (which, (i, leaked_pw, current)) in enumerate(
                (w, entry) for w in ("working", "stale", "control") for entry in leaked[w]
            ):
                password = current if which == "control" else leaked_pw
                ip = f"198.51.100.{n % 250 + 1}" if n < 250 else f"203.0.113.{n % 250 + 1}"
                decisions.setdefault(which, []).append(hook(base, token, email_of(i), password, ip))
            seconds = time.perf_counter() - t
            assert set(decisions["working"]) == {"reset_required"}, decisions
            assert set(decisions["stale"]) == {"deny"}, decisions
            assert decisions["control"] == ["allow"], decisions
            answers = f"{WORKING} reset_required, {STALE} deny, control allow"
            rows.append([kind, "3. hook: the 59 leaked pairs and a control", seconds, NA, answers])
            total = time.perf_counter() - started
        working = [email_of(i) for i, _, _ in leaked["working"]]
        stale = [email_of(i) for i, _, _ in leaked["stale"]]
        assert waiting_for_reset(db, working) == WORKING
        assert waiting_for_reset(db, stale) == 0
        ok = verdict(total <= FLOOR_SECONDS)
        rows.append([kind, "incident: leak to last refusal", total, NA, ok])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--accounts", type=parse_size, default=500_000)
    ap.add_argument("--lines", type=parse_size, default=2_000_000, help="combo lines in the leak")
    ap.add_argument(
        "--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (files)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    leaked = leaked_accounts(args.accounts, rng)
    rows: list[list[Any]] = []
    with workdir(args.keep) as work:
        t = time.perf_counter()
        write_csv(work / "accounts.csv", args.accounts, args.seed, real_hashes(leaked))
        write_leak(work / "leak.txt", args.lines, leaked, args.seed + 1)
        print(
            f"{human(args.accounts)} accounts and a {human(args.lines)}-line leak written in "
            f"{time.perf_counter() - t:.1f} s",
            file=sys.stderr,
        )
        for kind in args.db:
            rows += drill(kind, work, args, leaked)

    print()
    print(
        f"{human(args.accounts)} accounts, a {human(args.lines)}-line combo list with "
        f"{WORKING} working and {STALE} stale pairs; seconds are wall times (commands: the "
        "whole child process, start-up included); the incident runs from the leak's import "
        f"to the hook's last answer (floor <= {FLOOR_SECONDS:.0f} s)"
    )
    print(table(["db", "stage", "seconds", "peak RSS MiB", "checked"], rows))


if __name__ == "__main__":
    main()
