"""`breachguard check email/password`: ask every configured source about one input."""

from __future__ import annotations

import click

from auth.cli.common import handle_errors, read_secret, services


@click.group()
def check() -> None:
    """Check e-mails or a password against every configured source."""


@check.command("email")
@click.argument("addresses", nargs=-1, required=True)
@click.pass_context
def check_email(ctx: click.Context, addresses: tuple[str, ...]) -> None:
    """Which breaches each address appears in (exit 1 if any does)."""
    registry = services(ctx)
    exposed = failed = False
    for address in addresses:
        with handle_errors():
            result = registry.checker.check_email(address)
        for err in result.errors:
            click.echo(f"{address}: source failed: {err}", err=True)
        failed |= result.failed
        if result.breaches:
            exposed = True
            click.echo(
                f"{address}: in {len(result.breaches)} breach(es): {', '.join(result.breaches)}"
            )
        else:
            click.echo(f"{address}: not found" + (" (check failed)" if result.failed else ""))
    if exposed or failed:
        ctx.exit(1)


@check.command("password")
@click.pass_context
def check_password(ctx: click.Context) -> None:
    """How often a password was seen (asked at a prompt, or one line on stdin; never argv)."""
    registry = services(ctx)
    password = read_secret("Password")
    result = registry.checker.check_password(password)
    del password
    for err in result.errors:
        click.echo(f"source failed: {err}", err=True)
    if result.count:
        click.echo(f"pwned: seen {result.count} time(s); do not use this password")
        ctx.exit(1)
    click.echo("not found in any source" + (" (check failed)" if result.failed else ""))
    if result.failed:
        ctx.exit(1)
