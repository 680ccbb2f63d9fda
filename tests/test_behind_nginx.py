"""Behind a real nginx: the shipped site file (deploy/nginx/breachguard.conf), TLS with a
throw-away certificate, in front of `breachguard serve`.

The site file is rendered for two nginx: one in front of a service that trusts it
(TRUSTED_PROXIES=127.0.0.1/32, PUBLIC_URL and WebAuthn at https://localhost:PORT), one in
front of a service that trusts nobody (TRUSTED_PROXIES unset). Clients leave from different
loopback addresses (127.0.0.2, 127.0.0.3, ...); each request carries an X-Request-ID, so
the service's access line for it tells which address the service saw.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import select, text

from auth import accounts, audit
from auth.audit import GENESIS
from auth.config import Settings
from auth.db import Database
from auth.models import AuditEvent, Base
from auth.services import Services, build
from auth.signin import bans
from tests import test_e2e_browser as e2e
from tests.conftest import CHEAP_ARGON2, PG_URL, REDIS_URL, TEST_MFA_KEY
from tests.helpers_server import NGINX_BIN, Nginx, ServeProcess, closed_port

pytestmark = pytest.mark.browser  # once, on SQLite (Makefile)

if NGINX_BIN is None:
    if os.environ.get("CI") == "true":
        pytest.fail("nginx is not installed: apt-get install -y nginx", pytrace=False)
    pytest.skip("nginx is not installed: apt-get install -y nginx", allow_module_level=True)

browser = e2e.browser  # Debian's Chromium, as the browser tests drive it
DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SITE = DEPLOY / "nginx" / "breachguard.conf"
PASSWORD = "Stethoscope-in-the-drawer-8"
FORGED = "198.51.100.66"
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
BAN_AFTER = 3
LOGIN_LIMIT = 6
ONE_WORKER = ("--workers", "1", "--threads", "4")  # without Redis, the limits are its own


def render(template: str, **values: str) -> str:
    """The site file with its @PLACEHOLDERS@ replaced; every one must be."""
    for name, value in values.items():
        assert f"@{name}@" in template, name
        template = template.replace(f"@{name}@", value)
    left = re.findall(r"@[A-Z_]+@", template)
    assert not left, f"placeholders left in {SITE}: {left}"
    return template


@dataclasses.dataclass
class Stack:
    folder: Path
    cafile: Path
    https: int  # nginx, in front of the service that trusts it
    http: int  # nginx's redirect to https
    untrusting: int  # nginx, in front of the service that trusts nobody
    trusting_serve: ServeProcess
    untrusting_serve: ServeProcess
    registry: Services

    @property
    def origin(self) -> str:
        return f"https://localhost:{self.https}"

    def add_account(self, email: str) -> str:
        with self.registry.db.session() as s:
            accounts.create(
                s,
                email=email,
                name="Dr Proxy",
                password=PASSWORD,
                hasher=self.registry.hasher,
                actor=audit.Actor.cli("test"),
                now=dt.datetime.now(dt.UTC),
            )
        return email

    def seen_as(self, serve: ServeProcess, request_id: str) -> str:
        """The client address in the service's access line for the request."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for line in serve.log.read_text(errors="replace").splitlines():
                if request_id in line and line.startswith("{"):
                    entry = json.loads(line)
                    if entry.get("logger") == "breachguard.access":
                        return str(entry["remote"])
            time.sleep(0.05)
        raise AssertionError(f"no access line for {request_id} in {serve.log}")


def _fresh_database(template: str, folder: Path) -> str:
    """A migrated database for this module: a copy of the template, or PostgreSQL emptied
    (as tests/conftest.py does for each test)."""
    if not PG_URL:
        shutil.copy(template, folder / "proxy.db")
        return f"sqlite:///{folder / 'proxy.db'}"
    db = Database(PG_URL)
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(
            text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :g)"), {"g": GENESIS}
        )
    db.dispose()
    return PG_URL


