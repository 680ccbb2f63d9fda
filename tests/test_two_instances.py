"""Two `breachguard serve` instances on one PostgreSQL and one Redis behave as one service:
lockouts, bans, rate limits, WebAuthn challenges and continuation tokens started on one
instance hold on the other. Each test alternates its requests between the two.

The instances are real gunicorn processes (`breachguard serve --workers 1`) on two loopback
ports, each with its own instance folder: whatever they share, they share through the
database and Redis only. Needs TEST_DATABASE_URL (PostgreSQL) and TEST_REDIS_URL; skipped
otherwise (SQLite and in-memory limits are one-machine setups by design).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
import requests
from sqlalchemy import select, update

from auth import accounts, apikeys, audit
from auth.mfa import webauthn as wa
from auth.models import Account, AccountStatus, IpBan, utcnow
from auth.services import Services
from auth.signin import lockout
from tests.conftest import CHEAP_ARGON2, PG_URL, REDIS_URL, TEST_MFA_KEY
from tests.helpers_server import CLI, ServeProcess, closed_port
from tests.soft_authenticator import ORIGIN, RP_ID, SoftAuthenticator
from tests.totp_helpers import enroll_totp

pytestmark = pytest.mark.skipif(
    not (PG_URL and PG_URL.startswith("postgresql") and REDIS_URL),
    reason="two instances need a shared PostgreSQL and Redis: set TEST_DATABASE_URL="
    "postgresql+psycopg://… and TEST_REDIS_URL=redis://… (CI sets both)",
)

PASSWORD = "Correct-Horse-Battery-42"
ACTOR = audit.Actor.cli("two-instances-test")
# What the instances run with (the `settings` fixture's secret and MFA key, so accounts and
# factors created through `registry` are readable by both).
SECRET_KEY = "test-secret-key"
LOGIN_BUDGET = 6  # LOGIN_RATE_LIMIT, per end-user address
HOOK_BUDGET = 30  # HOOK_RATE_LIMIT, per hook key
BACKOFF_AFTER, LOCK_AFTER, BAN_AFTER = 3, 5, 4
REFUSED = re.compile(r"sign-in refused before hashing: (\w+) \S+ ip=(\S+)")


def port_is_free(port: int) -> bool:
    """Nobody listens on it: a server could bind it again (as servers do, with SO_REUSEADDR,
    past the TIME_WAIT of connections it closed)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Instance(ServeProcess):
    """One `breachguard serve --workers 1`, named in messages."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        super().__init__(env, closed_port(), log, "--host", "127.0.0.1", "--workers", "1")
        self.name = name

    def post(self, path: str, key: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(
            f"{self.base}/api/v1/hook{path}",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=15,
        )

    def login(self, key: str, email: str, password: str, ip: str) -> dict[str, Any]:
        r = self.post("/login", key, {"email": email, "password": password, "ip": ip})
        assert r.status_code == 200, f"{self.name}: {r.status_code} {r.text}"
        answer: dict[str, Any] = r.json()
        return answer

    def mfa(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.post("/mfa", key, body)
        assert r.status_code == 200, f"{self.name}: {r.status_code} {r.text}"
        answer: dict[str, Any] = r.json()
        return answer

    def refusal(self, ip: str) -> str | None:
        """Why this instance last refused a sign-in from `ip` before hashing (such refusals
        are logged, not audited; every answer says only invalid_credentials)."""
        found = REFUSED.findall(self.log.read_text(errors="replace"))
        reasons = [reason for reason, logged_ip in found if logged_ip == ip]
        return reasons[-1] if reasons else None

    def signal(self, sig: signal.Signals) -> None:
        """The whole process group: gunicorn's master and its worker."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def wait_stopped(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=15)
        self.signal(signal.SIGKILL)  # a worker outliving its master would keep the port
        self.proc.wait(timeout=15)


