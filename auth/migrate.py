"""Alembic, driven from code so `breachguard init` needs no alembic.ini."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

# migrations/ in the repository, auth/migrations in the wheel: the package maps one to the
# other (pyproject.toml), so this finds it in a checkout and once installed alike.
MIGRATIONS = Path(str(resources.files("auth.migrations")))


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def behind(engine: Engine) -> tuple[str | None, str] | None:
    """(the database's revision, the code's) when the schema is not the one this code
    needs, else None: `serve` refuses to start rather than fail on every sign-in (each
    one calls a function that migration 0006 creates on PostgreSQL)."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return None if current == head else (current, str(head))
