"""Fixtures: real databases (SQLite file, or PostgreSQL when TEST_DATABASE_URL is set),
real Redis for rate limits when TEST_REDIS_URL is set, the app, its client and the CLI."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from auth import migrate
from auth.audit import GENESIS
from auth.config import Argon2Params, Settings
from auth.db import Database
from auth.models import Base
from auth.services import Services, build
from auth.web.factory import create_app

PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TEST_REDIS_URL")
TEST_MFA_KEY = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdC0"  # 32 bytes, tests only
CHEAP_ARGON2 = Argon2Params(time_cost=1, memory_cost=1024, parallelism=1)


class EnglishClient(FlaskClient):
    """Every test client reads the pages in English unless its test asks for another
    language (Accept-Language in the request, or the language cookie): the pages speak
    French by default, and most tests were written against the English text."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.environ_base.setdefault("HTTP_ACCEPT_LANGUAGE", "en")


Flask.test_client_class = EnglishClient


def pytest_report_header() -> list[str]:
    return [
        f"database: {'PostgreSQL ' + PG_URL.split('@')[-1] if PG_URL else 'SQLite'}",
        f"rate limits: {'Redis ' + REDIS_URL if REDIS_URL else 'memory'}",
    ]


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrated once per run: a SQLite file to copy, or the PostgreSQL database itself."""
    if PG_URL:
        migrate.upgrade(PG_URL)
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return str(path)


@pytest.fixture
def database_url(_template_db: str, tmp_path: Path) -> str:
    if PG_URL:
        db = Database(PG_URL)
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            conn.execute(
                text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :g)"), {"g": GENESIS}
            )
        db.dispose()
        return PG_URL
    target = tmp_path / "test.db"
    shutil.copy(_template_db, target)
    return f"sqlite:///{target}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        instance_path=tmp_path / "instance",
        database_url=database_url,
        secret_key="test-secret-key",
        redis_url=REDIS_URL,
        argon2=CHEAP_ARGON2,
        ratelimit_key_prefix=f"bgtest-{uuid.uuid4().hex[:12]}",
        mfa_encryption_keys=(TEST_MFA_KEY,),
    )


@pytest.fixture
def registry(settings: Settings) -> Iterator[Services]:
    services = build(settings)
    yield services
    services.close()


@pytest.fixture
def app(registry: Services) -> Flask:
    flask_app = create_app(registry=registry)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """Environment under which the `breachguard` CLI sees the test database."""
    return {
        "BREACHGUARD_INSTANCE": str(settings.instance_path),
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "ARGON2_TIME_COST": str(CHEAP_ARGON2.time_cost),
        "ARGON2_MEMORY_COST": str(CHEAP_ARGON2.memory_cost),
        "BREACH_SOURCES": "local",
        "REDIS_URL": REDIS_URL or "",
        "MFA_ENCRYPTION_KEYS": TEST_MFA_KEY,
    }


@pytest.fixture
def runner(cli_env: dict[str, str]) -> CliRunner:
    return CliRunner(env=cli_env)


@pytest.fixture
def now() -> dt.datetime:
    return dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
