"""`breachguard check email/password`: ask every configured source about one input.

Exit 1 when an input is exposed or its check failed: a source that could not answer
never reads as "not found", whatever BREACH_FAILURE_POLICY says (it governs sign-ins).
"""

from __future__ import annotations

import click

from auth.breach.checker import BreachStatus, Check
from auth.cli.common import handle_errors, read_secret, services


def _report_errors(check: Check, label: str) -> None:
    for err in check.errors:
        click.echo(f"{label}source failed: {err}", err=True)


def _failed(check: Check) -> str:
    return f"check failed: {', '.join(check.failed_sources)} could not be asked"


@click.group()
def check() -> None:
    """Check e-mails or a password against every configured source."""


@check.command("email")
@click.argument("addresses", nargs=-1, required=True)
@click.pass_context
def check_email(ctx: click.Context, addresses: tuple[str, ...]) -> None:
    """Which breaches each address appears in (exit 1 if any does, or if a check failed)."""
    registry = services(ctx)
    troubled = False
    for address in addresses:
        with handle_errors():
            result = registry.checker.check_email(address)
        _report_errors(result, f"{address}: ")
        status = result.status
        troubled |= status is not BreachStatus.NOT_FOUND
        if status is BreachStatus.EXPOSED:
            click.echo(
                f"{address}: in {len(result.breaches)} breach(es): {', '.join(result.breaches)}"
            )
        elif status is BreachStatus.FAILED:
            click.echo(f"{address}: {_failed(result)}")
        else:
            click.echo(f"{address}: not found")
    if troubled:
        ctx.exit(1)


@check.command("password")
@click.pass_context
def check_password(ctx: click.Context) -> None:
    """How often a password was seen (asked at a prompt, or one line on stdin; never argv).
    Exit 1 if it was seen, or if the check failed."""
    registry = services(ctx)
    password = read_secret("Password")
    result = registry.checker.check_password(password)
    del password
    _report_errors(result, "")
    status = result.status
    if status is BreachStatus.EXPOSED:
        click.echo(f"pwned: seen {result.count} time(s); do not use this password")
    elif status is BreachStatus.FAILED:
        click.echo(f"{_failed(result)}; the password is not known to be safe")
    else:
        click.echo("not found in any source")
    if status is not BreachStatus.NOT_FOUND:
        ctx.exit(1)
