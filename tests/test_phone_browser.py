"""Second factors on a phone, in a real headless Chromium (390×844, and 1280×800 on a desk):
the authenticator app's QR code read back by a real decoder at 320, 360 and 390 px wide,
recovery codes saved and confirmed, a passkey added, a factor removed through its
confirmation page, the second step's way out for a lost phone, a password changed; axe-core
on every page on the way.

The served app, the browser and the Person helpers are test_e2e_browser.py's.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests import test_e2e_browser as e2e
from tests.test_e2e_browser import LOGIN_MFA, PASSWORD, SECURITY, Person, Site, expect

pytestmark = pytest.mark.browser  # once, on SQLite (Makefile)

browser, site = e2e.browser, e2e.site  # the same fixtures: one Chromium, one served app

zxingcpp = pytest.importorskip("zxingcpp")
Image = pytest.importorskip("PIL.Image")

AXE = Path(__file__).parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 800}


def person_at(browser: Any, site: Site, viewport: dict[str, int], **options: Any) -> Person:
    """A person whose browser has this window size, a phone's pixel density, and a CSP
    bypass for axe-core's injected script alone (the pages' own scripts obey the CSP, which
    Person's console listener checks)."""
    context = browser.new_context(
        base_url=site.url,
        viewport=viewport,
        device_scale_factor=2,
        bypass_csp=True,
        locale=options.pop("locale", "en-GB"),
        **options,
    )
    return Person(context, site)


@pytest.fixture
def phone(browser: Any, site: Site) -> Iterator[Person]:
    person = person_at(browser, site, PHONE, is_mobile=True, has_touch=True)
    yield person
    person.context.close()


@pytest.fixture
def desk(browser: Any, site: Site) -> Iterator[Person]:
    person = person_at(browser, site, DESK)
    yield person
    person.context.close()


def axe_violations(person: Person) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it stands."""
    if not AXE.exists():
        pytest.fail("axe-core missing: npm ci --prefix tests/js")
    person.page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = person.page.evaluate("async () => (await axe.run()).violations")
    return found


def assert_accessible(person: Person) -> None:
    violations = axe_violations(person)
    assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]


def decode_qr(person: Person) -> str:
    """The text a real decoder reads from a screenshot of the page's QR code."""
    png = person.page.locator("svg.qr-code").screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert found, "no QR code decoded from the screenshot"
    return str(found[0].text)


def start_totp(person: Person, name: str = "Phone") -> None:
    person.page.goto("/account/security")
    person.page.fill("#totp-name", name)
    person.submit("Set up an authenticator app")


# --- the authenticator app's QR code ------------------------------------------------------


