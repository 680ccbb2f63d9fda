"""Second-factor verification in-process: TOTP codes and WebAuthn assertions per second,
replay guard / sign counter written and committed, against the bare library calls.

For each database a fresh, migrated one gets made-up accounts (`mfa-NNNNN@example.org`),
each with one confirmed factor inserted directly: a TOTP secret encrypted with
auth.mfa.crypto.KeyRing under factors.context(account_id), or a WebAuthn credential of a
software authenticator (tests/soft_authenticator.py). A TOTP code is accepted once per
factor and time step, so every account is verified exactly once, with its current code
(made just before its chunk is timed). Measured in the same run, in interleaved chunks so
that a disturbance on the shared machine hits every row alike:

  TOTP
    pyotp.verify        - bare `pyotp.TOTP(secret).verify(code)`: the baseline;
    decrypt+check       - KeyRing.decrypt + totp.check (3 steps compared), no database;
    verify_totp+commit  - factors.verify_totp in a transaction, last_step stored, committed;
    check_code          - verify.check_code in a transaction: throttle read, decrypt, check,
                          last_step, throttle reset, commit: what the second step runs
                          (POST /login/mfa and /api/v1/hook/mfa add the audit event).
                          Floor: >= 1,000/s on SQLite.
  WebAuthn
    py_webauthn verify  - bare `verify_authentication_response` on the same assertion JSON
                          (parse + checks + ECDSA P-256 verify): the baseline;
    finish_authentication - the challenge spent, the credential looked up, the assertion
                          verified, the sign counter moved, all in one committed transaction.
    begin_authentication - informational: the challenge stored (untimed otherwise).

Statements per call are counted with SQLAlchemy's cursor events on one extra call.

    .venv/bin/python bench/mfa_verify.py                          # SQLite and PostgreSQL
    .venv/bin/python bench/mfa_verify.py --db sqlite --accounts 2000 --webauthn 500
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH_KEY,
    ROOT,
    BenchDB,
    analyze,
    bench_db,
    insert_accounts,
    parse_size,
    table,
    verdict,
    workdir,
)

sys.path.insert(0, str(ROOT))  # tests.soft_authenticator

FLOOR_TOTP_PER_S = 1000.0  # on SQLite


# --- fixtures (also used by bench/hook_mfa_http.py) ---------------------------------------------


def add_accounts(db: Any, first_id: int, n: int, now: dt.datetime) -> list[int]:
    """n made-up active accounts with ids first_id.., inserted directly; returns the ids."""
    return insert_accounts(db, range(first_id, first_id + n), prefix="mfa", now=now)


def add_totp_factors(
    db: Any, keys: Any, account_ids: Sequence[int], now: dt.datetime
) -> dict[int, str]:
    """One confirmed TOTP factor per account, secret encrypted as enrollment would; returns
    {account_id: base32 secret}."""
    from sqlalchemy import insert

    from auth.mfa import factors, totp
    from auth.models import FactorKind, MfaFactor

    secrets_by_account = {a: totp.new_secret() for a in account_ids}
    rows = [
        {
            "account_id": a,
            "kind": FactorKind.TOTP,
            "name": "Authenticator app",
            "created_at": now,
            "confirmed_at": now,
            "secret_enc": keys.encrypt(s, context=factors.context(a)),
            "last_step": None,
            "sign_count": 0,
            "transports": "[]",
            "backup_eligible": False,
            "backup_state": False,
            "possibly_cloned": False,
        }
        for a, s in secrets_by_account.items()
    ]
    with db.engine.begin() as conn:
        for start in range(0, len(rows), 2000):
            conn.execute(insert(MfaFactor), rows[start : start + 2000])
    return secrets_by_account


def add_webauthn_factors(db: Any, account_ids: Sequence[int], now: dt.datetime) -> dict[int, Any]:
    """One registered security key (a SoftAuthenticator) per account; returns {id: key}."""
    from sqlalchemy import insert

    from auth.mfa import webauthn as wa
    from auth.models import FactorKind, MfaFactor
    from tests.soft_authenticator import SoftAuthenticator

    keys = {}
    rows = []
    for a in account_ids:
        key = SoftAuthenticator()
        key.user_id = wa.user_handle(a)
        keys[a] = key
        rows.append(
            {
                "account_id": a,
                "kind": FactorKind.WEBAUTHN,
                "name": "Security key",
                "created_at": now,
                "confirmed_at": now,
                "credential_id": key.credential_id,
                "public_key": key.cose_public_key(),
                "sign_count": 0,
                "transports": json.dumps(list(key.transports)),
                "backup_eligible": False,
                "backup_state": False,
                "possibly_cloned": False,
            }
        )
    with db.engine.begin() as conn:
        for start in range(0, len(rows), 2000):
            conn.execute(insert(MfaFactor), rows[start : start + 2000])
    return keys


def totp_code_for(secret: str, when: float) -> str:
    import pyotp

    return pyotp.TOTP(secret).at(when)


# --- timing ---------------------------------------------------------------------------------

THREADS = 1  # main() sets --threads
POOL = ThreadPoolExecutor(max_workers=1)


@dataclass
class Clock:
    """Accumulated seconds and calls for one row."""

    seconds: float = 0.0
    calls: int = 0
    ok: int = 0

    def run(self, fn: Callable[[Any], bool], items: Sequence[Any]) -> None:
        """Every item through fn, split over THREADS threads (one slice each, so the pool
        adds one hand-off per slice, not per call): as a gunicorn worker's threads would."""

        def one_slice(part: Sequence[Any]) -> int:
            return sum(1 for item in part if fn(item))

        clock = time.perf_counter
        started = clock()
        if THREADS == 1:
            ok = one_slice(items)
        else:
            ok = sum(POOL.map(one_slice, [items[i::THREADS] for i in range(THREADS)]))
        self.seconds += clock() - started
        self.calls += len(items)
        self.ok += ok

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else float("nan")


def chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


@contextmanager
def statement_counter(engine: Any) -> Iterator[dict[str, int]]:
    """Count statements and commits sent on this engine while the block runs."""
    from sqlalchemy import event

    counts = {"statements": 0, "commits": 0}

    def on_execute(*_: Any) -> None:
        counts["statements"] += 1

    def on_commit(*_: Any) -> None:
        counts["commits"] += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)


# --- the cases ------------------------------------------------------------------------------


def bench_totp(
    db: BenchDB, registry: Any, args: argparse.Namespace
) -> tuple[list[list[Any]], float]:
    import pyotp
    from sqlalchemy import select

    from auth import audit
    from auth.mfa import factors, totp, verify
    from auth.models import MfaFactor, utcnow

    n = args.accounts
    now = utcnow()
    # two disjoint sets of accounts: one for verify_code, one for verify_totp+commit
    ids_code = add_accounts(registry.db, 1, n, now)
    ids_totp = add_accounts(registry.db, 1 + n, n, now)
    spare = add_accounts(registry.db, 1 + 2 * n, 2, now)  # statement counts
    secrets_ = add_totp_factors(registry.db, registry.keys, [*ids_code, *ids_totp, *spare], now)
    analyze(db)
    with registry.db.session() as s:
        enc = {a: e for a, e in s.execute(select(MfaFactor.account_id, MfaFactor.secret_enc))}
    keys, settings, window = registry.keys, registry.settings, registry.settings.totp_window

    def bare(item: tuple[int, str]) -> bool:
        a, code = item
        return bool(pyotp.TOTP(secrets_[a]).verify(code))

    def check_only(item: tuple[int, str]) -> bool:
        a, code = item
        secret = keys.decrypt(enc[a], context=factors.context(a))
        r = totp.check(secret, code, now=time.time(), last_step=None, window=window)
        return r.status is totp.TotpStatus.OK

    def verify_totp_commit(item: tuple[int, str]) -> bool:
        a, code = item
        with registry.db.connection() as conn:
            result, _ = factors.verify_totp(
                conn, account_id=a, code=code, keys=keys, window=window, now=utcnow()
            )
        return result.status is totp.TotpStatus.OK

    def verify_code(item: tuple[int, str]) -> bool:
        a, code = item
        with registry.db.connection() as conn:
            return verify.check_code(
                conn,
                account_id=a,
                code=code,
                keys=keys,
                settings=settings,
                actor=audit.Actor.account(a),
                now=utcnow(),
            ).ok

    # warm-up: pools, statement caches, imports (on the spare accounts' secrets, no writes)
    warm = [(a, totp_code_for(secrets_[a], time.time())) for a in spare]
    for item in warm * 50:
        bare(item)
        check_only(item)

    rows = {name: Clock() for name in ("bare", "check", "totp", "code")}
    for part_code, part_totp in zip(
        chunks(ids_code, args.chunk), chunks(ids_totp, args.chunk), strict=True
    ):
        t = time.time()  # codes made just before their chunk: always within the window
        items_code = [(a, totp_code_for(secrets_[a], t)) for a in part_code]
        items_totp = [(a, totp_code_for(secrets_[a], t)) for a in part_totp]
        rows["bare"].run(bare, items_code)
        rows["check"].run(check_only, items_code)
        rows["totp"].run(verify_totp_commit, items_totp)
        rows["code"].run(verify_code, items_code)

    with statement_counter(registry.db.engine) as counts_code:
        verify_code((spare[0], totp_code_for(secrets_[spare[0]], time.time())))
    with statement_counter(registry.db.engine) as counts_totp:
        verify_totp_commit((spare[1], totp_code_for(secrets_[spare[1]], time.time())))

    base = rows["bare"].rate
    out = [
        [db.kind, "TOTP", "pyotp.TOTP(secret).verify(code) (baseline)", rows["bare"], "-", 1.0],
        [db.kind, "TOTP", "KeyRing.decrypt + totp.check, no DB", rows["check"], "-", None],
        [db.kind, "TOTP", "factors.verify_totp + commit", rows["totp"], _stmts(counts_totp), None],
        [db.kind, "TOTP", "verify.check_code + commit", rows["code"], _stmts(counts_code), None],
    ]
    for r in out:
        r[5] = r[3].rate / base
    return out, rows["code"].rate


