"""End to end in a real headless Chromium: sign-in, TOTP, recovery codes, WebAuthn passkeys,
and the login decision's forced reset (a leaked password, the e-mailed link, a new password).

The app is served by werkzeug on http://localhost:PORT (browsers refuse an IP address as a
WebAuthn RP ID); a CDP virtual authenticator stands in for the person's security key.
Chromium is Debian's (/usr/bin/chromium): without it the tests skip, except under CI=true,
where they fail.
"""

from __future__ import annotations

import dataclasses
import email.parser
import email.policy
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from auth import accounts, audit
from auth.cli import main
from auth.config import Settings
from auth.models import Account, AccountStatus, Notice, NoticeStatus, utcnow
from auth.services import Services, build
from auth.web.factory import create_app

pytestmark = pytest.mark.browser  # once, on SQLite (Makefile)

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIRTUAL_AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}
PASSWORD = "Tr0mbone-on-the-ward-7"
SCREENSHOT = Path("/tmp/breachguard-security.png")
SECURITY = re.compile(r"/account/security$")
LOGIN_MFA = re.compile(r"/login/mfa$")
LOGIN = re.compile(r"/login$")


# --- the browser and the served app ------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = "Chromium not installed: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@dataclasses.dataclass
class Site:
    url: str
    registry: Services

    def add_account(self, email: str, password: str = PASSWORD) -> str:
        with self.registry.db.session() as db:
            accounts.create(
                db,
                email=email,
                name="Dr Test",
                password=password,
                hasher=self.registry.hasher,
                actor=audit.Actor.cli("e2e"),
                now=utcnow(),
            )
        return email


@pytest.fixture
def site(settings: Settings) -> Iterator[Site]:
    """The app on http://localhost:PORT; the port is known only once the socket is bound."""
    from werkzeug.serving import make_server

    holder: dict[str, Callable[..., Iterable[bytes]]] = {}

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return holder["app"](environ, start_response)

    server = make_server("localhost", 0, wsgi, threaded=True)
    origin = f"http://localhost:{server.server_port}"
    live = dataclasses.replace(
        settings,
        webauthn_rp_id="localhost",
        webauthn_origins=(origin,),
        login_rate_limit="1000 per minute",
        mfa_ip_rate_limit="1000 per minute",
    )
    registry = build(live)
    holder["app"] = create_app(registry=registry)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield Site(origin, registry)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        registry.close()