def test_the_qr_code_decodes_to_the_setup_link_at_320_360_and_390_px_wide(
    phone: Person,
) -> None:
    page = phone.page
    email = phone.site.add_account("qr@clinic.example")
    phone.sign_in(email)
    start_totp(phone)
    secret = "".join(page.locator("#totp-secret").inner_text().split())
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    link = page.locator("#totp-open")
    expect(link).to_have_attribute("href", re.compile(r"^otpauth://totp/"))
    for width in (320, 360, 390):
        page.set_viewport_size({"width": width, "height": 844})
        box = page.locator("svg.qr-code").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        uri = decode_qr(phone)
        assert uri == link.get_attribute("href"), width
        parts = urlsplit(uri)
        assert parts.scheme == "otpauth" and parts.netloc == "totp"
        assert parse_qs(parts.query)["secret"] == [secret]
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
    expect(page.locator("#code")).to_have_attribute("inputmode", "numeric")
    expect(page.locator("#code")).to_have_attribute("autocomplete", "one-time-code")
    expect(page.get_by_role("button", name="Copy the key")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Google Authenticator")
    assert_accessible(phone)

    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(SECURITY)
    assert phone.csp_reports == []


def test_a_wrong_code_at_enrollment_brings_the_focus_back_to_the_code_field(
    phone: Person,
) -> None:
    page = phone.page
    phone.sign_in(phone.site.add_account("focus@clinic.example"))
    start_totp(phone)
    expect(page.locator("#code")).not_to_be_focused()  # the QR code first, not the keyboard
    page.fill("#code", "000000")
    phone.submit("Confirm")
    expect(page.locator("#form-error")).to_contain_text("not right")
    expect(page.locator("#code")).to_be_focused()
    expect(page.locator("#code")).to_have_attribute("aria-describedby", "form-error")
    assert_accessible(phone)


# --- recovery codes, a passkey, removing a factor ------------------------------------------


def test_recovery_codes_are_downloaded_from_the_page_then_saved_and_a_factor_removed_after_asking(
    phone: Person,
) -> None:
    page = phone.page
    phone.sign_in(phone.site.add_account("codes@clinic.example"))
    phone.enroll_totp("Phone")
    codes = [c.strip() for c in page.locator("#recovery-codes li").all_inner_texts()]
    assert len(codes) == 10
    for item in page.locator("#recovery-codes li code").all():  # never wrapped inside a code
        box = item.bounding_box()
        assert box is not None and box["height"] < 2 * 16 * 1.2, box
    with page.expect_download() as download:
        page.get_by_role("button", name="Download as a text file").click()
    saved = Path(download.value.path()).read_text()
    assert saved.split() == codes
    assert download.value.suggested_filename.endswith(".txt")
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    assert_accessible(phone)

    assert page.locator("#codes-saved").evaluate("box => box.validity.valueMissing")  # asked for
    phone.codes_saved()
    expect(page.locator(".notice")).to_contain_text("Your recovery codes are saved")
    expect(phone.factor_row("totp")).to_contain_text("Phone")
    assert_accessible(phone)

    page.get_by_role("link", name="Remove Phone", exact=True).click()
    expect(page.locator("main")).to_contain_text("no longer sign you in")
    assert_accessible(phone)
    page.get_by_role("link", name="Cancel").click()
    expect(phone.factor_row("totp")).to_have_count(1)  # asking removed nothing
    phone.remove_factor("Phone")
    expect(page.locator(".notice")).to_contain_text("Factor removed")
    expect(phone.factor_row("totp")).to_have_count(0)
    assert phone.csp_reports == []


def test_a_first_passkey_says_it_worked_and_shows_in_the_list(desk: Person) -> None:
    page = desk.page
    cdp, first_key = desk.virtual_authenticator()
    desk.sign_in(desk.site.add_account("pass@clinic.example"))
    expect(page.locator("main")).to_contain_text("A passkey lets you confirm it is you")
    desk.register_passkey("Laptop")
    expect(
        page.get_by_role("heading", name="Your security key or passkey is ready")
    ).to_be_focused()
    expect(page.locator("#new-codes-list li")).to_have_count(10)
    expect(page.get_by_text("no second factor yet")).to_be_hidden()  # the page stays consistent
    assert_accessible(desk)
    desk.codes_saved()
    expect(page.locator(".notice").first).to_contain_text("Security key or passkey added")
    expect(desk.factor_row("webauthn")).to_contain_text("Laptop")
    expect(page.get_by_text("no second factor yet")).to_have_count(0)

    # Another key (a new virtual one: the first refuses to register twice): no codes this
    # time, the page loads again with the list and the message.
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": first_key})
    desk.virtual_authenticator()
    page.fill("#key-name", "Spare")
    page.click("#webauthn-register")
    expect(desk.factor_row("webauthn")).to_have_count(2)
    expect(page.locator(".notice")).to_contain_text("Security key or passkey added")
    assert_accessible(desk)
    assert desk.csp_reports == []


# --- the second step, in French -----------------------------------------------------------


def test_at_the_second_step_a_lost_phone_leads_to_what_to_do_in_french(phone: Person) -> None:
    page = phone.page
    email = phone.site.add_account("perdu@clinic.example")
    phone.sign_in(email)
    phone.enroll_totp("Phone")
    phone.codes_saved()
    phone.sign_out()
    phone.submit("Français")  # the language switch, remembered by a cookie
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(LOGIN_MFA)
    expect(page.locator("#signing-in")).to_have_text(f"Connexion en tant que {email}.")
    expect(page.locator("#code")).to_have_attribute("inputmode", "numeric")
    assert_accessible(phone)

    page.get_by_role("link", name="J’ai perdu mon téléphone ou ma clé").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Vous avez perdu votre téléphone ou votre clé"
    )
    assert_accessible(phone)
    page.get_by_role("link", name="Utiliser un code de secours").click()
    expect(page.locator("#code")).to_have_attribute("inputmode", "text")
    expect(page.locator("#code")).to_be_focused()
    phone.submit("Annuler")
    expect(page).to_have_url(re.compile(r"/login$"))
    assert not phone.signed_in()
    page.goto("/login/mfa")
    expect(page).to_have_url(re.compile(r"/login$"))  # the half-way sign-in ended
    assert phone.csp_reports == []
