"""Sign-in risk through the login hook over HTTP and through the /login page: password
spraying, credential stuffing, a new network's e-mail (to a real SMTP server on loopback)
and "this wasn't me" (from the e-mail's link and from /account/security, with CSRF).
SQLite, PostgreSQL and Redis through the fixtures."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from auth import accounts, apikeys, audit, notify
from auth.activity.signin_risk import SignInRisk
from auth.cli import main as cli
from auth.config import Settings
from auth.models import (
    Account,
    AccountNetwork,
    Alert,
    AlertKind,
    AuditEvent,
    Base,
    IpBan,
    Notice,
    SignInRecord,
    utcnow,
)
from auth.services import Services, build
from auth.web.factory import create_app
from tests.test_admin_console import csrf
from tests.test_notify import Smtp, _Collect

PASSWORD = "Correct-Horse-Battery-42"
SPRAYED = "Printemps2026!"
ACTOR = audit.Actor.cli("test")
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0"


@pytest.fixture
def site(settings: Settings) -> Iterator[Services]:
    registry = build(
        dataclasses.replace(
            settings,
            login_rate_limit="1000 per minute",
            hook_rate_limit="1000 per minute",
            spray_accounts=5,
            stuffing_accounts=4,
        )
    )
    yield registry
    registry.close()


@pytest.fixture
def web(site: Services) -> Flask:
    app = create_app(registry=site)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def portal(web: Flask, site: Services) -> FlaskClient:
    with site.db.session() as s:
        token = apikeys.create(s, role="hook", name="portal", actor=ACTOR, now=utcnow()).token
    client = web.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp(_Collect())
    yield server
    server.controller.stop()


def make(site: Services, email: str) -> int:
    with site.db.session() as s:
        account = accounts.create(
            s, email=email, password=PASSWORD, hasher=site.hasher, actor=ACTOR, now=utcnow()
        )
        return account.id


def french(web: Flask) -> FlaskClient:
    """A person's browser, in French (the tests' clients speak English by default)."""
    browser = web.test_client()
    browser.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    return browser


def hook(portal: FlaskClient, email: str, password: str, ip: str, ua: str = FIREFOX) -> dict:
    body = {"email": email, "password": password, "ip": ip, "user_agent": ua}
    response = portal.post("/api/v1/hook/login", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.json or {})


def alerts(site: Services, kind: AlertKind) -> list[Alert]:
    with site.db.session() as s:
        found = list(s.execute(select(Alert).where(Alert.kind == kind.value)).scalars())
        s.expunge_all()
        return found


def everything_stored(site: Services) -> str:
    """Every row of every table, as text."""
    with site.db.connection() as conn:
        return "\n".join(repr(list(conn.execute(select(t)))) for t in Base.metadata.sorted_tables)


# --- password spraying ----------------------------------------------------------------------


def test_one_wrong_password_against_many_accounts_raises_one_spray_alert_and_requires_a_factor(
    site: Services, portal: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ids = [make(site, f"dr.{i}@example.org") for i in range(7)]
    for i in range(7):  # each from another network: no per-address rule sees it
        answer = hook(portal, f"dr.{i}@example.org", SPRAYED, ip=f"198.51.{i}.7")
        assert answer["decision"] == "deny"
    (spray,) = alerts(site, AlertKind.PASSWORD_SPRAY)
    assert sorted(spray.accounts) == ids  # the five that crossed the line, then the others
    assert spray.occurrences == 3 and spray.cause.startswith("spray:")
    with site.db.session() as s:
        required = s.execute(select(Account.id).where(Account.mfa_required.is_(True))).scalars()
        assert sorted(required) == ids
    # the digest it was counted under is nowhere: not stored, not logged, not in the alert
    digest = SignInRisk.from_settings(site.settings).digest(SPRAYED)
    assert digest not in everything_stored(site)
    assert digest not in caplog.text and SPRAYED not in caplog.text
    assert digest not in json.dumps([spray.cause, spray.evidence])
    if site.settings.redis_url:  # kept there only under its key, expiring with the window
        import redis

        client = redis.Redis.from_url(site.settings.redis_url)
        prefix = site.settings.ratelimit_key_prefix
        (key,) = client.keys(f"{prefix}:risk:spray:*")
        assert key.decode() == f"{prefix}:risk:spray:{digest}"
        assert 0 < client.ttl(key) <= site.settings.spray_window + 1
    # a person of a sprayed account with the right password must now add a factor
    assert hook(portal, "dr.0@example.org", PASSWORD, ip="192.0.2.10")["decision"] == (
        "enroll_required"
    )


def test_different_wrong_passwords_on_many_accounts_are_no_spray(
    site: Services, portal: FlaskClient
) -> None:
    for i in range(7):
        make(site, f"dr.{i}@example.org")
        hook(portal, f"dr.{i}@example.org", f"guess-{i}", ip=f"198.51.{i}.7")
    assert alerts(site, AlertKind.PASSWORD_SPRAY) == []


# --- credential stuffing --------------------------------------------------------------------


def test_many_accounts_failing_from_one_network_ban_it_and_raise_an_alert(
    site: Services, portal: FlaskClient
) -> None:
    make(site, "real@example.org")
    leaked = ["real@example.org", "a@example.org", "b@example.org", "c@example.org"]
    for i, email in enumerate(leaked):
        assert hook(portal, email, f"leaked-{i}", ip=f"203.0.113.{i + 1}")["decision"] == "deny"
    with site.db.session() as s:
        (ban,) = s.execute(select(IpBan)).scalars()
        assert ban.network == "203.0.113.0/24" and ban.automatic
        assert ban.expires_at is not None
    (alert,) = alerts(site, AlertKind.CREDENTIAL_STUFFING)
    assert alert.cause == "network:203.0.113.0/24"
    assert alert.evidence["accounts"] == 4 and alert.evidence["failures"] == 4
    # the whole network is refused now, even with the right password
    answer = hook(portal, "real@example.org", PASSWORD, ip="203.0.113.200")
    assert answer["decision"] == "deny"


def test_an_office_signing_in_to_many_accounts_successfully_is_not_banned(
    site: Services, portal: FlaskClient
) -> None:
    for i in range(6):
        make(site, f"nurse.{i}@example.org")
        assert hook(portal, f"nurse.{i}@example.org", PASSWORD, ip="192.0.2.50")["decision"] == (
            "allow"
        )
    assert alerts(site, AlertKind.CREDENTIAL_STUFFING) == []


# --- a new network --------------------------------------------------------------------------


def test_a_sign_in_from_a_new_network_is_recorded_told_by_e_mail_and_alerted(
    site: Services, portal: FlaskClient, web: Flask, smtp: Smtp
) -> None:
    account_id = make(site, "claire@example.fr")
    assert hook(portal, "claire@example.fr", PASSWORD, ip="192.0.2.10")["decision"] == "allow"
    assert hook(portal, "claire@example.fr", PASSWORD, ip="192.0.2.99")["decision"] == "allow"
    assert alerts(site, AlertKind.NEW_SIGN_IN) == []  # the first network became known
    # no factor: let in as the policy says, but the person is told
    assert hook(portal, "claire@example.fr", PASSWORD, ip="203.0.113.7")["decision"] == "allow"
    with site.db.session() as s:
        records = list(s.execute(select(SignInRecord).order_by(SignInRecord.id)).scalars())
        assert [(r.network, r.new_network, r.outcome, r.via) for r in records] == [
            ("192.0.2.0/24", False, "allow", "hook"),
            ("192.0.2.0/24", False, "allow", "hook"),
            ("203.0.113.0/24", True, "allow", "hook"),
        ]
        networks = s.execute(
            select(AccountNetwork.network).where(AccountNetwork.account_id == account_id)
        ).scalars()
        assert sorted(networks) == ["192.0.2.0/24", "203.0.113.0/24"]
        (notice,) = s.execute(select(Notice)).scalars()
        assert notice.kind == "new_sign_in"
    (alert,) = alerts(site, AlertKind.NEW_SIGN_IN)
    assert alert.cause == f"account:{account_id}" and alert.accounts == [account_id]

    settings = dataclasses.replace(site.settings, smtp_url=smtp.url)
    report = notify.drain(site.db, mailer=notify.SmtpMailer(smtp.url, timeout=5), settings=settings)
    assert report.sent == 1
    (mail,) = smtp.messages
    assert mail["Subject"] == "Nouvelle connexion à votre compte"
    body = mail.get_body(("plain",)).get_content()
    assert "203.0.113.7" in body and "203.0.113.0/24" in body
    assert "Firefox sur Windows" in body and "(heure de Paris)" in body
    link = re.search(r"http://localhost:5000(/not-me/\S+)", body)
    assert link is not None

    # "this wasn't me", from the link: a page that asks, then a POST with CSRF that acts
    browser = french(web)
    page = browser.get(link.group(1))
    assert page.status_code == 200 and "203.0.113.7" in page.get_data(as_text=True)
    token = csrf(browser, link.group(1))
    done = browser.post(link.group(1), data={"csrf_token": token})
    assert done.status_code == 200
    assert "Votre compte est protégé" in done.get_data(as_text=True)
    with site.db.session() as s:
        account = s.get_one(Account, account_id)
        assert account.status == "reset_required" and account.reset_reason_code == "not_me"
        assert account.mfa_required
        reset_mail = s.execute(
            select(Notice).where(Notice.kind == "reset_forced", Notice.account_id == account_id)
        ).scalar_one()
        assert reset_mail.reason_code == "not_me"
        ended = s.execute(
            select(AuditEvent).where(AuditEvent.action == audit.Action.SESSIONS_ENDED.value)
        ).scalar_one()
        assert ended.target == f"account:{account_id}"
    (not_me,) = alerts(site, AlertKind.NOT_ME)
    assert not_me.suspected_from == records[2].at  # the first sign-in from the new network
    # the link works once
    again = browser.post(link.group(1), data={"csrf_token": csrf(browser)})
    assert again.status_code == 404


def test_a_new_network_asks_the_factor_and_becomes_known_only_after_it(
    site: Services, web: Flask, smtp: Smtp
) -> None:
    from tests.totp_helpers import enroll_totp, next_code

    account_id = make(site, "luc@example.fr")
    secret = enroll_totp(site, account_id)
    browser = french(web)

    def sign_in(ip: str) -> None:
        browser.environ_base["REMOTE_ADDR"] = ip
        token = csrf(browser)
        form = {"email": "luc@example.fr", "password": PASSWORD, "csrf_token": token}
        assert browser.post("/login", data=form).status_code == 302
        with site.db.session() as s:
            known = set(s.execute(select(AccountNetwork.network)).scalars())
        assert "198.18.0.0/24" not in known  # not before the factor
        token = csrf(browser, "/login/mfa")
        done = browser.post("/login/mfa", data={"code": next_code(secret), "csrf_token": token})
        assert done.status_code == 302

    browser.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    with site.db.connection() as conn:
        conn.execute(
            AccountNetwork.__table__.insert().values(
                account_id=account_id, network="192.0.2.0/24", first_at=utcnow(), last_at=utcnow()
            )
        )
    sign_in("198.18.0.5")
    with site.db.session() as s:
        known = set(s.execute(select(AccountNetwork.network)).scalars())
        record = s.execute(select(SignInRecord)).scalar_one()
    assert known == {"192.0.2.0/24", "198.18.0.0/24"}
    assert (record.outcome, record.new_network, record.via) == ("mfa_required", True, "pages")
    assert len(alerts(site, AlertKind.NEW_SIGN_IN)) == 1


def test_the_security_page_lists_ones_sign_ins_and_this_wasnt_me_secures_the_account(
    site: Services, portal: FlaskClient, web: Flask
) -> None:
    account_id = make(site, "ines@example.fr")
    hook(portal, "ines@example.fr", PASSWORD, ip="192.0.2.10")
    hook(
        portal, "ines@example.fr", PASSWORD, ip="203.0.113.7", ua="Mozilla/5.0 (iPhone) Safari/605"
    )
    hook(portal, "ines@example.fr", "wrong", ip="203.0.113.7")
    browser = french(web)
    browser.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    form = {"email": "ines@example.fr", "password": PASSWORD, "csrf_token": csrf(browser)}
    assert browser.post("/login", data=form).status_code == 302
    page = browser.get("/account/security").get_data(as_text=True)
    listed = page[page.index('id="sign-ins"') :]
    assert "Safari sur iPhone" in listed and "nouveau réseau" in listed
    assert "refusée : mauvais mot de passe" in listed
    assert 'href="/account/security/not-me"' in listed  # asked first, on a page of its own
    asked = browser.get("/account/security/not-me").get_data(as_text=True)
    assert 'action="/account/security/not-me"' in asked and "y compris celui-ci" in asked
    with site.db.session() as s:
        assert s.get_one(Account, account_id).status == "active"  # asking changes nothing
    token = csrf(browser, "/account/security/not-me")
    assert browser.post("/account/security/not-me", data={}).status_code == 400  # no CSRF
    done = browser.post("/account/security/not-me", data={"csrf_token": token})
    assert done.status_code == 200 and 'id="not-me-done"' in done.get_data(as_text=True)
    assert browser.get("/account/security").status_code == 302  # signed out
    (alert,) = alerts(site, AlertKind.NOT_ME)
    with site.db.session() as s:
        first_new = (
            s.execute(
                select(SignInRecord.at)
                .where(SignInRecord.new_network.is_(True))
                .order_by(SignInRecord.id)
            )
            .scalars()
            .first()
        )
        assert s.get_one(Account, account_id).status == "reset_required"
    assert alert.suspected_from == first_new
    assert "203.0.113.7" in alert.addresses
    assert isinstance(alert.suspected_from, dt.datetime)


def test_a_forged_or_expired_not_me_link_acts_on_nothing(site: Services, web: Flask) -> None:
    from auth.activity import not_me

    account_id = make(site, "paul@example.fr")
    with site.db.session() as s:
        s.add(
            SignInRecord(
                account_id=account_id, ip="203.0.113.7", network="203.0.113.0/24", outcome="allow"
            )
        )
        s.flush()
        record_id = s.execute(select(SignInRecord.id)).scalar_one()
    key, now = site.settings.secret_key, utcnow()
    live = not_me.make_token(
        key, sign_in_id=record_id, epoch=0, expires=now + dt.timedelta(hours=1)
    )
    expired = not_me.make_token(
        key, sign_in_id=record_id, epoch=0, expires=now - dt.timedelta(seconds=1)
    )
    other_key = not_me.make_token(
        "another-key", sign_in_id=record_id, epoch=0, expires=now + dt.timedelta(hours=1)
    )
    forged = live.replace(f"{record_id}.0.", f"{record_id}.1.")  # another epoch, same MAC
    browser = french(web)
    assert browser.get(f"/not-me/{live}").status_code == 200
    for dead in (expired, other_key, forged, "not-a-token", live + "x", "1.2.3.é"):
        assert browser.get(f"/not-me/{dead}").status_code == 404, dead
        answer = browser.post(f"/not-me/{dead}", data={"csrf_token": csrf(browser)})
        assert answer.status_code == 404, dead
    with site.db.session() as s:
        assert s.get_one(Account, account_id).status == "active"
    assert alerts(site, AlertKind.NOT_ME) == []


def test_through_the_hook_a_new_network_becomes_known_after_the_second_step(
    site: Services, portal: FlaskClient
) -> None:
    from tests.totp_helpers import enroll_totp, next_code

    account_id = make(site, "marc@example.fr")
    secret = enroll_totp(site, account_id)
    first = hook(portal, "marc@example.fr", PASSWORD, ip="2001:db8:1:2::5")
    assert first["decision"] == "mfa_required"
    with site.db.session() as s:
        assert s.execute(select(AccountNetwork)).first() is None
    body = {
        "continuation": first["continuation"],
        "ip": "2001:db8:1:2::5",
        "code": next_code(secret),
    }
    assert portal.post("/api/v1/hook/mfa", json=body).json["decision"] == "allow"
    with site.db.session() as s:
        (network,) = s.execute(select(AccountNetwork.network)).scalars()
    assert network == "2001:db8:1::/48"


def test_the_new_sign_in_e_mail_speaks_the_persons_language(
    site: Services, portal: FlaskClient, smtp: Smtp
) -> None:
    account_id = make(site, "anna@example.org")
    with site.db.session() as s:
        s.get_one(Account, account_id).language = "en"
    hook(portal, "anna@example.org", PASSWORD, ip="192.0.2.10")
    hook(portal, "anna@example.org", PASSWORD, ip="203.0.113.7")
    notify.drain(site.db, mailer=notify.SmtpMailer(smtp.url, timeout=5), settings=site.settings)
    (mail,) = smtp.messages
    assert mail["Subject"] == "New sign-in to your account"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for body in (text, html):
        assert "Firefox on Windows" in body and "(Paris time)" in body and "/not-me/" in body


def test_the_console_lists_an_accounts_recent_sign_ins(
    site: Services, portal: FlaskClient, web: Flask
) -> None:
    from auth.console import admins
    from tests.test_admin_console import sign_in
    from tests.totp_helpers import enroll_totp, next_code

    admin_id = make(site, "secu@chu.example")
    with site.db.session() as s:
        admins.set_admin(s, email="secu@chu.example", admin=True, actor=ACTOR, now=utcnow())
    user = make(site, "remi@example.fr")
    hook(portal, "remi@example.fr", PASSWORD, ip="192.0.2.10")
    hook(portal, "remi@example.fr", "wrong", ip="203.0.113.7", ua="curl/8.5.0")
    console = french(web)
    sign_in(console, "secu@chu.example", next_code(enroll_totp(site, admin_id)))
    page = console.get(f"/admin/accounts/{user}").get_data(as_text=True)
    listed = page[
        page.index('id="account-sign-ins"') : page.index(
            "</table>", page.index('id="account-sign-ins"')
        )
    ]
    rows = re.findall(r"<tr>(.*?)</tr>", listed, re.S)[1:]
    assert len(rows) == 2
    assert "203.0.113.7" in rows[0] and "Refusée" in rows[0] and "Oui" in rows[0]
    assert "un navigateur ou programme inconnu" in rows[0]
    assert "192.0.2.10" in rows[1] and "Admis" in rows[1] and "Firefox sur Windows" in rows[1]


def test_without_its_redis_a_sign_in_still_answers_and_the_outage_is_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from auth.signin.flow import SignIn
    from tests.test_redis_down import free_port

    down = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    registry = build(down)
    try:
        make(registry, "hugo@example.fr")
        flow = SignIn(registry, sleep=lambda _: None)
        assert flow.login("hugo@example.fr", PASSWORD, ip="192.0.2.10").decision == "allow"
        assert flow.login("hugo@example.fr", SPRAYED, ip="192.0.2.10").decision == "deny"
    finally:
        registry.close()
    assert "sign-in risk counters unavailable: ConnectionError" in caplog.text


def test_this_wasnt_me_keeps_what_was_looked_up_since_the_new_networks_sign_in(
    site: Services, portal: FlaskClient, web: Flask, runner: CliRunner
) -> None:
    make(site, "zoe@example.fr")
    start = utcnow()

    def lookup(subject: str, ip: str, at: dt.datetime) -> None:
        body = {"account": "zoe@example.fr", "session": f"s-{ip}", "ip": ip}
        body |= {"action": "patient_lookup", "subject": subject, "at": at.isoformat()}
        assert portal.post("/api/v1/activity", json=body).status_code == 200

    hook(portal, "zoe@example.fr", PASSWORD, ip="192.0.2.10")  # her office, her first network
    lookup("OWN-1", "192.0.2.10", start - dt.timedelta(minutes=30))
    hook(portal, "zoe@example.fr", PASSWORD, ip="203.0.113.7")  # someone else, elsewhere
    for n in range(3):
        lookup(f"THEIRS-{n}", "203.0.113.7", utcnow())

    browser = french(web)
    browser.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    form = {"email": "zoe@example.fr", "password": PASSWORD, "csrf_token": csrf(browser)}
    assert browser.post("/login", data=form).status_code == 302
    token = csrf(browser, "/account/security/not-me")
    assert browser.post("/account/security/not-me", data={"csrf_token": token}).status_code == 200

    (alert,) = alerts(site, AlertKind.NOT_ME)
    listed = runner.invoke(
        cli, ["report", "exposure", "--alert", str(alert.id), "--format", "json"]
    )
    assert listed.exit_code == 0, listed.output
    subjects = [s["subject"] for s in json.loads(listed.output)["subjects"]]
    assert subjects == ["THEIRS-0", "THEIRS-1", "THEIRS-2"]
