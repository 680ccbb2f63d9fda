"""Password reset pages through the real app (CSRF on, cookies on): /forgot and /reset/<token>.

Links are made as the notice worker makes them: tokens.issue when the reset is queued,
tokens.activate when the e-mail goes out (which starts the link's lifetime).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from auth import accounts, audit, notify
from auth.breach.checker import Checker
from auth.breach.importer import Importer, Source
from auth.config import Settings
from auth.errors import BreachSourceError
from auth.mfa import factors, totp
from auth.models import (
    Account,
    AccountStatus,
    AuditEvent,
    Base,
    BreachKind,
    Finding,
    FindingKind,
    FindingStatus,
    MfaFactor,
    Notice,
    Reset,
    ResetToken,
)
from auth.reset import complete, forced, tokens
from auth.services import Services, build
from auth.web.factory import create_app

PASSWORD = "Correct-Horse-Battery-42"  # the old one
NEW = "Lantern-Orchard-Pebble-Sonata"
BREACHED = "Tr0ub4dor&3-horse-staple"
EMAIL = "claire@example.fr"
REASON = "Your password was found in the webmail-2022 leak."
ACTOR = audit.Actor.cli("t")
CSRF = re.compile(r'(name="csrf-token" content|name="csrf_token" value)="[^"]+"')


def real_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def build_site(settings: Settings, **changes: object) -> Services:
    limits: dict[str, object] = {
        "login_rate_limit": "1000 per minute",
        "forgot_rate_limit": "1000 per minute",
    }
    return build(dataclasses.replace(settings, **{**limits, **changes}))  # type: ignore[arg-type]


def add_account(site: Services, email: str, status: str = AccountStatus.ACTIVE) -> int:
    with site.db.session() as s:
        account = accounts.create(
            s, email=email, password=PASSWORD, hasher=site.hasher, actor=ACTOR, now=real_now()
        )
        account.status = status
        return account.id


@pytest.fixture
def site(settings: Settings) -> Services:
    registry = build_site(settings)
    account_id = add_account(registry, EMAIL, AccountStatus.RESET_REQUIRED)
    now = real_now()
    with registry.db.session() as s:
        s.execute(update(Account).values(reset_reason=REASON))
        s.add(
            Reset(
                account_id=account_id,
                reset_key="job:1",
                reason=REASON,
                actor="cli:t",
                created_at=now,
            )
        )
        for kind, source, status in (
            (FindingKind.VALID_CREDENTIAL, "combos", FindingStatus.OPEN),
            (FindingKind.VALID_CREDENTIAL, "hibp", FindingStatus.DISMISSED),
            (FindingKind.PASSWORD_IN_BREACH, "local", FindingStatus.OPEN),
            (FindingKind.EMAIL_IN_BREACH, "local", FindingStatus.OPEN),
        ):
            s.add(
                Finding(
                    account_id=account_id,
                    kind=kind,
                    source=source,
                    breach="webmail-2022",
                    status=status,
                    first_seen=now,
                    last_seen=now,
                )
            )
    return registry


@pytest.fixture
def web(site: Services) -> Flask:
    return create_app(registry=site)


@pytest.fixture
def browser(web: Flask) -> FlaskClient:
    return web.test_client()


def account_id(site: Services, email: str = EMAIL) -> int:
    with site.db.session() as s:
        return s.execute(select(Account.id).where(Account.email == email)).scalar_one()


def link(site: Services, email: str = EMAIL, *, sent_minutes_ago: float = 0) -> str:
    """A live reset token for the account, as the notice worker would put in the e-mail."""
    aid = account_id(site, email)
    secret = site.settings.secret_key
    sent = real_now() - dt.timedelta(minutes=sent_minutes_ago)
    with site.db.session() as s:
        token_id = tokens.issue(s, [aid], secret_key=secret, now=sent)[aid]
        token = tokens.activate(
            s, token_id, secret_key=secret, lifetime=dt.timedelta(minutes=30), now=sent
        )
    assert token is not None
    return token


def extra_open_token(site: Services, email: str = EMAIL) -> str:
    """A second live token for the same account (issue() would revoke the first one)."""
    aid = account_id(site, email)
    (token_id,) = tokens.new_ids(1)
    token = tokens.derive(site.settings.secret_key, token_id)
    with site.db.session() as s:
        s.add(
            ResetToken(
                id=token_id,
                account_id=aid,
                token_sha256=tokens.digest(token),
                created_at=real_now(),
                expires_at=real_now() + dt.timedelta(minutes=30),
            )
        )
    return token


def csrf(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def post(
    client: FlaskClient, path: str, data: dict[str, str], page: str | None = None
) -> TestResponse:
    return client.post(path, data={**data, "csrf_token": csrf(client, page or path)})


def set_password(
    client: FlaskClient, token: str, new: str, repeat: str | None = None
) -> TestResponse:
    return post(
        client, f"/reset/{token}", {"password": new, "repeat": new if repeat is None else repeat}
    )


def body(response: TestResponse) -> str:
    """The page without its CSRF tokens (signed with a timestamp, so they differ per second)."""
    return CSRF.sub(r'\1=""', response.get_data(as_text=True))


def stored_hash(site: Services, email: str = EMAIL) -> str | None:
    with site.db.session() as s:
        return s.execute(select(Account.password_hash).where(Account.email == email)).scalar_one()


def import_passwords(site: Services, tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "leak.txt"
    path.write_text("\n".join(lines) + "\n")
    with site.db.session() as s:
        Importer(s, site.hasher, ACTOR).run(Source(str(path)), BreachKind.PASSWORDS, breach="leak")


# --- the form -------------------------------------------------------------------------------


def test_a_live_link_shows_the_new_password_form_with_the_reason(
    browser: FlaskClient, site: Services
) -> None:
    token = link(site)
    page = browser.get(f"/reset/{token}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert html.count('autocomplete="new-password"') == 2 and 'minlength="12"' in html
    assert 'name="csrf_token"' in html and REASON in html
    assert token not in html  # the form posts back to its own address
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_the_reset_page_says_why_in_plain_words_and_shows_the_account_as_text(
    browser: FlaskClient, site: Services
) -> None:
    with site.db.session() as s:
        s.execute(update(Account).values(reset_reason_code="password_breached", reset_reason=""))
    html = browser.get(f"/reset/{link(site)}").get_data(as_text=True)
    assert "Your password appears in a leak of stolen passwords" in html
    shown = re.search(r'<p id="reset-account">(.*?)</p>', html, re.S)
    assert shown and EMAIL in shown.group(1)
    # The only field holding the address is hidden, for password managers: nothing to edit.
    fields = re.findall(r"<input[^>]*>", html)
    assert [f for f in fields if EMAIL in f] == [
        f'<input id="username" name="username" type="hidden" autocomplete="username" '
        f'value="{EMAIL}">'
    ]


def test_the_show_password_toggle_is_added_by_a_script_the_page_works_without(
    browser: FlaskClient, site: Services
) -> None:
    html = browser.get(f"/reset/{link(site)}").get_data(as_text=True)
    toggle = re.search(r'<p class="check" hidden>\s*<input id="show-password" [^>]*>', html)
    assert toggle and 'data-show-password="password repeat"' in toggle.group(0)
    assert '<script src="/static/account.js" defer></script>' in html
    assert "<script>" not in html  # the CSP forbids inline script
    assert html.count('type="password"') == 2  # shown as dots until the person asks
    script = browser.get("/static/account.js").get_data(as_text=True)
    assert "data-show-password" in script


def test_showing_the_form_does_not_use_the_link(browser: FlaskClient, site: Services) -> None:
    token = link(site)
    browser.get(f"/reset/{token}")
    assert browser.get(f"/reset/{token}").status_code == 200


# --- refusals -------------------------------------------------------------------------------


def _refused(browser: FlaskClient, site: Services, new: str, repeat: str | None = None) -> str:
    token = link(site)
    before = stored_hash(site)
    response = set_password(browser, token, new, repeat)
    assert response.status_code == 400
    assert stored_hash(site) == before
    assert browser.get(f"/reset/{token}").status_code == 200  # the link still works
    return response.get_data(as_text=True)


def test_a_short_password_is_refused_with_its_message(browser: FlaskClient, site: Services) -> None:
    assert "too short: use at least 12 characters" in _refused(browser, site, "short-pw-1")


def test_two_different_passwords_are_refused_with_their_message(
    browser: FlaskClient, site: Services
) -> None:
    html = _refused(browser, site, NEW, NEW + "x")
    assert "The two passwords are not the same" in html


def test_the_old_password_is_refused_with_its_message(browser: FlaskClient, site: Services) -> None:
    assert "This is your old password" in _refused(browser, site, PASSWORD)


def test_a_breached_password_is_refused_with_how_often_it_was_seen(
    browser: FlaskClient, site: Services, tmp_path: Path
) -> None:
    import_passwords(site, tmp_path, [BREACHED, BREACHED, BREACHED, "something-else-entirely"])
    html = _refused(browser, site, BREACHED)
    assert "This password appears 3 times in known data breaches: choose another." in html


def test_a_too_long_password_is_refused(site: Services) -> None:
    problem = complete.check_new_password(
        "x" * 1025, "x" * 1025, old_hash=None, hasher=site.hasher, checker=site.checker
    )
    assert problem is not None and "too long" in str(problem)


class _DownSource:
    name = "hibp"

    def password_count(self, digest: bytes) -> int:
        raise BreachSourceError("timed out")

    def email_breaches(self, digest: bytes) -> tuple[str, ...]:
        raise BreachSourceError("timed out")


def test_an_unchecked_password_is_refused_only_when_the_policy_is_fail_closed(
    site: Services,
) -> None:
    def problem(fail_closed: bool) -> str | None:
        refused = complete.check_new_password(
            NEW,
            NEW,
            old_hash=stored_hash(site),
            hasher=site.hasher,
            checker=Checker([_DownSource()], fail_closed=fail_closed),
        )
        return None if refused is None else str(refused)

    assert problem(True) == (
        "We could not check this password right now, try again in a few minutes."
    )
    assert problem(False) is None


# --- success --------------------------------------------------------------------------------


def test_a_new_password_is_set_and_the_forced_reset_is_over(
    browser: FlaskClient, site: Services
) -> None:
    token = link(site)
    with site.db.session() as s:
        epoch = s.execute(select(Account.session_epoch)).scalar_one()
    assert set_password(browser, token, NEW).status_code == 302
    with site.db.session() as s:
        account = s.execute(select(Account)).scalar_one()
        assert site.hasher.verify(account.password_hash, NEW).ok
        assert not site.hasher.verify(account.password_hash, PASSWORD).ok
        assert account.status == AccountStatus.ACTIVE and account.reset_reason is None
        assert account.session_epoch == epoch + 1
        assert s.execute(select(Reset.completed_at)).scalar_one() is not None
        used = s.execute(select(ResetToken.used_at)).scalar_one()
        assert used is not None
        events = (
            s.execute(select(AuditEvent).where(AuditEvent.action == "password:changed"))
            .scalars()
            .all()
        )
        assert [(e.target, json.loads(e.details)) for e in events] == [
            (f"account:{account.id}", {"via": "reset"})
        ]
        assert audit.verify(s).ok


def test_a_used_link_does_not_work_twice(browser: FlaskClient, site: Services) -> None:
    token = link(site)
    set_password(browser, token, NEW)
    again = set_password(browser, token, NEW + "-2")
    assert again.status_code == 410 and "This link no longer works" in again.get_data(as_text=True)
    assert site.hasher.verify(stored_hash(site), NEW).ok


def test_a_reset_kills_every_other_link_of_the_account(
    browser: FlaskClient, site: Services
) -> None:
    token = link(site)
    other = extra_open_token(site)
    assert browser.get(f"/reset/{other}").status_code == 200
    set_password(browser, token, NEW)
    assert browser.get(f"/reset/{other}").status_code == 410
    with site.db.session() as s:
        rows = s.execute(select(ResetToken.used_at, ResetToken.revoked_at)).all()
    assert sorted((u is not None, r is not None) for u, r in rows) == [(False, True), (True, False)]


def test_a_reset_resolves_password_findings_but_not_email_findings(
    browser: FlaskClient, site: Services
) -> None:
    set_password(browser, link(site), NEW)
    with site.db.session() as s:
        found = {(f.kind, f.source): f.status for f in s.execute(select(Finding)).scalars()}
    assert found == {
        (FindingKind.VALID_CREDENTIAL, "combos"): FindingStatus.RESOLVED,
        (FindingKind.VALID_CREDENTIAL, "hibp"): FindingStatus.DISMISSED,
        (FindingKind.PASSWORD_IN_BREACH, "local"): FindingStatus.RESOLVED,
        (FindingKind.EMAIL_IN_BREACH, "local"): FindingStatus.OPEN,
    }


def test_a_reset_ends_the_sessions_opened_before_it(settings: Settings) -> None:
    site = build_site(settings)
    add_account(site, "paul@example.fr")
    app = create_app(registry=site)
    other_device, this_device = app.test_client(), app.test_client()
    signed_in = post(
        other_device, "/login", {"email": "paul@example.fr", "password": PASSWORD}, "/login"
    )
    assert signed_in.status_code == 302
    assert other_device.get("/account/security").status_code == 200
    set_password(this_device, link(site, "paul@example.fr"), NEW)
    assert other_device.get("/account/security").status_code == 302
    site.close()


def test_without_a_second_factor_the_reset_signs_in_and_asks_for_one(
    browser: FlaskClient, site: Services
) -> None:
    done = set_password(browser, link(site), NEW)
    assert done.status_code == 302 and done.headers["Location"] == "/account/security"
    page = browser.get("/account/security")
    assert page.status_code == 200
    assert "Your password is changed. Add a second factor now" in page.get_data(as_text=True)
    with site.db.session() as s:
        started = s.execute(
            select(AuditEvent.details).where(AuditEvent.action == "session:started")
        ).scalar_one()
    assert json.loads(started)["method"] == "reset"


def test_with_a_second_factor_the_reset_sends_to_the_sign_in_page(
    browser: FlaskClient, site: Services
) -> None:
    aid = account_id(site)
    with site.db.session() as s:
        s.add(
            MfaFactor(
                account_id=aid,
                kind="totp",
                name="Phone",
                confirmed_at=real_now(),
                secret_enc=site.keys.encrypt(totp.new_secret(), context=factors.context(aid)),
            )
        )
    done = set_password(browser, link(site), NEW)
    assert done.status_code == 302 and done.headers["Location"] == "/login"
    assert browser.get("/account/security").status_code == 302  # no session yet
    login = browser.get("/login").get_data(as_text=True)
    assert "Sign in with it and your second factor." in login


# --- dead links -----------------------------------------------------------------------------


def test_expired_revoked_unknown_and_used_links_get_the_same_page(
    web: Flask, site: Services, settings: Settings
) -> None:
    used = link(site)
    set_password(web.test_client(), used, NEW)
    browser = web.test_client()  # a fresh browser: no "password changed" message pending
    expired = link(site, sent_minutes_ago=31)
    revoked = link(site)
    live = link(site)  # a newer link revokes the one before
    unknown = tokens.derive(settings.secret_key, tokens.new_ids(1)[0])
    # the live link's id with another key's HMAC: found by its id, refused by its digest
    forged = tokens.derive("not-" + settings.secret_key, live[: tokens.ID_CHARS])
    assert forged[: tokens.ID_CHARS] == live[: tokens.ID_CHARS] and forged != live
    pages = {
        name: browser.get(f"/reset/{token}")
        for name, token in {
            "expired": expired,
            "revoked": revoked,
            "unknown": unknown,
            "used": used,
            "forged": forged,
            "one character short": live[:-1],
            "NUL characters": "%00" * tokens.TOKEN_CHARS,  # PostgreSQL refuses NUL in text
            "garbage": "x" * 500,
        }.items()
    }
    assert {p.status_code for p in pages.values()} == {410}
    bodies = {body(p) for p in pages.values()}
    assert len(bodies) == 1
    (page,) = bodies
    assert "a newer e-mail has replaced it. Each new link cancels the one before" in page
    assert '<form method="post" action="/forgot"' in page
    assert EMAIL not in page  # whose link it was is not told, not even as a filled field
    posted = set_password(browser, expired, NEW + "-2")
    assert posted.status_code == 410 and body(posted) == page
    assert browser.get(f"/reset/{live}").status_code == 200  # dead only where it should be


def test_a_dead_link_page_sends_a_new_link_from_its_own_form(
    browser: FlaskClient, site: Services
) -> None:
    old = link(site)
    link(site)  # a newer e-mail replaced it
    dead = browser.get(f"/reset/{old}")
    assert dead.status_code == 410
    answer = post(browser, "/forgot", {"email": EMAIL}, page=f"/reset/{old}")
    assert answer.status_code == 200
    assert "If an account uses this address, we have sent a link" in body(answer)
    with site.db.session() as s:
        kinds = s.execute(select(Notice.kind)).scalars().all()
    assert kinds == ["reset_requested"]


def test_the_dead_link_page_is_french_by_default(web: Flask, site: Services) -> None:
    browser = web.test_client()
    browser.environ_base.pop("HTTP_ACCEPT_LANGUAGE")  # no preference: French
    html = browser.get(f"/reset/{link(site, sent_minutes_ago=31)}").get_data(as_text=True)
    assert '<html lang="fr">' in html
    assert "un e-mail plus récent l'a remplacé" in html


def test_a_link_of_a_disabled_account_does_not_work(browser: FlaskClient, site: Services) -> None:
    token = link(site)
    with site.db.session() as s:
        s.execute(update(Account).values(status=AccountStatus.DISABLED))
    assert browser.get(f"/reset/{token}").status_code == 410
    assert set_password(browser, token, NEW).status_code == 410
    with site.db.session() as s:
        assert s.execute(select(Account.status)).scalar_one() == AccountStatus.DISABLED


def test_a_reset_form_without_its_csrf_token_is_refused(
    browser: FlaskClient, site: Services
) -> None:
    token = link(site)
    response = browser.post(f"/reset/{token}", data={"password": NEW, "repeat": NEW})
    assert response.status_code == 400 and b"expired" in response.data
    assert site.hasher.verify(stored_hash(site), PASSWORD).ok


# --- /forgot --------------------------------------------------------------------------------


def test_the_sign_in_page_links_to_forgot(browser: FlaskClient) -> None:
    assert 'href="/forgot"' in browser.get("/login").get_data(as_text=True)


def test_forgot_answers_the_same_for_a_known_and_an_unknown_address(
    browser: FlaskClient, site: Services
) -> None:
    assert browser.get("/forgot").status_code == 200
    known = post(browser, "/forgot", {"email": "  Claire@Example.FR "})
    unknown = post(browser, "/forgot", {"email": "nobody@example.fr"})
    invalid = post(browser, "/forgot", {"email": "not an address"})
    nul = post(browser, "/forgot", {"email": "claire\x00@example.fr"})  # PostgreSQL: no NUL
    assert known.status_code == unknown.status_code == invalid.status_code == 200
    assert nul.status_code == 200
    assert body(known) == body(unknown) == body(invalid) == body(nul)
    assert (
        "If an account uses this address, we have sent a link to reset its password. "
        "It works for 30 minutes."
    ) in body(known)
    with site.db.session() as s:
        notices = s.execute(select(Notice)).scalars().all()
        assert [(n.account_id, n.kind) for n in notices] == [(account_id(site), "reset_requested")]
        (notice,) = notices
        assert notice.token_id and notice.idempotency_key == f"forgot:{notice.token_id}"
        token = s.get(ResetToken, notice.token_id)
        assert token is not None and token.expires_at is None  # lives from the sending
        actions = s.execute(select(AuditEvent.action)).scalars().all()
    assert actions.count("password:reset:requested") == 1


def test_a_link_asked_for_on_forgot_works_once_sent(browser: FlaskClient, site: Services) -> None:
    post(browser, "/forgot", {"email": EMAIL})
    with site.db.session() as s:
        token_id = s.execute(select(Notice.token_id)).scalar_one()
        assert token_id is not None
        token = tokens.activate(
            s,
            token_id,
            secret_key=site.settings.secret_key,
            lifetime=dt.timedelta(minutes=30),
            now=real_now(),
        )
    assert token is not None
    assert set_password(browser, token, NEW).status_code == 302
    assert site.hasher.verify(stored_hash(site), NEW).ok


def test_forgot_sends_nothing_for_a_disabled_account(browser: FlaskClient, site: Services) -> None:
    with site.db.session() as s:
        s.execute(update(Account).values(status=AccountStatus.DISABLED))
    assert post(browser, "/forgot", {"email": EMAIL}).status_code == 200
    with site.db.session() as s:
        assert s.execute(select(Notice)).first() is None
        assert s.execute(select(ResetToken)).first() is None


def test_forgot_is_rate_limited_per_network_address(settings: Settings) -> None:
    site = build_site(settings, forgot_rate_limit="2 per minute")
    client = create_app(registry=site).test_client()
    statuses = [
        post(client, "/forgot", {"email": f"nobody{i}@example.fr"}).status_code for i in range(3)
    ]
    assert statuses == [200, 200, 429]
    last = post(client, "/forgot", {"email": "nobody9@example.fr"})
    assert last.status_code == 429 and "Too many requests for a reset link" in last.get_data(
        as_text=True
    )
    site.close()


def test_forgot_is_rate_limited_per_email_address(settings: Settings) -> None:
    site = build_site(settings, forgot_rate_limit="2 per minute")
    client = create_app(registry=site).test_client()
    statuses = []
    for i in range(3):
        address = {"REMOTE_ADDR": f"192.0.2.{i + 1}"}
        token = csrf(client, "/forgot")
        response = client.post(
            "/forgot",
            data={"email": EMAIL.upper() if i else EMAIL, "csrf_token": token},
            environ_base=address,
        )
        statuses.append(response.status_code)
    assert statuses == [200, 200, 429]
    site.close()


# --- storage --------------------------------------------------------------------------------


def test_no_token_is_ever_stored_in_plaintext(browser: FlaskClient, site: Services) -> None:
    post(browser, "/forgot", {"email": EMAIL})
    with site.db.session() as s:
        token_id = s.execute(select(Notice.token_id)).scalar_one()
        assert token_id is not None
        sent = tokens.activate(
            s,
            token_id,
            secret_key=site.settings.secret_key,
            lifetime=dt.timedelta(minutes=30),
            now=real_now(),
        )
    assert sent is not None
    other = link(site)
    set_password(browser, other, NEW)
    with site.db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                for value in row:
                    text = value.hex() if isinstance(value, bytes) else str(value)
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    for token in (sent, other):
                        assert token not in text and token.encode() not in raw, table.name


# --- how long links live --------------------------------------------------------------------


class Outbox:
    """A mailer keeping what it is given."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        self.sent.append(message)


