"""Second factors on a phone, through the Flask client (CSRF on): the enrollment page's QR
code and code field, recovery codes, confirmation pages, the second step's ways out, and
changing the password. The same journeys in Chromium are in test_phone_browser.py."""

from __future__ import annotations

import dataclasses
import re

import pyotp
from flask.testing import FlaskClient
from sqlalchemy import select

from auth.mfa import recovery
from auth.models import AuditEvent, MfaFactor
from auth.services import Services, build
from auth.web.factory import create_app
from tests import test_pages_mfa as pages_test
from tests.test_pages_mfa import enroll_totp, post, sign_in

site, web, browser = pages_test.site, pages_test.web, pages_test.browser  # the same fixtures


def html(response: object) -> str:
    return str(response.get_data(as_text=True))  # type: ignore[attr-defined]


def totp_now(secret: str) -> str:
    return pyotp.TOTP(secret).now()


def start_totp(client: FlaskClient) -> str:
    return html(post(client, "/account/security/totp", {"name": "Phone"}, "/account/security"))


def test_the_qr_code_scales_with_a_viewbox_and_no_fixed_size(browser: FlaskClient) -> None:
    sign_in(browser)
    page = start_totp(browser)
    svg = re.search(r"<svg[^>]*>", page)
    assert svg and "viewBox=" in svg.group(0)
    assert "width=" not in svg.group(0) and "height=" not in svg.group(0)
    secret = re.search(r'class="secret" id="totp-secret">([^<]+)<', page).group(1)  # type: ignore[union-attr]
    assert re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", secret), secret  # groups of four
    link = re.search(r'<a class="button" id="totp-open" href="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert link.startswith("otpauth://totp/") and f"secret={secret.replace(' ', '')}" in link
    assert "FreeOTP" in page and 'href="/account/security">Cancel</a>' in page
    assert "<script>" not in page  # the copy button comes from static/account.js


def test_the_enrollment_code_field_is_numeric_and_takes_the_focus_only_after_an_error(
    browser: FlaskClient,
) -> None:
    sign_in(browser)
    page = start_totp(browser)
    field = re.search(r'<input id="code"[^>]*>', page, re.S).group(0)  # type: ignore[union-attr]
    assert 'inputmode="numeric"' in field and 'autocomplete="one-time-code"' in field
    assert "autofocus" not in field  # the QR code comes first on a phone, not the keyboard
    factor = re.search(r"/account/security/totp/(\d+)/confirm", page).group(1)  # type: ignore[union-attr]
    wrong = post(browser, f"/account/security/totp/{factor}/confirm", {"code": "000000"}, "/")
    assert wrong.status_code == 400  # type: ignore[attr-defined]
    field = re.search(r'<input id="code"[^>]*>', html(wrong), re.S).group(0)  # type: ignore[union-attr]
    assert "autofocus" in field and 'aria-describedby="form-error"' in field
    assert 'id="form-error"' in html(wrong)


# --- recovery codes -----------------------------------------------------------------------


def test_recovery_codes_can_be_copied_downloaded_and_printed_then_are_confirmed_by_a_form(
    browser: FlaskClient,
) -> None:
    sign_in(browser)
    page = start_totp(browser)
    secret = re.search(r'id="totp-secret">([^<]+)<', page).group(1).replace(" ", "")  # type: ignore[union-attr]
    factor = re.search(r"/account/security/totp/(\d+)/confirm", page).group(1)  # type: ignore[union-attr]
    shown = html(
        post(browser, f"/account/security/totp/{factor}/confirm", {"code": totp_now(secret)}, "/")
    )
    assert len(re.findall(r"<li><code>[a-z2-7-]{19}</code></li>", shown)) == 10
    for button in ("data-copy-from", "data-download-from", "data-print"):
        assert re.search(rf"<button [^>]*{button}[^>]*hidden>", shown), button  # with JS only
    assert 'class="print-sheet"' in shown and "account.js" in shown and "<script>" not in shown
    form = re.search(
        r'<form method="post" action="/account/security/recovery/saved".*?</form>', shown, re.S
    )
    assert form and 'name="csrf_token"' in form.group(0)
    assert re.search(
        r'<input type="checkbox" id="codes-saved" name="saved" value="yes" required>', form.group(0)
    )

    assert (
        browser.post("/account/security/recovery/saved", data={"saved": "yes"}).status_code == 400
    )
    saved = post(browser, "/account/security/recovery/saved", {"saved": "yes"}, "/account/security")
    assert saved.headers["Location"] == "/account/security"  # type: ignore[attr-defined]
    assert "Your recovery codes are saved" in html(browser.get("/account/security"))


def test_the_codes_are_never_wrapped_inside_a_code(browser: FlaskClient) -> None:
    css = browser.get("/static/style.css").get_data(as_text=True)
    assert re.search(r"ol\.codes code \{[^}]*white-space: nowrap", css)
    assert "@media print" in css and ".print-sheet" in css


# --- asking first -------------------------------------------------------------------------


def test_removing_a_factor_asks_first_on_a_page_and_only_a_post_with_csrf_removes_it(
    browser: FlaskClient, site: Services
) -> None:
    sign_in(browser)
    enroll_totp(browser)
    with site.db.session() as s:
        factor_id = s.execute(select(MfaFactor.id)).scalar_one()
    security = html(browser.get("/account/security"))
    assert f'href="/account/security/factors/{factor_id}/remove"' in security
    ask = browser.get(f"/account/security/factors/{factor_id}/remove")
    assert ask.status_code == 200 and "Remove “Phone”?" in html(ask)
    assert "no longer sign you in" in html(ask) and "last second factor" in html(ask)
    assert f'action="/account/security/factors/{factor_id}/remove"' in html(ask)
    path = f"/account/security/factors/{factor_id}/remove"
    assert browser.post(path).status_code == 400  # no CSRF token: refused
    with site.db.session() as s:
        assert len(s.execute(select(MfaFactor.id)).all()) == 1
    done = post(browser, path, {}, path)
    assert done.headers["Location"] == "/account/security"  # type: ignore[attr-defined]
    gone = browser.get(path)
    assert gone.status_code == 302 and "no longer on your account" in html(browser.get("/"))


def test_new_recovery_codes_ask_first_and_the_question_alone_changes_nothing(
    browser: FlaskClient, site: Services
) -> None:
    sign_in(browser)
    _, codes = enroll_totp(browser)
    ask = browser.get("/account/security/recovery")
    assert ask.status_code == 200
    assert "10 unused recovery codes will stop working" in html(ask)
    with site.db.session() as s:
        assert recovery.remaining(s, 1) == 10
        generated = s.execute(
            select(AuditEvent).where(AuditEvent.action == "mfa:recovery:generated")
        ).all()
        assert len(generated) == 1
    assert browser.post("/account/security/recovery").status_code == 400  # no CSRF token
    fresh = post(browser, "/account/security/recovery", {}, "/account/security/recovery")
    new_codes = re.findall(r"<li><code>([a-z2-7-]{19})</code></li>", html(fresh))
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)


