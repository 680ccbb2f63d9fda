"""`breachguard accounts admin EMAIL [--revoke]`: who may open the security console."""

from __future__ import annotations

import click

from auth.cli_common import actor, handle_errors, services
from auth.console import admins
from auth.models import utcnow


@click.command("admin")
@click.argument("email")
@click.option("--revoke", is_flag=True, help="Take the console away instead.")
@click.pass_context
def admin(ctx: click.Context, email: str, revoke: bool) -> None:
    """Let an account open the security console (/admin), or with --revoke stop it.
    The console also wants a sign-in with a second factor."""
    registry = services(ctx)
    with handle_errors(), registry.db.session() as session:
        account, changed = admins.set_admin(
            session, email=email, admin=not revoke, actor=actor(), now=utcnow()
        )
        state = "an administrator" if account.admin else "not an administrator"
        click.echo(f"{account.email} is {state}" + ("" if changed else " (unchanged)"))
