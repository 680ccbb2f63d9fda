"""Page sessions end when they should: sign-out makes a copied cookie useless, "sign out
everywhere" ends every device, sessions have an absolute and an idle end, the cookie is
Secure by configuration (never by the Host a client sends), and the redirect after
sign-in cannot leave the site, whatever a browser would make of `next`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from auth.config import Settings
from auth.models import AuditEvent, WebSession
from auth.services import Services
from auth.web.factory import create_app
from tests.site_helpers import site_with_account
from tests.test_pages_mfa import PASSWORD, csrf, post, sign_in

EMAIL = "claire@example.fr"


@pytest.fixture
def site(settings: Settings) -> Iterator[Services]:
    registry = site_with_account(
        settings,
        email=EMAIL,
        password=PASSWORD,
        session_lifetime=12 * 3600,
        session_idle=30 * 60,
    )
    yield registry
    registry.close()


@pytest.fixture
def web(site: Services) -> Flask:
    return create_app(registry=site)


def signed_in(web: Flask) -> FlaskClient:
    client = web.test_client()
    assert sign_in(client).headers["Location"] == "/account/security"  # type: ignore[attr-defined]
    return client


def cookie(client: FlaskClient) -> str:
    found = client.get_cookie("bg_session")
    assert found is not None
    return found.value


def opens_security_page(web: Flask, value: str) -> bool:
    thief = web.test_client()
    thief.set_cookie("bg_session", value)
    return thief.get("/account/security").status_code == 200


def sessions(site: Services) -> list[WebSession]:
    with site.db.session() as s:
        return list(s.execute(select(WebSession)).scalars())


# --- sign-out -----------------------------------------------------------------------------


def test_a_copy_of_the_cookie_taken_before_sign_out_opens_nothing(
    web: Flask, site: Services
) -> None:
    client = signed_in(web)
    copied = cookie(client)
    assert opens_security_page(web, copied)

    post(client, "/logout", {}, "/account/security")

    assert not opens_security_page(web, copied)
    assert sessions(site) == []


def test_sign_out_everywhere_ends_every_device_and_is_recorded(web: Flask, site: Services) -> None:
    phone, desk = signed_in(web), signed_in(web)
    copied = cookie(desk)

    answer = post(phone, "/account/security/sign-out-everywhere", {}, "/account/security")

    assert answer.headers["Location"] == "/login"  # type: ignore[attr-defined]
    assert phone.get("/account/security").status_code == 302
    assert desk.get("/account/security").status_code == 302
    assert not opens_security_page(web, copied)
    with site.db.session() as s:
        ended = s.execute(
            select(func.count()).where(AuditEvent.action == "session:ended_everywhere")
        ).scalar_one()
    assert ended == 1
    assert signed_in(web).get("/account/security").status_code == 200  # signing in again works


def test_the_database_keeps_only_a_digest_of_the_cookie_secret(web: Flask, site: Services) -> None:
    client = signed_in(web)
    with client.session_transaction() as cookie_session:
        secret = cookie_session["sid"]
    [row] = sessions(site)
    assert row.id == hashlib.sha256(secret.encode()).hexdigest()
    stored = [str(getattr(row, column.key)) for column in WebSession.__table__.columns]
    assert not any(secret in value for value in stored)


def test_signing_in_again_in_the_same_browser_replaces_its_session(
    web: Flask, site: Services
) -> None:
    client = signed_in(web)
    first = cookie(client)
    again = post(client, "/login", {"email": EMAIL, "password": PASSWORD}, "/account/security")
    assert again.status_code == 302  # type: ignore[attr-defined]
    assert len(sessions(site)) == 1
    assert not opens_security_page(web, first)


# --- lifetimes ----------------------------------------------------------------------------


def age(site: Services, *, created: dt.timedelta, seen: dt.timedelta, ends: dt.timedelta) -> None:
    """Move the one session into the past, as if time had passed."""
    now = dt.datetime.now(dt.UTC)
    with site.db.session() as s:
        s.execute(
            update(WebSession).values(
                created_at=now - created, last_seen_at=now - seen, expires_at=now + ends
            )
        )


def test_a_session_ends_after_its_idle_timeout(web: Flask, site: Services) -> None:
    client = signed_in(web)
    age(
        site,
        created=dt.timedelta(minutes=31),
        seen=dt.timedelta(minutes=31),
        ends=-dt.timedelta(minutes=1),
    )
    assert client.get("/account/security").status_code == 302
    assert sessions(site) == []  # the ended row is gone at once


def test_a_request_moves_the_idle_end_but_never_past_the_absolute_end(
    web: Flask, site: Services
) -> None:
    client = signed_in(web)
    age(
        site,
        created=dt.timedelta(hours=1),
        seen=dt.timedelta(minutes=20),
        ends=dt.timedelta(minutes=10),
    )
    assert client.get("/account/security").status_code == 200
    [row] = sessions(site)
    now = dt.datetime.now(dt.UTC)
    assert abs(row.expires_at - (now + dt.timedelta(minutes=30))) < dt.timedelta(seconds=5)

    age(
        site,
        created=dt.timedelta(hours=11, minutes=50),
        seen=dt.timedelta(minutes=5),
        ends=dt.timedelta(minutes=10),
    )
    assert client.get("/account/security").status_code == 200
    [row] = sessions(site)
    assert abs(row.expires_at - (now + dt.timedelta(minutes=10))) < dt.timedelta(seconds=5)


def test_a_session_ends_at_its_absolute_lifetime_however_busy(web: Flask, site: Services) -> None:
    client = signed_in(web)
    age(
        site,
        created=dt.timedelta(hours=12, seconds=1),
        seen=dt.timedelta(seconds=30),
        ends=-dt.timedelta(seconds=1),
    )
    assert client.get("/account/security").status_code == 302


def test_the_cookie_is_a_browser_session_cookie(web: Flask) -> None:
    page = signed_in(web).get("/account/security")
    assert page.status_code == 200
    set_cookie = sign_in(web.test_client()).headers["Set-Cookie"]  # type: ignore[attr-defined]
    assert "Expires=" not in set_cookie and "Max-Age" not in set_cookie


def test_the_session_settings_come_from_the_environment(tmp_path: Path) -> None:
    from auth.config import load_settings

    env = {"SESSION_LIFETIME": "3600", "SESSION_IDLE_TIMEOUT": "600"}
    settings = load_settings({"BREACHGUARD_INSTANCE": str(tmp_path), **env})
    assert (settings.session_lifetime, settings.session_idle) == (3600, 600)


# --- Secure, from configuration -----------------------------------------------------------


@pytest.mark.parametrize(
    ("public_url", "host", "secure"),
    [
        ("http://localhost:5000", "http://localhost", False),
        ("http://localhost:5000", "http://portal.example.fr", False),  # HTTPS: test_proxy.py
        ("https://portal.example.fr", "http://localhost", True),
        ("https://portal.example.fr", "http://127.0.0.1", True),
    ],
)
def test_the_cookie_is_secure_when_the_public_url_is_https_whatever_the_host_header(
    site: Services, public_url: str, host: str, secure: bool
) -> None:
    app = create_app(
        registry=dataclasses.replace(
            site, settings=dataclasses.replace(site.settings, public_url=public_url)
        )
    )
    page = app.test_client().get("/login", base_url=host)
    assert ("; Secure" in page.headers["Set-Cookie"]) is secure


def test_public_url_must_be_an_http_address(tmp_path: Path) -> None:
    from auth.config import load_settings
    from auth.errors import InvalidInput

    env = {"BREACHGUARD_INSTANCE": str(tmp_path), "PUBLIC_URL": "portal.example.fr"}
    with pytest.raises(InvalidInput, match="PUBLIC_URL"):
        load_settings(env)


# --- where the sign-in lands --------------------------------------------------------------

BYPASSES = [
    "//evil.example",
    "///evil.example",
    "////evil.example/x",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "\x00//evil.example",
    "\\\\evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "/\\/evil.example",
    "/%2F%2Fevil.example",
    "%2F%2Fevil.example",
    "https://evil.example",
    "https:evil.example",
    "https:/evil.example",
    "HTTPS://evil.example",
    "//evil.example@portal.example.fr",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/\u2215evil.example",
    "\u2215\u2215evil.example",
    "/\uff0fevil.example",
    "\uff0f\uff0fevil.example",
    "/\u3002evil.example",
    "/.//evil.example",
    "/..//evil.example",
]


def landing(web: Flask, target: str) -> tuple[int, str]:
    client = web.test_client()
    answer = client.post(
        "/login",
        data={"email": EMAIL, "password": PASSWORD, "next": target, "csrf_token": csrf(client)},
    )
    return answer.status_code, answer.headers.get("Location", "")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from tests.test_e2e_browser import CHROMIUM, LAUNCH_ARGS

    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium not installed: apt-get install -y chromium")
        pytest.skip("Chromium not installed: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        page = browser.new_page()
        yield page
        browser.close()


RESOLVE = "([location, origin]) => new URL(location, origin + '/login').origin"


def test_known_open_redirect_bypasses_all_land_on_this_site(web: Flask, chromium: Any) -> None:
    """Each Location is resolved by Chromium's own URL parser against the page's address:
    the origin must stay the site's."""
    origin = "https://portal.example.fr"
    for target in BYPASSES:
        status, location = landing(web, target)
        assert status == 302, (target, status)
        resolved = chromium.evaluate(
            "([l, o]) => new URL(l, o + '/login').origin", [location, origin]
        )
        assert resolved == origin, (target, location, resolved)


def test_a_same_site_path_survives_with_its_query(web: Flask) -> None:
    assert landing(web, "/account/security?tab=keys") == (302, "/account/security?tab=keys")


def test_a_newline_in_next_is_no_server_error(web: Flask) -> None:
    status, location = landing(web, "/account/security\r\nSet-Cookie: x=1")
    assert status == 302 and "\n" not in location and "\r" not in location
