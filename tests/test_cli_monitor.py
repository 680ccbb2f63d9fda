"""`breachguard monitor` with HIBP as a source, against a loopback server speaking HIBP's
protocol: a paced pass resumed from its cursor, a failed prefix asked again, a run killed
with SIGKILL mid-request then finished by the next run; and `monitor subscribe`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask, Response, jsonify, request
from sqlalchemy import func, insert, select

from auth import audit
from auth.breach import monitor
from auth.breach.hashing import email_sha1, sha1_hex
from auth.breach.pacing import Budget
from auth.cli import main
from auth.config import Settings
from auth.models import Account, Finding, Notice, Reset
from auth.services import Services, build
from tests.helpers_server import Served, serving

TESTER = audit.Actor.cli("tester")
EMAILS = [f"pro{i}@example.fr" for i in range(6)]
BREACHED = {"pro1@example.fr": ["MegaCorp"], "pro4@example.fr": ["MegaCorp", "Forum2025"]}
API_KEY = "hibp-api-key-for-tests"
KANON_KEY = "kanon-key-for-tests"


def digest(email: str) -> str:
    return sha1_hex(email_sha1(email))


PREFIXES = sorted({digest(e)[:6] for e in EMAILS})
assert len(PREFIXES) == len(EMAILS), "the test needs one account per prefix"


class FakeHibp:
    """HIBP's e-mail range, subscription status and range subscription, on loopback."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.subscribed: dict[str, int] = {}
        self.failing: set[str] = set()
        self.hold: str | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        self.kanon = True
        self.app = Flask("fake-hibp")
        self.app.add_url_rule("/api/v3/breachedaccount/range/<prefix>", view_func=self.email_range)
        self.app.add_url_rule("/api/v3/subscription/status", view_func=self.status)
        self.app.add_url_rule("/kanon/range/subscribe", view_func=self.subscribe, methods=["POST"])

    def email_range(self, prefix: str) -> Response | tuple[str, int]:
        if request.headers.get("hibp-api-key") != API_KEY:
            return "", 401
        self.asked.append(prefix)
        if prefix in self.failing:
            return "", 400
        if prefix == self.hold:
            self.holding.set()
            self.release.wait(30)
        found = [
            {"hashSuffix": digest(e)[6:], "websites": sites}
            for e, sites in BREACHED.items()
            if digest(e)[:6] == prefix
        ]
        return jsonify(found) if found else ("", 404)

    def status(self) -> Response | tuple[str, int]:
        if request.headers.get("hibp-api-key") != API_KEY:
            return "", 401
        return jsonify({"SubscriptionName": "Pwned 3", "Rpm": 500, "IncludesKAnon": self.kanon})

    def subscribe(self) -> Response | tuple[str, int]:
        if request.headers.get("Hibp-Enterprise-Api-Key") != KANON_KEY:
            return "", 401
        prefix = (request.get_json(silent=True) or {}).get("hashPrefix", "")
        self.subscribed[prefix] = self.subscribed.get(prefix, 0) + 1
        return ("", 201) if self.subscribed[prefix] == 1 else ("", 200)


@pytest.fixture
def hibp() -> Iterator[tuple[FakeHibp, Served]]:
    fake = FakeHibp()
    with serving(fake.app) as served:
        yield fake, served
        fake.release.set()


def add_accounts(registry: Services, emails: list[str]) -> None:
    now = dt.datetime.now(dt.UTC)
    with registry.db.session() as s:
        s.execute(
            insert(Account),
            [
                {"email": e, "email_sha1": email_sha1(e), "created_at": now, "updated_at": now}
                for e in emails
            ],
        )


def hibp_findings(registry: Services) -> list[tuple[str, str]]:
    with registry.db.session() as s:
        rows = s.execute(
            select(Account.email, Finding.breach)
            .join(Account, Account.id == Finding.account_id)
            .where(Finding.source == "hibp")
            .order_by(Account.email, Finding.breach)
        ).all()
    return [(e, b) for e, b in rows]


EXPECTED = [
    ("pro1@example.fr", "MegaCorp"),
    ("pro4@example.fr", "Forum2025"),
    ("pro4@example.fr", "MegaCorp"),
]


def env_for(cli_env: dict[str, str], served: Served, **extra: str) -> dict[str, str]:
    return {
        **cli_env,
        "BREACH_SOURCES": "hibp",
        "HIBP_API_URL": f"{served.url}/api/v3",
        "HIBP_API_KEY": API_KEY,
        "HIBP_RATE_PER_MINUTE": "60000",
        **extra,
    }


