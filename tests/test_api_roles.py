"""Every /api/v1 route checks its key's role, route by route: a role without the route's
scope gets 403, a role with it gets past the check. The hook role (the portal's key) can
neither reset accounts nor read the audit trail."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from flask.testing import FlaskClient

from auth import apikeys, audit
from auth.models import Role
from auth.services import Services

# Routes authenticated by the page session, not by API keys (tested in test_pages_mfa).
SESSION_ROUTES = {"/api/v1/mfa/"}
PUBLIC = {"/api/v1/openapi.json"}
# HIBP's callback: its own bearer token, not an API key (tested in test_hibp_notify).
OWN_TOKEN = {"/api/v1/hibp/notify"}


def keyed_routes(app: Flask) -> list[tuple[str, str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        path = rule.rule
        if not path.startswith("/api/") or path in PUBLIC | OWN_TOKEN:
            continue
        if any(path.startswith(p) for p in SESSION_ROUTES):
            continue
        view = app.view_functions[rule.endpoint]
        scope = getattr(view, "required_scope", None)
        assert scope, f"{path} has no @require(scope): every keyed route must name one"
        method = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})[0]
        routes.append((method, path.replace("<prefix>", "ABCDE"), scope))
    return routes


@pytest.fixture
def keys(registry: Services) -> dict[Role, str]:
    now = dt.datetime.now(dt.UTC)
    with registry.db.session() as s:
        return {
            role: apikeys.create(s, role=role, name=role, actor=audit.Actor.cli(), now=now).token
            for role in Role
        }


def test_the_route_list_is_complete(app: Flask) -> None:
    paths = {p for _, p, _ in keyed_routes(app)}
    assert {"/api/v1/hook/login", "/api/v1/resets", "/api/v1/audit"} <= paths


@pytest.mark.parametrize("role", list(Role))
def test_each_route_admits_exactly_the_roles_that_grant_its_scope(
    app: Flask, client: FlaskClient, keys: dict[Role, str], role: Role
) -> None:
    for method, path, scope in keyed_routes(app):
        response = client.open(
            path, method=method, json={}, headers={"Authorization": f"Bearer {keys[role]}"}
        )
        if apikeys.allows(role, scope):
            assert response.status_code not in (401, 403), (role, path, response.get_json())
        else:
            assert response.status_code == 403, (role, path, response.status_code)
            assert f"the {role} role cannot use {scope}" in response.get_json()["message"]


def test_the_hook_role_cannot_reset_or_read_the_audit_trail(
    client: FlaskClient, keys: dict[Role, str]
) -> None:
    auth = {"Authorization": f"Bearer {keys[Role.HOOK]}"}
    assert (
        client.post("/api/v1/resets", json={"emails": ["a@b.fr"]}, headers=auth).status_code == 403
    )
    assert client.get("/api/v1/audit", headers=auth).status_code == 403
    security = {"Authorization": f"Bearer {keys[Role.SECURITY]}"}
    page = client.get("/api/v1/audit?limit=2", headers=security).get_json()
    assert [e["action"] for e in page["events"]] == ["apikey:created"] * 2
    assert page["next_after"] == 2


def test_without_a_key_every_keyed_route_says_401(app: Flask, client: FlaskClient) -> None:
    for method, path, _ in keyed_routes(app):
        assert client.open(path, method=method, json={}).status_code == 401, path
