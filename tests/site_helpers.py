"""A site with one account: the services built over the test settings (with `changes`)
and one person, for tests of the pages that sign someone in."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from auth import accounts, audit
from auth.config import Settings
from auth.services import Services, build


def site_with_account(
    settings: Settings, *, email: str, password: str, name: str = "Claire", **changes: Any
) -> Services:
    """Sign-in limits are high unless `changes` says otherwise: tests sign in often."""
    registry = build(
        dataclasses.replace(settings, **{"login_rate_limit": "1000 per minute", **changes})
    )
    with registry.db.session() as s:
        accounts.create(
            s,
            email=email,
            name=name,
            password=password,
            hasher=registry.hasher,
            actor=audit.Actor.cli("t"),
            now=dt.datetime.now(dt.UTC),
        )
    return registry
