"""Migrations upgrade and downgrade cleanly, and match the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from auth import migrate
from auth.db import make_engine
from auth.models import Base
from tests.conftest import PG_URL


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    """A brand-new, empty database of the backend under test."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"bg_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_creates_every_table_and_downgrade_removes_them(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    assert _tables(empty_url) == set(Base.metadata.tables)
    migrate.downgrade(empty_url, "base")
    assert _tables(empty_url) == set()
    migrate.upgrade(empty_url)
    assert _tables(empty_url) == set(Base.metadata.tables)


def test_migrated_schema_matches_the_models(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    engine = make_engine(empty_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_0007_keeps_every_row_that_points_at_a_rebuilt_table(empty_url: str) -> None:
    """0007 rebuilds reset_tokens on SQLite: the notices that name a token keep it, and the
    indexes it drops are gone while the constraints that replace them stay."""
    migrate.upgrade(empty_url, "0006")
    engine = make_engine(empty_url)
    now = "2026-11-29 08:00:00"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, email, email_sha1, name, status, session_epoch, "
                "created_at, updated_at) VALUES (1, 'a@example.org', :sha1, 'A', 'active', 0, "
                ":now, :now)"
            ),
            {"sha1": b"\x01" * 20, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO reset_tokens (id, account_id, token_sha256, created_at) "
                "VALUES ('t1', 1, :digest, :now)"
            ),
            {"digest": "d" * 64, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO notices (account_id, kind, idempotency_key, token_id, reason, "
                "status, attempts, next_attempt_at, created_at) VALUES (1, 'reset_forced', "
                "'k1', 't1', 'r', 'queued', 0, :now, :now)"
            ),
            {"now": now},
        )
    engine.dispose()

    migrate.upgrade(empty_url)

    engine = make_engine(empty_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT token_id FROM notices")).scalar_one() == "t1"
        assert conn.execute(text("SELECT token_sha256 FROM reset_tokens")).scalar_one() == "d" * 64
        schema = inspect(conn)
        index_names = {i["name"] for t in ("resets", "findings") for i in schema.get_indexes(t)}
        assert not index_names & {"ix_resets_account_id", "ix_findings_account_id"}
        assert schema.get_unique_constraints("reset_tokens") == []
        assert {u["name"] for u in schema.get_unique_constraints("resets")} == {
            "uq_resets_account_id"
        }
    engine.dispose()
    migrate.downgrade(empty_url, "0006")
    migrate.upgrade(empty_url)


def test_the_audit_chain_starts_at_its_genesis(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    engine = make_engine(empty_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT seq, hash FROM audit_head")).one() == (0, "0" * 64)
    engine.dispose()


def test_init_is_idempotent(runner, cli_env) -> None:  # type: ignore[no-untyped-def]
    from auth.cli import main

    assert runner.invoke(main, ["init"]).exit_code == 0
    second = runner.invoke(main, ["init"])
    assert second.exit_code == 0 and "database ready" in second.output


def test_commands_on_an_uninitialised_database_say_to_run_init(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from auth.cli import main

    env = {"BREACHGUARD_INSTANCE": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    result = CliRunner(env=env).invoke(main, ["scan"])
    assert result.exit_code == 2 and "breachguard init" in result.output


def test_serve_refuses_a_database_whose_schema_is_behind(empty_url: str, tmp_path: Path) -> None:
    """After an upgrade of the code, not of the database: a clear word, not a server whose
    every sign-in fails."""
    from click.testing import CliRunner

    from auth.cli import main

    migrate.upgrade(empty_url, "0005")
    env = {"BREACHGUARD_INSTANCE": str(tmp_path), "DATABASE_URL": empty_url, "REDIS_URL": ""}
    result = CliRunner(env=env).invoke(main, ["serve", "--port=70000"])  # binds nothing
    assert result.exit_code == 2, result.output
    assert "at revision 0005" in result.output and "breachguard init" in result.output
    migrate.upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        assert migrate.behind(engine) is None
    finally:
        engine.dispose()
