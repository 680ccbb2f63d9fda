"""`breachguard apikey create/list/revoke`: scoped API keys."""

from __future__ import annotations

import click

from auth import apikeys
from auth.cli.common import actor, handle_errors, services
from auth.models import utcnow


@click.group("apikey")
def apikey_group() -> None:
    """Create, list and revoke API keys."""


@apikey_group.command("create")
@click.option("--role", required=True, type=click.Choice(["hook", "security", "admin"]))
@click.option("--name", default="")
@click.pass_context
def apikey_create(ctx: click.Context, role: str, name: str) -> None:
    """Create a key and print it once (the last word of the line)."""
    registry = services(ctx)
    with handle_errors(), registry.db.session() as session:
        key = apikeys.create(session, role=role, name=name, actor=actor(), now=utcnow())
    click.echo(f"created {key.role} key {key.id}; it is shown only now: {key.token}")


@apikey_group.command("list")
@click.pass_context
def apikey_list(ctx: click.Context) -> None:
    """List keys (never their secrets)."""
    registry = services(ctx)
    with registry.db.session() as session:
        keys = apikeys.list_keys(session)
        for k in keys:
            state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
            used = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never"
            click.echo(f"{k.id}  {k.role:8}  {state:18}  last used {used}  {k.name}")


@apikey_group.command("revoke")
@click.argument("key_id")
@click.pass_context
def apikey_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key by its id."""
    registry = services(ctx)
    with handle_errors(), registry.db.session() as session:
        apikeys.revoke(session, key_id, actor=actor(), now=utcnow())
    click.echo(f"revoked {key_id}")
