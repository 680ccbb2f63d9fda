"""Where request handlers find the service registry."""

from __future__ import annotations

from flask import current_app

from auth.services import Services

EXTENSION = "breachguard"


def services() -> Services:
    registry: Services = current_app.extensions[EXTENSION]
    return registry
