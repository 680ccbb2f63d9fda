"""Commands that read the trail for people outside the tool: `breachguard audit verify`,
`audit export` (filtered, streamed), and `report incident` (a breach notification draft)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from auth import audit, csvout, report
from auth.breach.hashing import normalise_email
from auth.cli.common import Failed, services
from auth.cli.exposure import report_exposure
from auth.errors import InvalidInput
from auth.models import Account, utcnow

FIELDS = ("seq", "at", "actor", "action", "target", "details", "prev_hash", "hash")


def parse_utc(raw: str, *, end_of_day: bool = False) -> dt.datetime:
    """An ISO date or date-time, in UTC unless it names its offset.

    A bare date means its midnight, or with end_of_day the next midnight, so that
    `--until 2026-11-28` includes the whole of that day.
    """
    text = raw.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            return start + dt.timedelta(days=1) if end_of_day else start
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{raw!r} is not an ISO date or date-time (2026-11-28 or 2026-11-28T14:30:00Z)"
        ) from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


class UtcTime(click.ParamType[dt.datetime, Any]):
    """A click option holding parse_utc's result; a bad value exits 2 naming the option."""

    name = "DATE"

    def __init__(self, *, end_of_day: bool = False) -> None:
        self.end_of_day = end_of_day

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        try:
            return parse_utc(str(value), end_of_day=self.end_of_day)
        except InvalidInput as exc:
            self.fail(str(exc), param, ctx)


def _window(since: dt.datetime | None, until: dt.datetime | None) -> None:
    if since is not None and until is not None and until <= since:
        raise click.BadParameter("must be later than --since", param_hint="--until")


def _account_target(session: Any, raw: str) -> str:
    """`account:<id>` for an id or an e-mail address of an existing account."""
    if raw.strip().isdigit():
        found = session.get(Account, int(raw))
    else:
        try:
            email = normalise_email(raw)
        except InvalidInput:
            email = ""
        found = session.execute(select(Account).where(Account.email == email)).scalar()
    if found is None:
        raise click.BadParameter(
            f"no account {raw!r} (give an id or an e-mail)", param_hint="--account"
        )
    return f"account:{found.id}"


@click.group("audit")
def audit_group() -> None:
    """Read and verify the hash-chained audit trail."""


@audit_group.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Check the hash chain; exit 1 and name the first bad event if it is broken."""
    registry = services(ctx)
    with registry.db.session() as session:
        result = audit.verify(session)
    if not result.ok:
        raise Failed(f"audit trail BROKEN: {result.problem}")
    click.echo(f"audit trail intact: {result.events} events")


@audit_group.command("export")
@click.option("--since", type=UtcTime(), help="From this date or time (UTC), included.")
@click.option(
    "--until", type=UtcTime(end_of_day=True), help="Up to this time, or the end of this day."
)
@click.option("--account", "account", help="Only events about this account (id or e-mail).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
@click.pass_context
def audit_export(
    ctx: click.Context,
    since: dt.datetime | None,
    until: dt.datetime | None,
    account: str | None,
    fmt: str,
) -> None:
    """Write events to stdout in seq order, a batch at a time (any size of trail)."""
    _window(since, until)
    registry = services(ctx)
    with registry.db.session() as session:
        target = _account_target(session, account) if account is not None else None
        writer = csvout.RecordWriter(sys.stdout, FIELDS) if fmt == "csv" else None
        for ev in audit.iter_events(session, since=since, until=until, target=target):
            if writer is not None:
                writer.record({f: getattr(ev, f) for f in FIELDS} | {"at": ev.at.isoformat()})
            else:
                click.echo(json.dumps(audit.as_record(ev)))


@click.group("report")
def report_group() -> None:
    """Reports for people outside the tool."""


@report_group.command("incident")
@click.option("--since", required=True, type=UtcTime(), help="Start of the incident (UTC).")
@click.option("--until", type=UtcTime(end_of_day=True), help="End of the window (default: now).")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to FILE instead of stdout.",
)
@click.option(
    "--with-accounts",
    is_flag=True,
    help="Add an annex listing each affected account's id and e-mail (personal data: "
    "without it the report holds counts only).",
)
@click.pass_context
def report_incident(
    ctx: click.Context,
    since: dt.datetime,
    until: dt.datetime | None,
    fmt: str,
    output: Path | None,
    with_accounts: bool,
) -> None:
    """A draft of the breach notification a regulator asks for (GDPR art. 33): accounts
    affected, measures taken with their times, second-factor coverage before and after.
    Fields only the controller can fill are marked for the DPO."""
    now = utcnow()
    until = until or now
    _window(since, until)
    registry = services(ctx)
    with registry.db.connection() as conn:
        incident = report.gather(
            conn, since=since, until=until, now=now, with_accounts=with_accounts
        )
    text = report.to_html(incident) if fmt == "html" else report.to_markdown(incident)
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(
        f"report written to {output}: {incident.accounts_affected} account(s) affected, "
        f"{len(incident.measures)} kind(s) of measure"
    )


report_group.add_command(report_exposure)
