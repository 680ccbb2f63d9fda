"""The login hook over HTTP (/api/v1/hook/…): request checking, the answer's shape, the
second step with TOTP and with a WebAuthn assertion, and the per-person address limit."""

from __future__ import annotations

import dataclasses
import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from auth import accounts, apikeys, audit
from auth.config import Settings
from auth.mfa import webauthn as wa
from auth.models import Account, ApiKey, AuditEvent, utcnow
from auth.services import Services, build
from auth.web.factory import create_app
from tests.soft_authenticator import ORIGIN, SoftAuthenticator
from tests.totp_helpers import enroll_totp, next_code

PASSWORD = "Correct-Horse-Battery-42"
EMAIL = "claire@example.fr"
ACTOR = audit.Actor.cli("test")
IP = "198.51.100.23"


@pytest.fixture
def site(settings: Settings) -> Services:
    registry = build(
        dataclasses.replace(settings, login_rate_limit="5 per minute", webauthn_origins=(ORIGIN,))
    )
    with registry.db.session() as s:
        accounts.create(
            s, email=EMAIL, password=PASSWORD, hasher=registry.hasher, actor=ACTOR, now=utcnow()
        )
    return registry


@pytest.fixture
def web(site: Services) -> Flask:
    return create_app(registry=site)


@pytest.fixture
def portal(web: Flask, site: Services) -> FlaskClient:
    """The portal's client: every call carries its hook key."""
    with site.db.session() as s:
        token = apikeys.create(s, role="hook", name="portal", actor=ACTOR, now=utcnow()).token
    client = web.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def login(portal: FlaskClient, password: str = PASSWORD, ip: str = IP, **extra: str) -> dict:
    body = {"email": EMAIL, "password": password, "ip": ip, "user_agent": "Firefox/140"} | extra
    response = portal.post("/api/v1/hook/login", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()  # type: ignore[no-any-return]


def the_account(site: Services) -> Account:
    with site.db.session() as s:
        found = s.query(Account).filter_by(email=EMAIL).one()
        s.expunge(found)
        return found


def test_every_decision_is_a_200_with_the_documented_fields(portal: FlaskClient) -> None:
    allowed = login(portal)
    assert allowed == {
        "decision": "allow",
        "reasons": ["no_mfa_required"],
        "factors": [],
        "continuation": None,
        "continuation_expires_at": None,
        "enroll_by": None,
        "message": None,
    }
    denied = login(portal, password="wrong")
    assert (denied["decision"], denied["reasons"]) == ("deny", ["invalid_credentials"])
    # a NUL (which PostgreSQL cannot even look up) is an unknown account, not a 500
    nul = login(portal, email="claire\x00@example.fr", password="n\x00pe", user_agent="\x00")
    assert (nul["decision"], nul["reasons"]) == ("deny", ["invalid_credentials"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "x", "ip": IP}, "email"),
        ({"email": EMAIL, "ip": IP}, "password"),
        ({"email": EMAIL, "password": "x"}, "ip"),
        ({"email": EMAIL, "password": "x", "ip": "999.1.1.1"}, "ip"),
        ({"email": EMAIL, "password": "x" * 1025, "ip": IP}, "password"),
        ({"email": EMAIL, "password": "x", "ip": IP, "user_agent": 5}, "user_agent"),
    ],
)
def test_a_malformed_request_is_a_400_naming_the_field(
    portal: FlaskClient, body: dict, field: str
) -> None:
    response = portal.post("/api/v1/hook/login", json=body)
    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_not_json_is_a_400(portal: FlaskClient) -> None:
    response = portal.post("/api/v1/hook/login", data="email=a", content_type="text/plain")
    assert response.status_code == 400


def test_without_a_hook_key_the_hook_says_401(web: Flask) -> None:
    response = web.test_client().post("/api/v1/hook/login", json={})
    assert response.status_code == 401


