"""Settings from the environment; secrets generated once in the instance folder."""

from pathlib import Path

import pytest

from auth.config import load_settings
from auth.errors import InvalidInput


def test_defaults_serve_one_machine_with_sqlite_in_the_instance_folder(tmp_path: Path) -> None:
    s = load_settings({"BREACHGUARD_INSTANCE": str(tmp_path / "inst")})
    assert s.database_url == f"sqlite:///{tmp_path / 'inst' / 'breachguard.db'}"
    assert s.breach_sources == ("local",)
    assert s.breach_failure_policy == "fail_open"
    assert s.redis_url is None


def test_secret_key_is_generated_once_kept_private_and_reused(tmp_path: Path) -> None:
    env = {"BREACHGUARD_INSTANCE": str(tmp_path)}
    first = load_settings(env).secret_key
    assert len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert load_settings(env).secret_key == first
    assert load_settings({**env, "SECRET_KEY": "from-env"}).secret_key == "from-env"


def test_sources_and_policy_are_read_and_checked(tmp_path: Path) -> None:
    env = {"BREACHGUARD_INSTANCE": str(tmp_path), "BREACH_SOURCES": "local, hibp"}
    assert load_settings(env).breach_sources == ("local", "hibp")
    with pytest.raises(InvalidInput, match="BREACH_SOURCES"):
        load_settings({**env, "BREACH_SOURCES": "local,pastebin"})
    with pytest.raises(InvalidInput, match="BREACH_FAILURE_POLICY"):
        load_settings({**env, "BREACH_FAILURE_POLICY": "maybe"})
    with pytest.raises(InvalidInput, match="ARGON2_TIME_COST must be an integer"):
        load_settings({**env, "ARGON2_TIME_COST": "two"})


def test_hibp_base_urls_lose_their_trailing_slash(tmp_path: Path) -> None:
    s = load_settings(
        {"BREACHGUARD_INSTANCE": str(tmp_path), "HIBP_PASSWORDS_URL": "http://127.0.0.1:9/"}
    )
    assert s.hibp_passwords_url == "http://127.0.0.1:9"


def test_an_sqlite_library_too_old_for_the_bulk_statements_is_named_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """RETURNING needs SQLite 3.35 and a job's JSON inserts 3.38: an older library is named
    when the database is opened, not in the middle of a reset."""
    import sqlite3

    from auth.db import Database
    from auth.errors import BreachguardError

    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 37, 2))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.37.2")
    with pytest.raises(BreachguardError, match=r"SQLite library is 3\.37\.2; .* needs 3\.38"):
        Database(f"sqlite:///{tmp_path / 'x.db'}")
