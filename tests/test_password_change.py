"""A signed-in person changes the password (the rules of a reset: length, not in a breach
corpus, not the old one; the current password first, counted like a sign-in) and signs
out of every other session, staying signed in here."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from auth.config import Settings
from auth.models import Account, AuditEvent, WebSession
from auth.services import Services
from auth.web.factory import create_app
from tests.site_helpers import site_with_account
from tests.test_pages_mfa import PASSWORD, csrf, enroll_totp, post, sign_in
from tests.test_reset_pages import import_passwords

EMAIL = "claire@example.fr"
NEW = "Violet-Lantern-Orchard-77"
BREACHED = "Sunflower-Meadow-2019!"
PAGE = "/account/password"


def make_site(settings: Settings, **changes: object) -> Services:
    return site_with_account(settings, email=EMAIL, password=PASSWORD, **changes)


@pytest.fixture
def site(settings: Settings) -> Iterator[Services]:
    registry = make_site(settings)
    yield registry
    registry.close()


@pytest.fixture
def web(site: Services) -> Flask:
    return create_app(registry=site)


def signed_in(web: Flask, password: str = PASSWORD) -> FlaskClient:
    client = web.test_client()
    assert sign_in(client, password).headers["Location"] == "/account/security"  # type: ignore[attr-defined]
    return client


def change(
    client: FlaskClient, current: str, new: str = NEW, repeat: str | None = None
) -> TestResponse:
    data = {"current": current, "password": new, "repeat": new if repeat is None else repeat}
    return client.post(PAGE, data={**data, "csrf_token": csrf(client, PAGE)})


def is_signed_in(client: FlaskClient) -> bool:
    return client.get("/account/security").status_code == 200


def signs_in(web: Flask, password: str) -> bool:
    return sign_in(web.test_client(), password).status_code == 302  # type: ignore[attr-defined]


def actions(site: Services) -> list[tuple[str, dict[str, object]]]:
    with site.db.session() as s:
        rows = s.execute(select(AuditEvent.action, AuditEvent.details).order_by(AuditEvent.seq))
        return [(action, json.loads(details)) for action, details in rows]


def failed_logins(site: Services) -> int:
    with site.db.session() as s:
        return s.execute(select(Account.failed_logins).where(Account.email == EMAIL)).scalar_one()


# --- the form -------------------------------------------------------------------------------


def test_the_form_asks_for_the_current_password_and_the_new_one_twice(web: Flask) -> None:
    html = signed_in(web).get(PAGE).get_data(as_text=True)
    assert 'autocomplete="current-password"' in html
    assert html.count('autocomplete="new-password"') == 2
    assert 'for="current"' in html and 'for="password"' in html and 'for="repeat"' in html


def test_the_security_page_links_to_the_form(web: Flask) -> None:
    assert f'href="{PAGE}"' in signed_in(web).get("/account/security").get_data(as_text=True)


def test_without_a_session_the_form_sends_to_the_sign_in_page(web: Flask) -> None:
    client = web.test_client()
    for answer in (client.get(PAGE), client.post(PAGE, data={"csrf_token": csrf(client)})):
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/login?next=")


def test_a_change_without_its_csrf_token_is_refused(web: Flask, site: Services) -> None:
    client = signed_in(web)
    answer = client.post(PAGE, data={"current": PASSWORD, "password": NEW, "repeat": NEW})
    assert answer.status_code == 400 and b"expired" in answer.data
    assert signs_in(web, PASSWORD) and not signs_in(web, NEW)


# --- refusals -------------------------------------------------------------------------------


def test_a_wrong_current_password_is_refused_next_to_its_field_and_counted(
    web: Flask, site: Services
) -> None:
    answer = change(signed_in(web), "not-my-password-at-all")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "This is not your current password." in html
    assert 'aria-describedby="current-error"' in html and 'id="current-error"' in html
    assert failed_logins(site) == 1
    failed = [d for a, d in actions(site) if a == "login:failed"]
    assert failed and failed[-1]["via"] == "account" and failed[-1]["reason"] == "wrong_password"
    assert signs_in(web, PASSWORD) and not signs_in(web, NEW)


@pytest.mark.parametrize(
    ("new", "repeat", "says"),
    [
        ("short-one", None, "too short"),
        (PASSWORD, None, "your old password"),
        (NEW, NEW + "x", "are not the same"),
    ],
    ids=["short", "old", "mismatched"],
)
def test_a_new_password_breaking_a_reset_rule_is_refused_next_to_its_field(
    web: Flask, site: Services, new: str, repeat: str | None, says: str
) -> None:
    answer = change(signed_in(web), PASSWORD, new, repeat)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400 and says in html
    assert 'aria-describedby="password-hint new-error"' in html
    assert signs_in(web, PASSWORD)
    assert "password:changed" not in [a for a, _ in actions(site)]


def test_a_password_from_a_breach_corpus_is_refused(
    web: Flask, site: Services, tmp_path: Path
) -> None:
    import_passwords(site, tmp_path, [BREACHED, BREACHED, "something-else-entirely"])
    answer = change(signed_in(web), PASSWORD, BREACHED)
    assert answer.status_code == 400 and b"2 times in known data breaches" in answer.data
    assert signs_in(web, PASSWORD) and not signs_in(web, BREACHED)


def test_a_locked_account_cannot_change_its_password_by_guessing(
    settings: Settings,
) -> None:
    site = make_site(settings, login_lock_after=2)
    try:
        web = create_app(registry=site)
        client = signed_in(web)
        assert change(client, "guess-number-one").status_code == 400
        assert change(client, "guess-number-two").status_code == 400
        answer = change(client, PASSWORD)
        assert answer.status_code == 403 and b"your account is locked" in answer.data
        assert "account:locked" in [a for a, _ in actions(site)]
    finally:
        site.close()


# --- the change -----------------------------------------------------------------------------


def test_a_change_sets_the_password_audits_it_and_ends_only_the_other_sessions(
    web: Flask, site: Services
) -> None:
    other = signed_in(web)
    client = signed_in(web)
    answer = change(client, PASSWORD)
    assert answer.status_code == 302 and answer.headers["Location"] == "/account/security"
    page = client.get("/account/security").get_data(as_text=True)
    assert "Your password is changed." in page
    assert is_signed_in(client) and not is_signed_in(other)
    assert signs_in(web, NEW) and not signs_in(web, PASSWORD)
    assert ("password:changed", {"via": "account"}) in actions(site)


def test_the_session_kept_after_a_change_keeps_its_second_factor_flag(
    web: Flask, site: Services
) -> None:
    client = signed_in(web)
    _, codes = enroll_totp(client)
    post(client, "/logout", {}, "/account/security")
    assert sign_in(client).headers["Location"] == "/login/mfa"  # type: ignore[attr-defined]
    post(client, "/login/mfa", {"code": codes[0]}, "/login/mfa")
    assert change(client, PASSWORD).status_code == 302
    with site.db.session() as s:
        assert [row.mfa for row in s.execute(select(WebSession)).scalars()] == [True]


# --- sign out of every other session --------------------------------------------------------


def sign_out_others(client: FlaskClient) -> TestResponse:
    path = "/account/security/sign-out-others"
    return client.post(path, data={"csrf_token": csrf(client, "/account/security")})


def test_signing_out_the_other_sessions_keeps_this_one(web: Flask, site: Services) -> None:
    other = signed_in(web)
    client = signed_in(web)
    answer = sign_out_others(client)
    assert answer.status_code == 302 and answer.headers["Location"] == "/account/security"
    assert "This one stays signed in." in client.get("/account/security").get_data(as_text=True)
    assert is_signed_in(client) and not is_signed_in(other)
    ended = [d for a, d in actions(site) if a == "session:ended_everywhere"]
    assert len(ended) == 1 and ended[0]["sessions"] == 2  # this one too, then reopened
    assert signs_in(web, PASSWORD)


def test_signing_out_the_other_sessions_needs_csrf_and_a_session(web: Flask) -> None:
    other = signed_in(web)
    client = signed_in(web)
    path = "/account/security/sign-out-others"
    assert client.post(path).status_code == 400
    assert is_signed_in(other)
    stranger = web.test_client()
    answer = stranger.post(path, data={"csrf_token": csrf(stranger)})
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    assert is_signed_in(other) and is_signed_in(client)


# --- the rate limit -------------------------------------------------------------------------


def test_password_changes_have_the_sign_in_budget_per_address(settings: Settings) -> None:
    site = make_site(settings, login_rate_limit="3 per minute")
    try:
        client = signed_in(create_app(registry=site))
        codes = [change(client, "not-my-password-at-all").status_code for _ in range(4)]
        assert codes == [400, 400, 400, 429]
        assert failed_logins(site) == 3  # the refused attempt never reached the password
    finally:
        site.close()


def test_keeping_this_session_never_lengthens_its_life(web: Flask, site: Services) -> None:
    """Whoever holds a session may end the others; doing so must not buy it a new lifetime."""
    me = signed_in(web)
    with site.db.session() as db:
        [before] = db.execute(select(WebSession.created_at, WebSession.expires_at)).all()

    sign_out_others(me)
    change(me, PASSWORD, "a new and long passphrase 42")

    assert is_signed_in(me)
    with site.db.session() as db:
        [after] = db.execute(select(WebSession.created_at, WebSession.expires_at)).all()
    assert after.created_at == before.created_at
    lifetime = dt.timedelta(seconds=site.settings.session_lifetime)
    assert after.expires_at <= before.created_at + lifetime
