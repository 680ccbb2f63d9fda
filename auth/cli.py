"""The `breachguard` command group. Exit status: 0 ok, 1 findings or failures, 2 bad input."""

from __future__ import annotations

import io

import click

from auth import (
    accounts,
    apikeys,
    cli_admin,
    cli_audit,
    cli_check,
    cli_corpus,
    cli_login,
    cli_monitor,
    cli_notices,
    cli_reset,
    cli_scan,
)
from auth.cli_common import Exit, actor, handle_errors, read_secret, services
from auth.models import utcnow


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """breachguard: find accounts exposed by credential leaks and protect them."""


@main.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create or upgrade the database and the instance folder."""
    from auth import migrate

    registry = services(ctx, need_db=False)
    registry.settings.outbox_path.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(registry.settings.database_url)
    click.echo(f"database ready; instance folder {registry.settings.instance_path}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--threads", default=4, show_default=True, type=int)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, threads: int) -> None:
    """Run the service under gunicorn."""
    from auth import migrate
    from auth.serve import run

    registry = services(ctx)  # fail early, with a clear message, on an uninitialised database
    stale = migrate.behind(registry.db.engine)
    if stale is not None:
        raise Exit(
            f"the database schema is at revision {stale[0]}, this version needs {stale[1]}: "
            "run `breachguard init` to upgrade it"
        )
    run(host=host, port=port, workers=workers, threads=threads)


@main.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Seed demo accounts and a small sample corpus; print how to try them."""
    from auth.demo import seed

    registry = services(ctx)
    with handle_errors():
        text = seed(registry, actor=actor())
    click.echo(text)


# --- accounts -----------------------------------------------------------------------------


@main.group("accounts")
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
            from auth.console.admins import set_admin

            set_admin(session, email=account.email, admin=True, actor=actor(), now=utcnow())
        role = " (administrator)" if admin else ""
        click.echo(f"created account {account.id} <{account.email}>{role}")


# --- apikey -------------------------------------------------------------------------------


@main.group("apikey")
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


# --- mfa ----------------------------------------------------------------------------------


@main.group("mfa")
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


main.add_command(cli_corpus.corpus)
main.add_command(cli_check.check)
main.add_command(cli_scan.scan)
main.add_command(cli_reset.reset)
main.add_command(cli_notices.notices_group)
main.add_command(cli_login.ban)
main.add_command(cli_monitor.monitor)
main.add_command(cli_audit.audit_group)
main.add_command(cli_audit.report_group)
accounts_group.add_command(cli_login.unlock)
accounts_group.add_command(cli_admin.admin)