def send_notices(site: Services, sent: dt.datetime) -> list[EmailMessage]:
    """Send the queued notices as if the worker had run at `sent` (made due by then)."""
    with site.db.session() as s:
        s.execute(update(Notice).where(Notice.sent_at.is_(None)).values(next_attempt_at=sent))
    outbox = Outbox()
    notify.drain(site.db, mailer=outbox, settings=site.settings, now=lambda: sent)
    return outbox.sent


def link_in(message: EmailMessage) -> str:
    text = message.get_body(("plain",))
    assert text is not None
    match = re.search(r"/reset/([A-Za-z0-9_-]+)", text.get_content())
    assert match
    return match.group(1)


def force_reset(site: Services, key: str, now: dt.datetime, email: str = EMAIL) -> None:
    """Reset the account as an operator's job does (an active account: a job skips one
    already waiting for its reset)."""
    plan = forced.Plan("", key, None, require_mfa=True, actor=ACTOR)
    with site.db.session() as s:
        s.execute(update(Account).values(status=AccountStatus.ACTIVE))
        forced.apply(
            s,
            [forced.Target(account_id(site, email))],
            plan,
            secret_key=site.settings.secret_key,
            now=now,
        )


def test_a_forced_reset_link_lives_long_enough_for_a_daily_reader_of_e_mail(
    browser: FlaskClient, site: Services
) -> None:
    assert site.settings.reset_forced_token_hours == 72
    sent = real_now() - dt.timedelta(hours=71)
    force_reset(site, "job:lifetime-1", sent)
    [message] = send_notices(site, sent)
    text = message.get_body(("plain",))
    said = " ".join(text.get_content().split()) if text else ""
    assert "expire 72 heures après l'envoi de cet e-mail" in said  # French by default
    token = link_in(message)
    with site.db.session() as s:
        row = s.get_one(ResetToken, token[: tokens.ID_CHARS])
        assert row.expires_at is not None
        assert row.expires_at.replace(tzinfo=dt.UTC) - sent == dt.timedelta(hours=72)
    assert browser.get(f"/reset/{token}").status_code == 200  # read after 71 hours: still open
    late_sent = real_now() - dt.timedelta(hours=73)  # another reset, its e-mail read too late
    force_reset(site, "job:lifetime-2", late_sent)
    [late] = send_notices(site, late_sent)
    assert browser.get(f"/reset/{link_in(late)}").status_code == 410