class Person:
    """One browser context (one person's cookies) with the steps a person takes."""

    def __init__(self, context: Any, site: Site) -> None:
        self.context = context
        self.site = site
        self.page = context.new_page()
        self.page.set_default_timeout(10_000)
        self.csp_reports: list[str] = []
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.csp_reports.append(message.text)

    def submit(self, button: str) -> Any:
        """Click a form's button and wait for the page it leads to (its response)."""
        with self.page.expect_navigation() as navigation:
            self.page.get_by_role("button", name=button, exact=True).click()
        return navigation.value

    def sign_in(self, email: str, password: str = PASSWORD) -> Any:
        if not LOGIN.search(self.page.url):
            self.page.goto("/login")
        self.page.fill("#email", email)
        self.page.fill("#password", password)
        return self.submit("Sign in")

    def signed_in(self) -> bool:
        """Whether this person's cookies open /account/security, asked beside the page (the
        context's request API shares its cookies) so a pending second step stays in place."""
        response = self.context.request.get(f"{self.site.url}/account/security", max_redirects=0)
        if response.status == 200:
            return True
        assert response.status == 302, response.status
        assert response.headers["location"].startswith("/login?next="), response.headers
        return False

    def sign_out(self) -> None:
        self.submit("Sign out")
        expect(self.page).to_have_url(LOGIN)

    def second_step(self, code: str) -> None:
        expect(self.page).to_have_url(LOGIN_MFA)
        self.page.fill("#code", code)
        self.submit("Continue")

    def enroll_totp(self, name: str) -> tuple[str, int]:
        """Set up an authenticator app from /account/security; the secret and the step used."""
        self.page.goto("/account/security")
        self.page.fill("#totp-name", name)
        self.submit("Set up an authenticator app")
        secret = "".join(self.page.locator("#totp-secret").inner_text().split())
        step = int(time.time()) // 30
        self.page.fill("#code", pyotp.TOTP(secret).at(step * 30))
        self.submit("Confirm")
        return secret, step

    def codes_saved(self) -> None:
        """On recovery codes just shown: tick "I have saved…" and go on, to the list."""
        self.page.get_by_label("I have saved my recovery codes").check()
        self.submit("Continue")
        expect(self.page).to_have_url(SECURITY)

    def remove_factor(self, name: str) -> None:
        """Remove a factor from /account/security through its confirmation page."""
        self.page.get_by_role("link", name=f"Remove {name}", exact=True).click()
        expect(self.page.get_by_role("heading", level=1)).to_contain_text(name)
        self.submit("Yes, remove it")
        expect(self.page).to_have_url(SECURITY)

    def factor_row(self, kind: str) -> Any:
        return self.page.locator(f"#factors tbody tr[data-kind={kind}]")

    def virtual_authenticator(self) -> tuple[Any, str]:
        """A CDP virtual authenticator on this page, in place of the person's key: the
        session to ask it what it stores, and its id."""
        cdp = self.context.new_cdp_session(self.page)
        cdp.send("WebAuthn.enable")
        added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_AUTHENTICATOR})
        return cdp, added["authenticatorId"]

    def register_passkey(self, name: str) -> None:
        """On /account/security: name a key, register it, and wait for the page's answer."""
        self.page.fill("#key-name", name)
        self.page.click("#webauthn-register")
        error = self.page.locator("#webauthn-error")
        outcome = self.page.locator("#new-recovery-codes:visible, #webauthn-error:visible")
        expect(outcome).to_have_count(1, timeout=10_000)  # one or the other, once the key answers
        assert error.is_hidden(), f"registration failed in the page: {error.inner_text()}"

    def sign_in_with_passkey(self) -> None:
        """At the second step, the key's button: lands on /account/security."""
        self.page.click("#webauthn-signin")
        try:
            expect(self.page).to_have_url(SECURITY)
        except AssertionError:
            error = self.page.locator("#webauthn-error").inner_text()
            raise AssertionError(f"passkey sign-in failed in the page: {error}") from None


@pytest.fixture
def person(browser: Any, site: Site) -> Iterator[Person]:
    context = browser.new_context(base_url=site.url)
    try:
        yield Person(context, site)
    finally:
        context.close()


