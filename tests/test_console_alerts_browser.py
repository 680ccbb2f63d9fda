"""The console's alert pages in real Chromium, on a phone and a laptop, in French and in
English: the dashboard's open-alerts tile opens the list, the list opens an alert, its
chart's text stays 12 px or more, it is closed; axe-core finds nothing on any of these
pages and none scrolls sideways."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from auth.activity import alerts
from auth.models import Account, AlertKind, utcnow
from tests import test_e2e_browser as e2e
from tests.test_admin_browser import seed
from tests.test_console_browser import admin_at, click_to, no_sideways_scroll, smallest_chart_text
from tests.test_e2e_browser import Site, expect
from tests.test_phone_browser import assert_accessible

pytestmark = pytest.mark.browser  # once, on SQLite (Makefile)

browser, site = e2e.browser, e2e.site  # one Chromium, one served app

WORDS = {
    "en": {"kind": "Credential stuffing", "closed": "Alert closed."},
    "fr": {"kind": "Bourrage d’identifiants", "closed": "Alerte fermée."},
}


def raise_stuffing(site: Site) -> int:
    now = utcnow()
    with site.registry.db.session() as s:
        ids = list(
            s.execute(select(Account.id).where(Account.email.like("%@clinic.example"))).scalars()
        )
        timeline = [
            {"at": (now - dt.timedelta(minutes=m)).isoformat(), "count": 5 + m % 4}
            for m in range(0, 20, 2)
        ]
        return alerts.raise_alert(
            s,
            kind=AlertKind.CREDENTIAL_STUFFING,
            cause="198.51.100.0/24",
            accounts=ids,
            addresses=["198.51.100.7", "198.51.100.8"],
            evidence={"failures": 57, "accounts": len(ids), "timeline": timeline},
            now=now,
            settings=site.registry.settings,
        ).alert_id


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("size", ["phone", "desk"])
def test_the_open_alerts_tile_to_an_alert_with_its_chart_then_closed(
    browser: Any, site: Site, language: str, size: str
) -> None:
    ids = seed(site)
    alert_id = raise_stuffing(site)
    person = admin_at(browser, site, ids["admin"], size, language)
    try:
        page, words = person.page, WORDS[language]

        page.goto("/admin")
        tile = page.locator("#tile-alerts")
        expect(tile.locator(".tile-value")).to_have_text("1")
        click_to(page, "#tile-alerts a")
        expect(page.locator("#alerts tbody tr")).to_have_count(1)
        expect(page.locator("#alerts")).to_contain_text(words["kind"])
        no_sideways_scroll(page)
        assert_accessible(person)

        click_to(page, "#alerts tbody tr a")
        expect(page.locator("h1")).to_have_text(words["kind"])
        expect(page.locator("#chart-alert-activity")).to_be_visible()
        expect(page.locator("#alert-accounts li")).to_have_count(4)
        assert smallest_chart_text(page) >= 12
        no_sideways_scroll(page)
        assert_accessible(person)

        click_to(page, "#close-alert")
        expect(page).to_have_url(f"{site.url}/admin/alerts/{alert_id}")
        expect(page.locator(".notice")).to_contain_text(words["closed"])
        expect(page.locator("#alert-close")).to_have_count(0)
        assert_accessible(person)
        assert person.csp_reports == []
    finally:
        person.context.close()