def _env(instance: Path, prefix: str) -> dict[str, str]:
    assert PG_URL and REDIS_URL
    return {
        **os.environ,
        "BREACHGUARD_INSTANCE": str(instance),
        "DATABASE_URL": PG_URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": SECRET_KEY,
        "MFA_ENCRYPTION_KEYS": TEST_MFA_KEY,
        "ARGON2_TIME_COST": str(CHEAP_ARGON2.time_cost),
        "ARGON2_MEMORY_COST": str(CHEAP_ARGON2.memory_cost),
        "ARGON2_PARALLELISM": str(CHEAP_ARGON2.parallelism),
        "BREACH_SOURCES": "local",
        "WEBAUTHN_ORIGINS": ORIGIN,
        "WEBAUTHN_RP_ID": RP_ID,
        "RATELIMIT_KEY_PREFIX": prefix,  # one per run: no budget left over from another
        "LOGIN_RATE_LIMIT": f"{LOGIN_BUDGET} per minute",
        "HOOK_RATE_LIMIT": f"{HOOK_BUDGET} per minute",
        "LOGIN_BACKOFF_AFTER": str(BACKOFF_AFTER),
        "LOGIN_BACKOFF_SECONDS": "60",
        "LOGIN_LOCK_AFTER": str(LOCK_AFTER),
        "IP_BAN_AFTER": str(BAN_AFTER),
        "IP_BAN_WINDOW": "600",
        "IP_BAN_SECONDS": "3600",
        "LOG_LEVEL": "INFO",  # refusals before hashing are logged, not audited
        "LOG_FORMAT": "text",  # REFUSED reads the plain message
    }


@pytest.fixture(scope="module")
def pair(
    _template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Instance, Instance]]:
    """Instances A and B, started once for the module (each test empties the database
    through the `registry` fixture; the instances keep nothing of their own)."""
    root = tmp_path_factory.mktemp("two-instances")
    prefix = f"bgtwo-{uuid.uuid4().hex[:12]}"
    started: list[Instance] = []
    try:
        for name in ("A", "B"):
            env = _env(root / f"instance-{name}", prefix)
            started.append(Instance(name, env, root / f"{name}.log"))
        for instance in started:
            instance.wait_up()
        a, b = started
        yield a, b
    finally:
        for instance in started:  # both at once: a graceful stop takes ~2 s
            instance.signal(signal.SIGTERM)
        for instance in started:
            instance.wait_stopped()
        busy = [i.port for i in started if not port_is_free(i.port)]
        assert not busy, f"ports still taken after the instances stopped: {busy}"


@pytest.fixture
def key(registry: Services) -> str:
    """A hook key of this test's own (its HOOK_RATE_LIMIT budget starts full)."""
    with registry.db.session() as s:
        return apikeys.create(s, role="hook", name="portal", actor=ACTOR, now=utcnow()).token


def make_account(registry: Services, email: str) -> Account:
    with registry.db.session() as s:
        account = accounts.create(
            s, email=email, password=PASSWORD, hasher=registry.hasher, actor=ACTOR, now=utcnow()
        )
        s.expunge(account)
    return account


def stored(registry: Services, account_id: int) -> Account:
    with registry.db.session() as s:
        account = s.get(Account, account_id)
        assert account is not None
        s.expunge(account)
        return account


def rewind_last_failure(registry: Services, account_id: int) -> None:
    """Time passes: the backoff delay of the last failure is over."""
    with registry.db.session() as s:
        s.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(last_failed_login_at=utcnow() - dt.timedelta(hours=1))
        )


def cli(*args: str) -> str:
    env = _env(Path(os.environ.get("TMPDIR", "/tmp")) / "bg-two-cli", "unused")
    done = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


# --- lockout ------------------------------------------------------------------------------


