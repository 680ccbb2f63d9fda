"""Every CSV the project writes is safe to open in a spreadsheet: a text cell that starts
with = + - @, a tab or a carriage return is written behind a single quote (OWASP's rule),
and the files still feed the commands that read addresses back."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from auth import csvout
from auth.cli import main
from auth.models import BreachKind
from auth.services import Services
from tests.test_checker_and_scan import add_account, import_lines

HOSTILE = ["=cmd@inj.example", "+1@inj.example", "-2@inj.example", "\t=a@inj.example"]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_a_spreadsheet_would_evaluate_is_quoted(start: str) -> None:
    out = io.StringIO()
    csvout.Writer(out).row([f'{start}HYPERLINK("http://evil.example")', 7])
    [[text, number]] = list(csv.reader(io.StringIO(out.getvalue())))
    assert text == f'\'{start}HYPERLINK("http://evil.example")'
    assert number == "7"


def test_harmless_cells_numbers_and_none_are_written_as_they_are() -> None:
    out = io.StringIO()
    writer = csvout.RecordWriter(out, ["email", "n", "detail"])
    writer.record({"email": "nurse@example.org", "n": -1, "detail": None})
    assert out.getvalue() == "email,n,detail\nnurse@example.org,-1,\n"


def test_uncell_undoes_only_the_guard() -> None:
    assert csvout.uncell("'=cmd@inj.example") == "=cmd@inj.example"
    assert csvout.uncell("'o'brien@example.org") == "'o'brien@example.org"
    assert csvout.uncell("plain@example.org") == "plain@example.org"


def test_the_reset_report_quotes_hostile_addresses_and_feeds_the_next_run(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    for email in HOSTILE:
        add_account(registry, email, now)
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join(e.strip() for e in HOSTILE) + "\n")
    report = tmp_path / "r.csv"

    first = runner.invoke(
        main, ["reset", "--emails", str(listed), "--no-send", "--report", str(report)]
    )
    assert first.exit_code == 0, first.output
    rows = list(csv.DictReader(report.open(newline="")))
    assert sorted(r["email"] for r in rows) == sorted("'" + e.strip() for e in HOSTILE)
    assert {r["outcome"] for r in rows} == {"reset"}

    again = runner.invoke(main, ["reset", "--emails", str(report), "--no-send"])
    assert again.exit_code == 0, again.output
    assert "reset 0, already reset 4, unknown 0" in again.output


def test_scan_csv_quotes_hostile_addresses(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    add_account(registry, "=cmd@inj.example", now)
    import_lines(registry, tmp_path, BreachKind.EMAILS, "=Leak", "=cmd@inj.example\n")

    result = runner.invoke(main, ["scan", "--format", "csv"])
    assert result.exit_code == 1, result.output
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["email"], row["breach"]) == ("'=cmd@inj.example", "'=Leak")
