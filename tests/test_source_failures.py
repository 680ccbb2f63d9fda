"""A source that answered 429 or failed is never reported as "not found".

Whatever BREACH_FAILURE_POLICY is, a check that a person or a tool asked for says
`failed`: `breachguard check` prints that the check failed and exits 1, the API answers
503 with `"status": "failed"`, `scan` and `monitor` count the accounts they could not
check and exit 1. The policy keeps governing only the decisions that must go on without
an answer (a sign-in, a new password at reset).

The failing sources are real servers on loopback: a breachguard that rate-limits (its
budget of wrong keys per address), and tests/test_hibp_client.py's scripted HIBP (429
with Retry-After, 500, a connection closed without an answer, a body that is not HIBP's).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result
from flask.testing import FlaskClient

from auth import accounts, apikeys, audit
from auth.breach import scan as scanning
from auth.breach.checker import (
    BreachResult,
    BreachStatus,
    Check,
    Checker,
    HibpSource,
    LocalSource,
)
from auth.breach.hashing import email_sha1
from auth.breach.hibp import HibpClient, HibpSettings
from auth.breach.importer import Importer, Source
from auth.cli import main
from auth.config import Settings
from auth.models import BreachKind
from auth.services import Services, build
from auth.web.factory import create_app
from tests.conftest import PG_URL
from tests.helpers_server import Served, serving
from tests.test_hibp_client import Canned, FakeHibp, _no_proxies  # noqa: F401 (autouse)

ACTOR = audit.Actor.cli("tester")
KEY = "hibp-api-key-for-tests"
POLICIES = ["fail_open", "fail_closed"]
LEAKED = "password"  # in the local corpus of the tests that need a sighting
UNKNOWN = "a password nobody has leaked"
NURSE = "nurse@example.org"

RATE_LIMITED = Canned(  # HIBP's answer: its body shape, and a wait beyond max_retry_after
    429,
    body=json.dumps({"statusCode": 429, "message": "Rate limit is exceeded. Try again later."}),
    headers={"Retry-After": "60", "Content-Type": "application/json"},
)
FAILURES = {
    "429-retry-after": RATE_LIMITED,
    "500": Canned(500, body="Internal Server Error"),
    "hang-up": Canned(hang_up=True),
    "not-hibp": Canned(200, body="<html>Just a moment...</html>"),
}


def sha1_hex(value: str) -> str:
    return hashlib.sha1(value.encode()).hexdigest().upper()  # noqa: S324 - HIBP's scheme


@pytest.fixture
def fake() -> Iterator[FakeHibp]:
    server = FakeHibp()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def leaked_locally(registry: Services, tmp_path: Path) -> Services:
    path = tmp_path / "local-passwords.txt"
    path.write_text(f"{sha1_hex(LEAKED)}:5\n")
    with registry.db.session() as session:
        Importer(session, registry.hasher, ACTOR).run(
            Source(str(path)), BreachKind.PASSWORDS, breach="LocalPw"
        )
    return registry


def hibp_env(cli_env: dict[str, str], url: str, policy: str, key: str = KEY) -> dict[str, str]:
    """The second instance: its own database and corpus, and `url` as its HIBP."""
    return {
        **cli_env,
        "BREACH_SOURCES": "local,hibp",
        "BREACH_FAILURE_POLICY": policy,
        "HIBP_PASSWORDS_URL": url,
        "HIBP_API_URL": f"{url}/api/v3",
        "HIBP_API_KEY": key,
        "HIBP_RATE_PER_MINUTE": "60000",
    }


def check_email(env: dict[str, str], *addresses: str) -> Result:
    return CliRunner(env=env).invoke(main, ["check", "email", *addresses])


def check_password(env: dict[str, str], password: str) -> Result:
    return CliRunner(env=env).invoke(main, ["check", "password"], input=password + "\n")


# -- the result type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("results", "status"),
    [
        ((BreachResult("local"), BreachResult("hibp")), BreachStatus.NOT_FOUND),
        ((BreachResult("local"), BreachResult("hibp", error="HTTP 429")), BreachStatus.FAILED),
        ((BreachResult("local", error="down"),), BreachStatus.FAILED),
        ((BreachResult("local", count=3), BreachResult("hibp", error="x")), BreachStatus.EXPOSED),
        ((BreachResult("local", breaches=("A",)), BreachResult("hibp")), BreachStatus.EXPOSED),
        ((), BreachStatus.NOT_FOUND),
    ],
    ids=["all-answered", "one-failed", "only-source-failed", "seen-and-failed", "breach", "none"],
)
@pytest.mark.parametrize("fail_closed", [False, True])
def test_a_failed_source_makes_the_status_failed_unless_another_saw_it_whatever_the_policy(
    results: tuple[BreachResult, ...], status: BreachStatus, fail_closed: bool
) -> None:
    assert Check(results, fail_closed=fail_closed).status is status


@pytest.mark.parametrize("fail_closed", [False, True])
def test_the_policy_decides_only_whether_a_decision_refuses_on_a_failed_source(
    fail_closed: bool,
) -> None:
    failed = Check((BreachResult("local"), BreachResult("hibp", error="HTTP 500")), fail_closed)
    answered = Check((BreachResult("local"), BreachResult("hibp")), fail_closed)

    assert failed.refused_by_policy is fail_closed  # what a new password at reset obeys
    assert failed.status is BreachStatus.FAILED  # what every report says
    assert failed.failed_sources == ("hibp",)
    assert not answered.refused_by_policy


# -- the checker against failing servers -------------------------------------------------------


@pytest.mark.parametrize("answer", FAILURES.values(), ids=FAILURES.keys())
@pytest.mark.parametrize("policy", POLICIES)
def test_a_source_that_fails_is_a_failed_check_not_a_not_found(
    registry: Services, fake: FakeHibp, answer: Canned, policy: str
) -> None:
    fake.always(answer)
    client = HibpClient(
        HibpSettings(passwords_url=fake.url, api_url=f"{fake.url}/api/v3", api_key=KEY, retries=0)
    )
    checker = Checker(
        [LocalSource(registry.db), HibpSource(client)], fail_closed=policy == "fail_closed"
    )

    password, email = checker.check_password(UNKNOWN), checker.check_email(NURSE)
    client.close()

    for check in (password, email):
        assert check.status is BreachStatus.FAILED
        assert check.failed_sources == ("hibp",)
        assert [r.source for r in check.results if r.error is None] == ["local"]
    assert len(fake.received) == 2


# -- the scenario: a second instance against a first that rate-limits -----------------


@pytest.fixture
def first(settings: Settings, _template_db: str, tmp_path: Path) -> Iterator[Served]:
    """The first breachguard, served on loopback, with a budget of one wrong key per hour
    per address. Its own SQLite file, or on PostgreSQL the database both instances share."""
    if PG_URL:
        url = settings.database_url
    else:
        shutil.copy(_template_db, tmp_path / "first.db")
        url = f"sqlite:///{tmp_path / 'first.db'}"
    registry = build(
        dataclasses.replace(
            settings,
            instance_path=tmp_path / "first-instance",
            database_url=url,
            secret_rate_limit="1 per hour",
            ratelimit_key_prefix=settings.ratelimit_key_prefix + "-first",
        )
    )
    with serving(create_app(registry=registry)) as served:
        yield served
    registry.close()


def rate_limit_this_address(first: Served) -> None:
    """Spend the first instance's budget of wrong keys for 127.0.0.1, and see it refuse."""
    url = f"{first.url}/api/v3/breachedaccount/range/ABCDEF"
    answers = [requests.get(url, headers={"hibp-api-key": "bg_wrong_key"}, timeout=5) for _ in "ab"]
    assert [a.status_code for a in answers] == [401, 429]


