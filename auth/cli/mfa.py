"""`breachguard mfa rotate-keys`: second-factor administration."""

from __future__ import annotations

import click

from auth.cli.common import actor, handle_errors, services
from auth.models import utcnow


@click.group("mfa")
def mfa_group() -> None:
    """Second-factor administration."""


@mfa_group.command("rotate-keys")
@click.pass_context
def mfa_rotate_keys(ctx: click.Context) -> None:
    """Re-encrypt every TOTP secret with the first key of MFA_ENCRYPTION_KEYS.

    Put the new key first, keep the old ones after it, run this, then drop the old keys.
    """
    from auth.mfa import factors

    registry = services(ctx)
    with handle_errors(), registry.db.session() as session:
        changed = factors.rotate_keys(session, keys=registry.keys, actor=actor(), now=utcnow())
    click.echo(f"re-encrypted {changed} secret(s) with key {registry.keys.current}")
