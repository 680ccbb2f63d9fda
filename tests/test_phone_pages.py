"""Second factors on a phone, through the Flask client (CSRF on): the enrollment page's QR
code and code field, recovery codes, confirmation pages, the second step's ways out, and
changing the password. The same journeys in Chromium are in test_phone_browser.py."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests import test_pages_mfa as pages_test
from tests.test_pages_mfa import post, sign_in

site, web, browser = pages_test.site, pages_test.web, pages_test.browser  # the same fixtures


def html(response: object) -> str:
    return str(response.get_data(as_text=True))  # type: ignore[attr-defined]


def start_totp(client: FlaskClient) -> str:
    return html(post(client, "/account/security/totp", {"name": "Phone"}, "/account/security"))


def test_the_qr_code_scales_with_a_viewbox_and_no_fixed_size(browser: FlaskClient) -> None:
    sign_in(browser)
    page = start_totp(browser)
    svg = re.search(r"<svg[^>]*>", page)
    assert svg and "viewBox=" in svg.group(0)
    assert "width=" not in svg.group(0) and "height=" not in svg.group(0)
    secret = re.search(r'id="totp-secret" class="secret">([^<]+)<', page).group(1)  # type: ignore[union-attr]
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
