"""Rate limits on everything that takes a secret, shared through Redis when configured."""

from __future__ import annotations

import dataclasses
import datetime as dt

from flask.testing import FlaskClient

from auth import apikeys, audit
from auth.config import Settings
from auth.services import build
from auth.web.factory import create_app


def _client(settings: Settings, **limits: str) -> tuple[FlaskClient, str]:
    registry = build(dataclasses.replace(settings, **limits))
    with registry.db.session() as s:
        key = apikeys.create(
            s, role="admin", name="t", actor=audit.Actor.cli("t"), now=dt.datetime.now(dt.UTC)
        )
    return create_app(registry=registry).test_client(), key.token


def test_guessing_api_keys_is_limited_per_address(settings: Settings) -> None:
    client, token = _client(settings, secret_rate_limit="3 per minute")
    bad = {"Authorization": "Bearer bg_0000_guess"}
    codes = [
        client.post("/api/v1/check/password", json={"password": "x"}, headers=bad).status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    # The address is now refused even with the right key: guessing must not go on around it.
    good = {"Authorization": f"Bearer {token}"}
    assert (
        client.post("/api/v1/check/password", json={"password": "x"}, headers=good).status_code
        == 429
    )


def test_successful_calls_do_not_spend_the_guessing_budget(settings: Settings) -> None:
    client, token = _client(settings, secret_rate_limit="2 per minute")
    good = {"Authorization": f"Bearer {token}"}
    codes = {
        client.post("/api/v1/check/password", json={"password": "x"}, headers=good).status_code
        for _ in range(5)
    }
    assert codes == {200}


def test_calls_per_key_are_limited(settings: Settings) -> None:
    client, token = _client(settings, api_rate_limit="3 per minute")
    good = {"Authorization": f"Bearer {token}"}
    codes = [
        client.post(
            "/api/v1/check/email", json={"email": "a@example.org"}, headers=good
        ).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    assert (
        "too many requests"
        in client.post(
            "/api/v1/check/email", json={"email": "a@example.org"}, headers=good
        ).get_json()["error"]
    )


def test_limits_hold_across_two_app_instances_sharing_storage(settings: Settings) -> None:
    """With Redis (REDIS_URL) two processes share counters; in memory each counts alone."""
    first, token = _client(settings, api_rate_limit="2 per minute")
    second = create_app(
        registry=build(dataclasses.replace(settings, api_rate_limit="2 per minute"))
    ).test_client()
    good = {"Authorization": f"Bearer {token}"}
    body = {"email": "a@example.org"}
    assert first.post("/api/v1/check/email", json=body, headers=good).status_code == 200
    assert first.post("/api/v1/check/email", json=body, headers=good).status_code == 200
    expected = 429 if settings.redis_url else 200
    assert second.post("/api/v1/check/email", json=body, headers=good).status_code == expected


def test_email_range_key_guessing_is_limited(settings: Settings) -> None:
    client, _ = _client(settings, secret_rate_limit="2 per minute")
    bad = {"hibp-api-key": "bg_0000_guess"}
    codes = [
        client.get("/api/v3/breachedaccount/range/ABCDEF", headers=bad).status_code
        for _ in range(3)
    ]
    assert codes == [401, 401, 429]


def test_openapi_describes_every_api_route(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    app_routes = {
        r.rule.replace("<prefix>", "{prefix}")
        for r in client.application.url_map.iter_rules()
        if r.rule.startswith(("/api/", "/range/")) and not r.rule.endswith("openapi.json")
    }
    assert app_routes == set(spec["paths"])
