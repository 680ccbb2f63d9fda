"""No secret reaches a log line. A real `breachguard serve` (LOG_LEVEL=DEBUG,
LOG_FORMAT=json) and the real CLI go through a whole story: accounts with passwords, a hook
key, right and wrong passwords at the hook, a TOTP factor enrolled through the pages, sign-ins
finished with a TOTP code and with recovery codes, a forced reset whose notice lands in the
outbox, and a new password set through /reset/<token>. Then every line of the logs must be
JSON (with a request id where a request made it), and none may hold any secret used."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
import requests

from auth.config import Settings
from tests.conftest import CHEAP_ARGON2, TEST_MFA_KEY
from tests.helpers_server import CLI, ServeProcess, closed_port

PASSWORD = "Quartz-Meadow-Lantern-71"
OTHER_PASSWORD = "Velvet-Harbour-Compass-38"
WRONG = "Wrong-Guess-Tangerine-55"
NEW_PASSWORD = "Ember-Violin-Glacier-62"
EMAIL, OTHER = "dr.secret@example.fr", "dr.other@example.fr"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"/reset/([A-Za-z0-9_\-]+)")
NOT_ME = re.compile(r"/not-me/([A-Za-z0-9_.\-]+)")  # a new sign-in's "this wasn't me"


@dataclass
class Story:
    base: str
    env: dict[str, str]
    instance: Path
    server_log: Path
    cli_log: Path
    secrets: dict[str, str] = field(default_factory=dict)
    server: ServeProcess | None = None

    def stop(self) -> None:
        """Stop the server; its logs are complete once it exits."""
        if self.server is not None:
            self.server.stop()

    def cli(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [str(CLI), *args], env=self.env, input=stdin, capture_output=True, text=True, timeout=60
        )
        with self.cli_log.open("a") as fh:
            fh.write(done.stderr)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def keep(self, name: str, value: str) -> str:
        self.secrets[name] = value
        return value


@pytest.fixture
def story(settings: Settings, tmp_path: Path) -> Iterator[Story]:
    instance = tmp_path / "instance"
    port = closed_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "BREACHGUARD_INSTANCE": str(instance),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "RATELIMIT_KEY_PREFIX": settings.ratelimit_key_prefix,
        "SECRET_KEY": settings.secret_key,
        "MFA_ENCRYPTION_KEYS": TEST_MFA_KEY,
        "ARGON2_TIME_COST": str(CHEAP_ARGON2.time_cost),
        "ARGON2_MEMORY_COST": str(CHEAP_ARGON2.memory_cost),
        "ARGON2_PARALLELISM": str(CHEAP_ARGON2.parallelism),
        "BREACH_SOURCES": "local",
        "PUBLIC_URL": base,
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "json",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    found = Story(base, env, instance, tmp_path / "serve.log", tmp_path / "cli.log")
    found.cli_log.touch()
    found.server = ServeProcess(env, port, found.server_log, "--workers", "2", "--threads", "2")
    try:
        found.server.wait_up()
        yield found
    finally:
        found.stop()


def _csrf(page: requests.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


def _hook(story: Story, key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(
        f"{story.base}/api/v1/hook{path}",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=15,
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _enroll_through_the_pages(story: Story) -> tuple[str, list[str], int]:
    """Sign in on /login, add an authenticator app, read the key and recovery codes."""
    browser = requests.Session()
    page = browser.get(story.base + "/login", timeout=15)
    signed_in = browser.post(
        story.base + "/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf_token": _csrf(page)},
        timeout=15,
    )
    assert signed_in.status_code == 200 and "/account/security" in signed_in.url, signed_in.text
    story.keep("session cookie (password only)", browser.cookies["bg_session"])
    started = browser.post(
        story.base + "/account/security/totp",
        data={"name": "Phone", "csrf_token": _csrf(signed_in)},
        timeout=15,
    )
    secret = re.search(r"secret=([A-Z2-7]+)", started.text)
    action = re.search(r'action="(/account/security/totp/\d+/confirm)"', started.text)
    assert secret and action, started.text[:1000]
    totp_secret = story.keep("TOTP secret", secret.group(1))
    code = story.keep("TOTP code (enrollment)", pyotp.TOTP(totp_secret).now())
    confirmed = browser.post(
        story.base + action.group(1),
        data={"code": code, "csrf_token": _csrf(started)},
        timeout=15,
    )
    codes = re.findall(r"<li><code>([^<]+)</code></li>", confirmed.text)
    assert len(codes) == 10, confirmed.text[:1000]
    for n, c in enumerate(codes):
        story.keep(f"recovery code {n}", c)
    step = int(time.time()) // 30
    return totp_secret, codes, step


def _token_in_outbox(outbox: Path, link: re.Pattern[str] = LINK) -> str:
    """The token of the first notice in the outbox with such a link."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            body = message.get_body(("plain",))
            assert body is not None
            found = link.search(body.get_content())
            if found:
                return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no notice with {link.pattern} in {outbox}")


