"""Languages: French by default, English for a browser that prefers it, a switch that is
remembered (in the browser and on the account), e-mails in the account's language, reset
reasons worded in the reader's language, dates and numbers as the reader writes them.

Through the real app (CSRF on, cookies on); test clients send no Accept-Language here
unless a test says so (conftest's clients ask for English by default)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from email.message import EmailMessage

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from auth import audit, i18n
from auth.config import Settings
from auth.models import Account, MfaFactor, Notice, ResetReason
from auth.notify import build_message
from auth.reset import forced, reasons
from auth.services import Services, build
from auth.web.factory import create_app
from tests.site_helpers import site_with_account
from tests.test_migrations import empty_url  # noqa: F401 - a fixture: a fresh database

PASSWORD = "Correct-Horse-Battery-42"
EMAIL = "claire@example.fr"
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
LANG = re.compile(r'<html lang="([a-z]+)">')


@pytest.fixture
def site(settings: Settings) -> Services:
    return site_with_account(settings, email=EMAIL, password=PASSWORD, name="Dr Claire Martin")


@pytest.fixture
def web(site: Services) -> Flask:
    return create_app(registry=site)


def browser(web: Flask) -> FlaskClient:
    """A browser that says nothing of its languages."""
    client = web.test_client()
    client.environ_base.pop("HTTP_ACCEPT_LANGUAGE", None)
    return client


def lang(html: str) -> str:
    match = LANG.search(html)
    assert match, html[:300]
    return match.group(1)


def page(client: FlaskClient, path: str, **headers: str) -> str:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def token(client: FlaskClient, path: str = "/login") -> str:
    match = CSRF.search(page(client, path))
    assert match
    return match.group(1)


def switch(client: FlaskClient, language: str, back: str = "/forgot") -> object:
    return client.post(
        "/language",
        data={"language": language, "next": back, "csrf_token": token(client, "/forgot")},
    )


def sign_in(client: FlaskClient) -> None:
    answer = client.post(
        "/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token(client)}
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]


def stored_language(site: Services) -> str | None:
    with site.db.session() as s:
        return s.execute(select(Account.language).where(Account.email == EMAIL)).scalar_one()


# --- which language a page speaks -------------------------------------------------------------


def test_pages_are_in_french_by_default_with_lang_fr(web: Flask) -> None:
    client = browser(web)
    for path in ("/", "/login", "/forgot"):
        html = page(client, path)
        assert lang(html) == "fr", path
    html = page(client, "/login")
    assert "<h1>Se connecter</h1>" in html and "Mot de passe oublié" in html
    assert "Sign in" not in html


def test_a_browser_that_prefers_english_gets_english_with_lang_en(web: Flask) -> None:
    html = page(browser(web), "/login", **{"Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"})
    assert lang(html) == "en" and "<h1>Sign in</h1>" in html and "Se connecter" not in html


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr-CA,en;q=0.5", "fr"),
        ("de-DE,de;q=0.9,en;q=0.8", "en"),  # the first language offered that it accepts
        ("de-DE", "fr"),  # none offered: the default
        ("en;q=0, fr;q=0.1", "fr"),  # q=0 means "not this one"
        ("*", "fr"),
    ],
)
def test_accept_language_is_matched_among_the_offered_languages(
    web: Flask, header: str, expected: str
) -> None:
    assert lang(page(browser(web), "/forgot", **{"Accept-Language": header})) == expected


def test_every_page_has_a_switch_naming_the_other_language_in_itself(web: Flask) -> None:
    html = page(browser(web), "/login")
    assert '<button type="submit" class="link" name="language" value="en" lang="en">English' in html
    assert 'aria-label="Langue"' in html and 'name="csrf_token"' in html
    html = page(browser(web), "/login", **{"Accept-Language": "en"})
    assert 'value="fr" lang="fr">Français</button>' in html


# --- the switch -------------------------------------------------------------------------------


def test_the_switch_is_remembered_by_the_browser_in_a_lax_httponly_cookie(web: Flask) -> None:
    client = browser(web)
    answer = switch(client, "en", back="/forgot")
    assert answer.status_code == 303 and answer.headers["Location"] == "/forgot"  # type: ignore[attr-defined]
    cookie = answer.headers["Set-Cookie"]  # type: ignore[attr-defined]
    assert cookie.startswith("bg_lang=en;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # PUBLIC_URL is http here
    # Chosen beats what the browser says it prefers.
    assert lang(page(client, "/login", **{"Accept-Language": "fr"})) == "en"
    switch(client, "fr")
    assert lang(page(client, "/login", **{"Accept-Language": "en"})) == "fr"


def test_the_switch_cookie_is_secure_when_the_site_is_https(site: Services) -> None:
    secure = dataclasses.replace(site.settings, public_url="https://portal.example")
    client = browser(create_app(registry=build(secure)))
    cookie = switch(client, "en").headers["Set-Cookie"]  # type: ignore[attr-defined]
    assert "Secure" in cookie


def test_the_switch_needs_its_csrf_token(web: Flask) -> None:
    answer = browser(web).post("/language", data={"language": "en", "next": "/forgot"})
    assert answer.status_code == 400 and "bg_lang" not in answer.headers.get("Set-Cookie", "")


@pytest.mark.parametrize(
    ("back", "landing"),
    [
        ("/forgot", "/forgot"),
        ("/login?next=/account/security", "/login?next=/account/security"),
        ("//evil.example/login", "/"),  # another site: never
        ("https://evil.example/", "/"),
        ("/account/security/totp", "/"),  # a page shown after a POST: no GET to go back to
        ("/nowhere", "/"),
        ("", "/"),
    ],
)
def test_the_switch_goes_back_only_to_a_page_of_this_site(
    web: Flask, back: str, landing: str
) -> None:
    answer = switch(browser(web), "en", back=back)
    assert answer.headers["Location"] == landing  # type: ignore[attr-defined]


def test_an_unknown_language_changes_nothing(web: Flask) -> None:
    answer = switch(browser(web), "de")
    assert answer.status_code == 303 and "Set-Cookie" not in answer.headers  # type: ignore[attr-defined]


def test_a_signed_in_persons_choice_is_stored_on_the_account_and_follows_them(
    web: Flask, site: Services
) -> None:
    laptop = browser(web)
    sign_in(laptop)
    assert stored_language(site) is None
    switch(laptop, "en", back="/account/security")
    assert stored_language(site) == "en"
    # Another device, no cookie, a French browser: the account's language once signed in.
    phone = browser(web)
    assert lang(page(phone, "/login")) == "fr"
    sign_in(phone)
    assert lang(page(phone, "/account/security")) == "en"


def test_a_choice_made_before_signing_in_goes_to_an_account_that_had_none(
    web: Flask, site: Services
) -> None:
    laptop = browser(web)
    switch(laptop, "en", back="/login")
    sign_in(laptop)
    assert stored_language(site) == "en"
    # A later choice before signing in elsewhere does not overwrite the account's own.
    phone = browser(web)
    switch(phone, "fr", back="/login")
    sign_in(phone)
    assert stored_language(site) == "en"


# --- what the pages say -----------------------------------------------------------------------


def test_dates_and_counts_are_written_as_the_reader_writes_them(web: Flask, site: Services) -> None:
    client = browser(web)
    sign_in(client)  # before the factor exists, which would ask for a second step
    with site.db.session() as s:
        account = s.execute(select(Account).where(Account.email == EMAIL)).scalar_one()
        s.add(
            MfaFactor(
                account_id=account.id,
                kind="totp",
                name="Téléphone",
                created_at=dt.datetime(2026, 8, 11, 22, 30, tzinfo=dt.UTC),  # the 12th in Paris
                confirmed_at=dt.datetime(2026, 8, 11, 22, 30, tzinfo=dt.UTC),
                last_used_at=dt.datetime(2026, 11, 3, 13, 5, tzinfo=dt.UTC),
            )
        )
    html = page(client, "/account/security")
    assert "12 août 2026" in html and "03/11/2026 14:05" in html  # Paris time, day first
    assert "11-08" not in html and "2026-08" not in html
    assert "0 code de secours inutilisé." in html
    english = page(client, "/account/security", **{"Accept-Language": "en"})
    assert "Aug 12, 2026" in english and "0 unused recovery codes." in english


def test_the_formatting_helpers_use_paris_time_and_the_locale() -> None:
    summer = dt.datetime(2026, 8, 11, 12, 5, tzinfo=dt.UTC)
    assert i18n.format_datetime(summer, "fr") == "11 août 2026, 14:05:00"
    assert i18n.format_datetime(summer, "fr", length="short") == "11/08/2026 14:05"
    assert i18n.format_date(summer, "en") == "Aug 11, 2026"
    assert i18n.format_time(dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC), "fr") == "09:00"
    assert i18n.format_number(12345, "fr") == "12\u202f345"
    assert i18n.format_number(12345, "en") == "12,345"
    assert i18n.format_date(dt.datetime(2026, 8, 11, 23, 0), "fr") == "12 août 2026"  # naive: UTC


def test_a_wrong_password_is_told_in_the_readers_language(web: Flask) -> None:
    client = browser(web)
    data = {"email": EMAIL, "password": "nope-nope-nope", "csrf_token": token(client)}
    html = client.post("/login", data=data).get_data(as_text=True)
    assert "L'adresse e-mail ou le mot de passe est incorrect." in html.replace("&#39;", "'")
    html = client.post("/login", data=data, headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )
    assert "The e-mail address or the password is not right." in html


def test_an_expired_form_is_told_in_french(web: Flask) -> None:
    html = browser(web).post("/forgot", data={"email": EMAIL}).get_data(as_text=True)
    assert lang(html) == "fr" and "Ce formulaire a expiré" in html


# --- reset reasons: a code, worded by the reader's language -----------------------------------


def test_who_forces_a_reset_decides_its_code_and_only_a_person_writes_a_note() -> None:
    sign_in_policy = audit.Actor.policy("login")
    assert reasons.decide(sign_in_policy, "password found in a breach corpus at sign-in") == (
        ResetReason.PASSWORD_BREACHED,
        "",
    )
    assert reasons.decide(audit.Actor.policy("finding_policy"), "") == (
        ResetReason.POSSIBLE_EXPOSURE,
        "",
    )
    assert reasons.decide(audit.Actor.cli("alice"), "") == (ResetReason.POSSIBLE_EXPOSURE, "")
    assert reasons.decide(audit.Actor("admin", "6"), "leaked in Webmail2022") == (
        ResetReason.SECURITY_TEAM,
        "leaked in Webmail2022",
    )
    assert reasons.sentence(None) == reasons.sentence("no-such-code")
    assert reasons.sentence(None) == reasons.SENTENCES[ResetReason.POSSIBLE_EXPOSURE]


def _force(site: Services, actor: audit.Actor, reason: str, language: str | None) -> EmailMessage:
    """Force the reset of the account (in `language`) and build the e-mail it gets."""
    now = dt.datetime.now(dt.UTC)
    with site.db.session() as s:
        account = s.execute(select(Account).where(Account.email == EMAIL)).scalar_one()
        account.language = language
        plan = forced.Plan(reason, "", None, require_mfa=True, actor=actor)
        forced.apply(
            s, [forced.Target(account.id)], plan, secret_key=site.settings.secret_key, now=now
        )
        notice = s.execute(select(Notice)).scalar_one()
        return build_message(notice, account, link="http://x/reset/t", settings=site.settings)


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def _html(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    return str(body.get_content())


def test_a_reset_found_at_sign_in_reads_in_french_to_a_french_account(site: Services) -> None:
    message = _force(site, audit.Actor.policy("login"), "password found in a breach corpus", "fr")
    text, html = _text(message), _html(message)
    assert message["Subject"] == "Action requise\u00a0: changez votre mot de passe"
    assert "Votre mot de passe figure dans une fuite de mots de passe volés" in text
    assert '<html lang="fr">' in html and "fuite de mots de passe volés" in html
    for english in ("breach corpus", "password", "Hello", "Why"):
        assert english not in text.replace("mot de passe", ""), english
    with site.db.session() as s:
        account = s.execute(select(Account).where(Account.email == EMAIL)).scalar_one()
        assert account.reset_reason_code == "password_breached" and account.reset_reason is None


def test_the_same_reset_reads_in_english_to_an_english_account(site: Services) -> None:
    message = _force(site, audit.Actor.policy("login"), "password found in a breach corpus", "en")
    text = _text(message)
    assert message["Subject"] == "Action required: change your password"
    assert "Your password appears in a leak of stolen passwords" in text
    assert "mot de passe" not in text and '<html lang="en">' in _html(message)


def test_an_operators_words_are_quoted_as_theirs_in_either_language(site: Services) -> None:
    note = "Fuite « Webmail 2022 » : voir le ticket 42"
    message = _force(site, audit.Actor.cli("alice"), note, "en")
    text, html = _text(message), _html(message)
    assert "Our security team has asked you to change your password." in text
    assert f"Message from the security team:\n    “{note}”" in text
    assert "<blockquote" in html and "voir le ticket 42</blockquote>" in html.replace("&#34;", '"')


def test_an_account_without_a_language_gets_the_default_language(site: Services) -> None:
    message = _force(site, audit.Actor.policy("finding_policy"), "", None)
    assert "Votre mot de passe a pu être exposé lors d'une fuite de données." in _text(message)


def test_the_reset_page_says_why_in_the_readers_language(web: Flask, site: Services) -> None:
    _force(site, audit.Actor.cli("alice"), "Fuite Webmail 2022", "fr")
    from auth.reset import tokens

    with site.db.session() as s:
        row = s.execute(select(Notice)).scalar_one()
        assert row.token_id is not None
        link = tokens.activate(
            s,
            row.token_id,
            secret_key=site.settings.secret_key,
            lifetime=dt.timedelta(minutes=30),
            now=dt.datetime.now(dt.UTC),
        )
    assert link is not None
    client = browser(web)
    html = page(client, f"/reset/{link}")
    assert "Notre équipe sécurité vous demande de changer votre mot de passe." in html
    assert "<blockquote>Fuite Webmail 2022</blockquote>" in html
    assert link not in html  # the switch posts to the page itself: the link is not repeated
    # The switch, posted to the reset page itself, comes back to it in English.
    switched = client.post(
        f"/reset/{link}",
        data={"language": "en", "csrf_token": CSRF.search(html).group(1)},  # type: ignore[union-attr]
    )
    assert switched.status_code == 303 and switched.headers["Location"] == f"/reset/{link}"
    html = page(client, f"/reset/{link}")
    assert lang(html) == "en" and "Our security team has asked you" in html


def test_migration_0011_gives_existing_resets_the_code_their_text_implies(
    empty_url: str,  # noqa: F811 - the fixture imported above
) -> None:
    """Rows written before codes existed: the sign-in's English sentence becomes its code
    (and leaves the text), no text reads as a possible exposure, an operator's text stays
    as their note; downgrading puts the sentence back."""
    from sqlalchemy import text

    from auth import migrate
    from auth.db import make_engine

    migrate.upgrade(empty_url, "0010")
    engine = make_engine(empty_url)
    sign_in_text = "password found in a breach corpus at sign-in"
    now = "2026-11-29 08:00:00"
    with engine.begin() as conn:
        for n, (reason, actor) in enumerate(
            [(sign_in_text, "policy:login"), ("", "policy:finding_policy"), ("webmail", "cli:a")],
            start=1,
        ):
            conn.execute(
                text(
                    "INSERT INTO accounts (id, email, email_sha1, name, status, session_epoch, "
                    "reset_reason, created_at, updated_at) VALUES (:id, :email, :sha1, '', "
                    "'reset_required', 1, :reason, :now, :now)"
                ),
                {"id": n, "email": f"{n}@example.org", "sha1": bytes([n]) * 20, "reason": reason}
                | {"now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO resets (account_id, reset_key, reason, actor, created_at) "
                    "VALUES (:id, 'k', :reason, :actor, :now)"
                ),
                {"id": n, "reason": reason, "actor": actor, "now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO notices (account_id, kind, idempotency_key, reason, status, "
                    "attempts, next_attempt_at, created_at) VALUES (:id, 'reset_forced', :key, "
                    ":reason, 'queued', 0, :now, :now)"
                ),
                {"id": n, "key": f"k{n}", "reason": reason, "now": now},
            )
    engine.dispose()

    migrate.upgrade(empty_url)

    engine = make_engine(empty_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT a.reset_reason_code, a.reset_reason, r.reason_code, r.reason, "
                "n.reason_code, n.reason FROM accounts a JOIN resets r ON r.account_id = a.id "
                "JOIN notices n ON n.account_id = a.id ORDER BY a.id"
            )
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("password_breached", None, "password_breached", "", "password_breached", ""),
        ("possible_exposure", "", "possible_exposure", "", "possible_exposure", ""),
        ("security_team", "webmail", "security_team", "webmail", "security_team", "webmail"),
    ]
    migrate.downgrade(empty_url, "0010")
    engine = make_engine(empty_url)
    with engine.connect() as conn:
        back = conn.execute(text("SELECT reset_reason FROM accounts ORDER BY id")).scalars()
        assert list(back) == [sign_in_text, "", "webmail"]
    engine.dispose()