def _trail(site: Services) -> list[str]:
    with site.db.session() as s:
        return list(s.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


@pytest.mark.parametrize(
    ("role", "flaw", "status"),
    [("hook", "wrong secret", 401), ("hook", "revoked", 401), ("security", "none", 403)],
)
def test_a_bad_key_is_refused_before_any_hashing_or_writing(
    web: Flask, site: Services, role: str, flaw: str, status: int
) -> None:
    """The hook checks its key before anything else: a refused key leaves no trace of the
    sign-in (no decision recorded, no failure counted)."""
    with site.db.session() as s:
        key = apikeys.create(s, role=role, name="k", actor=ACTOR, now=utcnow())
    token = key.token
    if flaw == "wrong secret":
        token = token[:-1] + ("x" if token[-1] != "x" else "y")
    if flaw == "revoked":
        with site.db.session() as s:
            apikeys.revoke(s, key.id, actor=ACTOR, now=utcnow())
    before = _trail(site)
    client = web.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    body = {"email": EMAIL, "password": "wrong", "ip": IP}
    assert client.post("/api/v1/hook/login", json=body).status_code == status
    assert _trail(site) == before
    assert the_account(site).failed_logins == 0
    # A malformed request with a bad key is refused for the key, not for the body.
    assert client.post("/api/v1/hook/login", json={"ip": IP}).status_code == status


@pytest.mark.parametrize(("role", "status"), [("hook", 401), ("security", 403)])
def test_a_flood_on_a_locked_account_still_checks_every_key(
    portal: FlaskClient, web: Flask, site: Services, role: str, status: int
) -> None:
    with site.db.session() as s:
        s.execute(update(Account).where(Account.email == EMAIL).values(status="locked"))
        key = apikeys.create(s, role=role, name="k", actor=ACTOR, now=utcnow())
    assert login(portal, ip="198.51.100.1")["decision"] == "deny"  # remembered from here
    token = key.token if role != "hook" else key.token[:-1] + ("x" if key.token[-1] != "x" else "y")
    client = web.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    body = {"email": EMAIL, "password": PASSWORD, "ip": "198.51.100.2"}
    assert client.post("/api/v1/hook/login", json=body).status_code == status
    assert login(portal, ip="198.51.100.3")["decision"] == "deny"


def test_a_key_revoked_between_two_sign_ins_is_refused_at_once(
    portal: FlaskClient, site: Services
) -> None:
    with site.db.session() as s:
        key_id = s.execute(select(ApiKey.id)).scalar_one()
    assert login(portal, ip="198.51.100.1")["decision"] == "allow"
    with site.db.session() as s:
        apikeys.revoke(s, key_id, actor=ACTOR, now=utcnow())
    body = {"email": EMAIL, "password": PASSWORD, "ip": "198.51.100.2"}
    assert portal.post("/api/v1/hook/login", json=body).status_code == 401


def test_the_hook_marks_its_key_used(portal: FlaskClient, site: Services) -> None:
    login(portal)
    with site.db.session() as s:
        key_id, used = s.execute(select(ApiKey.id, ApiKey.last_used_at)).one()
        decided = s.execute(select(AuditEvent).order_by(AuditEvent.seq.desc())).scalars().first()
    assert used is not None
    assert decided is not None and decided.action == "login:decided"
    assert json.loads(decided.details)["via"] == f"hook:{key_id}"


def test_the_limit_counts_per_end_user_address_not_per_portal(portal: FlaskClient) -> None:
    for _ in range(5):
        login(portal)
    assert (
        portal.post(
            "/api/v1/hook/login", json={"email": EMAIL, "password": "x", "ip": IP}
        ).status_code
        == 429
    )
    # Another person behind the same portal is not affected.
    assert login(portal, ip="198.51.100.24")["decision"] == "allow"


def test_the_second_step_has_its_own_budget_per_address(portal: FlaskClient) -> None:
    for _ in range(5):
        login(portal)
    assert portal.post("/api/v1/hook/login", json={"ip": IP}).status_code == 429
    # The same address has spent its sign-in budget, not its second-step budget.
    second = portal.post("/api/v1/hook/mfa", json={"continuation": "x", "code": "123456", "ip": IP})
    assert second.status_code == 200 and second.get_json()["decision"] == "deny"


def test_totp_second_step_over_http(portal: FlaskClient, site: Services) -> None:
    secret = enroll_totp(site, the_account(site).id)
    first = login(portal)
    assert (first["decision"], first["factors"]) == ("mfa_required", ["totp"])
    assert first["continuation_expires_at"].endswith("Z")
    token = first["continuation"]
    both = portal.post(
        "/api/v1/hook/mfa", json={"continuation": token, "ip": IP, "code": "1", "webauthn": {}}
    )
    assert both.status_code == 400 and both.get_json()["field"] == "code"
    wrong = portal.post(
        "/api/v1/hook/mfa", json={"continuation": token, "ip": IP, "code": "000000"}
    )
    assert wrong.get_json()["decision"] == "deny"
    code = next_code(secret)
    right = portal.post("/api/v1/hook/mfa", json={"continuation": token, "ip": IP, "code": code})
    assert right.get_json()["decision"] == "allow"


def test_webauthn_second_step_over_http(portal: FlaskClient, site: Services) -> None:
    account = the_account(site)
    rp = wa.RelyingParty.from_settings(site.settings)
    key = SoftAuthenticator()
    challenge_id, options = wa.begin_registration(site.db, account=account, rp=rp, now=utcnow())
    wa.finish_registration(
        site.db,
        account=account,
        challenge_id=challenge_id,
        credential=key.create(options),
        name="YubiKey",
        rp=rp,
        now=utcnow(),
        actor=ACTOR,
    )
    first = login(portal)
    assert first["factors"] == ["webauthn"]
    token = first["continuation"]
    no_options_yet = portal.post(
        "/api/v1/hook/mfa", json={"continuation": token, "ip": IP, "webauthn": {"id": "x"}}
    )
    assert no_options_yet.get_json()["decision"] == "deny"
    options = portal.post("/api/v1/hook/mfa/webauthn/options", json={"continuation": token})
    assert options.status_code == 200
    request_options = json.loads(options.get_data())
    assert request_options["allowCredentials"]
    assertion = key.get(options.get_data(as_text=True), counter=1)
    done = portal.post(
        "/api/v1/hook/mfa", json={"continuation": token, "ip": IP, "webauthn": assertion}
    )
    assert done.get_json()["decision"] == "allow"
    unknown = portal.post("/api/v1/hook/mfa/webauthn/options", json={"continuation": token})
    assert unknown.status_code == 404 and unknown.get_json()["field"] == "continuation"
