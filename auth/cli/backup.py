"""`breachguard backup FILE`: a consistent copy of the SQLite database (auth/backup.py)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from auth import backup, doctor
from auth.cli.common import handle_errors, services


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.pass_context
def backup_command(ctx: click.Context, file: Path, force: bool) -> None:
    """Copy the SQLite database into FILE while the service runs (SQLite's online backup:
    one consistent state). On PostgreSQL, use pg_dump (README, Backups): exit 2."""
    settings = services(ctx, need_db=False).settings
    with handle_errors():
        source = backup.sqlite_file(settings.database_url)
        services(ctx)  # an initialised database, or a clear message
        done = backup.backup_sqlite(source, file, force=force)
    click.echo(f"backed up {done.source} to {done.target} ({done.size:,} bytes)")
    where = doctor.secrets_from(os.environ).sources(settings.instance_path)
    click.echo(
        "the copy holds no keys: a restore needs "
        + " and ".join(f"{name} (now from {origin})" for name, origin in where.items())
        + "; keep them too, apart from the copy"
    )