def _certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
            *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def stack(_template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("behind-nginx")
    folder.chmod(0o755)  # nginx's workers read the certificate
    cert, key = _certificate(folder)
    settings = Settings(
        instance_path=folder / "instance",
        database_url=_fresh_database(_template_db, folder),
        secret_key="test-secret-key",
        redis_url=REDIS_URL,
        argon2=CHEAP_ARGON2,
        mfa_encryption_keys=(TEST_MFA_KEY,),
    )
    https, http, untrusting = closed_port(), closed_port(), closed_port()
    upstream, untrusting_upstream = closed_port(), closed_port()
    origin = f"https://localhost:{https}"
    common = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": REDIS_URL or "",
        "SECRET_KEY": settings.secret_key,
        "MFA_ENCRYPTION_KEYS": TEST_MFA_KEY,
        "ARGON2_TIME_COST": str(CHEAP_ARGON2.time_cost),
        "ARGON2_MEMORY_COST": str(CHEAP_ARGON2.memory_cost),
        "ARGON2_PARALLELISM": str(CHEAP_ARGON2.parallelism),
        "BREACH_SOURCES": "local",
        "LOG_FORMAT": "json",
        "IP_BAN_AFTER": str(BAN_AFTER),
        "LOGIN_RATE_LIMIT": f"{LOGIN_LIMIT} per minute",
    }
    common.pop("PROMETHEUS_MULTIPROC_DIR", None)
    common.pop("TRUSTED_PROXIES", None)
    trusting_env = {
        "BREACHGUARD_INSTANCE": str(folder / "trusting"),
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "PUBLIC_URL": origin,
        "WEBAUTHN_RP_ID": "localhost",
        "WEBAUTHN_ORIGINS": origin,
    }
    untrusting_env = {"BREACHGUARD_INSTANCE": str(folder / "untrusting")}
    tls = {"SERVER_NAME": "localhost", "CERTIFICATE": str(cert), "CERTIFICATE_KEY": str(key)}
    serves: list[ServeProcess] = []
    proxies: list[Nginx] = []
    registry = build(settings)
    try:
        for name, env, port in (
            ("trusting", trusting_env, upstream),
            ("untrusting", untrusting_env, untrusting_upstream),
        ):
            env |= {"RATELIMIT_KEY_PREFIX": f"bgtest-{uuid.uuid4().hex[:12]}"}
            serve = ServeProcess(common | env, port, folder / f"{name}.log", *ONE_WORKER)
            serves.append(serve)
        for name, listen, redirect, port in (
            ("nginx", https, http, upstream),
            ("nginx-untrusted", untrusting, closed_port(), untrusting_upstream),
        ):
            (folder / name).mkdir(mode=0o755)
            site = render(
                SITE.read_text(),
                HTTPS_LISTEN=f"127.0.0.1:{listen}",
                HTTP_LISTEN=f"127.0.0.1:{redirect}",
                UPSTREAM=f"127.0.0.1:{port}",
                ACCESS_LOG=str(folder / name / "access.log"),
                **tls,
            )
            proxies.append(Nginx(folder / name, site))
        proxies[0].wait_up(https, http)
        proxies[1].wait_up(untrusting)
        for serve in serves:
            serve.wait_up()
        yield Stack(folder, cert, https, http, untrusting, *serves, registry)
    finally:
        for proxy in proxies:
            proxy.stop()
        stopping = [threading.Thread(target=serve.stop) for serve in serves]  # both at once
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        registry.close()


class _LeaveFrom(HTTPAdapter):
    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


class Client(requests.Session):
    """A person at one loopback address: every connection leaves from it, each request
    carries a fresh X-Request-ID, and the certificate is the test's own."""

    def __init__(self, address: str, stack: Stack) -> None:
        super().__init__()
        self.mount("http://", _LeaveFrom(address))
        self.mount("https://", _LeaveFrom(address))
        self.cafile = str(stack.cafile)
        self.last_id = ""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        self.last_id = uuid.uuid4().hex
        headers = {"X-Request-ID": self.last_id, **(kwargs.pop("headers", None) or {})}
        kwargs.setdefault("timeout", 15)
        kwargs.setdefault(
            "verify", self.cafile
        )  # per request: REQUESTS_CA_BUNDLE beats a session's
        kwargs["allow_redirects"] = False  # each test follows what it means to
        return super().request(method, url, *args, headers=headers, **kwargs)

    def sign_in(self, base: str, email: str, password: str) -> requests.Response:
        """The sign-in form as a browser sends it (its CSRF token, and the Referer that the
        CSRF check asks of a request over HTTPS)."""
        page = self.get(f"{base}/login")
        token = CSRF.search(page.text)
        assert token, page.text[:300]
        form = {"email": email, "password": password, "csrf_token": token.group(1)}
        return self.post(f"{base}/login", data=form, headers={"Referer": f"{base}/login"})