def _stmts(counts: dict[str, int]) -> str:
    return f"{counts['statements']} + {counts['commits']} commit"


def bench_webauthn(
    db: BenchDB, registry: Any, args: argparse.Namespace
) -> tuple[list[list[Any]], float]:
    from sqlalchemy import select
    from webauthn import verify_authentication_response

    from auth import audit
    from auth.mfa import webauthn as wa
    from auth.models import Account, utcnow
    from tests.soft_authenticator import ORIGIN, RP_ID, unb64url

    rp = wa.RelyingParty(id=RP_ID, name="breachguard", origins=(ORIGIN,), timeout=600)
    n = args.webauthn
    now = utcnow()
    first = 1 + 2 * args.accounts + 10
    ids = add_accounts(registry.db, first, n + 1, now)
    keys = add_webauthn_factors(registry.db, ids, now)
    analyze(db)
    with registry.db.session() as s:
        accounts = {
            a.id: a for a in s.execute(select(Account).where(Account.id >= first)).scalars()
        }
        for a in accounts.values():
            s.expunge(a)
    public = {a: k.cose_public_key() for a, k in keys.items()}
    actor = audit.Actor.cli("bench")

    begin = Clock()

    def begin_one(a: int) -> tuple[int, str, bytes, dict[str, Any]]:
        challenge_id, options = wa.begin_authentication(
            registry.db, account=accounts[a], rp=rp, now=utcnow()
        )
        raw = unb64url(json.loads(options)["challenge"])
        return a, challenge_id, raw, keys[a].get(options, counter=1)

    def bare(item: tuple[int, str, bytes, dict[str, Any]]) -> bool:
        a, _, raw, credential = item
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=raw,
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
            credential_public_key=public[a],
            credential_current_sign_count=0,
            require_user_verification=False,
        )
        return verified.new_sign_count == 1

    def finish(item: tuple[int, str, bytes, dict[str, Any]]) -> bool:
        a, challenge_id, _, credential = item
        factor = wa.finish_authentication(
            registry.db,
            challenge_id=challenge_id,
            credential=credential,
            rp=rp,
            now=utcnow(),
            actor=actor,
            account=accounts[a],
        )
        return factor.sign_count == 1

    spare = ids[-1]
    work = ids[:-1]
    items_all: list[tuple[int, str, bytes, dict[str, Any]]] = []
    begin.seconds = 0.0
    started = time.perf_counter()
    items_all = [begin_one(a) for a in work]
    begin.seconds, begin.calls, begin.ok = time.perf_counter() - started, len(work), len(work)
    for item in items_all[:50]:
        bare(item)  # warm-up (no writes)

    rows = {"bare": Clock(), "finish": Clock()}
    for part in chunks(items_all, args.chunk):
        rows["bare"].run(bare, part)
        rows["finish"].run(finish, part)

    with statement_counter(registry.db.engine) as counts_begin:
        item = begin_one(spare)
    with statement_counter(registry.db.engine) as counts_finish:
        finish(item)

    base = rows["bare"].rate
    out = [
        [
            db.kind,
            "WebAuthn",
            "py_webauthn verify_authentication_response (baseline)",
            rows["bare"],
            "-",
            1.0,
        ],
        [
            db.kind,
            "WebAuthn",
            "webauthn.finish_authentication",
            rows["finish"],
            _stmts(counts_finish),
            rows["finish"].rate / base,
        ],
        [
            db.kind,
            "WebAuthn",
            "webauthn.begin_authentication (+ soft key signs, info)",
            begin,
            _stmts(counts_begin),
            begin.rate / base,
        ],
    ]
    return out, rows["finish"].rate / base


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    ap.add_argument(
        "--accounts",
        type=parse_size,
        default=5000,
        help="TOTP accounts per measured path (each verified once)",
    )
    ap.add_argument(
        "--webauthn", type=parse_size, default=2000, help="WebAuthn accounts/assertions"
    )
    ap.add_argument("--chunk", type=int, default=250, help="calls per interleaved chunk")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads sharing each chunk, baseline and database paths alike (1: one call at "
        "a time; 4: a gunicorn worker's threads, where the database's waits overlap and so "
        "does the baseline's ECDSA, which releases the GIL)",
    )
    args = ap.parse_args()
    global THREADS, POOL
    THREADS, POOL = args.threads, ThreadPoolExecutor(max_workers=args.threads)

    import dataclasses

    from auth.config import Argon2Params, Settings
    from auth.services import build

    rows: list[list[Any]] = []
    totp_rates: dict[str, float] = {}
    wa_ratios: dict[str, float] = {}
    with workdir() as work:
        for kind in args.db:
            with bench_db(kind, work, "mfa") as db:
                settings = Settings(
                    instance_path=work / "instance",
                    database_url=db.url,
                    secret_key="bench-secret-key",  # noqa: S106 (a throw-away instance)
                    log_level="WARNING",
                    argon2=Argon2Params(time_cost=1, memory_cost=1024),
                    mfa_encryption_keys=(BENCH_KEY,),
                )
                registry = build(dataclasses.replace(settings))
                try:
                    out, totp_rates[kind] = bench_totp(db, registry, args)
                    rows += out
                    out, wa_ratios[kind] = bench_webauthn(db, registry, args)
                    rows += out
                finally:
                    registry.close()

    print()
    print(
        f"in-process, {args.threads} thread(s) sharing each chunk; TOTP: {args.accounts:,} accounts per path, each verified once; "
        f"WebAuthn: {args.webauthn:,} assertions; interleaved chunks of {args.chunk}"
    )
    print(
        table(
            ["db", "factor", "call", "calls/s", "us/call", "ok", "SQL per call", "x baseline"],
            [
                [
                    r[0],
                    r[1],
                    r[2],
                    r[3].rate,
                    1e6 / r[3].rate,
                    f"{r[3].ok}/{r[3].calls}",
                    r[4],
                    r[5],
                ]
                for r in rows
            ],
        )
    )
    print()
    for kind, rate in totp_rates.items():
        floor = f": floor >= {FLOOR_TOTP_PER_S:,.0f}/s {verdict(rate >= FLOOR_TOTP_PER_S)}"
        print(f"TOTP check_code ({kind}): {rate:,.0f}/s" + (floor if kind == "sqlite" else ""))
    for kind, ratio in wa_ratios.items():
        print(f"WebAuthn finish_authentication ({kind}): {ratio:.2f} x bare verify")
    bad = [r for r in rows if r[3].ok != r[3].calls]
    if bad:
        raise SystemExit("some verifications did not succeed: " + ", ".join(r[2] for r in bad))


if __name__ == "__main__":
    main()