def test_wrong_passwords_on_both_instances_add_up_to_one_lock(
    pair: tuple[Instance, Instance], registry: Services, key: str
) -> None:
    a, b = pair
    account = make_account(registry, "lock@example.org")
    email = account.email
    # Every attempt from its own address: this is about the account, not automatic bans.
    ips = (f"198.51.100.{n}" for n in range(1, 50))

    for instance in (a, b, a):
        assert instance.login(key, email, "wrong", next(ips))["decision"] == "deny"
    assert stored(registry, account.id).failed_logins == BACKOFF_AFTER
    # A's third failure started a backoff delay; B enforces it, even on the right password.
    ip = next(ips)
    assert b.login(key, email, PASSWORD, ip)["decision"] == "deny"
    assert b.refusal(ip) == "throttled"
    assert stored(registry, account.id).failed_logins == BACKOFF_AFTER  # a refusal, not a guess

    rewind_last_failure(registry, account.id)
    assert b.login(key, email, "wrong", next(ips))["decision"] == "deny"
    rewind_last_failure(registry, account.id)
    assert a.login(key, email, "wrong", next(ips))["decision"] == "deny"  # the fifth: locked
    row = stored(registry, account.id)
    assert (row.status, row.failed_logins) == (AccountStatus.LOCKED, LOCK_AFTER)

    rewind_last_failure(registry, account.id)  # no backoff left: what refuses is the lock
    for instance in (a, b):
        ip = next(ips)
        assert instance.login(key, email, PASSWORD, ip)["decision"] == "deny"
        assert instance.refusal(ip) == "account_locked", instance.name

    with registry.db.session() as s:  # an admin unlocks: both instances let the person in
        lockout.unlock(s, email=email, actor=ACTOR, now=utcnow())
    for instance in (b, a):
        assert instance.login(key, email, PASSWORD, next(ips))["decision"] == "allow"


# --- bans ---------------------------------------------------------------------------------


def test_a_ban_added_through_the_cli_holds_on_both_and_so_does_its_removal(
    pair: tuple[Instance, Instance], registry: Services, key: str
) -> None:
    a, b = pair
    email = make_account(registry, "banned@example.org").email
    assert a.login(key, email, PASSWORD, "203.0.113.9")["decision"] == "allow"

    assert "banned 203.0.113.0/24" in cli("ban", "add", "203.0.113.0/24", "--for", "1h")
    for instance, ip in ((b, "203.0.113.9"), (a, "203.0.113.200")):
        assert instance.login(key, email, PASSWORD, ip)["decision"] == "deny"
        assert instance.refusal(ip) == "ip_banned", instance.name
    for instance in (a, b):  # only that network
        assert instance.login(key, email, PASSWORD, "192.0.2.1")["decision"] == "allow"

    cli("ban", "remove", "203.0.113.0/24")
    for instance in (b, a):
        assert instance.login(key, email, PASSWORD, "203.0.113.9")["decision"] == "allow"


def test_failures_on_both_instances_earn_one_automatic_ban_enforced_by_both(
    pair: tuple[Instance, Instance], registry: Services, key: str
) -> None:
    a, b = pair
    email = make_account(registry, "victim@example.org").email
    ip = "192.0.2.77"
    for n in range(BAN_AFTER):  # wrong guesses at several accounts, half on each instance
        instance = (a, b)[n % 2]
        answer = instance.login(key, f"guess{n}@example.org", PASSWORD, ip)
        assert answer["decision"] == "deny"
    with registry.db.session() as s:
        (ban,) = s.execute(select(IpBan).where(IpBan.removed_at.is_(None))).scalars()
        assert (ban.network, ban.automatic) == (f"{ip}/32", True)
    # The right password, from that address, on either instance: refused.
    for instance in (a, b):
        assert instance.login(key, email, PASSWORD, ip)["decision"] == "deny"
        assert instance.refusal(ip) == "ip_banned", instance.name
    assert b.login(key, email, PASSWORD, "192.0.2.78")["decision"] == "allow"


# --- rate limits (Redis) --------------------------------------------------------------------


def test_an_end_user_address_has_one_login_budget_across_instances(
    pair: tuple[Instance, Instance], registry: Services, key: str
) -> None:
    a, b = pair
    email = make_account(registry, "busy@example.org").email
    ip = "10.1.0.1"
    body = {"email": email, "password": PASSWORD, "ip": ip}
    for n in range(LOGIN_BUDGET):  # 3 on A, 3 on B
        r = (a, b)[n % 2].post("/login", key, body)
        assert r.status_code == 200 and r.json()["decision"] == "allow", (n, r.text)
    for instance in (a, b):
        assert instance.post("/login", key, body).status_code == 429
    for instance in (a, b):  # another person's address still has its whole budget
        assert instance.post("/login", key, body | {"ip": "10.255.0.2"}).status_code == 200


