"""Rate limits on everything that takes a secret, shared through Redis when configured."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import limits
import pytest
import requests
from flask.testing import FlaskClient

from auth import apikeys, audit
from auth.config import Settings
from auth.services import build
from auth.web.factory import create_app
from auth.web.limit_storage import share
from tests.conftest import REDIS_URL
from tests.helpers_server import ServeProcess, closed_port


def _client(settings: Settings, **limits: str) -> tuple[FlaskClient, str]:
    registry = build(dataclasses.replace(settings, **limits))
    with registry.db.session() as s:
        key = apikeys.create(
            s, role="admin", name="t", actor=audit.Actor.cli("t"), now=dt.datetime.now(dt.UTC)
        )
    return create_app(registry=registry).test_client(), key.token


def _key(settings: Settings, role: str = "admin") -> str:
    registry = build(settings)
    with registry.db.session() as s:
        return apikeys.create(
            s, role=role, name=role, actor=audit.Actor.cli("t"), now=dt.datetime.now(dt.UTC)
        ).token


def test_guessing_api_keys_is_limited_per_address(settings: Settings) -> None:
    client, _ = _client(settings, secret_rate_limit="3 per minute")
    bad = {"Authorization": "Bearer bg_0000_guess"}
    codes = [
        client.post("/api/v1/check/password", json={"password": "x"}, headers=bad).status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]


def test_wrong_keys_from_an_address_do_not_lock_out_a_valid_key_from_it(
    settings: Settings,
) -> None:
    """A shared NAT, or the portal itself: anyone's bad key must not shut out the others."""
    client, token = _client(settings, secret_rate_limit="3 per minute")
    bad = {"Authorization": "Bearer bg_0000_guess"}
    good = {"Authorization": f"Bearer {token}"}
    for _ in range(5):
        client.post("/api/v1/check/password", json={"password": "x"}, headers=bad)

    assert (
        client.post("/api/v1/check/password", json={"password": "x"}, headers=good).status_code
        == 200
    )
    assert client.get("/api/v3/breachedaccount/range/ABCDEF", headers=good).status_code == 404
    # ... while the wrong keys stay refused.
    assert (
        client.post("/api/v1/check/password", json={"password": "x"}, headers=bad).status_code
        == 429
    )


def test_each_valid_key_has_its_own_budget(settings: Settings) -> None:
    client, first = _client(settings, api_rate_limit="2 per minute")
    second = _key(settings)
    body = {"email": "a@example.org"}
    codes = [
        client.post(
            "/api/v1/check/email", json=body, headers={"Authorization": f"Bearer {first}"}
        ).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    assert (
        client.post(
            "/api/v1/check/email", json=body, headers={"Authorization": f"Bearer {second}"}
        ).status_code
        == 200
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


def test_email_range_key_guessing_is_limited_with_hibps_429(settings: Settings) -> None:
    client, _ = _client(settings, secret_rate_limit="2 per minute")
    bad = {"hibp-api-key": "bg_0000_guess"}
    answers = [client.get("/api/v3/breachedaccount/range/ABCDEF", headers=bad) for _ in range(3)]

    assert [a.status_code for a in answers] == [401, 401, 429]
    refused = answers[-1]
    assert refused.mimetype == "application/json"
    body = refused.get_json()
    assert body["statusCode"] == 429
    assert body["message"].startswith("Rate limit is exceeded. Try again in ")
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 60
    said = int(body["message"].split(" in ")[1].split()[0])
    assert abs(said - wait) <= 1  # both read the clock, maybe either side of a second


def test_openapi_describes_every_api_route(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    app_routes = {
        r.rule.replace("<prefix>", "{prefix}")
        for r in client.application.url_map.iter_rules()
        if r.rule.startswith(("/api/", "/range/")) and not r.rule.endswith("openapi.json")
    }
    assert app_routes == set(spec["paths"])


# -- without Redis, several processes --------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "processes", "part"),
    [
        ("30 per minute", 1, "30 per minute"),
        ("30 per minute", 2, "15 per 1 minute"),
        ("31 per minute", 2, "15 per 1 minute"),
        ("5 per minute", 8, "1 per 96 second"),
        ("6000/minute; 100000/day", 4, "1500 per 1 minute; 25000 per 1 day"),
    ],
)
def test_each_process_enforces_its_share_of_a_budget(limit: str, processes: int, part: str) -> None:
    assert share(limit, processes) == part


def test_the_shares_never_add_up_to_more_than_the_budget() -> None:
    for limit in ("1 per minute", "5 per minute", "30 per minute", "7 per 10 seconds"):
        whole = limits.parse(limit)
        for processes in range(1, 12):
            for item in limits.parse_many(share(limit, processes)):
                rate = item.amount / item.get_expiry() * processes
                assert rate <= whole.amount / whole.get_expiry() + 1e-9, (limit, processes)


@pytest.mark.skipif(bool(REDIS_URL), reason="with Redis the workers share one count")
def test_two_workers_without_redis_let_no_more_through_than_the_budget(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`breachguard serve --workers 2` without Redis: each worker counts alone, so each
    enforces half of every budget. Fresh connections land on either worker."""
    env = os.environ | cli_env | {"REDIS_URL": "", "SECRET_RATE_LIMIT": "6 per minute"}
    server = ServeProcess(
        env, closed_port(), tmp_path / "serve.log", "--workers", "2", "--threads", "1"
    )
    try:
        server.wait_up()

        def guess(_: int) -> int:
            return requests.get(
                server.base + "/api/v3/breachedaccount/range/ABCDEF",
                headers={"hibp-api-key": "bg_0000_guess", "Connection": "close"},
                timeout=10,
            ).status_code

        with ThreadPoolExecutor(8) as pool:  # at once, so that both workers take some
            codes = list(pool.map(guess, range(40)))
    finally:
        server.stop()
    assert set(codes) == {401, 429}
    assert codes.count(401) <= 6