def via_nginx(stack: Stack) -> str:
    return f"https://127.0.0.1:{stack.https}"


# --- the client's address -----------------------------------------------------------------


def test_the_service_sees_the_address_nginx_saw_whatever_the_client_claims(stack: Stack) -> None:
    claims = {"X-Forwarded-For": FORGED, "Forwarded": f"for={FORGED}"}
    for address in ("127.0.0.2", "127.0.0.3"):
        client = Client(address, stack)
        assert client.get(f"{via_nginx(stack)}/healthz", headers=claims).status_code == 200
        assert stack.seen_as(stack.trusting_serve, client.last_id) == address


def test_a_client_straight_to_the_service_cannot_name_its_address(stack: Stack) -> None:
    client = Client("127.0.0.2", stack)
    direct = f"http://127.0.0.1:{stack.trusting_serve.port}/healthz"
    assert client.get(direct, headers={"X-Forwarded-For": FORGED}).status_code == 200
    assert stack.seen_as(stack.trusting_serve, client.last_id) == "127.0.0.2"


def test_trusting_nobody_every_client_behind_nginx_is_nginx_and_its_https_is_not_believed(
    stack: Stack,
) -> None:
    client = Client("127.0.0.2", stack)
    page = client.get(f"https://127.0.0.1:{stack.untrusting}/login")
    assert page.status_code == 200
    assert stack.seen_as(stack.untrusting_serve, client.last_id) == "127.0.0.1"
    assert "Strict-Transport-Security" not in page.headers
    assert "Secure" not in page.headers["Set-Cookie"]


# --- limits and bans fall on one client -----------------------------------------------------


def test_wrong_passwords_ban_the_client_that_sent_them_and_no_other(stack: Stack) -> None:
    email = stack.add_account("guessed@clinic.example")
    guesser, colleague = Client("127.0.0.4", stack), Client("127.0.0.5", stack)
    base = via_nginx(stack)
    assert [guesser.sign_in(base, email, "wrong").status_code for _ in range(BAN_AFTER)] == [
        401
    ] * BAN_AFTER
    assert guesser.sign_in(base, email, PASSWORD).status_code == 401  # banned: even the right one
    with stack.registry.db.session() as s:
        banned = [b.network for b in bans.active(s, now=dt.datetime.now(dt.UTC))]
    assert banned == ["127.0.0.4/32"]

    signed_in = colleague.sign_in(base, email, PASSWORD)
    assert signed_in.status_code == 302, signed_in.text[:300]
    assert signed_in.headers["Location"] == "/account/security"
    with stack.registry.db.session() as s:
        started = s.execute(
            select(AuditEvent.details).where(AuditEvent.action == audit.Action.SESSION_STARTED)
        ).scalars()
        assert [json.loads(d)["ip"] for d in started] == ["127.0.0.5"]  # the audit trail's ip


def test_the_sign_in_limit_is_counted_per_client(stack: Stack) -> None:
    spender, other = Client("127.0.0.6", stack), Client("127.0.0.7", stack)
    login = f"{via_nginx(stack)}/login"
    statuses = [spender.post(login, data={}).status_code for _ in range(LOGIN_LIMIT + 1)]
    assert statuses == [400] * LOGIN_LIMIT + [429]  # no CSRF token: refused, but counted
    assert other.post(login, data={}).status_code == 400


# --- HTTPS: Secure cookies, HSTS ------------------------------------------------------------


def test_through_https_the_cookie_is_secure_and_hsts_is_sent(stack: Stack) -> None:
    client = Client("127.0.0.2", stack)
    page = client.get(f"{via_nginx(stack)}/login")
    assert page.status_code == 200
    assert "; Secure" in page.headers["Set-Cookie"]
    policy = dict(
        part.strip().partition("=")[::2]
        for part in page.headers["Strict-Transport-Security"].split(";")
    )
    assert int(policy["max-age"]) >= 365 * 24 * 3600


def test_plain_http_gets_no_hsts_and_nginx_sends_it_to_https(stack: Stack) -> None:
    client = Client("127.0.0.2", stack)
    redirected = client.get(f"http://127.0.0.1:{stack.http}/login")
    assert redirected.status_code == 301
    assert redirected.headers["Location"].startswith("https://127.0.0.1")
    assert "Strict-Transport-Security" not in redirected.headers
    direct = client.get(f"http://127.0.0.1:{stack.trusting_serve.port}/login")
    assert direct.status_code == 200
    assert "Strict-Transport-Security" not in direct.headers


