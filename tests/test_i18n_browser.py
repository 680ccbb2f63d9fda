"""Both languages in a real headless Chromium, on a phone (390×844) and a desk (1280×800):
a French browser gets French pages (`lang="fr"`), the header's switch turns them English and
stays so, a forced reset reads the same in the e-mail and on its page, in French or in
English; axe-core finds nothing in either language.

The served app, the browser and the Person helper are test_e2e_browser.py's.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from auth import audit, notify
from auth.models import Account
from auth.reset import forced
from tests import test_e2e_browser as e2e
from tests.test_e2e_browser import Person, Site, expect

pytestmark = pytest.mark.browser  # once, on SQLite (Makefile)

browser, site = e2e.browser, e2e.site  # the same fixtures: one Chromium, one served app

AXE = Path(__file__).parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"phone": {"width": 390, "height": 844}, "desk": {"width": 1280, "height": 800}}
LOCALES = {"fr": "fr-FR", "en": "en-GB"}
EMAIL = "dr.martin@cabinet.example"


@pytest.fixture(params=sorted(SIZES))
def size(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def person(browser: Any, site: Site, size: str, language: str) -> Person:
    """A browser whose window is `size` and whose preferred language is `language`; the
    CSP is bypassed for axe-core's injected script alone."""
    phone = size == "phone"
    context = browser.new_context(
        base_url=site.url,
        viewport=SIZES[size],
        device_scale_factor=2,
        is_mobile=phone,
        has_touch=phone,
        bypass_csp=True,
        locale=LOCALES[language],
    )
    return Person(context, site)


@pytest.fixture
def french(browser: Any, site: Site, size: str) -> Iterator[Person]:
    someone = person(browser, site, size, "fr")
    yield someone
    someone.context.close()


@pytest.fixture
def english(browser: Any, site: Site, size: str) -> Iterator[Person]:
    someone = person(browser, site, size, "en")
    yield someone
    someone.context.close()


def no_axe_violations(page: Any) -> None:
    if not AXE.exists():
        pytest.skip("axe-core not installed: npm ci --prefix tests/js")
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("async () => (await axe.run()).violations")
    assert violations == [], [(v["id"], v["nodes"][0]["html"]) for v in violations]


def fits_the_screen(page: Any) -> None:
    """Nothing wider than the window: the header and its switch wrap on a phone."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, overflow


def test_a_french_browser_reads_french_and_the_switch_makes_it_english_for_good(
    french: Person,
) -> None:
    page = french.page
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_have_text("Se connecter")
    fits_the_screen(page)
    no_axe_violations(page)
    switch = page.get_by_role("button", name="English")
    expect(switch).to_have_attribute("lang", "en")
    switch.focus()  # reachable from the keyboard, like any button
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/login$"))  # back on the same page
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    no_axe_violations(page)
    cookie = next(c for c in french.context.cookies() if c["name"] == "bg_lang")
    assert cookie["value"] == "en" and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.goto("/forgot")  # another page, later: still English, whatever the browser prefers
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Forgot your password?")
    french.submit("Français")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mot de passe oublié\u00a0?")


def test_an_english_browser_reads_english_and_a_wrong_password_is_told_in_english(
    english: Person,
) -> None:
    english.site.add_account(EMAIL)
    page = english.page
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    response = english.sign_in(EMAIL, "not-the-password")
    assert response.status == 401
    expect(page.locator("#form-error")).to_have_text(
        "The e-mail address or the password is not right."
    )
    fits_the_screen(page)
    no_axe_violations(page)


def _forced_reset_link(site: Site, language: str) -> tuple[str, str]:
    """Force the account's reset as the sign-in does (a leaked password), send the notice
    to the outbox; the e-mail's text and its link."""
    site.add_account(EMAIL)
    registry = site.registry
    now = dt.datetime.now(dt.UTC)
    with registry.db.session() as db:
        account = db.execute(select(Account).where(Account.email == EMAIL)).scalar_one()
        account.language = language
        plan = forced.Plan("", "", None, require_mfa=True, actor=audit.Actor.policy("login"))
        target = forced.Target(account.id)
        forced.apply(db, [target], plan, secret_key=registry.settings.secret_key, now=now)
    settings = registry.settings
    mailer = notify.mailer_from_settings(settings)
    notify.drain(registry.db, mailer=mailer, settings=settings)
    [eml] = sorted(settings.outbox_path.glob("*.eml"))
    with eml.open("rb") as fh:
        message = email.parser.BytesParser(policy=email.policy.default).parse(fh)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = str(body.get_content())
    [link] = re.findall(rf"{re.escape(settings.public_url)}(/reset/\S+)", text)
    return text, site.url + link  # the served app's address, not PUBLIC_URL's


WHY = {
    "fr": "Votre mot de passe figure dans une fuite de mots de passe volés",
    "en": "Your password appears in a leak of stolen passwords",
}


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_forced_reset_says_why_in_the_same_words_in_the_e_mail_and_on_its_page(
    browser: Any, site: Site, size: str, language: str
) -> None:
    text, link = _forced_reset_link(site, language)
    assert WHY[language] in text
    assert WHY["en" if language == "fr" else "fr"] not in text
    reader = person(browser, site, size, language)
    try:
        page = reader.page
        page.goto(link)
        expect(page.locator("html")).to_have_attribute("lang", language)
        expect(page.locator("#reset-reason")).to_contain_text(WHY[language])
        fits_the_screen(page)
        no_axe_violations(page)
        # The switch on this page posts to the page itself: same link, other language.
        other = "en" if language == "fr" else "fr"
        reader.submit({"en": "English", "fr": "Français"}[other])
        assert page.url == link
        expect(page.locator("html")).to_have_attribute("lang", other)
        expect(page.locator("#reset-reason")).to_contain_text(WHY[other])
    finally:
        reader.context.close()


def test_a_security_key_registered_twice_is_told_in_french_on_a_phone(
    browser: Any, site: Site
) -> None:
    someone = person(browser, site, "phone", "fr")
    try:
        page = someone.page
        someone.virtual_authenticator()
        email = site.add_account("lea@cabinet.example")
        page.goto("/login")
        page.fill("#email", email)
        page.fill("#password", e2e.PASSWORD)
        someone.submit("Se connecter")
        expect(page).to_have_url(e2e.SECURITY)
        someone.register_passkey("Clé USB")

        page.goto("/account/security")  # the same key again: the browser refuses it
        page.fill("#key-name", "La même clé")
        page.click("#webauthn-register")

        error = page.locator("#webauthn-error")
        expect(error).to_be_visible(timeout=10_000)
        expect(error).to_have_text("Cette clé de sécurité est déjà enregistrée sur votre compte.")
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        fits_the_screen(page)
        no_axe_violations(page)
    finally:
        someone.context.close()
