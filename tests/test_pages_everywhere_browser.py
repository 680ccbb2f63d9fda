"""The home page, the 404 page and the reset page in a real headless Chromium on a phone
(390×844), in French and in English: the right `lang`, nothing wider than the screen, the
skip link and the show-password toggle work from the keyboard, and axe-core finds nothing.

The served app and the browser are test_e2e_browser.py's; the person is test_i18n_browser.py's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from auth.models import Account
from auth.reset import tokens
from tests import test_e2e_browser as e2e
from tests.test_e2e_browser import Person, Site, expect
from tests.test_i18n_browser import fits_the_screen, no_axe_violations, person

pytestmark = pytest.mark.browser  # once, on SQLite (Makefile)

browser, site = e2e.browser, e2e.site  # the same fixtures: one Chromium, one served app

EMAIL = "dr.martin@cabinet.example"
NOT_FOUND = {"fr": "Page introuvable", "en": "Page not found"}
SHOW = {"fr": "Afficher le mot de passe", "en": "Show the password"}
SIGN_IN = {"fr": "Se connecter", "en": "Sign in"}


@pytest.fixture(params=["fr", "en"])
def reader(request: pytest.FixtureRequest, browser: Any, site: Site) -> Iterator[Person]:
    someone = person(browser, site, "phone", str(request.param))
    yield someone
    someone.context.close()


def language_of(reader: Person) -> str:
    return "fr" if reader.page.evaluate("navigator.language").startswith("fr") else "en"


def reset_link(site: Site) -> str:
    """A live link of a forced reset (a leaked password), as the e-mail carries it."""
    site.add_account(EMAIL)
    registry = site.registry
    now = dt.datetime.now(dt.UTC)
    with registry.db.session() as db:
        account_id = db.execute(select(Account.id).where(Account.email == EMAIL)).scalar_one()
        db.execute(update(Account).values(reset_reason_code="password_breached"))
        secret = registry.settings.secret_key
        token_id = tokens.issue(db, [account_id], secret_key=secret, now=now)[account_id]
        token = tokens.activate(
            db, token_id, secret_key=secret, lifetime=dt.timedelta(hours=1), now=now
        )
    assert token is not None
    return f"{site.url}/reset/{token}"


def test_the_404_page_on_a_phone_in_the_reader_s_language(reader: Person) -> None:
    page, language = reader.page, language_of(reader)
    response = page.goto("/nope")
    assert response is not None and response.status == 404
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.get_by_role("heading", level=1)).to_have_text(NOT_FOUND[language])
    fits_the_screen(page)
    no_axe_violations(page)
    page.keyboard.press("Tab")  # the first stop: the skip link, shown once focused
    skip = page.locator("a.skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_the_reset_page_on_a_phone_shows_the_account_and_a_working_toggle(
    reader: Person, site: Site
) -> None:
    page, language = reader.page, language_of(reader)
    page.goto(reset_link(site))
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("#reset-account")).to_contain_text(EMAIL)
    expect(page.locator("#username")).to_be_hidden()
    fits_the_screen(page)
    no_axe_violations(page)
    toggle = page.get_by_label(SHOW[language])
    page.fill("#password", "Lantern-Orchard-Pebble-Sonata")
    expect(page.locator("#password")).to_have_attribute("type", "password")
    toggle.check()
    expect(page.locator("#password")).to_have_attribute("type", "text")
    expect(page.locator("#repeat")).to_have_attribute("type", "text")
    no_axe_violations(page)
    toggle.uncheck()
    expect(page.locator("#password")).to_have_attribute("type", "password")
    assert reader.csp_reports == []


def test_the_home_page_on_a_phone_in_the_reader_s_language(reader: Person) -> None:
    page, language = reader.page, language_of(reader)
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.get_by_role("link", name=SIGN_IN[language], exact=True)).to_be_visible()
    fits_the_screen(page)
    no_axe_violations(page)
    page.locator("details summary").click()  # the IT team's table, unfolded
    fits_the_screen(page)
    no_axe_violations(page)