@pytest.mark.parametrize("policy", POLICIES)
def test_check_email_against_a_first_instance_that_rate_limits_says_failed_and_exits_1(
    cli_env: dict[str, str], first: Served, policy: str
) -> None:
    rate_limit_this_address(first)

    result = check_email(hibp_env(cli_env, first.url, policy, key="bg_unknown_key"), NURSE)

    assert result.exit_code == 1, result.output
    assert result.stdout == f"{NURSE}: check failed: hibp could not be asked\n"
    assert "HTTP 429" in result.stderr
    assert "not found" not in result.output


@pytest.mark.parametrize("policy", POLICIES)
def test_check_email_when_hibp_answers_429_says_failed_and_exits_1(
    cli_env: dict[str, str], fake: FakeHibp, policy: str
) -> None:
    fake.always(RATE_LIMITED)

    result = check_email(hibp_env(cli_env, fake.url, policy), NURSE, "doctor@example.org")

    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [
        f"{NURSE}: check failed: hibp could not be asked",
        "doctor@example.org: check failed: hibp could not be asked",
    ]
    reported = [line for line in result.stderr.splitlines() if ": source failed: hibp:" in line]
    assert len(reported) == 2 and all("HTTP 429" in line for line in reported)
    assert KEY not in result.output
    assert len(fake.received) == 2  # a wait beyond max_retry_after: no retry


