"""`breachguard doctor`: is this configuration ready to go live? (auth/doctor.py)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from auth import doctor
from auth.cli.common import Exit
from auth.errors import InvalidInput


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
def doctor_command(ctx: click.Context, as_json: bool) -> None:
    """Check the configuration in the environment and reach its database, Redis and SMTP
    server. Each finding names a variable and a value to give it; no secret is shown.
    Exit 1 on any error, 0 with warnings alone, 2 when the configuration does not load."""
    try:
        settings, secrets = doctor.settings_from(os.environ)
    except InvalidInput as exc:
        raise Exit(f"the configuration does not load: {exc}") from None
    report = doctor.examine(settings, secrets)
    if as_json:
        click.echo(json.dumps(_as_dict(report, settings.instance_path), indent=2))
    else:
        _print(report, settings.instance_path)
    if report.errors:
        ctx.exit(1)


def _as_dict(report: doctor.Report, instance: Path) -> dict[str, object]:
    return {
        "ok": not report.errors,
        "errors": report.errors,
        "warnings": len(report.findings) - report.errors,
        "secrets": report.secrets.sources(instance),
        "several_hosts": report.shared_by,
        "services": [
            {"service": p.service.value, "target": p.target, "ok": p.ok, "error": p.error}
            for p in report.probes
        ],
        "findings": [
            {
                "code": f.code.value,
                "severity": f.severity.value,
                "problem": f.problem,
                "change": [{"variable": c.variable, "value": c.value} for c in f.changes],
            }
            for f in report.findings
        ],
    }


def _print(report: doctor.Report, instance: Path) -> None:
    for name, origin in report.secrets.sources(instance).items():
        click.echo(f"{name} from {origin}")
    hosts = f"several may run this ({report.shared_by})" if report.shared_by else "this one"
    click.echo(f"hosts: {hosts}")
    for p in report.probes:
        click.echo(f"{p.service} {p.target}: {'answers' if p.ok else 'NOT READY'}")
    for f in report.findings:
        click.echo(f"\n{f.severity.value.upper()} {f.code.value}: {f.problem}")
        for change in f.changes:
            click.echo(f"  change {change.variable}: {change.value}")
    warnings = len(report.findings) - report.errors
    click.echo(f"\n{report.errors} error(s), {warnings} warning(s)")
