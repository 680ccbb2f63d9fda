"""`breachguard report exposure`: the subject keys a blocked account touched, for the portal
to find the people it must inform (GDPR article 34)."""

from __future__ import annotations

import json
import sys

import click

from auth import csvout
from auth.activity import exposure
from auth.cli.common import handle_errors, services

FIELDS = ("subject", "first_at", "account_id")


@click.command("exposure")
@click.option("--alert", "alert_id", type=int, required=True, help="The alert's id.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
@click.pass_context
def report_exposure(ctx: click.Context, alert_id: int, fmt: str) -> None:
    """The subject keys that the account of an activity_block (or not_me) alert touched
    from the suspected start of the compromise to the block, each with the first time it
    was touched and the account. Kept EXPOSURE_RETENTION_DAYS, then deleted."""
    registry = services(ctx)
    with handle_errors():
        listed = exposure.listing(registry.db, alert_id)
    rows = [
        {"subject": x.subject, "first_at": x.first_at.isoformat(), "account_id": x.account_id}
        for x in listed
    ]
    if fmt == "json":
        click.echo(json.dumps({"alert": alert_id, "subjects": rows}, indent=1))
        return
    writer = csvout.RecordWriter(sys.stdout, FIELDS)
    for row in rows:
        writer.record(row)
