"""Enrolling an authenticator app the way a person does (start, then confirm with the code
the app shows), for tests that need an account with a TOTP factor."""

from __future__ import annotations

import datetime as dt

import pyotp

from auth import audit
from auth.mfa import factors
from auth.models import Account, utcnow
from auth.services import Services


def enroll_totp(registry: Services, account_id: int) -> str:
    """A confirmed TOTP factor for the account; returns its secret (enrollment used the
    current code, so sign in with `next_code`)."""
    with registry.db.session() as s:
        account = s.get(Account, account_id)
        assert account is not None
        pending = factors.start_totp(
            s, account=account, name="Phone", keys=registry.keys, issuer="bg", now=utcnow()
        )
        factors.confirm_totp(
            s,
            account=account,
            factor_id=pending.factor_id,
            code=pyotp.TOTP(pending.secret).now(),
            keys=registry.keys,
            window=1,
            actor=audit.Actor.cli("test"),
            now=utcnow(),
        )
    return pending.secret


def next_code(secret: str) -> str:
    """The next step's code: accepted within the ±1 window, and not the one enrollment used."""
    return pyotp.TOTP(secret).at(utcnow() + dt.timedelta(seconds=30))