@pytest.fixture
def hibp_registry(settings: Settings, hibp: tuple[FakeHibp, Served]) -> Iterator[Services]:
    services = build(
        dataclasses.replace(
            settings,
            breach_sources=("hibp",),
            hibp_api_url=f"{hibp[1].url}/api/v3",
            hibp_api_key=API_KEY,
            hibp_rate_per_minute=60000,
        )
    )
    add_accounts(services, EMAILS)
    yield services
    services.close()


def test_a_pass_goes_prefix_by_prefix_resumes_and_starts_over_when_done(
    hibp_registry: Services, hibp: tuple[FakeHibp, Served]
) -> None:
    fake = hibp[0]
    first = monitor.run(hibp_registry, actor=TESTER, budget=Budget(max_items=4))
    assert fake.asked == PREFIXES[:4]
    assert first.hibp is not None and first.hibp.stopped_by_budget
    assert first.hibp.cursor == PREFIXES[3]
    second = monitor.run(hibp_registry, actor=TESTER, budget=Budget(max_items=4))
    assert fake.asked == PREFIXES  # continued after the cursor, each prefix once
    assert second.hibp is not None and second.hibp.pass_finished
    assert hibp_findings(hibp_registry) == EXPECTED
    third = monitor.run(hibp_registry, actor=TESTER, budget=Budget(max_items=1))
    # A new pass from the start (answered from the client's short cache in this process).
    assert third.hibp is not None and third.hibp.prefixes == 1
    assert third.new_findings == 0 and hibp_findings(hibp_registry) == EXPECTED
    with hibp_registry.db.session() as s:
        state = monitor.read_state(s, monitor.HIBP_STATE)
    assert state is not None and state["passes"] == 1 and state["after"] == PREFIXES[0]


def test_the_default_policy_asks_a_second_factor_of_the_accounts_hibp_names(
    hibp_registry: Services,
) -> None:
    report = monitor.run(hibp_registry, actor=TESTER, budget=Budget())
    assert report.policy.mfa_findings == 3 and report.policy.mfa_accounts == 2
    with hibp_registry.db.session() as s:
        flagged = set(s.execute(select(Account.email).where(Account.mfa_required)).scalars())
    assert flagged == {"pro1@example.fr", "pro4@example.fr"}


def test_a_failed_prefix_exits_1_and_is_asked_first_by_the_next_run(
    registry: Services, cli_env: dict[str, str], hibp: tuple[FakeHibp, Served]
) -> None:
    fake, served = hibp
    add_accounts(registry, EMAILS)
    fake.failing = {PREFIXES[2]}
    runner = CliRunner(env=env_for(cli_env, served))
    failed = runner.invoke(main, ["monitor"])
    assert failed.exit_code == 1, failed.output
    assert f"hibp {PREFIXES[2]}" in failed.output
    assert fake.asked == PREFIXES[:3]
    fake.failing = set()
    again = runner.invoke(main, ["monitor", "--format", "json"])
    assert again.exit_code == 0, again.output
    assert fake.asked == PREFIXES[:3] + PREFIXES[2:]
    report = json.loads(again.stdout)
    assert report["hibp"]["pass_finished"] and report["errors"] == []
    assert hibp_findings(registry) == EXPECTED


def test_the_text_summary_says_what_each_step_did(
    registry: Services, cli_env: dict[str, str], hibp: tuple[FakeHibp, Served]
) -> None:
    add_accounts(registry, EMAILS)
    runner = CliRunner(env=env_for(cli_env, hibp[1]))
    result = runner.invoke(main, ["monitor", "--max-prefixes", "2"])
    assert result.exit_code == 0, result.output
    assert "HIBP: 2 prefix(es) asked" in result.output
    assert f"stopped after {PREFIXES[1]} (budget)" in result.output
    assert "policy:" in result.output


def _breachguard() -> str:
    return str(Path(sys.executable).parent / "breachguard")


