"""POST /api/v1/activity over HTTP with a real hook key: the answer's shape, every field
checked with a 400 naming it, 404 for an unknown account, the key's role, and a robot
blocked then answered `block` at once."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from auth import accounts, apikeys, audit
from auth.config import Settings
from auth.models import Account, ExposedSubject, utcnow
from auth.services import Services, build
from auth.web.factory import create_app

EMAIL = "dr.martin@example.org"
IP = "198.51.100.23"
ACTOR = audit.Actor.cli("test")


@pytest.fixture
def account_id(registry: Services) -> int:
    with registry.db.session() as s:
        created = accounts.create(
            s,
            email=EMAIL,
            password="Correct-Horse-42",
            hasher=registry.hasher,
            actor=ACTOR,
            now=utcnow(),
        )
        return int(created.id)


def keyed(app: Flask, registry: Services, role: str) -> FlaskClient:
    with registry.db.session() as s:
        token = apikeys.create(s, role=role, name="portal", actor=ACTOR, now=utcnow()).token
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


@pytest.fixture
def portal(app: Flask, registry: Services) -> FlaskClient:
    return keyed(app, registry, "hook")


def report(portal: FlaskClient, **fields: object) -> tuple[int, dict]:
    body = {"account": EMAIL, "session": "s-1", "ip": IP, "action": "patient_lookup"} | fields
    response = portal.post("/api/v1/activity", json=body)
    return response.status_code, response.get_json()


def test_an_ordinary_look_up_is_allowed(portal: FlaskClient, account_id: int) -> None:
    response = portal.post(
        "/api/v1/activity",
        json={
            "account": EMAIL,
            "session": "s-1",
            "ip": IP,
            "action": "patient_lookup",
            "subject": "k1",
            "at": utcnow().isoformat(),
        },
    )

    assert response.status_code == 200
    assert response.get_json() == {"decision": "allow", "reasons": []}
    assert response.headers["Cache-Control"] == "no-store"


def test_the_account_may_be_named_by_its_id(portal: FlaskClient, account_id: int) -> None:
    assert report(portal, account=str(account_id)) == (200, {"decision": "allow", "reasons": []})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("account", ""),
        ("account", "not an address"),
        ("session", ""),
        ("session", "s" * 513),
        ("ip", "203.0.113.300"),
        ("ip", None),
        ("action", "patient lookup"),
        ("action", 7),
        ("subject", "k" * 129),
        ("subject", "k\x00"),
        ("at", "yesterday"),
        ("at", "2026-12-07T10:00:00"),  # no zone
        ("colour", "blue"),
    ],
)
def test_each_malformed_field_is_a_400_naming_it(
    portal: FlaskClient, account_id: int, field: str, value: object
) -> None:
    status, body = report(portal, **{field: value})

    assert status == 400, body
    assert body["field"] == field


def test_an_unknown_account_is_a_404(portal: FlaskClient, account_id: int) -> None:
    status, body = report(portal, account="nobody@example.org")

    assert (status, body["field"]) == (404, "account")


def test_only_a_key_whose_role_grants_hook_may_report(
    app: Flask, registry: Services, account_id: int
) -> None:
    security = keyed(app, registry, "security")
    anonymous = app.test_client()
    body = {"account": EMAIL, "session": "s", "ip": IP, "action": "x"}

    assert security.post("/api/v1/activity", json=body).status_code == 403
    assert anonymous.post("/api/v1/activity", json=body).status_code == 401


def test_wrong_keys_spend_the_guessing_budget_and_a_valid_key_has_no_budget(
    settings: Settings, account_id: int
) -> None:
    """The portal reports every look-up: it is never refused for its pace (the guard counts
    reports itself), while a wrong key is a guess at a secret, from a budget per address."""
    tight = dataclasses.replace(settings, secret_rate_limit="3 per minute")
    registry = build(tight)
    app = create_app(registry=registry)
    portal = keyed(app, registry, "hook")
    guesser = app.test_client()
    guesser.environ_base["HTTP_AUTHORIZATION"] = "Bearer bg_0000_guess"
    body = {"account": EMAIL, "session": "s-1", "ip": IP, "action": "patient_lookup"}

    guesses = [guesser.post("/api/v1/activity", json=body).status_code for _ in range(4)]
    reports = [portal.post("/api/v1/activity", json=body) for _ in range(10)]

    assert guesses == [401, 401, 401, 429]
    assert [r.status_code for r in reports] == [200] * 10
    assert not any("X-RateLimit-Limit" in r.headers for r in reports)


def test_a_robot_is_blocked_over_http_and_then_answered_block_at_once(
    portal: FlaskClient, registry: Services, account_id: int
) -> None:
    start, answers = utcnow(), []
    for n in range(60):
        at = (start + dt.timedelta(seconds=n / 2)).isoformat()
        answers.append(report(portal, session="robot", subject=f"R{n}", at=at))
        if answers[-1][1]["decision"] == "block":
            break

    assert answers[-1] == (200, {"decision": "block", "reasons": ["regular_spacing"]})
    assert len(answers) == 17
    again = report(portal, session="robot", subject="R99")
    assert again == (200, {"decision": "block", "reasons": ["blocked"]})
    with registry.db.session() as s:
        account = s.get(Account, account_id)
        assert account is not None and account.status == "reset_required"
        assert len(s.execute(select(ExposedSubject)).all()) == 17


def test_a_step_up_hands_the_portal_what_the_second_step_needs(
    portal: FlaskClient, account_id: int
) -> None:
    assert report(portal)[1]["decision"] == "allow"  # the first network becomes known

    status, body = report(portal, ip="203.0.113.7")

    assert status == 200
    assert body == {
        "decision": "step_up",
        "reasons": ["new_network"],
        "continuation": None,
        "continuation_expires_at": None,
        "factors": [],
        "enroll_required": True,
    }


def test_reports_are_not_held_to_the_login_hooks_budget(
    settings: Settings, account_id: int
) -> None:
    """A busy portal reports far more often than people sign in: the guard counts every
    report itself, and HOOK_RATE_LIMIT is the sign-in's budget."""
    registry = build(dataclasses.replace(settings, hook_rate_limit="2 per minute"))
    portal = keyed(create_app(registry=registry), registry, "hook")

    answers = [report(portal, subject=f"k{n}")[0] for n in range(5)]

    assert answers == [200] * 5
    registry.close()
