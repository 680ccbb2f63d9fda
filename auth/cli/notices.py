"""`breachguard notices send/status`: the queue of e-mail notices, by hand."""

from __future__ import annotations

import click

from auth.cli.common import handle_errors, services


@click.group("notices")
def notices_group() -> None:
    """Send and inspect the queue of e-mail notices (SMTP_URL, or the outbox folder)."""


@notices_group.command("send")
@click.option("--limit", type=int, default=None, help="Send at most this many.")
@click.pass_context
def notices_send(ctx: click.Context, limit: int | None) -> None:
    """Send every notice due now, once, SMTP_CONNECTIONS at a time. Exit 1 when any notice
    it tried was refused, failed for good or is waiting for a retry."""
    from auth import notify

    registry = services(ctx)
    settings = registry.settings
    mailer = notify.mailer_from_settings(settings)
    try:
        with handle_errors():
            report = notify.drain(
                registry.db,
                mailer=mailer,
                settings=settings,
                worker="cli",
                limit=limit,
                parallel=settings.smtp_connections,
            )
    finally:
        mailer.close()
    parts = [f"sent {report.sent}", f"retrying {report.retrying}", f"failed {report.failed}"]
    if report.refused:
        parts[-1] += f" ({report.refused} refused by the server)"
    if report.skipped:
        parts.append(f"skipped {report.skipped} (link no longer valid)")
    if report.waiting:
        parts.append(f"not tried {report.waiting} (the server stopped answering)")
    click.echo(", ".join(parts))
    troubled = report.retrying + report.failed + report.waiting
    if troubled:
        click.echo(
            f"{troubled} notice(s) not delivered: `breachguard notices status` says why", err=True
        )
        ctx.exit(1)


@notices_group.command("status")
@click.pass_context
def notices_status(ctx: click.Context) -> None:
    """Counts per status, then the notices that failed or wait for a retry (never a link)."""
    from auth import notify

    registry = services(ctx)
    report = notify.status(registry.db)
    click.echo(", ".join(f"{name} {count}" for name, count in report.counts.items()))
    for row in report.problems:
        when = "-" if row.status == "failed" else f"{row.next_attempt_at:%Y-%m-%d %H:%M:%S}Z"
        click.echo(
            f"#{row.id}  {row.status:8}  {row.kind:15}  attempts {row.attempts}  next {when}  "
            f"{row.email}  {row.last_error or ''}".rstrip()
        )
    if report.more:
        click.echo(f"... and {report.more} more")
