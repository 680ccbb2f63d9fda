"""Sign-in pages and /account/security through the real app (CSRF on, cookies on).

The browser-driven version of these flows, WebAuthn included, is in test_e2e_browser.py.
"""

from __future__ import annotations

import dataclasses
import re
import time

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from auth.config import Settings
from auth.models import Account, AuditEvent, MfaFactor
from auth.services import Services, build
from auth.web.factory import create_app
from tests.site_helpers import site_with_account

PASSWORD = "Correct-Horse-Battery-42"


@pytest.fixture
def site(settings: Settings) -> Services:
    return site_with_account(
        settings,
        email="claire@example.fr",
        password=PASSWORD,
        mfa_ip_rate_limit="1000 per minute",
    )


@pytest.fixture
def web(site: Services) -> Flask:
    return create_app(registry=site)


@pytest.fixture
def browser(web: Flask) -> FlaskClient:
    return web.test_client()


def csrf(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def post(client: FlaskClient, path: str, data: dict[str, str], page: str = "/login") -> object:
    return client.post(path, data={**data, "csrf_token": csrf(client, page)})


def sign_in(client: FlaskClient, password: str = PASSWORD) -> object:
    return post(client, "/login", {"email": "claire@example.fr", "password": password})


def enroll_totp(client: FlaskClient) -> tuple[str, list[str]]:
    page = post(client, "/account/security/totp", {"name": "Phone"}, "/account/security")
    html = page.get_data(as_text=True)  # type: ignore[attr-defined]
    secret = re.search(r'id="totp-secret">([^<]+)<', html).group(1).replace(" ", "")  # type: ignore[union-attr]
    factor = re.search(r"/account/security/totp/(\d+)/confirm", html).group(1)  # type: ignore[union-attr]
    done = post(
        client,
        f"/account/security/totp/{factor}/confirm",
        {"code": pyotp.TOTP(secret).now()},
        "/account/security",
    )
    codes = re.findall(r"<li><code>([a-z2-7-]{19})</code></li>", done.get_data(as_text=True))  # type: ignore[attr-defined]
    return secret, codes


def next_code(secret: str, used: set[str]) -> str:
    """A code not used yet: the step after the last used one."""
    totp = pyotp.TOTP(secret)
    code = totp.now()
    if code in used:
        code = totp.at(time.time() + 30)
    used.add(code)
    return code


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(browser: FlaskClient) -> None:
    wrong = sign_in(browser, "nope")
    unknown = post(browser, "/login", {"email": "nobody@example.fr", "password": "nope"})
    nul = post(browser, "/login", {"email": "claire\x00@example.fr", "password": "n\x00pe"})
    assert wrong.status_code == unknown.status_code == nul.status_code == 401  # type: ignore[attr-defined]
    for answer in (wrong, unknown, nul):
        assert b"is not right" in answer.data  # type: ignore[attr-defined]


def test_without_a_factor_the_password_opens_the_security_page(browser: FlaskClient) -> None:
    assert sign_in(browser).headers["Location"] == "/account/security"  # type: ignore[attr-defined]
    page = browser.get("/account/security")
    assert page.status_code == 200 and b"no second factor yet" in page.data


def test_the_security_page_needs_a_session(browser: FlaskClient) -> None:
    page = browser.get("/account/security")
    assert page.status_code == 302 and "/login?next=" in page.headers["Location"]


def test_totp_enrollment_is_confirmed_by_a_code_and_gives_ten_recovery_codes(
    browser: FlaskClient, site: Services
) -> None:
    sign_in(browser)
    secret, codes = enroll_totp(browser)
    assert len(codes) == 10 and len(set(codes)) == 10
    with site.db.session() as s:
        factor = s.execute(select(MfaFactor)).scalar_one()
        assert factor.confirmed_at is not None and factor.name == "Phone"
        assert secret not in (factor.secret_enc or "")
        actions = set(s.execute(select(AuditEvent.action)).scalars())
    assert {"mfa:enrolled", "mfa:recovery:generated"} <= actions


def test_an_unconfirmed_totp_factor_does_not_count(browser: FlaskClient, site: Services) -> None:
    sign_in(browser)
    post(browser, "/account/security/totp", {"name": "Phone"}, "/account/security")
    post(browser, "/logout", {}, "/account/security")
    assert sign_in(browser).headers["Location"] == "/account/security"  # type: ignore[attr-defined]


def test_with_a_factor_no_session_opens_before_the_second_step(browser: FlaskClient) -> None:
    sign_in(browser)
    secret, _ = enroll_totp(browser)
    post(browser, "/logout", {}, "/account/security")
    assert sign_in(browser).headers["Location"] == "/login/mfa"  # type: ignore[attr-defined]
    assert browser.get("/account/security").status_code == 302
    used: set[str] = {pyotp.TOTP(secret).now()}
    ok = post(browser, "/login/mfa", {"code": next_code(secret, used)}, "/login/mfa")
    assert ok.headers["Location"] == "/account/security"  # type: ignore[attr-defined]
    assert browser.get("/account/security").status_code == 200


def test_a_replayed_code_is_refused_with_wait_for_the_next_one(browser: FlaskClient) -> None:
    sign_in(browser)
    secret, _ = enroll_totp(browser)
    used = {pyotp.TOTP(secret).now()}
    post(browser, "/logout", {}, "/account/security")
    sign_in(browser)
    code = next_code(secret, used)
    post(browser, "/login/mfa", {"code": code}, "/login/mfa")
    post(browser, "/logout", {}, "/account/security")
    sign_in(browser)
    again = post(browser, "/login/mfa", {"code": code}, "/login/mfa")
    assert again.status_code == 401  # type: ignore[attr-defined]
    assert b"already used" in again.data  # type: ignore[attr-defined]


def test_a_recovery_code_signs_in_once_and_says_how_many_remain(browser: FlaskClient) -> None:
    sign_in(browser)
    _, codes = enroll_totp(browser)
    post(browser, "/logout", {}, "/account/security")
    sign_in(browser)
    ok = post(browser, "/login/mfa", {"code": codes[0].upper()}, "/login/mfa")
    assert ok.headers["Location"] == "/account/security"  # type: ignore[attr-defined]
    assert b"9 recovery codes left" in browser.get("/account/security").data
    post(browser, "/logout", {}, "/account/security")
    sign_in(browser)
    again = post(browser, "/login/mfa", {"code": codes[0]}, "/login/mfa")
    assert again.status_code == 401  # type: ignore[attr-defined]


def test_regenerating_recovery_codes_invalidates_the_old_set(browser: FlaskClient) -> None:
    sign_in(browser)
    _, old = enroll_totp(browser)
    page = post(browser, "/account/security/recovery", {}, "/account/security")
    new = re.findall(r"<li><code>([a-z2-7-]{19})</code></li>", page.get_data(as_text=True))  # type: ignore[attr-defined]
    assert len(new) == 10 and not set(new) & set(old)
    post(browser, "/logout", {}, "/account/security")
    sign_in(browser)
    assert post(browser, "/login/mfa", {"code": old[1]}, "/login/mfa").status_code == 401  # type: ignore[attr-defined]
    assert post(browser, "/login/mfa", {"code": new[1]}, "/login/mfa").status_code == 302  # type: ignore[attr-defined]


def test_five_wrong_codes_lock_the_second_step_and_are_audited(
    browser: FlaskClient, site: Services
) -> None:
    sign_in(browser)
    enroll_totp(browser)
    post(browser, "/logout", {}, "/account/security")
    sign_in(browser)
    statuses = [
        post(browser, "/login/mfa", {"code": "000000"}, "/login/mfa").status_code  # type: ignore[attr-defined]
        for _ in range(6)
    ]
    assert statuses == [401, 401, 401, 401, 429, 429]
    with site.db.session() as s:
        actions = list(s.execute(select(AuditEvent.action)).scalars())
    assert actions.count("mfa:failed") == 5 and actions.count("mfa:locked") == 1


def test_the_last_factor_cannot_be_removed_when_the_account_must_keep_one(
    browser: FlaskClient, site: Services
) -> None:
    sign_in(browser)
    enroll_totp(browser)
    with site.db.session() as s:
        s.execute(update(Account).values(mfa_required=True))
        factor_id = s.execute(select(MfaFactor.id)).scalar_one()
    refused = post(
        browser, f"/account/security/factors/{factor_id}/remove", {}, "/account/security"
    )
    assert refused.status_code == 409 and b"last second factor" in refused.data  # type: ignore[attr-defined]
    with site.db.session() as s:
        s.execute(update(Account).values(mfa_required=False))
    removed = post(
        browser, f"/account/security/factors/{factor_id}/remove", {}, "/account/security"
    )
    assert removed.status_code == 302  # type: ignore[attr-defined]
    with site.db.session() as s:
        assert s.execute(select(MfaFactor)).first() is None


def test_factors_can_be_renamed(browser: FlaskClient, site: Services) -> None:
    sign_in(browser)
    enroll_totp(browser)
    with site.db.session() as s:
        factor_id = s.execute(select(MfaFactor.id)).scalar_one()
    post(
        browser,
        f"/account/security/factors/{factor_id}/rename",
        {"name": "Work phone"},
        "/account/security",
    )
    assert b"Work phone" in browser.get("/account/security").data


def test_a_name_with_a_control_character_is_refused_with_its_reason(
    browser: FlaskClient, site: Services
) -> None:
    sign_in(browser)
    enroll_totp(browser)
    with site.db.session() as s:
        factor_id = s.execute(select(MfaFactor.id)).scalar_one()
    for path in (f"/account/security/factors/{factor_id}/rename", "/account/security/totp"):
        for name, reason in (
            ("Work\x00phone", "on one line"),
            ("x" * 101, "at most 100 characters"),
        ):
            answer = post(browser, path, {"name": name}, "/account/security")
            assert answer.status_code == 302  # type: ignore[attr-defined]
            page = browser.get("/account/security").get_data(as_text=True)
            assert reason in page
    with site.db.session() as s:
        assert s.execute(select(MfaFactor.name)).scalars().all() == ["Phone"]


def test_bumping_the_session_epoch_ends_every_session(browser: FlaskClient, site: Services) -> None:
    sign_in(browser)
    assert browser.get("/account/security").status_code == 200
    with site.db.session() as s:
        s.execute(update(Account).values(session_epoch=Account.session_epoch + 1))
    assert browser.get("/account/security").status_code == 302


def test_a_form_without_its_csrf_token_is_refused(browser: FlaskClient) -> None:
    response = browser.post("/login", data={"email": "claire@example.fr", "password": PASSWORD})
    assert response.status_code == 400 and b"expired" in response.data


def test_pages_carry_a_strict_csp_and_the_cookie_is_httponly_and_lax(browser: FlaskClient) -> None:
    page = browser.get("/login")
    csp = page.headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "frame-ancestors 'none'" in csp
        and "unsafe-inline" not in csp
    )
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # loopback (localhost) development


