"""`breachguard alerts list/close/send`: the security team's alerts from a terminal.

`alerts send` pushes the queued deliveries (webhook, e-mail) once, as `serve` does in the
background beside the notices: for a host that runs no server, or to push at once.
"""

from __future__ import annotations

import json

import click
from sqlalchemy import select

from auth import audit
from auth.activity import alerts as alert_records
from auth.activity import deliveries, push
from auth.cli.common import Exit, handle_errors, services
from auth.errors import NotFound
from auth.models import Alert, AlertKind, utcnow


@click.group("alerts")
def alerts_group() -> None:
    """List, close and push the alerts for the security team (spraying, stuffing, robots,
    new sign-ins, "this wasn't me")."""


def _time(value: object) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}Z"


@alerts_group.command("list")
@click.option("--open", "only_open", is_flag=True, help="Only the alerts not closed yet.")
@click.option(
    "--kind", type=click.Choice([k.value for k in AlertKind]), default=None, help="Only this kind."
)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)
@click.pass_context
def alerts_list(
    ctx: click.Context, only_open: bool, kind: str | None, limit: int, fmt: str
) -> None:
    """The newest alerts first: kind, when, occurrences, accounts and addresses."""
    registry = services(ctx)
    query = select(Alert).order_by(Alert.last_at.desc(), Alert.id.desc()).limit(limit)
    if only_open:
        query = query.where(Alert.closed_at.is_(None))
    if kind:
        query = query.where(Alert.kind == kind)
    with registry.db.session() as session:
        found = [deliveries.view(session, a.id) for a in session.execute(query).scalars()]
    if fmt == "json":
        rows = [push.payload(v, settings=registry.settings) for v in found]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo("no alert" + (" open" if only_open else ""))
        return
    for v in found:
        a = v.alert
        state = "open" if a.closed_at is None else f"closed {_time(a.closed_at)}"
        click.echo(
            f"#{a.id}  {a.kind:20}  {_time(a.first_at)} .. {_time(a.last_at)}  "
            f"x{a.occurrences}  {len(a.accounts)} account(s)  {len(a.addresses)} address(es)  "
            f"{state}"
        )


@alerts_group.command("close")
@click.argument("alert_id", type=int)
@click.pass_context
def alerts_close(ctx: click.Context, alert_id: int) -> None:
    """Close an alert (audited): a later repeat of its cause opens a new one."""
    registry = services(ctx)
    try:
        with registry.db.session() as session:
            closed = alert_records.close_alert(
                session, alert_id, actor=audit.Actor.cli(), now=utcnow()
            )
    except NotFound as exc:
        raise Exit(str(exc)) from None
    click.echo(f"alert #{alert_id} closed" if closed else f"alert #{alert_id} was already closed")


@alerts_group.command("send")
@click.option("--limit", type=int, default=None, help="Push at most this many.")
@click.pass_context
def alerts_send(ctx: click.Context, limit: int | None) -> None:
    """Push every alert delivery due now (ALERT_WEBHOOK_URL, SECURITY_ALERT_EMAIL), once.
    Exit 1 when any is retrying, failed for good or waiting for the mail server."""
    from auth import notify

    registry = services(ctx)
    settings = registry.settings
    mailer = notify.mailer_from_settings(settings)
    webhook = push.webhook_from_settings(settings)
    try:
        with handle_errors():
            report = deliveries.drain(
                registry.db, settings=settings, mailer=mailer, webhook=webhook, limit=limit
            )
    finally:
        mailer.close()
        webhook.close()
    parts = [f"sent {report.sent}", f"retrying {report.retrying}", f"failed {report.failed}"]
    if report.waiting:
        parts.append(f"not tried {report.waiting} (the mail server stopped answering)")
    click.echo(", ".join(parts))
    if report.retrying + report.failed + report.waiting:
        rows = deliveries.troubled(registry.db, limit=20)
        for row in rows:
            click.echo(
                f"delivery #{row.id} alert #{row.alert_id} {row.channel} {row.status} "
                f"attempts {row.attempts}: {row.last_error}",
                err=True,
            )
        ctx.exit(1)