@pytest.mark.parametrize("policy", POLICIES)
def test_check_password_when_hibp_answers_429_says_failed_and_exits_1(
    cli_env: dict[str, str], fake: FakeHibp, policy: str
) -> None:
    fake.always(RATE_LIMITED)

    result = check_password(hibp_env(cli_env, fake.url, policy), UNKNOWN)

    assert result.exit_code == 1, result.output
    assert result.stdout.endswith(
        "check failed: hibp could not be asked; the password is not known to be safe\n"
    )
    assert "not found" not in result.output
    assert "429" in result.stderr
    assert UNKNOWN not in result.output


@pytest.mark.parametrize("policy", POLICIES)
def test_a_password_the_local_corpus_has_seen_is_pwned_even_when_hibp_fails(
    cli_env: dict[str, str], fake: FakeHibp, leaked_locally: Services, policy: str
) -> None:
    fake.always(FAILURES["500"])

    result = check_password(hibp_env(cli_env, fake.url, policy), LEAKED)

    assert result.exit_code == 1, result.output
    assert "pwned: seen 5 time(s)" in result.stdout
    assert "source failed: hibp:" in result.stderr  # and the answer may be incomplete


def test_a_retry_after_within_the_limit_is_waited_for_then_the_retry_answers(
    cli_env: dict[str, str], fake: FakeHibp
) -> None:
    fake.answer(
        Canned(429, headers={"Retry-After": "1"}), Canned(body=f"{sha1_hex(UNKNOWN)[5:]}:42")
    )

    result = check_password(hibp_env(cli_env, fake.url, "fail_open"), UNKNOWN)

    assert result.exit_code == 1, result.output
    assert "pwned: seen 42 time(s)" in result.stdout
    assert len(fake.received) == 2


def test_a_429_on_every_retry_is_a_failed_check(cli_env: dict[str, str], fake: FakeHibp) -> None:
    fake.always(Canned(429, headers={"Retry-After": "1"}))

    result = check_email(hibp_env(cli_env, fake.url, "fail_open"), NURSE)

    assert result.exit_code == 1, result.output
    assert result.stdout == f"{NURSE}: check failed: hibp could not be asked\n"
    assert len(fake.received) == 4  # the first attempt and HibpSettings.retries (3)


