"""Schemathesis against /api/v1/openapi.json: no 5xx, and every answer as the spec says.

Every operation of the spec is fuzzed through the WSGI app (no server): the bearer routes
with an admin key (admin has every scope, so the calls get past authentication into the
code), the browser's WebAuthn routes (/api/v1/mfa/*) with a real session cookie and its
CSRF token, the HIBP-compatible ranges as they are. Rate limits are generous here so a
429 does not hide what a call would have done; the limits themselves are tested in
test_api_limits.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from dataclasses import dataclass

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from auth import accounts, apikeys, audit
from auth.config import Settings
from auth.mfa import webauthn as wa
from auth.services import Services, build
from auth.web.factory import create_app
from auth.web.openapi import SPEC
from tests.soft_authenticator import ORIGIN, SoftAuthenticator

PASSWORD = "Correct-Horse-Battery-42"
GENEROUS = "100000 per minute"
NOTIFY_TOKEN = "hibp-callback-token-for-tests"
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
ACTOR = audit.Actor.cli("fuzz")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """conftest's settings (SQLite copy or TEST_DATABASE_URL, cheap argon2), generous limits."""
    return dataclasses.replace(
        settings,
        api_rate_limit=GENEROUS,
        secret_rate_limit=GENEROUS,
        hook_rate_limit=GENEROUS,
        login_rate_limit=GENEROUS,
        mfa_ip_rate_limit=GENEROUS,
        webauthn_origins=(ORIGIN,),
        mfa_max_failures=1_000_000,  # the second-factor lock would answer every call after 5
        ip_ban_seconds=0,  # no automatic bans of the fuzzer's address either
        hibp_notify_token=NOTIFY_TOKEN,  # HIBP's callback takes its own token, not a key
    )


@dataclass(frozen=True)
class Credentials:
    bearer: str
    signed_in: str  # session cookie: full session, a registration under way
    pending: str  # session cookie: password accepted, a WebAuthn assertion under way
    signed_in_csrf: str
    pending_csrf: str


def _csrf(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def _session(client: FlaskClient, email: str, page: str, ceremony: str) -> tuple[str, str]:
    """Sign in through /login, start a WebAuthn ceremony; the cookie and CSRF token."""
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": _csrf(client, "/login")}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    token = _csrf(client, page)
    started = client.post(ceremony, headers={"X-CSRFToken": token})
    assert started.status_code == 200, started.get_data(as_text=True)
    cookie = client.get_cookie("bg_session")
    assert cookie is not None
    return cookie.value, token


@pytest.fixture
def credentials(registry: Services, app: Flask) -> Credentials:
    now = dt.datetime.now(dt.UTC)
    with registry.db.session() as s:
        bearer = apikeys.create(s, role="admin", name="fuzz", actor=ACTOR, now=now).token
        accounts.create(  # no factor: /login opens a full session
            s,
            email="plain@example.org",
            name="Plain",
            password=PASSWORD,
            hasher=registry.hasher,
            actor=ACTOR,
            now=now,
        )
        keyed = accounts.create(  # a security key: /login leaves a pending sign-in
            s,
            email="keyed@example.org",
            name="Keyed",
            password=PASSWORD,
            hasher=registry.hasher,
            actor=ACTOR,
            now=now,
        )
        s.expunge_all()
    rp = wa.RelyingParty.from_settings(registry.settings)
    challenge_id, options = wa.begin_registration(registry.db, account=keyed, rp=rp, now=now)
    wa.finish_registration(
        registry.db,
        account=keyed,
        challenge_id=challenge_id,
        credential=SoftAuthenticator().create(options),
        name="key",
        rp=rp,
        now=now,
        actor=ACTOR,
    )
    signed_in, signed_in_csrf = _session(
        app.test_client(),
        "plain@example.org",
        "/account/security",
        "/api/v1/mfa/webauthn/register/options",
    )
    pending, pending_csrf = _session(
        app.test_client(),
        "keyed@example.org",
        "/login/mfa",
        "/api/v1/mfa/webauthn/authenticate/options",
    )
    return Credentials(bearer, signed_in, pending, signed_in_csrf, pending_csrf)


# The spec object the app serves at /api/v1/openapi.json (checked below). Loaded from the
# dict because parametrize needs it at collection time, before any fixture has built an
# app; each case is then sent to the fixture's app. (schemathesis.pytest.from_fixture
# would load it from a fixture, but 4.32.5 reads Function._nodeid, gone in pytest 9.2.)
schema = schemathesis.openapi.from_dict(SPEC)


def test_the_fuzzed_spec_is_the_one_served(client: FlaskClient) -> None:
    assert client.get("/api/v1/openapi.json").get_json() == json.loads(json.dumps(SPEC))


@schema.parametrize()
@hypothesis_settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_answers_as_its_openapi_spec_says(
    case: schemathesis.Case, app: Flask, credentials: Credentials
) -> None:
    headers = {"Authorization": f"Bearer {credentials.bearer}"}
    cookies: dict[str, str] = {}
    if case.path.startswith("/api/v1/mfa/webauthn/"):
        signed_in = "/register/" in case.path
        # A session cookie and its CSRF token instead of the key (werkzeug's test client
        # drops a Cookie header, so the cookie goes through schemathesis' cookie jar).
        cookies = {"bg_session": credentials.signed_in if signed_in else credentials.pending}
        headers = {
            "X-CSRFToken": credentials.signed_in_csrf if signed_in else credentials.pending_csrf
        }
    if case.path == "/api/v1/hibp/notify":
        headers = {"Authorization": f"Bearer {NOTIFY_TOKEN}"}
    case.call_and_validate(headers=headers, cookies=cookies, checks=CHECKS, app=app)


def test_refusals_by_the_rate_limits_are_in_the_spec(settings: Settings) -> None:
    """Every rate-limited operation: a bad key (or no session) twice, then the 429."""
    registry = build(
        dataclasses.replace(
            settings, secret_rate_limit="1 per minute", mfa_ip_rate_limit="1 per minute"
        )
    )
    try:
        _every_limited_operation_answers_429(create_app(registry=registry))
    finally:
        registry.close()


def _every_limited_operation_answers_429(app: Flask) -> None:
    limited = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/range/{prefix}":
            continue  # public, not limited: its answer depends on no secret
        case = operation.Case(
            path_parameters={"prefix": "ABCDEF"} if "{prefix}" in operation.path else None,
            headers={"Authorization": "Bearer bg_0000_guess"},
        )
        responses = [case.call(app=app) for _ in range(2)]
        for response in responses:
            case.validate_response(response, checks=CHECKS)
        assert responses[-1].status_code == 429, operation.label
        limited += 1
    assert limited == len(SPEC["paths"]) - 1
