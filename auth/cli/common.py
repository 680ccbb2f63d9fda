"""What every `breachguard` command shares: exit statuses, error reporting, services."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import sqlalchemy.exc
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from auth import audit, logs
from auth.config import load_settings
from auth.errors import AuditChainBroken, BreachguardError
from auth.services import Services, build


class Exit(click.ClickException):
    """Bad input or usage: a clear message and exit status 2."""

    exit_code = 2


class Failed(click.ClickException):
    """Something the caller must act on: exit status 1."""

    exit_code = 1


@contextmanager
def handle_errors() -> Iterator[None]:
    try:
        yield
    except AuditChainBroken as exc:
        raise Failed(str(exc)) from None
    except BreachguardError as exc:
        raise Exit(str(exc)) from None


def is_database_failure(exc: BaseException) -> bool:
    """What a database raises when it cannot go on: SQLAlchemy's wrapper, or the driver's
    own error from the corpus importer's direct driver calls."""
    failures: list[type[BaseException]] = [
        sqlalchemy.exc.OperationalError,
        sqlite3.OperationalError,
    ]
    psycopg = sys.modules.get("psycopg")  # loaded only when PostgreSQL is in use
    if psycopg is not None:
        failures.append(psycopg.OperationalError)
    return isinstance(exc, tuple(failures))


def database_failure(exc: BaseException) -> str:
    """One line: which database, what went wrong, and that the step was rolled back."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return f"database {_where()}: {first} (the step in progress was rolled back)"


def _where() -> str:
    ctx = click.get_current_context(silent=True)
    shared = ctx.find_object(dict) if ctx is not None else None
    registry = (shared or {}).get("services")
    url = make_url(registry.settings.database_url if registry else load_settings().database_url)
    if url.get_backend_name() == "sqlite":
        return str(url.database or "(in memory)")
    return f"{url.host}:{url.port or 5432}/{url.database}"


def services(ctx: click.Context, *, need_db: bool = True) -> Services:
    obj = ctx.ensure_object(dict)
    if "services" not in obj:
        with handle_errors():
            obj["services"] = build(load_settings())
        ctx.call_on_close(obj["services"].close)
        logs.configure_cli(obj["services"].settings.log_format, obj["services"].settings.log_level)
    registry: Services = obj["services"]
    if need_db and not inspect(registry.db.engine).has_table("alembic_version"):
        raise Exit("the database is not initialised: run `breachguard init` first")
    return registry


def actor() -> audit.Actor:
    return audit.Actor.cli()


def progress_bar(total: int | None, unit: str = "B") -> Any:
    """tqdm on a terminal (rate and ETA), nothing otherwise."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    if unit == "B":
        return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr)
    return tqdm(total=total, unit=f" {unit}", file=sys.stderr)


def read_secret(prompt: str, *, confirm: bool = False) -> str:
    """A secret from a hidden prompt, or one line on stdin: never argv, which `ps` shows."""
    if sys.stdin.isatty():
        value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
        return value
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise Exit(f"{prompt.lower()} expected on standard input")
    return value
