"""`breachguard init`, `serve` and `demo`: the database, the server, the demo data."""

from __future__ import annotations

import click

from auth.cli.common import Exit, Failed, actor, handle_errors, services


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create or upgrade the database and the instance folder."""
    from auth import migrate

    registry = services(ctx, need_db=False)
    registry.settings.outbox_path.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(registry.settings.database_url)
    click.echo(f"database ready; instance folder {registry.settings.instance_path}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--threads", default=4, show_default=True, type=int)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, threads: int) -> None:
    """Run the service under gunicorn."""
    from auth import migrate
    from auth.web.server import CannotListen, run

    registry = services(ctx)  # fail early, with a clear message, on an uninitialised database
    stale = migrate.behind(registry.db.engine)
    if stale is not None:
        raise Exit(
            f"the database schema is at revision {stale[0]}, this version needs {stale[1]}: "
            "run `breachguard init` to upgrade it"
        )
    try:
        run(host=host, port=port, workers=workers, threads=threads)
    except CannotListen as exc:
        raise Failed(f"cannot serve: {exc}") from None


@click.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Seed demo accounts and a small sample corpus; print how to try them."""
    from auth.demo import seed

    registry = services(ctx)
    with handle_errors():
        text = seed(registry, actor=actor())
    click.echo(text)