def count(registry: Services, model: type) -> int:
    with registry.db.session() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def test_a_run_killed_mid_request_is_finished_by_the_next_without_repeats(
    registry: Services, cli_env: dict[str, str], hibp: tuple[FakeHibp, Served]
) -> None:
    """SIGKILL while HIBP holds the fifth prefix: the rerun asks that prefix first, records
    each finding once and resets each exposed account once (email_in_breach=reset)."""
    fake, served = hibp
    add_accounts(registry, EMAILS)
    fake.hold = PREFIXES[4]
    env = {**os.environ, **env_for(cli_env, served, FINDING_POLICY="email_in_breach=reset")}
    proc = subprocess.Popen(
        [_breachguard(), "monitor"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        assert fake.holding.wait(60), "the run never reached the held prefix"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        fake.release.set()
    assert fake.asked == PREFIXES[:5]
    # pro1 (prefix done before the kill) is recorded; the policy had not run yet.
    assert ("pro1@example.fr", "MegaCorp") in hibp_findings(registry)
    assert count(registry, Reset) == 0
    with registry.db.session() as s:
        state = monitor.read_state(s, monitor.HIBP_STATE)
    assert state is not None and state["after"] == PREFIXES[3]

    fake.hold = None
    rerun = subprocess.run(
        [_breachguard(), "monitor", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert fake.asked == PREFIXES[:5] + PREFIXES[4:]
    assert hibp_findings(registry) == EXPECTED
    assert count(registry, Reset) == 2 and count(registry, Notice) == 2
    with registry.db.session() as s:
        per_account = dict(
            s.execute(select(Reset.account_id, func.count()).group_by(Reset.account_id)).all()
        )
        unacted = s.execute(
            select(func.count()).select_from(Finding).where(Finding.action.is_(None))
        ).scalar_one()
    assert set(per_account.values()) == {1} and unacted == 0
    # A third run finds nothing to do.
    third = subprocess.run(
        [_breachguard(), "monitor", "--format", "json", "--max-prefixes", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout)["policy"]["reset_findings"] == 0
    assert count(registry, Reset) == 2


# --- subscribe ------------------------------------------------------------------------------


def subscribe_env(cli_env: dict[str, str], served: Served) -> dict[str, str]:
    return env_for(
        cli_env, served, HIBP_KANON_URL=f"{served.url}/kanon", HIBP_KANON_API_KEY=KANON_KEY
    )


def test_subscribe_registers_each_prefix_once_then_only_new_accounts(
    registry: Services, cli_env: dict[str, str], hibp: tuple[FakeHibp, Served]
) -> None:
    fake, served = hibp
    add_accounts(registry, EMAILS[:4])
    runner = CliRunner(env=subscribe_env(cli_env, served))
    partial = runner.invoke(main, ["monitor", "subscribe", "--max-prefixes", "3"])
    assert partial.exit_code == 0, partial.output
    assert "3 prefix(es) newly subscribed" in partial.output
    done = runner.invoke(main, ["monitor", "subscribe"])
    assert done.exit_code == 0, done.output
    assert "1 prefix(es) newly subscribed" in done.output and "all accounts covered" in done.output
    four = sorted(digest(e)[:6] for e in EMAILS[:4])
    assert sorted(fake.subscribed) == four and set(fake.subscribed.values()) == {1}
    add_accounts(registry, EMAILS[4:])
    later = runner.invoke(main, ["monitor", "subscribe"])
    assert later.exit_code == 0, later.output
    assert sorted(fake.subscribed) == PREFIXES and set(fake.subscribed.values()) == {1}


def test_subscribe_refuses_a_plan_without_k_anonymity(
    registry: Services, cli_env: dict[str, str], hibp: tuple[FakeHibp, Served]
) -> None:
    fake, served = hibp
    add_accounts(registry, EMAILS)
    fake.kanon = False
    result = CliRunner(env=subscribe_env(cli_env, served)).invoke(main, ["monitor", "subscribe"])
    assert result.exit_code == 2 and "IncludesKAnon" in result.output
    assert fake.subscribed == {}


def test_subscribe_without_a_kanon_url_says_so(
    cli_env: dict[str, str], hibp: tuple[FakeHibp, Served]
) -> None:
    result = CliRunner(env=env_for(cli_env, hibp[1])).invoke(main, ["monitor", "subscribe"])
    assert result.exit_code == 2 and "HIBP_KANON_URL" in result.output


def test_a_rejected_subscription_key_exits_1_and_keeps_the_cursor(
    registry: Services, cli_env: dict[str, str], hibp: tuple[FakeHibp, Served]
) -> None:
    fake, served = hibp
    add_accounts(registry, EMAILS)
    env = subscribe_env(cli_env, served) | {"HIBP_KANON_API_KEY": "wrong"}
    result = CliRunner(env=env).invoke(main, ["monitor", "subscribe"])
    assert result.exit_code == 1 and "refused the key" in result.output
    good = CliRunner(env=subscribe_env(cli_env, served)).invoke(main, ["monitor", "subscribe"])
    assert good.exit_code == 0, good.output
    assert sorted(fake.subscribed) == PREFIXES


def test_the_help_says_the_subscription_endpoint_is_not_in_the_public_api(
    runner: CliRunner,
) -> None:
    text = runner.invoke(main, ["monitor", "subscribe", "--help"]).output
    assert "public API v3 documents no range-subscription endpoint" in " ".join(text.split())
