"""Reachability probes for `breachguard doctor`: real connections to the database, Redis
and the SMTP server, with short timeouts. What they report names hosts, never credentials."""

from __future__ import annotations

import enum
import smtplib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from auth import migrate
from auth.config import Settings
from auth.notify.mailers import SmtpMailer

PROBE_SECONDS = 3


class Service(enum.StrEnum):
    DATABASE = "database"
    REDIS = "redis"
    SMTP = "smtp"


@dataclass(frozen=True)
class Probe:
    service: Service
    target: str  # host:port (and database), never credentials
    error: str | None  # None: it answered as the service needs
    remedy: str = ""  # when it did not: what to do, if not to fix its URL

    @property
    def ok(self) -> bool:
        return self.error is None


def _first_line(exc: BaseException, url: str) -> str:
    cause = getattr(exc, "orig", None) or exc
    line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    password = urlsplit(url).password
    for secret in {password, unquote(password or "")} - {None, ""}:
        line = line.replace(str(secret), "[redacted]")
    return line


def _target(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{host}{port}{parts.path if parts.path not in ('', '/') else ''}"


def probe_database(url: str, *, timeout: int = PROBE_SECONDS) -> Probe:
    """Connect, run a statement, and compare the schema with this version's."""
    parsed = make_url(url)
    init = "keep it, and run `breachguard init` (it creates or upgrades the schema)"
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if not Path(path).is_file():
            return Probe(Service.DATABASE, path or "(in memory)", "no database file", init)
        target = path
        read_only = f"{Path(path).resolve().as_uri()}?mode=ro"  # the doctor changes nothing
        engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(read_only, uri=True))
    else:
        target = f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database}"
        engine = create_engine(url, connect_args={"connect_timeout": max(2, timeout)})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        stale = migrate.behind(engine)
    except Exception as exc:
        return Probe(Service.DATABASE, target, _first_line(exc, url))
    finally:
        engine.dispose()
    if stale is not None:
        return Probe(
            Service.DATABASE,
            target,
            f"the schema is at revision {stale[0]}, this version needs {stale[1]}",
            init,
        )
    return Probe(Service.DATABASE, target, None)


def probe_redis(url: str, *, timeout: float = PROBE_SECONDS) -> Probe:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return Probe(Service.REDIS, _target(url), _first_line(exc, url))
    return Probe(Service.REDIS, _target(url), None)


def probe_smtp(url: str, *, timeout: float = PROBE_SECONDS) -> Probe:
    """The greeting, STARTTLS and login as the service does them (the mailer's own
    connection code), then QUIT: no message is sent."""
    try:
        mailer = SmtpMailer(url)
        mailer.timeout = min(mailer.timeout, timeout)
        client = mailer._connect()
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
    except Exception as exc:
        return Probe(Service.SMTP, _target(url), _first_line(exc, url))
    return Probe(Service.SMTP, _target(url), None)


def probe(settings: Settings, *, timeout: int = PROBE_SECONDS) -> list[Probe]:
    """The database always; Redis and SMTP when configured."""
    probes = [probe_database(settings.database_url, timeout=timeout)]
    if settings.redis_url:
        probes.append(probe_redis(settings.redis_url, timeout=timeout))
    if settings.smtp_url:
        probes.append(probe_smtp(settings.smtp_url, timeout=timeout))
    return probes