def test_nginx_logs_no_reset_link(stack: Stack) -> None:
    token = "Ab12Cd34-live-reset-token-Ef56"
    client = Client("127.0.0.2", stack)
    for path in (f"/reset/{token}", f"//reset/{token}?from=mail"):
        client.get(f"{via_nginx(stack)}{path}")
    log, lines = stack.folder / "nginx" / "access.log", []
    deadline = time.monotonic() + 5
    while len(lines) < 2 and time.monotonic() < deadline:  # written once the answer is sent
        lines = [line for line in log.read_text().splitlines() if "/reset/" in line]
    assert len(lines) == 2, lines
    assert all(line.startswith("127.0.0.2 [") for line in lines), lines
    assert all('"GET /reset/[redacted] HTTP/' in line for line in lines), lines
    assert token not in log.read_text()


# --- /metrics ---------------------------------------------------------------------------------


def test_metrics_are_refused_to_a_client_through_nginx_and_served_to_a_local_scrape(
    stack: Stack,
) -> None:
    relayed = Client("127.0.0.2", stack).get(f"{via_nginx(stack)}/metrics")
    assert relayed.status_code == 401
    scrape = Client("127.0.0.1", stack).get(f"http://127.0.0.1:{stack.trusting_serve.port}/metrics")
    assert scrape.status_code == 200
    assert "breachguard_database_up 1.0" in scrape.text


# --- WebAuthn at the proxy's origin ----------------------------------------------------------


def test_a_passkey_registers_and_signs_in_at_the_proxys_https_origin(
    stack: Stack, browser: Any
) -> None:
    email = stack.add_account("passkey@clinic.example")
    context = browser.new_context(base_url=stack.origin, ignore_https_errors=True)
    try:
        person = e2e.Person(context, e2e.Site(stack.origin, stack.registry))
        cdp, authenticator = person.virtual_authenticator()
        person.sign_in(email, PASSWORD)
        e2e.expect(person.page).to_have_url(e2e.SECURITY)
        person.register_passkey("Through nginx")
        stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
        assert [c["rpId"] for c in stored["credentials"]] == ["localhost"]
        assert person.page.url.startswith(f"{stack.origin}/")
        person.page.goto("/account/security")
        person.sign_out()

        person.sign_in(email, PASSWORD)
        e2e.expect(person.page).to_have_url(e2e.LOGIN_MFA)
        person.sign_in_with_passkey()
        assert person.signed_in()
        assert person.csp_reports == []
    finally:
        context.close()


# --- the systemd units --------------------------------------------------------------------


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: apt-get install -y systemd")
    # A root holding the units, the system's own units, and a stand-in for the installed
    # command (verify checks that ExecStart names an executable).
    command = tmp_path / "opt" / "breachguard" / "bin" / "breachguard"
    command.parent.mkdir(parents=True)
    command.write_text("#!/bin/sh\n")
    command.chmod(0o755)
    system = tmp_path / "usr" / "lib" / "systemd" / "system"
    shutil.copytree("/usr/lib/systemd/system", system, symlinks=True)
    units = sorted((DEPLOY / "systemd").iterdir())
    assert [u.name for u in units] == [
        "breachguard-monitor.service",
        "breachguard-monitor.timer",
        "breachguard.service",
    ]
    installed = tmp_path / "etc" / "systemd" / "system"
    installed.mkdir(parents=True)
    for unit in units:
        shutil.copy(unit, installed)
    verified = subprocess.run(
        [analyze, "verify", f"--root={tmp_path}", *(u.name for u in units)],
        capture_output=True,
        text=True,
    )
    # verify exits 0 on unknown keys and bad values too: every complaint is on stderr.
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr
    hardening = [_hardening(DEPLOY / "systemd" / n) for n in SERVICES]
    assert hardening[0] == hardening[1]  # the server and the monitor: one sandbox


SERVICES = ("breachguard.service", "breachguard-monitor.service")


def _hardening(unit: Path) -> list[str]:
    """The sandbox lines of a unit: from StateDirectory= to the end of [Service]."""
    lines = unit.read_text().split("[Service]", 1)[1].split("[Install]")[0].splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("StateDirectory="))
    return [line for line in lines[start:] if line.strip()]