def test_when_every_source_answers_the_cli_still_says_not_found_and_exits_0(
    cli_env: dict[str, str], fake: FakeHibp
) -> None:
    fake.answer(Canned(404), Canned(body=f"{'0' * 35}:0"))
    env = hibp_env(cli_env, fake.url, "fail_open")

    email, password = check_email(env, NURSE), check_password(env, UNKNOWN)

    assert (email.exit_code, email.stdout) == (0, f"{NURSE}: not found\n")
    assert (password.exit_code, password.stdout.splitlines()[-1]) == (0, "not found in any source")


# -- the HTTP API ------------------------------------------------------------------------------


def api_for(settings: Settings, url: str, policy: str, now: dt.datetime) -> tuple[FlaskClient, str]:
    """The second instance's API, `url` as its HIBP, and a security key for it."""
    registry = build(
        dataclasses.replace(
            settings,
            breach_sources=("local", "hibp"),
            breach_failure_policy=policy,
            hibp_passwords_url=url,
            hibp_api_url=f"{url}/api/v3",
            hibp_api_key=KEY,
        )
    )
    with registry.db.session() as session:
        token = apikeys.create(session, role="security", name="soc", actor=ACTOR, now=now).token
    app = create_app(registry=registry)
    return app.test_client(), token


def ask(client: FlaskClient, token: str, what: str, value: str) -> tuple[int, dict[str, Any]]:
    response = client.post(
        f"/api/v1/check/{what}", json={what: value}, headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code, response.get_json()


@pytest.mark.parametrize("policy", POLICIES)
def test_the_api_answers_503_failed_when_hibp_rate_limits(
    settings: Settings, fake: FakeHibp, now: dt.datetime, policy: str
) -> None:
    fake.always(RATE_LIMITED)
    client, token = api_for(settings, fake.url, policy, now)

    for what, value, seen in (("password", UNKNOWN, "pwned"), ("email", NURSE, "breached")):
        status, body = ask(client, token, what, value)
        assert status == 503
        assert (body["status"], body["failed"], body[seen]) == ("failed", True, False)
        local, hibp = body["sources"]
        assert (local["source"], local["error"]) == ("local", None)
        assert hibp["source"] == "hibp" and "429" in hibp["error"]
        assert KEY not in json.dumps(body)


@pytest.mark.parametrize("policy", POLICIES)
def test_the_api_answers_503_failed_against_a_first_instance_that_rate_limits(
    settings: Settings, first: Served, now: dt.datetime, policy: str
) -> None:
    rate_limit_this_address(first)
    client, token = api_for(settings, first.url, policy, now)

    status, body = ask(client, token, "email", NURSE)

    assert (status, body["status"], body["breached"]) == (503, "failed", False)
    assert "429" in body["sources"][1]["error"]


def test_the_api_says_exposed_with_a_200_when_one_source_saw_it_and_another_failed(
    settings: Settings, fake: FakeHibp, leaked_locally: Services, now: dt.datetime
) -> None:
    fake.always(FAILURES["hang-up"])
    client, token = api_for(settings, fake.url, "fail_closed", now)

    status, body = ask(client, token, "password", LEAKED)

    assert (status, body["status"], body["pwned"], body["count"]) == (200, "exposed", True, 5)
    assert body["failed"] is False
    assert [s["error"] is None for s in body["sources"]] == [True, False]


def test_the_api_says_not_found_with_a_200_when_every_source_answered(
    settings: Settings, fake: FakeHibp, now: dt.datetime
) -> None:
    fake.answer(Canned(404))
    client, token = api_for(settings, fake.url, "fail_closed", now)

    status, body = ask(client, token, "email", NURSE)

    assert (status, body["status"], body["failed"], body["breached"]) == (
        200,
        "not_found",
        False,
        False,
    )


# -- scan and monitor: an account a source could not check is not clean ------------------------


def add_accounts(registry: Services, emails: list[str], now: dt.datetime) -> None:
    with registry.db.session() as session:
        for email in emails:
            accounts.create(
                session, email=email, password=None, hasher=registry.hasher, actor=ACTOR, now=now
            )


EMAILS = sorted(
    ["pro0@example.fr", "pro1@example.fr", "pro2@example.fr"],
    key=lambda e: email_sha1(e),  # the order scan and monitor ask prefixes in
)
PREFIXES = [sha1_hex(e)[:6] for e in EMAILS]
assert len(set(PREFIXES)) == len(EMAILS), "the tests need one account per prefix"


def test_scan_counts_the_accounts_a_failed_prefix_left_unchecked(
    registry: Services, fake: FakeHibp, now: dt.datetime
) -> None:
    add_accounts(registry, EMAILS, now)
    fake.answer(Canned(404), RATE_LIMITED, Canned(404))
    client = HibpClient(
        HibpSettings(passwords_url=fake.url, api_url=f"{fake.url}/api/v3", api_key=KEY)
    )

    with registry.db.session() as session:
        report = scanning.scan(session, sources=("hibp",), hibp=client, actor=ACTOR, now=now)
    client.close()

    assert (report.accounts, report.prefixes_asked, report.failed_accounts) == (3, 3, 1)
    assert len(report.errors) == 1 and report.errors[0].startswith(f"hibp {PREFIXES[1]}: ")


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_scan_cli_with_a_failed_source_says_so_and_exits_1(
    registry: Services, cli_env: dict[str, str], fake: FakeHibp, now: dt.datetime, fmt: str
) -> None:
    add_accounts(registry, EMAILS, now)
    fake.answer(Canned(404), RATE_LIMITED, Canned(404))
    env = {**hibp_env(cli_env, fake.url, "fail_open"), "BREACH_SOURCES": "hibp"}

    result = CliRunner(env=env).invoke(main, ["scan", "--format", fmt])

    assert result.exit_code == 1, result.output
    assert "3 accounts scanned" in result.stderr
    assert "1 account(s) not checked: a source failed" in result.stderr
    assert f"error: hibp {PREFIXES[1]}:" in result.stderr
    if fmt == "table":
        assert result.stdout == "no open findings, but the scan is incomplete: a source failed\n"
    else:
        assert json.loads(result.stdout) == []


def test_scan_cli_when_every_prefix_answers_exits_0(
    registry: Services, cli_env: dict[str, str], fake: FakeHibp, now: dt.datetime
) -> None:
    add_accounts(registry, EMAILS, now)
    fake.always(Canned(404))
    env = {**hibp_env(cli_env, fake.url, "fail_open"), "BREACH_SOURCES": "hibp"}

    result = CliRunner(env=env).invoke(main, ["scan"])

    assert result.exit_code == 0, result.output
    assert result.stdout == "no open findings\n"
    assert "not checked" not in result.stderr


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_monitor_names_the_failed_prefix_and_its_unchecked_accounts_and_exits_1(
    registry: Services, cli_env: dict[str, str], fake: FakeHibp, now: dt.datetime, fmt: str
) -> None:
    add_accounts(registry, EMAILS, now)
    fake.answer(Canned(404), RATE_LIMITED)
    env = {**hibp_env(cli_env, fake.url, "fail_open"), "BREACH_SOURCES": "hibp"}

    result = CliRunner(env=env).invoke(main, ["monitor", "--format", fmt])

    assert result.exit_code == 1, result.output
    assert f"error: hibp {PREFIXES[1]}:" in result.stderr
    if fmt == "text":
        assert (
            f"HIBP: 1 prefix(es) asked, 0 new finding(s), stopped at {PREFIXES[1]}: "
            "HIBP failed, its 1 account(s) not checked"
        ) in result.stdout
    else:
        hibp = json.loads(result.stdout)["hibp"]
        assert (hibp["prefixes"], hibp["failed_prefix"], hibp["failed_accounts"]) == (
            1,
            PREFIXES[1],
            1,
        )
        assert not hibp["pass_finished"]
