"""Pages a person meets anywhere on the site: the error pages (404, 403, 500) in the
reader's language, the skip link and the favicon. /api/ keeps its JSON errors."""

from __future__ import annotations

import re

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient

from auth.services import Services
from auth.web.factory import create_app

SECRET = "the-exception-text-4242"


def styled(html: str, language: str) -> bool:
    return (
        f'<html lang="{language}">' in html
        and '<link rel="stylesheet" href="/static/style.css">' in html
        and '<main id="main" tabindex="-1">' in html
    )


@pytest.fixture
def site(registry: Services) -> Flask:
    """The app as served (TESTING off, so an exception becomes a 500 page), with two routes
    of its own: one that raises, one that refuses."""
    app = create_app(registry=registry)

    def boom() -> str:
        raise RuntimeError(SECRET)

    def refused() -> str:
        abort(403)

    app.add_url_rule("/test-only/boom", view_func=boom)
    app.add_url_rule("/api/v1/test-only/boom", "api_boom", view_func=boom)
    app.add_url_rule("/test-only/refused", view_func=refused)
    return app


@pytest.fixture
def french(site: Flask) -> FlaskClient:
    browser = site.test_client()
    browser.environ_base.pop("HTTP_ACCEPT_LANGUAGE")  # no preference: the site's French
    return browser


def test_an_unknown_page_is_a_styled_404_in_french_by_default(french: FlaskClient) -> None:
    response = french.get("/nope")
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert styled(html, "fr")
    assert "<h1>Page introuvable</h1>" in html and 'href="/login"' in html
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_an_unknown_page_is_in_english_for_a_browser_that_prefers_it(site: Flask) -> None:
    response = site.test_client().get("/nope", headers={"Accept-Language": "en"})
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and styled(html, "en")
    assert "<h1>Page not found</h1>" in html
    assert "There is no page at this address" in html


def test_a_refused_page_is_a_styled_403_in_both_languages(site: Flask, french: FlaskClient) -> None:
    fr = french.get("/test-only/refused")
    en = site.test_client().get("/test-only/refused")
    assert fr.status_code == en.status_code == 403
    assert styled(fr.get_data(as_text=True), "fr") and styled(en.get_data(as_text=True), "en")
    assert "<h1>Accès refusé</h1>" in fr.get_data(as_text=True)
    assert "<h1>Access refused</h1>" in en.get_data(as_text=True)


def test_a_failing_page_is_a_styled_500_that_does_not_show_the_exception(
    site: Flask, french: FlaskClient
) -> None:
    for browser, language, title in (
        (french, "fr", "Une erreur s’est produite"),
        (site.test_client(), "en", "Something went wrong"),
    ):
        response = browser.get("/test-only/boom")
        html = response.get_data(as_text=True)
        assert response.status_code == 500 and styled(html, language)
        assert f"<h1>{title}</h1>" in html
        assert SECRET not in html and "RuntimeError" not in html and "Traceback" not in html


def test_api_paths_keep_their_json_errors(site: Flask) -> None:
    browser = site.test_client()
    missing = browser.get("/api/v1/nope")
    assert missing.status_code == 404 and missing.is_json and "error" in missing.json
    failed = browser.get("/api/v1/test-only/boom")
    assert failed.status_code == 500 and failed.is_json
    assert SECRET not in failed.get_data(as_text=True)


def test_an_error_page_offers_a_way_out(site: Flask) -> None:
    html = site.test_client().get("/nope").get_data(as_text=True)
    links = re.findall(r'<a [^>]*href="([^"]+)"', html)
    assert "/" in links and "/login" in links


@pytest.mark.parametrize("path", ["/", "/login", "/forgot", "/nope"])
def test_the_first_thing_to_focus_is_a_link_to_the_content(french: FlaskClient, path: str) -> None:
    html = french.get(path).get_data(as_text=True)
    body = html.split("<body>", 1)[1]
    first = re.search(r"<(a|button|input|select|textarea)\b[^>]*>", body)
    assert first and first.group(0) == '<a class="skip-link" href="#main">'
    assert '<a class="skip-link" href="#main">Aller au contenu</a>' in body
    assert '<main id="main" tabindex="-1">' in body


def test_every_page_links_the_favicon_and_favicon_ico_answers_it(french: FlaskClient) -> None:
    html = french.get("/login").get_data(as_text=True)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    icon = french.get("/static/favicon.svg")
    ico = french.get("/favicon.ico")
    assert icon.status_code == ico.status_code == 200
    assert icon.mimetype == ico.mimetype == "image/svg+xml"
    assert ico.data == icon.data and b"viewBox" in ico.data


def test_the_home_page_speaks_to_a_health_professional(french: FlaskClient) -> None:
    html = french.get("/").get_data(as_text=True)
    assert '<html lang="fr">' in html
    assert "<h1>Protégez votre compte professionnel</h1>" in html
    assert "fuites de mots de passe volés" in html
    assert '<a class="button" href="/login">Se connecter</a>' in html
    assert 'href="/forgot"' in html and "second facteur" in html and "codes de secours" in html
    # The endpoints are still there for the IT team, folded away below.
    people, it_team = html.split("<details>", 1)
    assert "/range/" not in people and "/range/" in it_team and "openapi.json" in it_team


def test_the_home_page_leads_a_signed_in_person_to_their_account_s_security(
    site: Flask,
) -> None:
    browser = site.test_client()
    with browser.session_transaction() as cookie_session:
        cookie_session["sid"] = "not-a-session"  # the header and this link read only its presence
    html = browser.get("/").get_data(as_text=True)
    assert '<a class="button" href="/account/security">' in html
