"""POST /api/v1/hibp/notify: HIBP's breach callback records the findings it names, once,
and the finding policy acts on them; wrong tokens are refused and rate limited."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, insert, select

from auth.breach.hashing import email_sha1, sha1_hex
from auth.config import Settings
from auth.models import Account, AuditEvent, Finding
from auth.services import Services, build
from auth.web.factory import create_app

TOKEN = "hibp-shared-secret-0123456789"
EMAILS = ["ana@example.fr", "ben@example.fr", "cai@example.fr"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, hibp_notify_token=TOKEN)


@pytest.fixture
def seeded(registry: Services, now: dt.datetime) -> None:
    with registry.db.session() as s:
        s.execute(
            insert(Account),
            [
                {"email": e, "email_sha1": email_sha1(e), "created_at": now, "updated_at": now}
                for e in EMAILS
            ],
        )


def body_for(*emails: str, breach: str = "MegaCorp2026") -> dict[str, Any]:
    """A notification naming these addresses' digests (they must share a prefix), or the
    prefix of the first with a suffix nobody has."""
    digests = [sha1_hex(email_sha1(e)) for e in emails]
    prefix = digests[0][:6]
    assert all(d[:6] == prefix for d in digests)
    return {
        "breachName": breach,
        "hashPrefix": prefix,
        "hashSuffixes": [d[6:] for d in digests] + ["0" * 34],
    }


def post(client: FlaskClient, body: Any, token: str | None = TOKEN) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post("/api/v1/hibp/notify", json=body, headers=headers)


def findings(registry: Services) -> list[tuple[str, str, str, str, str | None]]:
    with registry.db.session() as s:
        rows = s.execute(
            select(Account.email, Finding.kind, Finding.source, Finding.breach, Finding.action)
            .join(Account, Account.id == Finding.account_id)
            .order_by(Account.email)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_notification_records_the_named_accounts_and_applies_the_policy(
    client: FlaskClient, registry: Services, seeded: None
) -> None:
    response = post(client, body_for("ben@example.fr"))
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["matched_accounts"] == 1 and answer["new_findings"] == 1
    assert answer["policy"]["mfa_accounts"] == 1
    assert findings(registry) == [
        ("ben@example.fr", "email_in_breach", "hibp", "MegaCorp2026", "mfa")
    ]
    with registry.db.session() as s:
        assert s.execute(
            select(Account.mfa_required).where(Account.email == "ben@example.fr")
        ).scalar_one()
        actions = list(s.execute(select(AuditEvent.action, AuditEvent.actor)).all())
    assert ("hibp:notified", "hibp:notify") in actions
    assert ("finding:acted", "policy:finding_policy") in actions


def test_the_same_notification_twice_records_nothing_new(
    client: FlaskClient, registry: Services, seeded: None
) -> None:
    assert post(client, body_for("ana@example.fr")).get_json()["new_findings"] == 1
    again = post(client, body_for("ana@example.fr")).get_json()
    assert again["new_findings"] == 0 and again["matched_accounts"] == 1
    assert again["policy"] == {k: 0 for k in again["policy"]}
    assert len(findings(registry)) == 1


def test_a_lower_case_notification_matches_too(
    client: FlaskClient, registry: Services, seeded: None
) -> None:
    body = body_for("cai@example.fr")
    body["hashPrefix"] = body["hashPrefix"].lower()
    body["hashSuffixes"] = [s.lower() for s in body["hashSuffixes"]]
    assert post(client, body).get_json()["new_findings"] == 1


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", TOKEN[:-1]])
def test_a_missing_or_wrong_token_is_refused(
    client: FlaskClient, registry: Services, seeded: None, token: str | None
) -> None:
    response = post(client, body_for("ana@example.fr"), token=token)
    assert response.status_code == 401
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert findings(registry) == []


def test_an_api_key_is_not_the_notify_token(
    client: FlaskClient, registry: Services, seeded: None, now: dt.datetime
) -> None:
    from auth import apikeys, audit

    with registry.db.session() as s:
        key = apikeys.create(s, role="admin", name="a", actor=audit.Actor.cli("t"), now=now)
    assert post(client, body_for("ana@example.fr"), token=key.token).status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"breachName": ""}, "breachName"),
        ({"breachName": "x" * 201}, "breachName"),
        ({"breachName": 7}, "breachName"),
        ({"breachName": "Leak\x00"}, "breachName"),  # found by the OpenAPI fuzz test
        ({"breachName": "Leak\nLeak"}, "breachName"),
        ({"hashPrefix": "ABCDE"}, "hashPrefix"),
        ({"hashPrefix": "ABCDEG"}, "hashPrefix"),
        ({"hashSuffixes": "0" * 34}, "hashSuffixes"),
        ({"hashSuffixes": ["0" * 33]}, "hashSuffixes"),
        ({"hashSuffixes": [None]}, "hashSuffixes"),
    ],
)
def test_a_bad_field_is_named(
    client: FlaskClient, registry: Services, seeded: None, change: dict[str, Any], field: str
) -> None:
    response = post(client, body_for("ana@example.fr") | change)
    assert response.status_code == 400
    assert response.get_json()["field"] == field
    assert findings(registry) == []


def test_a_body_that_is_not_an_object_is_refused(client: FlaskClient, seeded: None) -> None:
    response = post(client, ["not", "an", "object"])
    assert response.status_code == 400 and response.get_json()["field"] == "body"


def test_without_a_configured_token_the_route_is_off(
    settings: Settings, registry: Services, seeded: None
) -> None:
    off = build(dataclasses.replace(settings, hibp_notify_token=None))
    try:
        client = create_app(registry=off).test_client()
        response = post(client, body_for("ana@example.fr"), token="")
        assert response.status_code == 503
        assert "HIBP_NOTIFY_TOKEN" in response.get_json()["error"]
    finally:
        off.close()


def test_wrong_tokens_are_rate_limited_per_address(
    settings: Settings, registry: Services, seeded: None
) -> None:
    strict = build(dataclasses.replace(settings, secret_rate_limit="2 per minute"))
    try:
        client = create_app(registry=strict).test_client()
        codes = [
            post(client, body_for("ana@example.fr"), token="guess").status_code for _ in range(3)
        ]
        assert codes == [401, 401, 429]
        # The budget is per address: from the guesser's address even the right token waits.
        assert post(client, body_for("ana@example.fr")).status_code == 429
    finally:
        strict.close()


def test_the_route_needs_no_csrf_token_and_sets_no_cookie(
    client: FlaskClient, seeded: None
) -> None:
    response = post(client, body_for("ana@example.fr"))
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_the_audit_event_keeps_counts_not_digests(
    client: FlaskClient, registry: Services, seeded: None
) -> None:
    body = body_for("ana@example.fr")
    post(client, body)
    with registry.db.session() as s:
        details = s.execute(
            select(AuditEvent.details).where(AuditEvent.action == "hibp:notified")
        ).scalar_one()
        count = s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    assert body["hashSuffixes"][0] not in details and '"suffixes":2' in details
    assert count >= 3
