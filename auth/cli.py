"""The `breachguard` command group. Exit status: 0 ok, 1 findings or failures, 2 bad input."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys
from pathlib import Path
from typing import Any

import click

from auth import accounts, apikeys, cli_admin, cli_audit, cli_login, cli_monitor
from auth.breach import findings, importer, store
from auth.breach import scan as scanning
from auth.breach.formats import Format
from auth.cli_common import Exit, actor, handle_errors, services
from auth.models import BreachKind, FindingKind, utcnow


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
    from auth.serve import run

    services(ctx)  # fail early, with a clear message, on an uninitialised database
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
    password = _read_secret("Password", confirm=True) if ask_password else None
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


# --- corpus -------------------------------------------------------------------------------


@main.group()
def corpus() -> None:
    """Import and describe breach corpora."""


def _progress_bar(total: int | None, unit: str = "B") -> Any:
    """tqdm on a terminal (rate and ETA), nothing otherwise."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    if unit == "B":
        return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr)
    return tqdm(total=total, unit=f" {unit}", file=sys.stderr)


@corpus.command("import")
@click.argument("file")
@click.option("--type", "kind", required=True, type=click.Choice([k.value for k in BreachKind]))
@click.option("--breach", default=None, help="Breach name (default: the file name).")
@click.option("--date", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Breach date.")
@click.option(
    "--format",
    "fmt",
    # .value: Click >= 8.2 shows and matches enum members by name (SHA1), not value (sha1).
    type=click.Choice(["auto", Format.SHA1.value, Format.PREFIX.value, Format.PLAIN.value]),
    default="auto",
    show_default=True,
    help="For --type passwords: HIBP SHA1:COUNT, per-prefix SUFFIX:COUNT, or plain passwords.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--no-monitor",
    is_flag=True,
    help="Do not check the accounts against this import nor apply the finding policy now.",
)
@click.pass_context
def corpus_import(
    ctx: click.Context,
    file: str,
    kind: str,
    breach: str | None,
    date: dt.datetime | None,
    fmt: str,
    as_json: bool,
    no_monitor: bool,
) -> None:
    """Import a breach file (FILE may be .gz/.bz2/.xz, `-` for stdin, or a folder of
    per-prefix files). Stores SHA-1 digests only. Then, unless --no-monitor, checks every
    account against this import and applies the finding policy (as `monitor` would)."""
    registry = services(ctx)
    with handle_errors():
        source = importer.Source(file)
        bar = _progress_bar(source.total_bytes())
        try:
            with registry.db.session() as session:
                report = importer.Importer(
                    session, registry.hasher, actor(), progress=bar.update if bar else None
                ).run(
                    source,
                    BreachKind(kind),
                    breach=breach,
                    date=date.date() if date else None,
                    fmt=None if fmt == "auto" else Format(fmt),
                )
        finally:
            if bar is not None:
                bar.close()
        checked = None if no_monitor else cli_monitor.after_import(registry, report.breach)
    if as_json:
        click.echo(json.dumps(report.as_dict() | {"monitor": checked}, indent=2))
    else:
        click.echo(
            f"breach {report.breach!r} ({report.kind}, {report.format}): {report.lines} lines, "
            f"{report.password_entries} password digests, {report.email_entries} e-mail digests, "
            f"{report.bad} malformed, {report.blank} blank, in {report.seconds:.1f} s"
        )
        for line, message in report.bad_samples:
            click.echo(f"  line {line}: {message}", err=True)
        if report.bad > len(report.bad_samples):
            click.echo(f"  ... and {report.bad - len(report.bad_samples)} more", err=True)
        if report.valid_credentials:
            click.echo(
                f"{report.valid_credentials} account(s) whose leaked password still works: "
                "run `breachguard scan`"
            )
        if checked is not None:
            cli_monitor.echo_after_import(checked)


@corpus.command("stats")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def corpus_stats(ctx: click.Context, as_json: bool) -> None:
    """How many digests the local corpus holds, per breach."""
    registry = services(ctx)
    with registry.db.engine.connect() as conn:
        stats = store.stats(conn)
    if as_json:
        click.echo(json.dumps(stats.__dict__, indent=2, default=str))
        return
    click.echo(f"{stats.password_digests} distinct password digests")
    click.echo(f"{stats.email_digests} distinct e-mail digests")
    for b in stats.breaches:
        click.echo(
            f"  {b['name']}: {b['kind']}, {b['password_entries']} passwords, "
            f"{b['email_entries']} e-mails, {b['lines_bad']} bad lines, "
            f"date {b['breach_date'] or '?'}"
        )


# --- check --------------------------------------------------------------------------------


@main.group()
def check() -> None:
    """Check e-mails or a password against every configured source."""


@check.command("email")
@click.argument("addresses", nargs=-1, required=True)
@click.pass_context
def check_email(ctx: click.Context, addresses: tuple[str, ...]) -> None:
    """Which breaches each address appears in (exit 1 if any does)."""
    registry = services(ctx)
    exposed = failed = False
    for address in addresses:
        with handle_errors():
            result = registry.checker.check_email(address)
        for err in result.errors:
            click.echo(f"{address}: source failed: {err}", err=True)
        failed |= result.failed
        if result.breaches:
            exposed = True
            click.echo(
                f"{address}: in {len(result.breaches)} breach(es): {', '.join(result.breaches)}"
            )
        else:
            click.echo(f"{address}: not found" + (" (check failed)" if result.failed else ""))
    if exposed or failed:
        ctx.exit(1)


def _read_secret(prompt: str, *, confirm: bool = False) -> str:
    if sys.stdin.isatty():
        value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
        return value
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise Exit(f"{prompt.lower()} expected on standard input")
    return value


@check.command("password")
@click.pass_context
def check_password(ctx: click.Context) -> None:
    """How often a password was seen (asked at a prompt, or one line on stdin; never argv)."""
    registry = services(ctx)
    password = _read_secret("Password")
    result = registry.checker.check_password(password)
    del password
    for err in result.errors:
        click.echo(f"source failed: {err}", err=True)
    if result.count:
        click.echo(f"pwned: seen {result.count} time(s); do not use this password")
        ctx.exit(1)
    click.echo("not found in any source" + (" (check failed)" if result.failed else ""))
    if result.failed:
        ctx.exit(1)


# --- scan ---------------------------------------------------------------------------------


@main.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.pass_context
def scan(ctx: click.Context, fmt: str) -> None:
    """Check every account against every source; list open findings (exit 1 if any)."""
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
    _print_findings(rows, fmt)
    click.echo(
        f"{report.accounts} accounts scanned, {report.new_findings} new finding(s), "
        f"{len({r.account_id for r in rows})} account(s) with open findings",
        err=True,
    )
    if rows or report.errors:
        ctx.exit(1)


def _print_findings(rows: list[findings.FindingRow], fmt: str) -> None:
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
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        click.echo(out.getvalue(), nl=False)
    elif records:
        widths = {f: max(len(f), *(len(r[f]) for r in records)) for f in fields}
        click.echo("  ".join(f.upper().ljust(widths[f]) for f in fields))
        for rec in records:
            click.echo("  ".join(rec[f].ljust(widths[f]) for f in fields).rstrip())
    else:
        click.echo("no open findings")


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


# --- reset --------------------------------------------------------------------------------


@main.command()
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
    from auth.reset import job

    if sum([emails_file is not None, from_scan, account_id is not None]) != 1:
        raise Exit("choose exactly one of --emails FILE, --from-scan, --account ID")
    if kinds and not from_scan:
        raise Exit("--kind only goes with --from-scan")
    registry = services(ctx)
    settings = registry.settings
    source: job.Source
    if emails_file is not None:
        file_source = job.EmailFile(emails_file)
        bad = file_source.validate()
        if bad:
            lines = "\n".join(f"line {n}: {m}" for n, m in bad[:20])
            more = f"\n... and {len(bad) - 20} more" if len(bad) > 20 else ""
            raise Exit(
                f"{len(bad)} bad line(s) in {emails_file}; nothing was reset:\n{lines}{more}"
            )
        source = file_source
    elif from_scan:
        source = job.FromScan(kinds)
    else:
        assert account_id is not None
        source = job.OneAccount(account_id)
    report_file = job.ReportFile(report_path) if report_path else None
    verb = {"reset": "would reset", "already_reset": "already reset", "unknown": "unknown"}

    def show(row: job.Row) -> None:
        email, _, outcome, detail = row
        if dry_run or outcome.value in ("unknown", "failed"):
            suffix = f" ({detail})" if outcome.value == "failed" else ""
            click.echo(f"{verb.get(outcome.value, outcome.value)}: {email}{suffix}")
        if report_file is not None:
            report_file(row)

    bar = None
    with handle_errors():
        try:
            with registry.db.session() as session:
                source.fingerprint(session, reason)  # names a missing --account at once
            bar = None if dry_run else _progress_bar(source.total(), unit="account")
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

        sent = notify.drain(
            registry.db, mailer=notify.mailer_from_settings(settings), settings=settings
        )
        click.echo(f"notices: {sent.sent} sent, {sent.retrying} to retry, {sent.failed} failed")
    if report.failed:
        ctx.exit(1)


# --- notices ------------------------------------------------------------------------------


@main.group("notices")
def notices_group() -> None:
    """Send and inspect the queue of e-mail notices (SMTP_URL, or the outbox folder)."""


@notices_group.command("send")
@click.option("--limit", type=int, default=None, help="Send at most this many.")
@click.pass_context
def notices_send(ctx: click.Context, limit: int | None) -> None:
    """Send every notice due now, once (exit 1 if any failed for good)."""
    from auth import notify

    registry = services(ctx)
    settings = registry.settings
    with handle_errors():
        report = notify.drain(
            registry.db,
            mailer=notify.mailer_from_settings(settings),
            settings=settings,
            worker="cli",
            limit=limit,
        )
    click.echo(
        f"sent {report.sent}, retrying {report.retrying}, failed {report.failed}"
        + (f", skipped {report.skipped} (link no longer valid)" if report.skipped else "")
    )
    if report.failed:
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


main.add_command(cli_login.ban)
main.add_command(cli_monitor.monitor)
main.add_command(cli_audit.audit_group)
main.add_command(cli_audit.report_group)
accounts_group.add_command(cli_login.unlock)
accounts_group.add_command(cli_admin.admin)
