"""The security console in a real headless Chromium: an administrator signs in with an
authenticator app, the dashboard's charts render with data (screenshot, pixels counted),
findings are ticked and acted on, and an administrator without a second factor is refused.

The served app, the browser and the person's steps are test_e2e_browser.py's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from auth import audit
from auth.console import admins
from auth.models import (
    Account,
    AccountStatus,
    Finding,
    FindingStatus,
    Reset,
    utcnow,
)
from auth.signin import bans
from tests import test_e2e_browser as e2e
from tests.finding_helpers import open_finding
from tests.png_pixels import colours, near
from tests.test_e2e_browser import LOGIN_MFA, SECURITY, Person, Site, expect, fresh_code
from tests.totp_helpers import enroll_totp, next_code

pytestmark = pytest.mark.browser  # once, on SQLite (Makefile)

# The end-to-end tests' fixtures: the browser, the served app, one person's context.
browser, site, person = e2e.browser, e2e.site, e2e.person

ADMIN = "secu@chu.example"
FINDINGS_BAR = (0xD5, 0x5E, 0x00)  # charts.PALETTE[5], the findings chart's bars
ADMIN_PAGE = re.compile(r"/admin$")


def seed(site: Site) -> dict[str, int]:
    """Accounts with findings of each kind, a reset issued and completed, a lockout and a
    ban, an administrator."""
    ids: dict[str, int] = {}
    for name in ("ana", "ben", "cleo", "dora"):
        site.add_account(f"{name}@clinic.example")
    site.add_account(ADMIN)
    now = utcnow()
    with site.registry.db.session() as s:
        by_email = dict(s.execute(select(Account.email, Account.id)).all())
        admins.set_admin(s, email=ADMIN, admin=True, actor=audit.Actor.cli("e2e"), now=now)
        specs = [
            ("ana", "valid_credential", "Webmail2022"),
            ("ben", "password_in_breach", "CommonPasswords"),
            ("cleo", "email_in_breach", "SanteForum2021"),
            ("dora", "email_in_breach", "SanteForum2021"),
            ("dora", "email_in_breach", "Webmail2022"),
        ]
        for person_name, kind, breach in specs:
            account_id = by_email[f"{person_name}@clinic.example"]
            ids[f"{person_name}:{breach}"] = open_finding(s, account_id, kind, breach, now)
        s.add(
            Reset(
                account_id=by_email["ben@clinic.example"],
                reset_key="manual",
                reason="",
                actor="cli:e2e",
                created_at=now,
                completed_at=now,
            )
        )
        bans.add(
            s, "203.0.113.7", reason="robot", expires_at=None, actor=audit.Actor.cli("e2e"), now=now
        )
        audit.append(
            s,
            [
                audit.Event(
                    audit.Actor.policy("login"),
                    audit.Action.ACCOUNT_LOCKED,
                    f"account:{by_email['ben@clinic.example']}",
                )
            ],
            now=now,
        )
    ids["admin"] = by_email[ADMIN]
    for name in ("ana", "ben"):
        ids[name] = by_email[f"{name}@clinic.example"]
    return ids


def sign_in_with_totp(person: Person, email: str, secret: str) -> None:
    person.sign_in(email)
    expect(person.page).to_have_url(LOGIN_MFA)
    person.second_step(next_code(secret))
    expect(person.page).to_have_url(SECURITY)


def chart_boxes(page: Any) -> dict[str, dict[str, float]]:
    """Each chart's rendered size, and the drawn size of its bars, dots or segments."""
    result: dict[str, dict[str, float]] = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('svg.chart')].map(svg => {
            const box = svg.getBoundingClientRect();
            const marks = [...svg.querySelectorAll('.bar, .segment, .dot')]
                .map(m => m.getBBox()).filter(b => b.width > 0 && b.height > 0);
            return [svg.id, {width: box.width, height: box.height, marks: marks.length}];
        }))"""
    )
    return result


def test_the_dashboard_renders_its_charts_with_data_and_findings_are_acted_on(
    person: Person, tmp_path: Path
) -> None:
    page, site = person.page, person.site
    ids = seed(site)
    secret = enroll_totp(site.registry, ids["admin"])
    sign_in_with_totp(person, ADMIN, secret)

    page.goto("/admin")
    expect(page).to_have_url(ADMIN_PAGE)
    expect(page.locator("h1")).to_have_text("Security console")
    boxes = chart_boxes(page)
    assert set(boxes) == {"chart-findings", "chart-resets", "chart-coverage", "chart-refusals"}
    for chart_id, box in boxes.items():
        assert box["width"] > 200 and box["height"] > 80, (chart_id, box)
    assert boxes["chart-findings"]["marks"] == 3  # three kinds, each with accounts
    assert boxes["chart-resets"]["marks"] == 2  # a bar a day and series: one issued, one done
    assert boxes["chart-coverage"]["marks"] >= 2  # today: TOTP and none
    assert boxes["chart-refusals"]["marks"] == 2  # a lockout, a ban by hand
    shot = tmp_path / "admin-dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    findings_png = page.locator("#chart-findings").screenshot()
    counts = colours(findings_png)
    background = counts[(255, 255, 255)]
    drawn = sum(counts.values()) - background
    assert drawn > 0.05 * sum(counts.values()), "the findings chart is blank"
    assert near(counts, FINDINGS_BAR) > 500, "no bar of the findings chart was painted"

    # The figures, as a table, for anyone who cannot see the chart.
    page.locator("#chart-findings").locator("xpath=../..").locator("summary").click()
    expect(page.locator("#chart-findings-table tbody tr").first).to_contain_text(
        "Leaked password still works"
    )

    # Tick two findings, try to dismiss without a reason, then with one.
    page.get_by_role("link", name="Findings", exact=True).click()
    expect(page.locator("#findings tbody tr")).to_have_count(5)
    page.check(f"#finding-{ids['cleo:SanteForum2021']}")
    page.check(f"#finding-{ids['dora:SanteForum2021']}")
    response = person.submit("Dismiss…")
    assert response.status == 400
    expect(page.locator("#reason-error")).to_contain_text("Say why")
    expect(page.locator("#findings input:checked")).to_have_count(2)  # the ticks survive
    page.fill("#reason", "addresses of a test practice")
    person.submit("Dismiss…")
    expect(page.locator("#confirm-accounts")).to_have_text("2 accounts touched")
    person.submit("Dismiss: 2 accounts")
    expect(page.locator(".notice")).to_contain_text("2 findings dismissed.")
    expect(page.locator("#findings tbody tr")).to_have_count(3)  # open ones only

    page.check(f"#finding-{ids['ana:Webmail2022']}")
    person.submit("Force a password reset…")
    person.submit("Force a password reset: 1 account")
    expect(page.locator(".notice")).to_contain_text("Password reset forced for 1 account.")
    row = page.locator(f"tr[data-finding='{ids['ana:Webmail2022']}']")
    expect(row.locator(".acted")).to_contain_text("Password reset forced · ")
    expect(row.locator(".acted")).to_contain_text(f"Administrator {ADMIN}")

    with site.registry.db.session() as s:
        dismissed = s.execute(
            select(Finding.id, Finding.note).where(Finding.status == FindingStatus.DISMISSED)
        ).all()
        assert sorted(dismissed) == sorted(
            (ids[k], "addresses of a test practice")
            for k in ("cleo:SanteForum2021", "dora:SanteForum2021")
        )
        ana = s.get(Account, ids["ana"])
        assert ana is not None and ana.status == AccountStatus.RESET_REQUIRED

    # The account's page shows what was done, newest first.
    row.get_by_role("link").click()
    expect(page.locator("h1")).to_have_text("ana@clinic.example")
    expect(page.locator("#account-events tbody tr").first).to_have_attribute(
        "data-action", "finding:acted"
    )
    expect(page.locator("#account-resets")).to_contain_text(f"Administrator {ADMIN}")

    # A phone-sized window: no sideways scrolling of the page.
    page.set_viewport_size({"width": 375, "height": 800})
    for path in ("/admin", "/admin/findings?status=any"):
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path, overflow)
    page.screenshot(path=str(tmp_path / "admin-findings-narrow.png"), full_page=True)
    assert person.csp_reports == []  # no inline style or script anywhere


def test_an_administrator_without_a_second_factor_is_refused_until_signing_in_with_one(
    person: Person,
) -> None:
    page, site = person.page, person.site
    seed(site)
    person.sign_in(ADMIN)  # no factor yet: the password alone opens a session
    expect(page).to_have_url(SECURITY)
    response = page.goto("/admin")
    assert response is not None and response.status == 403
    expect(page.locator("#refused")).to_contain_text("needs a sign-in with a second factor")
    expect(page.locator("main")).not_to_contain_text("Open findings")

    page.get_by_role("link", name="Your account’s security").click()
    secret, used_step = person.enroll_totp("Phone")
    person.codes_saved()
    page.get_by_role("link", name="Security console").click()  # the link for administrators
    expect(page.locator("#refused")).to_be_visible()  # this session had no factor
    person.submit("Confirm with my second factor")  # asked at once, no sign-out
    person.second_step(fresh_code(secret, used_step))
    expect(page).to_have_url(ADMIN_PAGE)
    expect(page.locator("#chart-findings")).to_be_visible()
    assert person.csp_reports == []


def test_a_passkey_sign_in_opens_the_console(person: Person) -> None:
    page, site = person.page, person.site
    seed(site)
    cdp = person.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": e2e.VIRTUAL_AUTHENTICATOR})
    person.sign_in(ADMIN)
    page.fill("#key-name", "Laptop passkey")
    page.click("#webauthn-register")
    expect(page.locator("#new-codes-list li")).to_have_count(10)  # registered: the first factor
    person.sign_out()

    person.sign_in(ADMIN)
    expect(page).to_have_url(LOGIN_MFA)
    page.click("#webauthn-signin")
    expect(page).to_have_url(SECURITY)
    response = page.goto("/admin")
    assert response is not None and response.status == 200
    expect(page.locator("#chart-coverage")).to_be_visible()
    assert person.csp_reports == []