def test_a_full_run_logs_json_with_request_ids_and_no_secret(story: Story) -> None:
    # Accounts with passwords, and the portal's hook key, through the CLI.
    story.keep("password", PASSWORD)
    story.keep("other password", OTHER_PASSWORD)
    story.keep("wrong password", WRONG)
    story.cli("accounts", "create", EMAIL, "--password", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    story.cli("accounts", "create", OTHER, "--password", stdin=f"{OTHER_PASSWORD}\n" * 2)
    created = story.cli("apikey", "create", "--role", "hook", "--name", "portal")
    key = story.keep("API key", created.split()[-1])
    story.keep("API key secret part", key.split("_", 2)[2])

    # The hook: right and wrong passwords.
    assert (
        _hook(story, key, "/login", {"email": EMAIL, "password": PASSWORD, "ip": "198.51.100.7"})[
            "decision"
        ]
        == "allow"
    )
    for _ in range(2):
        wrong = {"email": OTHER, "password": WRONG, "ip": "198.51.100.8"}
        assert _hook(story, key, "/login", wrong)["decision"] == "deny"

    # A TOTP factor through the pages; then sign-ins finished with a TOTP code and with
    # recovery codes (hook and page).
    totp_secret, codes, step = _enroll_through_the_pages(story)
    first = _hook(
        story, key, "/login", {"email": EMAIL, "password": PASSWORD, "ip": "198.51.100.7"}
    )
    assert first["decision"] == "mfa_required"
    story.keep("continuation 1", first["continuation"])
    code = story.keep("TOTP code (sign-in)", pyotp.TOTP(totp_secret).at((step + 1) * 30))
    mfa = {"continuation": first["continuation"], "ip": "198.51.100.7", "code": "000000"}
    assert _hook(story, key, "/mfa", mfa)["decision"] == "deny"  # a wrong code first
    second = _hook(
        story, key, "/login", {"email": EMAIL, "password": PASSWORD, "ip": "198.51.100.7"}
    )
    story.keep("continuation 2", second["continuation"])
    mfa = {"continuation": second["continuation"], "ip": "198.51.100.7", "code": code}
    assert _hook(story, key, "/mfa", mfa)["decision"] == "allow"
    third = _hook(
        story, key, "/login", {"email": EMAIL, "password": PASSWORD, "ip": "198.51.100.7"}
    )
    story.keep("continuation 3", third["continuation"])
    mfa = {"continuation": third["continuation"], "ip": "198.51.100.7", "code": codes[0]}
    assert _hook(story, key, "/mfa", mfa)["decision"] == "allow"
    browser = requests.Session()
    page = browser.get(story.base + "/login", timeout=15)
    asked = browser.post(
        story.base + "/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf_token": _csrf(page)},
        timeout=15,
    )
    assert "/login/mfa" in asked.url, asked.url
    done = browser.post(
        story.base + "/login/mfa", data={"code": codes[1], "csrf_token": _csrf(asked)}, timeout=15
    )
    assert "/account/security" in done.url, done.text[:500]
    story.keep("session cookie (second factor)", browser.cookies["bg_session"])

    # A forced reset; its notice in the outbox; a new password through the link.
    story.cli("reset", "--account", "1", "--reason", "Leaked in a test breach")
    token = story.keep("reset token", _token_in_outbox(story.instance / "outbox"))
    # the page's sign-in came from a network new to the account: its e-mail's link
    story.keep("this-wasn't-me token", _token_in_outbox(story.instance / "outbox", NOT_ME))
    resetting = requests.Session()
    form = resetting.get(f"{story.base}/reset/{token}", timeout=15)
    assert form.status_code == 200, form.text[:500]
    story.keep("NEW password", NEW_PASSWORD)
    changed = resetting.post(
        f"{story.base}/reset/{token}",
        data={"password": NEW_PASSWORD, "repeat": NEW_PASSWORD, "csrf_token": _csrf(form)},
        timeout=15,
    )
    assert changed.status_code == 200 and "password" in changed.text.lower(), changed.text[:500]
    assert resetting.get(f"{story.base}/reset/{token}", timeout=15).status_code == 410
    after = _hook(
        story, key, "/login", {"email": EMAIL, "password": NEW_PASSWORD, "ip": "198.51.100.7"}
    )
    assert after["decision"] == "mfa_required"
    story.keep("continuation 4", after["continuation"])
    _hook(
        story,
        key,
        "/mfa",
        {"continuation": after["continuation"], "ip": "198.51.100.7", "code": codes[2]},
    )
    for n in range(10):
        assert f"recovery code {n}" in story.secrets
    metrics = requests.get(story.base + "/metrics", timeout=15).text  # a scrape, logged too
    assert "breachguard_login_decisions_total" in metrics

    story.stop()  # first: then everything it logged is written
    server = story.server_log.read_text(errors="replace")
    cli = story.cli_log.read_text(errors="replace")
    lines = [line for line in server.splitlines() if line.strip()]
    assert len(lines) > 30, server  # the logs are there: this test can fail
    entries = []
    for n, line in enumerate(lines, 1):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"server log line {n} is not JSON: {line[:300]}")
    access = [e for e in entries if e["logger"] == "breachguard.access"]
    assert len(access) >= 20
    assert all(isinstance(e["request_id"], str) and e["request_id"] for e in access)
    assert {"/reset/<token>", "/api/v1/hook/login", "/login/mfa"} <= {e["path"] for e in access}
    assert any(e["logger"].startswith("gunicorn") for e in entries)  # gunicorn's lines, as JSON
    for n, line in enumerate(cli.splitlines(), 1):
        if line.strip():
            assert json.loads(line)["level"], f"cli log line {n}"
    leaks = [
        name
        for name, secret in story.secrets.items()
        for text in (server, cli)
        if re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text)
    ]
    assert not leaks, f"secrets in the logs: {leaks}"