def test_a_forced_reset_link_lives_as_long_as_reset_forced_token_hours(
    settings: Settings,
) -> None:
    site = build_site(settings, reset_forced_token_hours=2)
    add_account(site, EMAIL)
    browser = create_app(registry=site).test_client()
    sent = real_now() - dt.timedelta(minutes=119)
    force_reset(site, "job:lifetime-1", sent)
    [message] = send_notices(site, sent)
    assert browser.get(f"/reset/{link_in(message)}").status_code == 200
    late_sent = real_now() - dt.timedelta(minutes=121)
    force_reset(site, "job:lifetime-2", late_sent)
    [late] = send_notices(site, late_sent)
    assert browser.get(f"/reset/{link_in(late)}").status_code == 410


def test_a_link_asked_for_on_forgot_keeps_its_short_life(
    browser: FlaskClient, site: Services
) -> None:
    post(browser, "/forgot", {"email": EMAIL})  # queued now, due at once
    [message] = send_notices(site, real_now() - dt.timedelta(minutes=29))
    text = message.get_body(("plain",))
    said = " ".join(text.get_content().split()) if text else ""
    assert "expire 30 minutes après l'envoi de cet e-mail" in said
    assert browser.get(f"/reset/{link_in(message)}").status_code == 200
    post(browser, "/forgot", {"email": EMAIL})
    [late] = send_notices(site, real_now() - dt.timedelta(minutes=31))
    assert browser.get(f"/reset/{link_in(late)}").status_code == 410
