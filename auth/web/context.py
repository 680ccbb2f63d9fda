"""Where request handlers find the service registry."""

from __future__ import annotations

from flask import current_app

from auth.services import Services
from auth.signin.flow import SignIn

EXTENSION = "breachguard"
SIGNIN = "breachguard.signin"
LIMITER = "breachguard.limiter"  # the app's flask_limiter.Limiter


def services() -> Services:
    registry: Services = current_app.extensions[EXTENSION]
    return registry


def signin() -> SignIn:
    """The app's login flow (one per app: it keeps the measured argon2 duration)."""
    flow: SignIn | None = current_app.extensions.get(SIGNIN)
    if flow is None:
        flow = current_app.extensions[SIGNIN] = SignIn(services())
    return flow