def test_a_hook_key_has_one_budget_across_instances(
    pair: tuple[Instance, Instance], registry: Services, key: str
) -> None:
    a, b = pair
    email = make_account(registry, "portal@example.org").email
    for n in range(HOOK_BUDGET):  # every call from another end user: only the key's budget
        ip = f"172.16.{n // 200}.{n % 200 + 1}"
        r = (a, b)[n % 2].post("/login", key, {"email": email, "password": PASSWORD, "ip": ip})
        assert r.status_code == 200, (n, r.text)
    for instance in (a, b):
        r = instance.post("/login", key, {"email": email, "password": PASSWORD, "ip": "172.17.0.1"})
        assert r.status_code == 429
    with registry.db.session() as s:  # another key (another portal) is not held back
        other = apikeys.create(s, role="hook", name="portal 2", actor=ACTOR, now=utcnow()).token
    assert b.login(other, email, PASSWORD, "172.17.0.1")["decision"] == "allow"


# --- continuations and WebAuthn challenges --------------------------------------------------


def test_a_continuation_from_one_instance_finishes_on_the_other(
    pair: tuple[Instance, Instance], registry: Services, key: str
) -> None:
    a, b = pair
    account = make_account(registry, "totp@example.org")
    secret = enroll_totp(registry, account.id)
    ip = "198.18.0.5"

    first = a.login(key, account.email, PASSWORD, ip)
    assert (first["decision"], first["factors"]) == ("mfa_required", ["totp"])
    token = first["continuation"]
    assert b.mfa(key, {"continuation": token, "ip": ip, "code": "000000"})["decision"] == "deny"
    # The enrolment used the current code (never twice): the next step's code, on B.
    code = pyotp.TOTP(secret).at(utcnow() + dt.timedelta(seconds=30))
    assert b.mfa(key, {"continuation": token, "ip": ip, "code": code})["decision"] == "allow"
    # Single use, on every instance: A refuses the spent token, even with a fresh code.
    later = pyotp.TOTP(secret).at(utcnow() + dt.timedelta(seconds=60))
    assert a.mfa(key, {"continuation": token, "ip": ip, "code": later})["decision"] == "deny"


def test_a_webauthn_challenge_from_one_instance_is_verified_on_the_other(
    pair: tuple[Instance, Instance], registry: Services, key: str
) -> None:
    a, b = pair
    account = make_account(registry, "passkey@example.org")
    rp = wa.RelyingParty.from_settings(registry.settings)
    assert (rp.id, rp.origins) == (RP_ID, (ORIGIN,))  # what the instances run with
    authenticator = SoftAuthenticator()
    challenge_id, options = wa.begin_registration(registry.db, account=account, rp=rp, now=utcnow())
    wa.finish_registration(
        registry.db,
        account=account,
        challenge_id=challenge_id,
        credential=authenticator.create(options),
        name="YubiKey",
        rp=rp,
        now=utcnow(),
        actor=ACTOR,
    )
    ip = "198.18.0.9"

    for n, (first, second) in enumerate(((a, b), (b, a)), 1):
        started = second.login(key, account.email, PASSWORD, ip)
        assert (started["decision"], started["factors"]) == ("mfa_required", ["webauthn"])
        token = started["continuation"]
        r = first.post("/mfa/webauthn/options", key, {"continuation": token, "ip": ip})
        assert r.status_code == 200, r.text
        assertion = authenticator.get(r.text, counter=n)  # signed over first's challenge
        answer = second.mfa(key, {"continuation": token, "ip": ip, "webauthn": assertion})
        assert answer["decision"] == "allow", (first.name, second.name, answer)
        # The challenge and the continuation are spent for both.
        again = first.mfa(key, {"continuation": token, "ip": ip, "webauthn": assertion})
        assert again["decision"] == "deny"
