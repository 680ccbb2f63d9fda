"""`breachguard reset`: forced password resets (a file of e-mails, the scan's findings, one
account), resumable, then the notices sent."""

from __future__ import annotations

from pathlib import Path

import click

from auth.cli.common import Exit, actor, handle_errors, progress_bar, services
from auth.models import FindingKind


@click.command()
@click.option(
    "--emails",
    "emails_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="E-mails to reset: one per line, or a CSV with an email column.",
)
@click.option("--from-scan", is_flag=True, help="Reset the accounts with open findings.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice([k.value for k in FindingKind]),
    help="With --from-scan: only findings of this kind (repeatable).",
)
@click.option("--account", "account_id", type=int, help="Reset one account by id.")
@click.option(
    "--reason",
    default="",
    help="Why, in plain words, in the people's language: it goes into the notice "
    "(default: each notice's own words for 'your password may have been exposed in a leak').",
)
@click.option("--dry-run", is_flag=True, help="Print what would happen; change nothing.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the outcome per account to FILE (.csv or .json).",
)
@click.option("--no-send", is_flag=True, help="Queue the notices but do not send them now.")
@click.pass_context
def reset(
    ctx: click.Context,
    emails_file: Path | None,
    from_scan: bool,
    kinds: tuple[str, ...],
    account_id: int | None,
    reason: str,
    dry_run: bool,
    report_path: Path | None,
    no_send: bool,
) -> None:
    """Force a password reset: sessions end, the password stops working, each person gets
    one notice with a reset link. Rerun after an interruption to finish what is left."""
    from auth.reset import job, sources

    if sum([emails_file is not None, from_scan, account_id is not None]) != 1:
        raise Exit("choose exactly one of --emails FILE, --from-scan, --account ID")
    if emails_file is not None and not emails_file.is_file():
        # An interrupted run is finished by the same command, which reads the list again
        # (and a file changed since it was checked is read again): a pipe would be empty.
        raise Exit(
            f"--emails {emails_file}: not a regular file (a pipe?); an interrupted run is "
            "finished by running the same command again, which reads the list again: save "
            "the list to a file first"
        )
    if kinds and not from_scan:
        raise Exit("--kind only goes with --from-scan")
    registry = services(ctx)
    settings = registry.settings
    source: sources.Source
    if emails_file is not None:
        source, bad = sources.read_email_file(emails_file)
        if bad:
            lines = "\n".join(f"line {n}: {m}" for n, m in bad[:20])
            more = f"\n... and {len(bad) - 20} more" if len(bad) > 20 else ""
            raise Exit(
                f"{len(bad)} bad line(s) in {emails_file}; nothing was reset:\n{lines}{more}"
            )
    elif from_scan:
        source = sources.FromScan(kinds)
    else:
        assert account_id is not None
        source = sources.OneAccount(account_id)
    report_file = job.ReportFile(report_path) if report_path else None
    verb = {"reset": "would reset", "already_reset": "already reset", "unknown": "unknown"}

    def show(rows: list[job.AccountResult]) -> None:
        for email, _, outcome, detail in rows:
            if dry_run or outcome in ("unknown", "failed"):
                suffix = f" ({detail})" if outcome == "failed" else ""
                click.echo(f"{verb.get(outcome.value, outcome.value)}: {email}{suffix}")
        if report_file is not None:
            report_file(rows)

    bar = None
    with handle_errors():
        try:
            with registry.db.session() as session:
                source.fingerprint(session, reason)  # names a missing --account at once
            bar = None if dry_run else progress_bar(source.total(), unit="account")
            report = job.run(
                registry.db,
                source,
                reason=reason,
                actor=actor(),
                secret_key=settings.secret_key,
                require_mfa=settings.reset_requires_mfa,
                batch=settings.reset_batch,
                dry_run=dry_run,
                sink=show,
                progress=bar.update if bar else None,
            )
        finally:
            if bar is not None:
                bar.close()
    if report_file is not None:
        report_file.close(report)
    summary = report.summary()
    prefix = "dry run, nothing changed: " if dry_run else f"job {report.job_id}: "
    click.echo(
        prefix + f"{'would reset' if dry_run else 'reset'} {summary['reset']}, already reset "
        f"{summary['already_reset']}, unknown {summary['unknown']}, failed {summary['failed']}"
    )
    if report_path is not None:
        click.echo(f"report written to {report_path}")
    if not dry_run and not no_send:  # also what an interrupted run left queued
        from auth import notify

        mailer = notify.mailer_from_settings(settings)
        try:
            sent = notify.drain(
                registry.db, mailer=mailer, settings=settings, parallel=settings.smtp_connections
            )
        finally:
            mailer.close()
        click.echo(
            f"notices: {sent.sent} sent, {sent.retrying + sent.waiting} to retry, "
            f"{sent.failed} failed"
        )
    if report.failed:
        ctx.exit(1)
