"""GET /metrics: counters move with real sign-ins, second-factor failures, breach-source
calls and forced resets; gauges are the database's rows; only loopback or an admin key may
scrape; under `breachguard serve --workers 2` every scrape sums every worker."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from auth import accounts, apikeys, audit
from auth.breach import findings
from auth.breach.checker import Checker, HibpSource
from auth.breach.hibp import HibpClient, HibpSettings
from auth.cli import main
from auth.config import Settings
from auth.models import Account, AccountStatus, FindingKind, utcnow
from auth.services import Services, build
from auth.signin import bans
from auth.web.factory import create_app
from tests.conftest import CHEAP_ARGON2, TEST_MFA_KEY
from tests.helpers_server import ServeProcess, closed_port
from tests.totp_helpers import enroll_totp

PASSWORD = "Correct-Horse-Battery-42"
EMAIL = "claire@example.fr"
ACTOR = audit.Actor.cli("metrics-test")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def site(settings: Settings) -> Services:
    registry = build(dataclasses.replace(settings, secret_rate_limit="3 per minute"))
    with registry.db.session() as s:
        accounts.create(
            s, email=EMAIL, password=PASSWORD, hasher=registry.hasher, actor=ACTOR, now=utcnow()
        )
    return registry


@pytest.fixture
def web(site: Services) -> Flask:
    return create_app(registry=site)


def _key(site: Services, role: str) -> str:
    with site.db.session() as s:
        return apikeys.create(s, role=role, name=role, actor=ACTOR, now=utcnow()).token


def scrape(client: FlaskClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    return parse(response.get_data(as_text=True))


def hook_login(client: FlaskClient, key: str, password: str) -> dict[str, object]:
    response = client.post(
        "/api/v1/hook/login",
        json={"email": EMAIL, "password": password, "ip": "198.51.100.23"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: dict[str, object] = response.get_json()
    return answer


def test_login_decisions_are_counted_by_outcome_and_surface(web: Flask, site: Services) -> None:
    client, key = web.test_client(), _key(site, "hook")
    before = scrape(client)
    assert hook_login(client, key, PASSWORD)["decision"] == "allow"
    assert hook_login(client, key, "wrong-password")["decision"] == "deny"
    assert hook_login(client, key, "wrong-password")["decision"] == "deny"
    after = scrape(client)
    name = "breachguard_login_decisions_total"
    allow = value(after, name, decision="allow", via="hook")
    deny = value(after, name, decision="deny", via="hook")
    assert allow - value(before, name, decision="allow", via="hook") == 1
    assert deny - value(before, name, decision="deny", via="hook") == 2


def test_password_hashes_and_their_cpu_time_are_counted(web: Flask, site: Services) -> None:
    """Each hashed attempt, right or wrong, counts once with the CPU time argon2 took."""
    client, key = web.test_client(), _key(site, "hook")
    before = scrape(client)
    hook_login(client, key, PASSWORD)
    hook_login(client, key, "wrong-password")
    after = scrape(client)
    hashes = "breachguard_password_hashes_total"
    cpu = "breachguard_password_hash_cpu_seconds_total"
    assert value(after, hashes, account="known") - value(before, hashes, account="known") == 2
    assert value(after, cpu, account="known") - value(before, cpu, account="known") > 0


def test_the_login_page_counts_as_its_own_surface(web: Flask) -> None:
    client = web.test_client()
    before = value(
        scrape(client), "breachguard_login_decisions_total", decision="allow", via="page"
    )
    page = client.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": csrf})
    after = value(scrape(client), "breachguard_login_decisions_total", decision="allow", via="page")
    assert after - before == 1


def test_a_wrong_second_factor_code_is_counted_by_kind(web: Flask, site: Services) -> None:
    with site.db.session() as s:
        account_id = s.query(Account.id).filter_by(email=EMAIL).scalar()
    enroll_totp(site, account_id)
    client, key = web.test_client(), _key(site, "hook")
    name = "breachguard_mfa_failures_total"
    before = scrape(client)
    first = hook_login(client, key, PASSWORD)
    assert first["decision"] == "mfa_required"
    for code in ("000000", "not-a-recovery-code"):
        client.post(
            "/api/v1/hook/mfa",
            json={"continuation": first["continuation"], "ip": "198.51.100.23", "code": code},
            headers={"Authorization": f"Bearer {key}"},
        )
    after = scrape(client)
    assert value(after, name, kind="totp") - value(before, name, kind="totp") == 1
    assert value(after, name, kind="recovery") - value(before, name, kind="recovery") == 1


def test_breach_source_calls_are_timed_and_failures_counted(web: Flask, site: Services) -> None:
    client = web.test_client()
    before = scrape(client)
    site.checker.check_password("some password")
    site.checker.check_email("someone@example.org")
    with socket.socket() as s:  # a port nobody listens on: a real connection refused
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    hibp = HibpClient(
        HibpSettings(passwords_url=f"http://127.0.0.1:{closed}", retries=0, connect_timeout=1)
    )
    check = Checker([HibpSource(hibp)]).check_password("some password")
    assert check.errors
    after = scrape(client)
    count = "breachguard_breach_source_seconds_count"
    for kind in ("password", "email"):
        moved = value(after, count, source="local", kind=kind) - value(
            before, count, source="local", kind=kind
        )
        assert moved == 1, kind
    errors = "breachguard_breach_source_errors_total"
    assert value(after, errors, source="hibp") - value(before, errors, source="hibp") == 1
    assert value(after, errors, source="local") == value(before, errors, source="local")


def test_forced_resets_are_counted_by_who_forced_them(
    web: Flask, site: Services, runner: CliRunner
) -> None:
    client = web.test_client()
    before = value(scrape(client), "breachguard_resets_total", via="cli")
    result = runner.invoke(main, ["reset", "--account", "1", "--no-send"])
    assert result.exit_code == 0, result.output
    again = runner.invoke(main, ["reset", "--account", "1", "--no-send"])  # already reset
    assert again.exit_code == 0, again.output
    assert value(scrape(client), "breachguard_resets_total", via="cli") - before == 1


def test_gauges_are_the_rows_in_the_database(web: Flask, site: Services, runner: CliRunner) -> None:
    now = utcnow()
    with site.db.session() as s:
        for n in range(3):
            accounts.create(s, email=f"p{n}@example.org", hasher=site.hasher, actor=ACTOR, now=now)
        s.query(Account).filter(Account.email == "p0@example.org").update(
            {"status": AccountStatus.LOCKED}
        )
        findings.record(
            s,
            [
                (2, FindingKind.EMAIL_IN_BREACH, "local", "leak"),
                (3, FindingKind.EMAIL_IN_BREACH, "local", "leak"),
                (4, FindingKind.PASSWORD_IN_BREACH, "local", "leak"),
            ],
            actor=ACTOR,
            now=now,
        )
        bans.add(s, "203.0.113.0/24", reason="robot", expires_at=None, actor=ACTOR, now=now)
        bans.add(
            s,
            "203.0.114.7",
            reason="old",
            expires_at=now - dt.timedelta(minutes=1),
            actor=ACTOR,
            now=now - dt.timedelta(hours=1),
        )
    assert runner.invoke(main, ["reset", "--account", "3", "--no-send"]).exit_code == 0
    samples = scrape(web.test_client())
    assert value(samples, "breachguard_database_up") == 1
    assert value(samples, "breachguard_notices", status="queued") == 1
    assert value(samples, "breachguard_notices", status="sent") == 0
    assert value(samples, "breachguard_open_findings", kind="email_in_breach") == 2
    assert value(samples, "breachguard_open_findings", kind="password_in_breach") == 1
    assert value(samples, "breachguard_open_findings", kind="valid_credential") == 0
    assert value(samples, "breachguard_locked_accounts") == 1
    assert value(samples, "breachguard_active_ip_bans") == 1  # the expired one is not counted


OUTSIDE = {"REMOTE_ADDR": "203.0.113.50"}


def test_loopback_may_scrape_without_a_key(web: Flask) -> None:
    assert web.test_client().get("/metrics").status_code == 200
    ipv6 = web.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "::1"})
    assert ipv6.status_code == 200


def test_another_address_needs_an_admin_key(web: Flask, site: Services) -> None:
    client = web.test_client()
    bare = client.get("/metrics", environ_base=OUTSIDE)
    assert bare.status_code == 401 and "WWW-Authenticate" in bare.headers
    for role, status in (("hook", 403), ("security", 403), ("admin", 200)):
        answer = client.get(
            "/metrics",
            environ_base=OUTSIDE,
            headers={"Authorization": f"Bearer {_key(site, role)}"},
        )
        assert answer.status_code == status, role
    assert b"breachguard_login_decisions_total" in answer.data


@pytest.mark.parametrize(
    "header",
    [
        "X-Forwarded-For",
        "X-Forwarded-Host",
        "X-Forwarded-Proto",
        "x-forwarded-anything",
        "Forwarded",
        "Via",
        "X-Real-IP",
        "CF-Connecting-IP",
        "True-Client-IP",
        "true-client-ip",
    ],
)
def test_a_request_relayed_by_a_local_reverse_proxy_is_not_taken_for_loopback(
    web: Flask, header: str
) -> None:
    relayed = web.test_client().get("/metrics", headers={header: "203.0.113.50"})
    assert relayed.status_code == 401, header


def test_a_key_presented_from_loopback_is_checked_too(web: Flask) -> None:
    answer = web.test_client().get("/metrics", headers={"Authorization": "Bearer bg_x_nope"})
    assert answer.status_code == 401


def test_wrong_keys_cost_from_the_secret_rate_limit(web: Flask) -> None:
    client = web.test_client()
    wrong = {"Authorization": "Bearer bg_0123456789ab_wrong"}
    statuses = [
        client.get("/metrics", environ_base=OUTSIDE, headers=wrong).status_code for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


# --- several workers ---------------------------------------------------------------------------


@pytest.fixture
def served(settings: Settings, site: Services, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`breachguard serve --workers 2` on the test database; yields its URL and instance."""
    instance = tmp_path / "serve-instance"
    env = {
        **os.environ,
        "BREACHGUARD_INSTANCE": str(instance),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "SECRET_KEY": settings.secret_key,
        "MFA_ENCRYPTION_KEYS": TEST_MFA_KEY,
        "ARGON2_TIME_COST": str(CHEAP_ARGON2.time_cost),
        "ARGON2_MEMORY_COST": str(CHEAP_ARGON2.memory_cost),
        "ARGON2_PARALLELISM": str(CHEAP_ARGON2.parallelism),
        "RATELIMIT_KEY_PREFIX": settings.ratelimit_key_prefix,
        "BREACH_SOURCES": "local",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = ServeProcess(
        env, closed_port(), tmp_path / "serve.log", "--workers", "2", "--threads", "2"
    )
    try:
        server.wait_up()
        yield server.base, instance
    finally:
        server.stop()


def test_every_scrape_sums_the_counters_of_every_worker(
    served: tuple[str, Path], site: Services
) -> None:
    base, instance = served
    key = _key(site, "hook")
    logins = 12
    for n in range(logins):
        answer = requests.post(
            base + "/api/v1/hook/login",
            json={"email": EMAIL, "password": PASSWORD if n % 2 else "wrong", "ip": "198.51.100.9"},
            headers={"Authorization": f"Bearer {key}", "Connection": "close"},
            timeout=15,
        )
        assert answer.status_code == 200, answer.text
    folders = list(instance.glob("metrics-*"))
    assert len(folders) == 1, folders
    pids = {p.stem.rsplit("_", 1)[-1] for p in folders[0].glob("counter_*.db")}
    assert pids, "no worker wrote its counters to the multiprocess folder"
    for _ in range(6):  # whichever worker answers, the totals are the same
        text = requests.get(base + "/metrics", headers={"Connection": "close"}, timeout=15).text
        samples = parse(text)
        name = "breachguard_login_decisions_total"
        assert value(samples, name, decision="allow", via="hook") == logins / 2
        assert value(samples, name, decision="deny", via="hook") == logins / 2


def test_readyz_says_the_database_answers_and_no_redis_is_used(app: Flask) -> None:
    from tests.conftest import REDIS_URL

    ready = app.test_client().get("/readyz")
    assert ready.status_code == 200
    assert ready.json == {"database": "up", "redis": "up" if REDIS_URL else "not used"}
