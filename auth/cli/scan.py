"""`breachguard scan`: every account against every source, then the open findings."""

from __future__ import annotations

import io
import json

import click

from auth import csvout
from auth.breach import findings
from auth.breach import scan as scanning
from auth.cli.common import actor, services
from auth.models import utcnow


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.pass_context
def scan(ctx: click.Context, fmt: str) -> None:
    """Check every account against every source; list open findings.

    Exit 1 if there are open findings, or if a source failed: the accounts it could not
    be asked about are counted as not checked, never as clean."""
    registry = services(ctx)
    with registry.db.session() as session:
        report = scanning.scan(
            session,
            sources=registry.settings.breach_sources,
            hibp=registry.hibp,
            actor=actor(),
            now=utcnow(),
        )
        rows = findings.open_findings(session)
    for err in report.errors:
        click.echo(f"error: {err}", err=True)
    _print_findings(rows, fmt, incomplete=bool(report.failed_accounts))
    click.echo(
        f"{report.accounts} accounts scanned, {report.new_findings} new finding(s), "
        f"{len({r.account_id for r in rows})} account(s) with open findings"
        + (
            f"; {report.failed_accounts} account(s) not checked: a source failed"
            if report.failed_accounts
            else ""
        ),
        err=True,
    )
    if rows or report.errors:
        ctx.exit(1)


def _print_findings(rows: list[findings.FindingRow], fmt: str, *, incomplete: bool) -> None:
    fields = ("email", "kind", "source", "breach", "first_seen", "last_seen")
    records = [
        {
            "email": r.email,
            "kind": r.kind,
            "source": r.source,
            "breach": r.breach,
            "first_seen": r.first_seen.isoformat(timespec="seconds"),
            "last_seen": r.last_seen.isoformat(timespec="seconds"),
        }
        for r in rows
    ]
    if fmt == "json":
        click.echo(json.dumps(records, indent=2))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csvout.RecordWriter(out, fields)
        for record in records:
            writer.record(record)
        click.echo(out.getvalue(), nl=False)
    elif records:
        widths = {f: max(len(f), *(len(r[f]) for r in records)) for f in fields}
        click.echo("  ".join(f.upper().ljust(widths[f]) for f in fields))
        for rec in records:
            click.echo("  ".join(rec[f].ljust(widths[f]) for f in fields).rstrip())
    elif incomplete:
        click.echo("no open findings, but the scan is incomplete: a source failed")
    else:
        click.echo("no open findings")