def test_a_redirect_after_sign_in_stays_on_this_site(browser: FlaskClient) -> None:
    token = csrf(browser)
    evil = browser.post(
        "/login",
        data={
            "email": "claire@example.fr",
            "password": PASSWORD,
            "next": "//evil.example/x",
            "csrf_token": token,
        },
    )
    assert evil.headers["Location"] == "/account/security"


def test_sign_in_attempts_are_rate_limited_per_address(settings: Settings, site: Services) -> None:
    limited = build(dataclasses.replace(settings, login_rate_limit="3 per minute"))
    client = create_app(registry=limited).test_client()
    codes = [sign_in(client, "wrong").status_code for _ in range(4)]  # type: ignore[attr-defined]
    assert codes == [401, 401, 401, 429]


def test_a_cookie_signed_with_a_retired_key_opens_only_while_that_key_is_a_fallback(
    browser: FlaskClient, web: Flask
) -> None:
    sign_in(browser)
    assert browser.get("/account/security").status_code == 200
    old = web.secret_key
    web.secret_key = "a-new-secret-key-for-this-test-0123456789"
    web.config["SECRET_KEY_FALLBACKS"] = [old]
    assert browser.get("/account/security").status_code == 200  # the signing keys are re-read
    web.config["SECRET_KEY_FALLBACKS"] = []
    assert browser.get("/account/security").status_code == 302  # to /login: the cookie is dead


def test_the_signed_in_account_is_read_whole_and_in_no_session(web: Flask, site: Services) -> None:
    from flask import session
    from sqlalchemy import inspect

    from auth.web import session as web_session

    with site.db.session() as s:
        stored = s.execute(select(Account)).scalar_one()
        s.expunge(stored)
    with web.test_request_context("/account/security"):
        web_session.open_session(stored)
        secret = session["sid"]
    with web.test_request_context("/account/security"):
        session["sid"] = secret
        account = web_session.current_account()
    assert account is not None and inspect(account).session is None  # in no session
    for column in Account.__table__.columns:
        assert getattr(account, column.key) == getattr(stored, column.key), column.key
