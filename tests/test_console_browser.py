"""The console's journey in real Chromium, on a phone (390×844) and a laptop (1280×800),
in French and in English: the dashboard's most urgent tile opens its filtered list, every
finding is selected, the mass action's confirmation page counts the accounts, and the
action is done; axe-core finds nothing on any page, chart text stays 12 px or more, and
no page scrolls sideways."""

from __future__ import annotations

import re
from typing import Any

import pytest

from auth import i18n
from tests import test_e2e_browser as e2e
from tests.test_admin_browser import ADMIN, seed, sign_in_with_totp
from tests.test_e2e_browser import Person, Site, expect
from tests.test_phone_browser import DESK, PHONE, assert_accessible, person_at
from tests.totp_helpers import enroll_totp

pytestmark = pytest.mark.browser  # once, on SQLite (Makefile)

browser, site = e2e.browser, e2e.site  # one Chromium, one served app

WORDS = {
    "en": {"urgent": "Leaked password still works", "mfa": "Require a second factor"},
    "fr": {"urgent": "Mot de passe fuité encore valide", "mfa": "Exiger un second facteur"},
}


def smallest_chart_text(page: Any) -> float:
    """The smallest size, in CSS pixels, that any chart text is drawn at."""
    size: float = page.evaluate(
        """() => Math.min(...[...document.querySelectorAll('svg.chart')].flatMap(svg => {
            const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
            return [...svg.querySelectorAll('text')].map(
                t => parseFloat(t.getAttribute('font-size')) * scale);
        }))"""
    )
    assert size != float("inf"), f"no chart text on {page.url}"  # min() of nothing
    return size


def no_sideways_scroll(page: Any) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, (page.url, overflow)


def speak(person: Person, language: str) -> None:
    """The language switch's choice, as its cookie (the sign-in steps are in English)."""
    person.context.add_cookies([{"name": i18n.COOKIE, "value": language, "url": person.site.url}])


def admin_at(browser: Any, site: Site, admin_id: int, size: str, language: str) -> Person:
    """The administrator, signed in with an authenticator app, at a phone's or a desk's
    size, reading the console in `language` (close its context when done)."""
    secret = enroll_totp(site.registry, admin_id)
    viewport = PHONE if size == "phone" else DESK
    extra = {"is_mobile": True, "has_touch": True} if size == "phone" else {}
    person = person_at(browser, site, viewport, **extra)
    sign_in_with_totp(person, ADMIN, secret)
    speak(person, language)
    return person


def click_to(page: Any, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("size", ["phone", "desk"])
def test_dashboard_to_filtered_list_to_a_confirmed_mass_action(
    browser: Any, site: Site, language: str, size: str
) -> None:
    ids = seed(site)
    person = admin_at(browser, site, ids["admin"], size, language)
    try:
        page, words = person.page, WORDS[language]

        page.goto("/admin")
        expect(page.locator("html")).to_have_attribute("lang", language)
        urgent = page.locator("#tile-urgent")
        expect(urgent).to_contain_text(words["urgent"])
        expect(urgent.locator(".tile-value")).to_have_text("1")
        assert smallest_chart_text(page) >= 12
        no_sideways_scroll(page)
        assert_accessible(person)

        click_to(page, "#tile-urgent a")
        expect(page).to_have_url(re.compile(r"/admin/findings\?kind=valid_credential&status=open$"))
        expect(page.locator("#findings tbody tr")).to_have_count(1)
        expect(page.locator("#findings tbody tr.urgent")).to_have_count(1)
        no_sideways_scroll(page)
        assert_accessible(person)

        page.check("#select-all")
        click_to(page, "button[name=action][value=mfa]")
        expect(page.locator("h1")).to_contain_text(words["mfa"])
        expect(page.locator("#confirm-accounts")).to_contain_text("1")
        expect(page.locator("#confirm-emails")).to_contain_text("ana@clinic.example")
        no_sideways_scroll(page)
        assert_accessible(person)
        click_to(page, "#confirm")
        expect(page.locator(".notice")).to_be_visible()
        expect(page.locator("#findings .acted")).not_to_have_text("—")
        assert_accessible(person)

        click_to(page, "#findings tbody tr a")
        expect(page.locator("h1")).to_have_text("ana@clinic.example")
        expect(page.locator("#account-events")).to_contain_text(ADMIN)
        no_sideways_scroll(page)
        assert_accessible(person)

        page.goto("/admin/accounts")
        expect(page.locator("#accounts tbody tr")).not_to_have_count(0)
        assert_accessible(person)
        assert person.csp_reports == []
    finally:
        person.context.close()


def test_the_consoles_refusal_is_accessible_in_both_languages(browser: Any, site: Site) -> None:
    seed(site)  # the administrator has no second factor yet
    for language in ("fr", "en"):
        person = person_at(browser, site, PHONE)
        try:
            person.sign_in(ADMIN)
            speak(person, language)
            response = person.page.goto("/admin")
            assert response is not None and response.status == 403
            expect(person.page.locator("html")).to_have_attribute("lang", language)
            assert_accessible(person)
        finally:
            person.context.close()