def fresh_code(secret: str, used_step: int) -> str:
    """A code the server has not seen: the current step's, or the next one (within the
    ±1-step window) when the current step is the one already used."""
    step = max(int(time.time()) // 30, used_step + 1)
    return pyotp.TOTP(secret).at(step * 30)


def wrong_code(secret: str) -> str:
    """Six digits matching none of the steps the server accepts now."""
    now = int(time.time())
    accepted = {pyotp.TOTP(secret).at(now + d) for d in (-60, -30, 0, 30, 60)}
    return next(c for c in (f"{n:06d}" for n in range(123456, 999999, 7)) if c not in accepted)


# --- TOTP and recovery codes --------------------------------------------------------------


def test_an_authenticator_app_is_enrolled_then_asked_for_and_a_recovery_code_stands_in(
    person: Person,
) -> None:
    page = person.page
    email = person.site.add_account("ana@clinic.example")

    person.sign_in(email)
    expect(page).to_have_url(SECURITY)
    expect(page.locator("main")).to_contain_text("no second factor yet")

    secret, used_step = person.enroll_totp("Phone")
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    recovery_code = codes.nth(3).inner_text().strip()
    assert re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", recovery_code), recovery_code
    person.codes_saved()
    person.sign_out()

    person.sign_in(email)
    expect(page).to_have_url(LOGIN_MFA)
    expect(page.locator("#webauthn-signin")).to_have_count(0)  # no key: no key button
    assert not person.signed_in()  # the password alone opened no session
    person.second_step(fresh_code(secret, used_step))
    expect(page).to_have_url(SECURITY)
    assert person.signed_in()
    row = person.factor_row("totp")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Authenticator app")
    expect(row).to_contain_text("Phone")
    expect(row.locator("td").nth(3)).not_to_have_text("never")
    expect(page.locator("#codes-left")).to_contain_text("10 unused")
    person.sign_out()

    person.sign_in(email)
    person.second_step(recovery_code.upper().replace("-", " "))  # typed by hand, forgiven
    expect(page).to_have_url(SECURITY)
    expect(page.locator(".notice")).to_contain_text("9 recovery codes left")
    expect(page.locator("#codes-left")).to_contain_text("9 unused")
    person.sign_out()

    person.sign_in(email)
    person.second_step(recovery_code)
    expect(page).to_have_url(LOGIN_MFA)  # each recovery code works once
    expect(page.locator("#form-error")).to_contain_text("not right")
    assert person.csp_reports == []


def test_a_wrong_authenticator_code_is_refused_and_the_second_step_stays_open(
    person: Person,
) -> None:
    page = person.page
    email = person.site.add_account("ben@clinic.example")
    person.sign_in(email)
    secret, used_step = person.enroll_totp("Phone")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    person.sign_out()

    person.sign_in(email)
    person.second_step(wrong_code(secret))
    expect(page).to_have_url(LOGIN_MFA)
    expect(page.locator("#form-error")).to_contain_text("That code is not right")
    page.goto("/account/security")
    expect(page).to_have_url(re.compile(r"/login\?next=/account/security$"))  # not signed in

    person.sign_in(email)
    person.second_step(pyotp.TOTP(secret).at(used_step * 30))
    expect(page).to_have_url(LOGIN_MFA)  # a code is accepted once only
    expect(page.locator("#form-error")).to_contain_text("already used")

    person.second_step(fresh_code(secret, used_step))
    expect(page).to_have_url(SECURITY)


def test_pages_carry_a_csp_and_the_session_cookie_is_httponly_and_samesite_lax(
    person: Person,
) -> None:
    page = person.page
    response = page.goto("/login")
    assert response is not None
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers.get("x-frame-options") == "DENY"

    email = person.site.add_account("cleo@clinic.example")
    person.sign_in(email)
    expect(page).to_have_url(SECURITY)
    cookies = {c["name"]: c for c in person.context.cookies()}
    session_cookie = cookies["bg_session"]
    assert session_cookie["httpOnly"] is True
    assert session_cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""  # out of reach of scripts
    assert person.csp_reports == []


# --- WebAuthn -----------------------------------------------------------------------------


def test_a_passkey_is_registered_then_signs_in_and_can_be_removed(person: Person) -> None:
    page = person.page
    cdp, authenticator = person.virtual_authenticator()
    email = person.site.add_account("dora@clinic.example")

    person.sign_in(email)
    expect(page).to_have_url(SECURITY)
    person.register_passkey("Laptop passkey")
    expect(page.locator("#new-codes-list li")).to_have_count(10)  # the first factor
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(stored["credentials"]) == 1
    assert stored["credentials"][0]["rpId"] == "localhost"
    assert stored["credentials"][0]["isResidentCredential"] is True  # a passkey

    page.reload()
    row = person.factor_row("webauthn")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Security key / passkey")
    expect(row).to_contain_text("Laptop passkey")
    expect(row.locator("td").nth(3)).to_have_text("never")
    person.sign_out()

    person.sign_in(email)
    expect(page).to_have_url(LOGIN_MFA)
    assert not person.signed_in()  # the password alone opened no session
    person.sign_in_with_passkey()
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()
    assert person.signed_in()
    expect(row.locator("td").nth(3)).not_to_have_text("never")

    person.enroll_totp("Phone")
    expect(page).to_have_url(SECURITY)  # a second factor: no new recovery codes
    expect(page.locator(".notice")).to_contain_text("Authenticator app added")
    expect(page.locator("#factors tbody tr")).to_have_count(2)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    person.remove_factor("Laptop passkey")
    expect(page.locator(".notice")).to_contain_text("Factor removed")
    expect(person.factor_row("webauthn")).to_have_count(0)
    expect(person.factor_row("totp")).to_contain_text("Phone")
    assert person.csp_reports == []


# --- the login decision: a leaked password forces a reset ---------------------------------

LEAKED = "Summer2024!"  # the account's password, then found in the local corpus
ALSO_LEAKED = "Password123456"  # long enough, but in the corpus too: refused as a new one
NEW_PASSWORD = "Violin-under-the-stairs-31"


def reset_link(outbox: Path, to: str, origin: str) -> str:
    """The link of the one e-mail in the outbox folder, read as a mail client would."""
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == 1, files
    with files[0].open("rb") as fh:
        message = email.parser.BytesParser(policy=email.policy.default).parse(fh)
    assert to in str(message["To"]), message["To"]
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    links = re.findall(rf"{re.escape(origin)}/reset/\S+", body.get_content())
    assert len(links) == 1, body.get_content()
    return str(links[0])


def test_a_leaked_password_gets_no_session_but_an_emailed_link_then_a_factor_is_required(
    person: Person, cli_env: dict[str, str], tmp_path: Path
) -> None:
    page, site = person.page, person.site
    email_address = site.add_account("eve@clinic.example", LEAKED)
    corpus = tmp_path / "leak.txt"
    corpus.write_text(f"{LEAKED}\n{ALSO_LEAKED}\n")
    # The CLI on the served database; links in e-mails point at the served origin.
    cli = CliRunner(env=cli_env | {"PUBLIC_URL": site.url})
    imported = cli.invoke(
        main, ["corpus", "import", str(corpus), "--type", "passwords", "--breach", "Leak"]
    )
    assert imported.exit_code == 0, imported.output

    # The right password, but a leaked one: a data-leak page, no session, a notice queued.
    response = person.sign_in(email_address, LEAKED)
    assert response.status == 403
    expect(page).to_have_url(LOGIN)
    expect(page.locator("#form-error")).to_contain_text("Your password appears in a leak")
    assert not person.signed_in()
    with site.registry.db.session() as db:
        account = db.execute(select(Account).where(Account.email == email_address)).scalar_one()
        assert account.status == AccountStatus.RESET_REQUIRED
        assert account.mfa_required
        notices = db.execute(select(Notice).where(Notice.account_id == account.id)).scalars()
        assert [(n.kind, n.status) for n in notices] == [("reset_forced", NoticeStatus.QUEUED)]
    response = person.sign_in(email_address, LEAKED)  # again, before the reset
    assert response.status == 403
    expect(page.locator("#form-error")).to_contain_text("must be changed before you can sign in")
    assert not person.signed_in()

    # The notice worker sends it to the outbox folder; the person opens the link.
    sent = cli.invoke(main, ["notices", "send"])
    assert sent.exit_code == 0 and "sent 1," in sent.output, sent.output
    link = reset_link(site.registry.settings.outbox_path, email_address, site.url)
    page.goto(link)
    expect(page.locator("#reset-reason")).to_contain_text("leak of stolen passwords")
    expect(page.locator("#username")).to_have_value(email_address)

    page.fill("#password", ALSO_LEAKED)
    page.fill("#repeat", ALSO_LEAKED)
    response = person.submit("Change my password")
    assert response.status == 400
    expect(page.locator("#form-error")).to_contain_text("appears once in known data breaches")

    page.fill("#password", NEW_PASSWORD)
    page.fill("#repeat", NEW_PASSWORD)
    person.submit("Change my password")
    expect(page).to_have_url(SECURITY)  # the link signs in once, and asks for a factor
    expect(page.locator(".notice")).to_contain_text("Add a second factor now")
    person.sign_out()
    page.goto(link)
    expect(page.locator("#reset-invalid")).to_contain_text("This link no longer works")

    # The old password is refused like any wrong one; the new one signs in, and the forced
    # reset made a second factor mandatory: signed in, on the page that adds one.
    response = person.sign_in(email_address, LEAKED)
    assert response.status == 401
    expect(page).to_have_url(LOGIN)
    expect(page.locator("#form-error")).to_have_text(
        "The e-mail address or the password is not right."
    )
    assert not person.signed_in()

    person.sign_in(email_address, NEW_PASSWORD)
    expect(page).to_have_url(SECURITY)
    expect(page.locator(".notice")).to_contain_text(
        "Your account must be protected by a second factor"
    )
    expect(page.locator("main")).to_contain_text("no second factor yet")
    assert person.signed_in()
    assert person.csp_reports == []