# --- the second step ----------------------------------------------------------------------


def test_the_second_step_names_the_account_and_offers_a_recovery_code_a_lost_phone_and_cancel(
    browser: FlaskClient,
) -> None:
    sign_in(browser)
    enroll_totp(browser)
    post(browser, "/logout", {}, "/account/security")
    sign_in(browser)
    page = html(browser.get("/login/mfa"))
    assert "Signing in as claire@example.fr." in page
    field = re.search(r'<input id="code"[^>]*>', page, re.S).group(0)  # type: ignore[union-attr]
    assert 'inputmode="numeric"' in field and 'autocomplete="one-time-code"' in field
    assert 'href="/login/mfa?with=recovery"' in page and 'href="/login/lost"' in page
    by_code = html(browser.get("/login/mfa?with=recovery"))
    field = re.search(r'<input id="code"[^>]*>', by_code, re.S).group(0)  # type: ignore[union-attr]
    assert 'inputmode="text"' in field and "One of your recovery codes" in by_code

    wrong = post(browser, "/login/mfa", {"code": "aaaa-bbbb", "with": "recovery"}, "/login/mfa")
    assert wrong.status_code == 401  # type: ignore[attr-defined]
    field = re.search(r'<input id="code"[^>]*>', html(wrong), re.S).group(0)  # type: ignore[union-attr]
    assert "autofocus" in field and 'aria-describedby="form-error"' in field
    assert 'inputmode="text"' in field  # still the recovery code's field

    assert browser.post("/login/cancel").status_code == 400  # CSRF
    cancelled = post(browser, "/login/cancel", {}, "/login/mfa")
    assert cancelled.headers["Location"] == "/login"  # type: ignore[attr-defined]
    assert browser.get("/login/mfa").headers["Location"] == "/login"  # the half-way sign-in ended


def test_the_lost_phone_page_shows_the_support_contact(site: Services) -> None:
    configured = dataclasses.replace(site.settings, support_contact="Support: 01 23 45 67 89")
    with create_app(registry=build(configured)).test_client() as client:
        page = html(client.get("/login/lost"))
        assert 'id="support-contact">Support: 01 23 45 67 89<' in page
        assert 'href="/login/mfa?with=recovery"' in page
    with create_app(registry=site).test_client() as client:
        assert "IT or security support" in html(client.get("/login/lost"))
