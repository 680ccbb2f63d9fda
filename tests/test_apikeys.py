"""API keys: shown once, stored hashed, scoped by role, revocable."""

import datetime as dt

from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import text

from auth import apikeys, audit
from auth.cli import main
from auth.models import ApiKey
from auth.services import Services

ALICE = audit.Actor.cli("alice")


def test_a_key_is_stored_only_as_a_digest(registry: Services, now: dt.datetime) -> None:
    with registry.db.session() as s:
        key = apikeys.create(s, role="security", name="soc", actor=ALICE, now=now)
    secret = key.token.split("_", 2)[2]
    with registry.db.engine.connect() as c:
        rows = c.execute(text("SELECT * FROM api_keys")).all()
        trail = c.execute(text("SELECT details FROM audit_events")).scalars().all()
    assert secret not in repr(rows) and secret not in repr(trail)


def test_a_valid_token_authenticates_and_a_near_miss_does_not(
    registry: Services, now: dt.datetime
) -> None:
    with registry.db.session() as s:
        key = apikeys.create(s, role="hook", name="portal", actor=ALICE, now=now)
    found = apikeys.authenticate(registry.db, key.token, now=now)
    assert found is not None and found.role == "hook"
    assert apikeys.authenticate(registry.db, key.token[:-1] + "x", now=now) is None
    assert apikeys.authenticate(registry.db, "bg_nope_nope", now=now) is None
    assert apikeys.authenticate(registry.db, "garbage", now=now) is None


def test_a_revoked_key_no_longer_authenticates(registry: Services, now: dt.datetime) -> None:
    with registry.db.session() as s:
        key = apikeys.create(s, role="admin", name="", actor=ALICE, now=now)
    with registry.db.session() as s:
        apikeys.revoke(s, key.id, actor=ALICE, now=now)
    assert apikeys.authenticate(registry.db, key.token, now=now) is None


def test_a_call_with_a_key_records_when_it_was_last_used_once_a_minute(
    registry: Services, client: FlaskClient, now: dt.datetime
) -> None:
    with registry.db.session() as s:
        key = apikeys.create(s, role="hook", name="portal", actor=ALICE, now=now)
    auth = {"Authorization": f"Bearer {key.token}"}

    def last_used() -> dt.datetime | None:
        with registry.db.session() as s:
            return s.get(ApiKey, key.id).last_used_at  # type: ignore[union-attr]

    assert last_used() is None
    assert (
        client.post("/api/v1/check/password", json={"password": "x"}, headers=auth).status_code
        == 200
    )
    first = last_used()
    assert first is not None and first > now  # committed, not rolled back with the read
    assert (
        client.post("/api/v1/check/password", json={"password": "y"}, headers=auth).status_code
        == 200
    )
    assert last_used() == first  # within a minute: no write on every call


def test_roles_grant_only_their_scopes() -> None:
    assert apikeys.allows("hook", "hook") and apikeys.allows("hook", "check:password")
    assert not apikeys.allows("hook", "check:email")
    assert not apikeys.allows("hook", "reset") and not apikeys.allows("hook", "audit")
    assert apikeys.allows("security", "range:email") and apikeys.allows("security", "audit")
    assert not apikeys.allows("security", "hook") and not apikeys.allows("security", "admin")
    assert all(apikeys.allows("admin", s) for s in ("hook", "reset", "audit", "range:email"))
    assert not apikeys.allows("root", "hook")


def test_cli_prints_the_key_once_as_the_last_word_and_can_revoke_it(runner: CliRunner) -> None:
    created = runner.invoke(main, ["apikey", "create", "--role", "security", "--name", "soc"])
    assert created.exit_code == 0, created.output
    token = created.output.split()[-1]
    assert token.startswith("bg_")
    key_id = token.split("_")[1]
    listed = runner.invoke(main, ["apikey", "list"])
    assert key_id in listed.output and "active" in listed.output
    assert token.split("_", 2)[2] not in listed.output
    assert runner.invoke(main, ["apikey", "revoke", key_id]).exit_code == 0
    assert "revoked" in runner.invoke(main, ["apikey", "list"]).output
    missing = runner.invoke(main, ["apikey", "revoke", "doesnotexist"])
    assert missing.exit_code == 2 and "no API key" in missing.output


def test_cli_refuses_an_unknown_role(runner: CliRunner) -> None:
    result = runner.invoke(main, ["apikey", "create", "--role", "root"])
    assert result.exit_code == 2 and "root" in result.output


def test_cli_refuses_a_name_with_a_control_character(runner: CliRunner) -> None:
    args = ["apikey", "create", "--role", "hook", "--name", "portal\x00"]
    result = runner.invoke(main, args)
    assert result.exit_code == 2 and "name: no control characters" in result.output
