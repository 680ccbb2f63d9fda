"""The one registry of side-effecting services, chosen by configuration.

The web app, the CLI and the benchmarks build it the same way; tests build it with
real local services (a SQLite file or a PostgreSQL database, a loopback HIBP).
"""

from __future__ import annotations

from dataclasses import dataclass

from auth.breach.checker import BreachSource, Checker, HibpSource, LocalSource
from auth.breach.hibp import HibpClient, HibpSettings
from auth.config import Settings
from auth.db import Database
from auth.mfa.crypto import KeyRing
from auth.passwords import Hasher


@dataclass
class Services:
    settings: Settings
    db: Database
    hasher: Hasher
    hibp: HibpClient | None
    checker: Checker
    keys: KeyRing

    def close(self) -> None:
        if self.hibp is not None:
            self.hibp.close()
        self.db.dispose()


def hibp_client(settings: Settings) -> HibpClient:
    return HibpClient(
        HibpSettings(
            passwords_url=settings.hibp_passwords_url,
            api_url=settings.hibp_api_url,
            api_key=settings.hibp_api_key,
            read_timeout=settings.hibp_timeout,
        )
    )


def build(settings: Settings, db: Database | None = None) -> Services:
    db = db or Database(settings.database_url)
    hibp = hibp_client(settings) if "hibp" in settings.breach_sources else None
    sources: list[BreachSource] = []
    for name in settings.breach_sources:
        if name == "local":
            sources.append(LocalSource(db))
        elif name == "hibp" and hibp is not None:
            sources.append(HibpSource(hibp))
    checker = Checker(sources, fail_closed=settings.breach_failure_policy == "fail_closed")
    keys = KeyRing(settings.mfa_encryption_keys)
    return Services(settings, db, Hasher(settings.argon2), hibp, checker, keys)
