"""The JSON API under /api/ answers bad bodies with a 400 in JSON before any other work
(the API key included), and answers every error in JSON: 404, 405, 413, 500."""

from __future__ import annotations

import logging
import re

import pytest
from flask import Flask

from auth.services import Services
from auth.web.factory import create_app

WRONG_KEY = {"Authorization": "Bearer bg_0123456789ab_wrong"}
MALFORMED = {
    "lone surrogate": b'{"email": "\\ud800@example.org", "password": "x", "ip": "192.0.2.1"}',
    "lone surrogate in a key": b'{"\\udfff": 1}',
    "deep nesting": b"[" * 5000 + b"]" * 5000,
    "nesting past the limit": b'{"a":' * 40 + b"1" + b"}" * 40,
    "cut short": b'{"email": ',
    "NaN": b'{"n": NaN}',
    "Infinity": b"[-Infinity]",
    "not UTF-8": b'{"email": "\xff\xfe"}',
    "trailing data": b'{"a": 1} {"b": 2}',
}


def json_posts(app: Flask) -> list[str]:
    """Every POST route under /api/, with a made-up value for each URL part."""
    paths = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") and "POST" in (rule.methods or ()):
            paths.append(re.sub(r"<(?:\w+:)?\w+>", "1", rule.rule))
    return sorted(paths)


def test_every_json_route_is_covered(app: Flask) -> None:
    assert len(json_posts(app)) >= 8, json_posts(app)


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_malformed_body_is_a_400_in_json_on_every_route_before_the_key_is_read(
    app: Flask, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.test_client()
    caplog.set_level(logging.INFO)
    for path in json_posts(app):
        answer = client.post(
            path, data=MALFORMED[kind], headers=WRONG_KEY, content_type="application/json"
        )
        assert answer.status_code == 400, (path, answer.status_code, answer.data[:200])
        assert answer.is_json and answer.json["error"].startswith("malformed JSON"), path
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_message_says_what_is_wrong(app: Flask) -> None:
    client = app.test_client()

    def error(body: bytes) -> str:
        answer = client.post("/api/v1/hook/login", data=body, content_type="application/json")
        return str(answer.json["error"])

    assert "surrogate" in error(MALFORMED["lone surrogate"])
    assert "nested deeper than 32" in error(MALFORMED["deep nesting"])
    assert "line 1 column 11" in error(MALFORMED["cut short"])
    assert "NaN is not JSON" in error(MALFORMED["NaN"])
    assert "not UTF-8" in error(MALFORMED["not UTF-8"])


def test_well_formed_bodies_still_reach_the_key_check(app: Flask) -> None:
    answer = app.test_client().post(
        "/api/v1/hook/login",
        json={"email": "é@example.org", "password": "x", "ip": "192.0.2.1", "deep": [[[[1]]]]},
        headers=WRONG_KEY,
    )
    assert answer.status_code == 401 and answer.is_json


def test_unknown_paths_and_wrong_methods_answer_in_json(app: Flask) -> None:
    client = app.test_client()
    missing = client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404 and missing.is_json and "error" in missing.json
    wrong = client.get("/api/v1/hook/login")
    assert wrong.status_code == 405 and wrong.is_json and "Allow" in wrong.headers
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.mimetype == "text/html"  # pages stay pages


def test_a_body_over_the_limit_is_a_413_in_json(app: Flask) -> None:
    answer = app.test_client().post(
        "/api/v1/hook/login",
        data=b'{"a": "' + b"x" * 70_000 + b'"}',
        content_type="application/json",
        headers=WRONG_KEY,
    )
    assert answer.status_code == 413 and answer.is_json


def test_a_server_error_answers_in_json_on_the_api_and_as_a_page_elsewhere(
    registry: Services, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(registry=registry)

    def broken() -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/api/v1/broken", "api_broken", broken)
    app.add_url_rule("/broken", "page_broken", broken)
    client = app.test_client()
    api = client.get("/api/v1/broken")
    assert api.status_code == 500 and api.is_json
    assert "boom" not in api.get_data(as_text=True)  # no internals to the caller
    page = client.get("/broken")
    assert page.status_code == 500 and page.mimetype == "text/html"


# --- bodies the spec forbids are refused, bodies it allows are not ----------------------


@pytest.fixture
def admin_key(registry: Services) -> str:
    from auth import apikeys, audit
    from auth.models import utcnow

    with registry.db.session() as s:
        return apikeys.create(
            s, role="admin", name="t", actor=audit.Actor.cli("t"), now=utcnow()
        ).token


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "emails"),
        ({"emails": ["a@example.org"], "from_scan": True}, "emails"),
        ({"emails": []}, "emails"),
        ({"emails": [1]}, "emails"),
        ({"from_scan": False}, "from_scan"),
        ({"emails": ["a@example.org"], "kinds": {}}, "kinds"),
        ({"emails": ["a@example.org"], "kinds": ["nope"]}, "kinds"),
        ({"emails": ["a@example.org"], "dry_run": "yes"}, "dry_run"),
        ({"emails": ["a@example.org"], "reason": "x" * 501}, "reason"),
    ],
)
def test_a_reset_request_outside_the_spec_is_a_400_naming_the_field(
    app: Flask, admin_key: str, body: dict[str, object], field: str
) -> None:
    answer = app.test_client().post(
        "/api/v1/resets", json=body, headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert answer.status_code == 400 and answer.json["field"] == field, answer.json


def test_a_reset_request_inside_the_spec_is_carried_out(app: Flask, admin_key: str) -> None:
    answer = app.test_client().post(
        "/api/v1/resets",
        json={"emails": ["nobody@example.org"], "kinds": [], "dry_run": True, "reason": ""},
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert answer.status_code == 200 and answer.json["summary"]["unknown"] == 1


def test_the_hook_second_step_takes_exactly_one_factor_even_a_null_one(
    app: Flask, admin_key: str
) -> None:
    body = {"continuation": "x", "ip": "192.0.2.1", "code": "123456", "webauthn": None}
    answer = app.test_client().post(
        "/api/v1/hook/mfa", json=body, headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert answer.status_code == 400 and answer.json["field"] == "code"


def test_a_null_user_agent_is_as_good_as_none(app: Flask, admin_key: str) -> None:
    body = {"email": "nobody@example.org", "password": "x", "ip": "192.0.2.1", "user_agent": None}
    answer = app.test_client().post(
        "/api/v1/hook/login", json=body, headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert answer.status_code == 200 and answer.json["decision"] == "deny"


def test_the_spec_says_what_the_server_checks() -> None:
    from auth.web.openapi import SPEC

    resets = SPEC["paths"]["/api/v1/resets"]["post"]["requestBody"]["content"]
    schema = resets["application/json"]["schema"]
    assert schema["oneOf"] == [{"required": ["emails"]}, {"required": ["from_scan"]}]
    assert schema["properties"]["emails"]["minItems"] == 1
    options = SPEC["paths"]["/api/v1/hook/mfa/webauthn/options"]["post"]["responses"]
    assert "404" in options


def test_a_browser_ceremony_without_its_csrf_token_is_a_403_in_json(app: Flask) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    answer = app.test_client().post("/api/v1/mfa/webauthn/register/options")
    assert answer.status_code == 403 and "CSRF" in answer.json["error"]
