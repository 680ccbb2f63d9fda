"""`breachguard corpus import/stats`: breach files into the local corpus, and what it holds."""

from __future__ import annotations

import datetime as dt
import json

import click

from auth.breach import importer, store
from auth.breach.formats import Format
from auth.cli import monitor as cli_monitor
from auth.cli.common import Exit, actor, handle_errors, progress_bar, services
from auth.models import BreachKind


@click.group()
def corpus() -> None:
    """Import and describe breach corpora."""


@corpus.command("import")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--type", "kind", required=True, type=click.Choice([k.value for k in BreachKind]))
@click.option(
    "--breach", default=None, help="Breach name (default: the file or folder name; one FILE)."
)
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
@click.option(
    "--encoding",
    metavar="NAME",
    default=None,
    help="Encoding of plain passwords, e-mails and combos (cp1252, latin-1, utf-8...). "
    "Default: UTF-8, and cp1252 for a line that is not UTF-8 (counted in the report). "
    "UTF-16 files are recognised by their byte order mark.",
)
@click.option(
    "--replace", is_flag=True, help="Replace an earlier import under the same --breach name."
)
@click.option("--add", is_flag=True, help="Add to an earlier import under the same --breach name.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--max-bad",
    type=click.FloatRange(0, 100),
    default=1.0,
    show_default=True,
    help="Percent of malformed lines above which nothing is committed (exit 1).",
)
@click.option("--keep-bad", is_flag=True, help="Commit even above --max-bad.")
@click.option(
    "--no-monitor",
    is_flag=True,
    help="Do not check the accounts against this import nor apply the finding policy now.",
)
@click.pass_context
def corpus_import(
    ctx: click.Context,
    files: tuple[str, ...],
    kind: str,
    breach: str | None,
    date: dt.datetime | None,
    fmt: str,
    encoding: str | None,
    replace: bool,
    add: bool,
    as_json: bool,
    max_bad: float,
    keep_bad: bool,
    no_monitor: bool,
) -> None:
    """Import breach files into one breach, in one transaction (FILE may be .gz/.bz2/.xz,
    `-` for stdin, or a folder, walked whole: per-prefix files as `ABCDE.txt` or
    `AB/ABCDE.txt`). Stores SHA-1 digests only. A breach name already imported is refused
    unless --replace or --add. Then, unless --no-monitor, checks every account against
    this import and applies the finding policy (as `monitor` would)."""
    if replace and add:
        raise Exit("--replace and --add contradict each other: choose one")
    mode = importer.ImportMode.REPLACE if replace else importer.ImportMode.NEW
    mode = importer.ImportMode.ADD if add else mode
    registry = services(ctx)
    with handle_errors():
        sources = [importer.Source(file) for file in files]
        sizes = [source.total_bytes() for source in sources]
        bar = progress_bar(None if None in sizes else sum(s or 0 for s in sizes))
        refusal: str | None = None
        try:
            with registry.db.session() as session:
                report = importer.Importer(
                    session, registry.hasher, actor(), progress=bar.update if bar else None
                ).run(
                    sources,
                    BreachKind(kind),
                    breach=breach,
                    date=date.date() if date else None,
                    fmt=None if fmt == "auto" else Format(fmt),
                    encoding=encoding,
                    mode=mode,
                )
                refusal = _refusal(report, max_bad=max_bad, keep_bad=keep_bad)
                if refusal is not None:
                    raise _RollBack
        except _RollBack:
            pass
        finally:
            if bar is not None:
                bar.close()
        monitor = not no_monitor and refusal is None
        checked = cli_monitor.after_import(registry, report.breach) if monitor else None
    if as_json:
        committed = {"committed": refusal is None, "monitor": checked}
        click.echo(json.dumps(report.as_dict() | committed, indent=2))
    else:
        _echo_report(report)
        if checked is not None:
            cli_monitor.echo_after_import(checked)
    if refusal is not None:
        click.echo(f"nothing committed: {refusal}", err=True)
        ctx.exit(1)


def _echo_report(report: importer.ImportReport) -> None:
    click.echo(
        f"breach {report.breach!r} ({report.kind}, {report.format}, {MODES[report.mode]}): "
        f"{report.lines} lines, {report.password_entries} password digests, "
        f"{report.email_entries} e-mail digests, {report.bad} malformed, {report.blank} blank"
        f"{_cp1252(report.cp1252_lines)}, in {report.seconds:.1f} s"
    )
    if len(report.sources) > 1 or any(s.files > 1 for s in report.sources):
        for s in report.sources:
            files = f"{s.files} files, " if s.files > 1 else ""
            click.echo(
                f"  {s.path}: {s.format or 'empty'}, {', '.join(s.encodings)}, {files}"
                f"{s.lines} lines, {s.bad} malformed, {s.blank} blank{_cp1252(s.cp1252_lines)}"
            )
    for file, line, message in report.bad_samples:
        click.echo(f"  {file}, line {line}: {message}", err=True)
    if report.bad > len(report.bad_samples):
        click.echo(f"  ... and {report.bad - len(report.bad_samples)} more", err=True)
    if report.cp1252_samples:
        shown = ", ".join(f"{file} line {line}" for file, line in report.cp1252_samples)
        more = report.cp1252_lines - len(report.cp1252_samples)
        click.echo(
            f"  not UTF-8, read as cp1252: {shown}{f' and {more} more' if more else ''}",
            err=True,
        )
    if report.valid_credentials:
        click.echo(
            f"{report.valid_credentials} account(s) whose leaked password still works: "
            "run `breachguard scan`"
        )


MODES = {"new": "new breach", "replace": "replaced its earlier import", "add": "added to it"}


def _cp1252(n: int) -> str:
    return f", {n} read as cp1252" if n else ""


class _RollBack(Exception):
    """Leaves the import's transaction without committing it."""


def _refusal(report: importer.ImportReport, *, max_bad: float, keep_bad: bool) -> str | None:
    """Why an import must not be committed, or None: a file with nothing but malformed
    lines never is; one above --max-bad percent of malformed lines is not, unless
    --keep-bad."""
    lines = report.lines - report.blank
    if report.bad and report.bad == lines:
        return "every line is malformed (is it the right --type and --format?)"
    share = 100 * report.bad / lines if lines else 0.0
    if share > max_bad and not keep_bad:
        return (
            f"{share:.1f}% of the lines are malformed, more than --max-bad {max_bad:g}%: "
            "fix the file, or pass --keep-bad to import the rest"
        )
    return None


@corpus.command("stats")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def corpus_stats(ctx: click.Context, as_json: bool) -> None:
    """How many digests the local corpus holds, per breach."""
    registry = services(ctx)
    with registry.db.connection() as conn:
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
