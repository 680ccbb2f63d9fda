"""`breachguard accounts …`: import, create, console administrators, unlock."""

from __future__ import annotations

import io

import click

from auth import accounts
from auth.breach.hashing import normalise_email
from auth.cli.common import actor, handle_errors, read_secret, services
from auth.console import admins
from auth.models import utcnow
from auth.signin import lockout


@click.group("accounts")
def accounts_group() -> None:
    """Create and import accounts."""


@accounts_group.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--skip-bad", is_flag=True, help="Import the good rows even if some are bad.")
@click.pass_context
def accounts_import(ctx: click.Context, file: io.BufferedReader, skip_bad: bool) -> None:
    """Create or update accounts from a CSV: email, name, professional_id[, password_hash]."""
    registry = services(ctx)
    with handle_errors(), registry.db.session() as session:
        report = accounts.import_csv(session, file, actor=actor(), now=utcnow(), skip_bad=skip_bad)
    for line, message in report.bad:
        click.echo(f"line {line}: skipped: {message}", err=True)
    click.echo(
        f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}, "
        f"bad {len(report.bad)}"
    )
    if report.bad:
        ctx.exit(1)


@accounts_group.command("create")
@click.argument("email")
@click.option("--name", default="")
@click.option("--professional-id", default=None)
@click.option("--password", "ask_password", is_flag=True, help="Prompt for a password.")
@click.option("--admin", is_flag=True, help="May open the security console (/admin).")
@click.pass_context
def accounts_create(
    ctx: click.Context,
    email: str,
    name: str,
    professional_id: str | None,
    ask_password: bool,
    admin: bool,
) -> None:
    """Create one account (without a password it cannot sign in until a reset)."""
    registry = services(ctx)
    password = read_secret("Password", confirm=True) if ask_password else None
    with handle_errors(), registry.db.session() as session:
        account = accounts.create(
            session,
            email=email,
            name=name,
            professional_id=professional_id,
            password=password,
            hasher=registry.hasher,
            actor=actor(),
            now=utcnow(),
        )
        if admin:
            admins.set_admin(session, email=account.email, admin=True, actor=actor(), now=utcnow())
        role = " (administrator)" if admin else ""
        click.echo(f"created account {account.id} <{account.email}>{role}")


@accounts_group.command("admin")
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


@accounts_group.command("unlock")
@click.argument("email")
@click.pass_context
def unlock(ctx: click.Context, email: str) -> None:
    """Unlock an account locked by wrong passwords (and clear its failure count)."""
    registry = services(ctx)
    with handle_errors(), registry.db.session() as session:
        account = lockout.unlock(session, email=normalise_email(email), actor=actor(), now=utcnow())
        click.echo(f"{account.email}: {account.status}, failure count cleared")
