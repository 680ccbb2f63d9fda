"""`accounts import`: streaming, idempotent, every bad row named, nothing committed on error."""

import datetime as dt
import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, inspect, select

from auth import accounts, audit
from auth.cli import main
from auth.errors import ImportAborted
from auth.models import Account, AuditEvent
from auth.services import Services

ACTOR = audit.Actor.cli("test")
NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)

GOOD = (
    "email,name,professional_id\n"
    "Claire.Martin@Cabinet-Exemple.fr,Dr Claire Martin,10003456789\n"
    "julien.petit@pharmacie-exemple.fr,Julien Petit,\n"
)


def _write(tmp_path: Path, text: str, name: str = "accounts.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _accounts(registry: Services) -> dict[str, Account]:
    with registry.db.session() as s:
        return {a.email: a for a in s.execute(select(Account)).scalars()}


def test_import_creates_accounts_with_normalised_emails(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(main, ["accounts", "import", _write(tmp_path, GOOD)])
    assert result.exit_code == 0, result.output
    assert "created 2, updated 0" in result.output
    accounts = _accounts(registry)
    claire = accounts["claire.martin@cabinet-exemple.fr"]
    assert claire.name == "Dr Claire Martin" and claire.professional_id == "10003456789"
    assert accounts["julien.petit@pharmacie-exemple.fr"].professional_id is None
    assert claire.status == "active" and claire.password_hash is None


def test_reimport_updates_and_never_duplicates(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    runner.invoke(main, ["accounts", "import", _write(tmp_path, GOOD)])
    again = runner.invoke(main, ["accounts", "import", _write(tmp_path, GOOD)])
    assert "created 0, updated 0, unchanged 2" in again.output
    changed = GOOD.replace("Julien Petit,", "Julien Petit-Durand,")
    third = runner.invoke(main, ["accounts", "import", _write(tmp_path, changed)])
    assert "created 0, updated 1, unchanged 1" in third.output
    accounts = _accounts(registry)
    assert len(accounts) == 2
    assert accounts["julien.petit@pharmacie-exemple.fr"].name == "Julien Petit-Durand"


def test_every_bad_row_is_named_and_nothing_is_committed(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    header = "email,name,professional_id,password_hash\n"
    bad = header + GOOD.split("\n", 1)[1]
    bad += "not-an-address,X,\nok@example.org,Ok,1,plaintext-password\na@example.org,,,,extra\n"
    bad += "nul@example.org,Dr\x00 Nul,,\n"  # PostgreSQL cannot store a NUL
    result = runner.invoke(main, ["accounts", "import", _write(tmp_path, bad)])
    assert result.exit_code == 2
    assert "line 4: email: not an e-mail address: 'not-an-address'" in result.output
    assert "line 5: password_hash: not an argon2 hash" in result.output
    assert "line 6: expected at most" in result.output
    assert "line 7: name: no control characters" in result.output
    assert "nothing was imported" in result.output
    assert _accounts(registry) == {}
    with registry.db.session() as s:
        assert s.execute(select(func.count()).select_from(AuditEvent)).scalar() == 0


def test_skip_bad_imports_the_good_rows_and_lists_the_bad(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    bad = GOOD + "not-an-address,X,\n"
    result = runner.invoke(main, ["accounts", "import", "--skip-bad", _write(tmp_path, bad)])
    assert result.exit_code == 1
    assert "line 4: skipped" in result.output and "created 2" in result.output
    assert len(_accounts(registry)) == 2


def test_a_duplicate_email_in_one_file_is_a_bad_row(runner: CliRunner, tmp_path: Path) -> None:
    dup = GOOD + "CLAIRE.martin@cabinet-exemple.fr,Other,\n"
    result = runner.invoke(main, ["accounts", "import", _write(tmp_path, dup)])
    assert result.exit_code == 2 and "already on line 2" in result.output


def test_password_hashes_are_taken_as_given_and_verify(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    stored = registry.hasher.hash("Soleil2019!")
    text = f'claire@example.fr,Claire,,"{stored}"\n'  # no header: positional columns
    assert runner.invoke(main, ["accounts", "import", _write(tmp_path, text)]).exit_code == 0
    account = _accounts(registry)["claire@example.fr"]
    assert registry.hasher.verify(account.password_hash, "Soleil2019!").ok


def test_a_large_file_is_imported_in_batches(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    rows = "".join(f"user{i}@example.org,User {i},{i}\n" for i in range(2500))
    result = runner.invoke(main, ["accounts", "import", _write(tmp_path, rows)])
    assert "created 2500" in result.output
    with registry.db.session() as s:
        events = s.execute(select(func.count()).select_from(AuditEvent)).scalar()
    assert events == 2500  # one account:created event per account


def test_an_unquoted_hash_gets_a_hint(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    text = f"claire@example.fr,Claire,,{registry.hasher.hash('x')}\n"
    result = runner.invoke(main, ["accounts", "import", _write(tmp_path, text)])
    assert result.exit_code == 2 and "quote the password hash" in result.output


def test_invalid_utf8_is_reported_by_line(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"a@example.org,A,\nb@example.org,Andr\xe9,\n")
    result = runner.invoke(main, ["accounts", "import", str(path)])
    assert result.exit_code == 2 and "line 2: not valid UTF-8" in result.output


def test_create_one_account_from_the_cli(registry: Services, runner: CliRunner) -> None:
    result = runner.invoke(
        main,
        ["accounts", "create", "Amina@CHU.fr", "--name", "Amina", "--password"],
        input="Correct-Horse-42\nCorrect-Horse-42\n",
    )
    assert result.exit_code == 0, result.output
    account = _accounts(registry)["amina@chu.fr"]
    assert registry.hasher.verify(account.password_hash, "Correct-Horse-42").ok
    twice = runner.invoke(main, ["accounts", "create", "amina@chu.fr"])
    assert twice.exit_code == 2 and "already exists" in twice.output


def test_an_address_repeated_in_a_later_batch_names_its_first_line(registry: Services) -> None:
    rows = "a@example.org,A,\nb@example.org,B,\nc@example.org,C,\nA@Example.org,Again,\n"
    first = re.escape("line 4: email: a@example.org already on line 1")
    with pytest.raises(ImportAborted, match=first), registry.db.session() as s:
        accounts.import_csv(s, io.BytesIO(rows.encode()), actor=ACTOR, now=NOW, batch=2)
    with registry.db.session() as s:
        report = accounts.import_csv(
            s, io.BytesIO(rows.encode()), actor=ACTOR, now=NOW, batch=2, skip_bad=True
        )
    assert (report.created, report.bad) == (3, [(4, "email: a@example.org already on line 1")])
    assert _accounts(registry)["a@example.org"].name == "A"


def test_an_aborted_import_can_be_run_again(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    bad = runner.invoke(main, ["accounts", "import", _write(tmp_path, GOOD + "nope,X,\n")])
    assert bad.exit_code == 2
    again = runner.invoke(main, ["accounts", "import", _write(tmp_path, GOOD)])
    assert again.exit_code == 0 and "created 2" in again.output, again.output


def test_bad_rows_are_listed_in_line_order(runner: CliRunner, tmp_path: Path) -> None:
    rows = "".join(f"user{i}@example.org,U,\n" for i in range(1500))
    rows += "user3@example.org,Again,\nnot-an-address,X,\n"
    result = runner.invoke(main, ["accounts", "import", _write(tmp_path, rows)])
    assert result.exit_code == 2
    assert result.output.index("line 1501:") < result.output.index("line 1502:")


def test_the_import_leaves_its_connection_as_it_found_it(registry: Services) -> None:
    """No temporary table left behind, and on SQLite the page cache set back."""
    with registry.db.session() as s:
        conn = s.connection()
        sqlite = conn.dialect.name == "sqlite"
        before = conn.exec_driver_sql("PRAGMA cache_size").scalar() if sqlite else None
        accounts.import_csv(s, io.BytesIO(GOOD.encode()), actor=ACTOR, now=NOW)
        assert not inspect(conn).has_table("account_import_lines")
        if sqlite:
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == before
