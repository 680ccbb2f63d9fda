"""`corpus import FILE [FILE...] --breach NAME`: several files (and folders) make one
breach, in one transaction, with one report that has a line per FILE. A breach name
already imported is refused unless the command says to replace that import or add to it,
and the audit trail records which."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import select

from auth.cli import main
from auth.models.audit import AuditEvent
from auth.services import Services
from tests.test_corpus_import import breach, count, dump, email_breaches, hexsha1, run_import

ARGS = ("--type", "passwords", "--no-monitor")


def run_several(runner: CliRunner, *args: str | Path, **kw: Any) -> Result:
    return runner.invoke(main, ["corpus", "import", *map(str, args)], **kw)


def import_events(registry: Services) -> list[dict[str, Any]]:
    with registry.db.session() as session:
        rows = session.execute(
            select(AuditEvent.details)
            .where(AuditEvent.action == "corpus:imported")
            .order_by(AuditEvent.seq)
        ).scalars()
        return [json.loads(d) for d in rows]


def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    hashes = tmp_path / "hibp-part.txt"
    hashes.write_text(f"{hexsha1('password')}:10\n{hexsha1('123456')}:4\n")
    more = tmp_path / "hibp-more.txt.gz"
    more.write_bytes(gzip.compress(f"{hexsha1('password')}:5\n{hexsha1('qwerty')}:2\n".encode()))
    folder = tmp_path / "ranges"
    folder.mkdir()
    a = hexsha1("letmein")
    (folder / f"{a[:5]}.txt").write_bytes(f"{a[5:]}:3".encode())
    return hashes, more, folder


def test_several_files_make_one_breach_with_a_line_per_file(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    hashes, more, _ = files(tmp_path)

    result = run_several(runner, hashes, more, *ARGS, "--breach", "Combined")

    assert result.exit_code == 0, result.output
    first, *per_file = result.stdout.splitlines()
    assert first.startswith("breach 'Combined' (passwords, sha1, new breach): 4 lines, 3 password")
    assert per_file == [
        f"  {hashes}: sha1, utf-8, 2 lines, 0 malformed, 0 blank",
        f"  {more}: sha1, utf-8, 2 lines, 0 malformed, 0 blank",
    ]
    assert count(registry, "password") == 15
    assert count(registry, "123456") == 4 and count(registry, "qwerty") == 2
    record = breach(registry, "Combined")
    assert record is not None and (record.lines_read, record.password_entries) == (4, 3)
    assert [e["mode"] for e in import_events(registry)] == ["new"]


def test_files_and_a_folder_of_different_formats_are_refused_together(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    hashes, _, folder = files(tmp_path)
    before = dump(registry)

    result = run_several(runner, hashes, folder, *ARGS, "--breach", "Mixed")

    assert result.exit_code == 2, result.output
    assert "one import reads one format" in result.output
    assert dump(registry) == before


def test_a_failure_in_a_later_file_commits_none_of_the_earlier_ones(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    hashes, _, _ = files(tmp_path)
    broken = tmp_path / "broken.txt.gz"
    packed = gzip.compress("".join(f"{hexsha1(str(i))}:1\n" for i in range(5000)).encode())
    broken.write_bytes(packed[: len(packed) // 2])
    before = dump(registry)

    result = run_several(runner, hashes, broken, *ARGS, "--breach", "Partial")

    assert result.exit_code == 2, result.output
    assert f"{broken}: could not read the file" in result.output
    assert dump(registry) == before


def test_several_files_need_a_breach_name(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    hashes, more, _ = files(tmp_path)
    result = run_several(runner, hashes, more, *ARGS)
    assert result.exit_code == 2 and "--breach NAME" in result.output, result.output


def test_a_file_given_twice_is_refused(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    _, _, folder = files(tmp_path)
    inside = next(folder.iterdir())
    before = dump(registry)
    result = run_several(runner, folder, inside, *ARGS, "--breach", "Twice")
    assert result.exit_code == 2 and "read twice" in result.output, result.output
    assert dump(registry) == before


def test_stdin_is_only_ever_the_one_file(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    hashes, _, _ = files(tmp_path)
    result = run_several(runner, hashes, "-", *ARGS, "--breach", "Pipe", input=b"hunter2\n")
    assert result.exit_code == 2 and "stdin" in result.output, result.output


# -- a breach imported again -------------------------------------------------------------------


def test_a_second_import_under_a_name_is_refused_and_changes_nothing(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    hashes, more, _ = files(tmp_path)
    assert run_import(runner, hashes, *ARGS, "--breach", "Leak").exit_code == 0
    before = dump(registry)

    result = run_import(runner, more, *ARGS, "--breach", "Leak")

    assert result.exit_code == 2, result.output
    assert "breach 'Leak' already exists" in result.output
    assert "--replace" in result.output and "--add" in result.output
    assert dump(registry) == before


def test_replace_replaces_the_earlier_import_and_the_audit_says_so(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    hashes, more, _ = files(tmp_path)
    assert run_import(runner, hashes, *ARGS, "--breach", "Leak").exit_code == 0

    result = run_import(runner, more, *ARGS, "--breach", "Leak", "--replace")

    assert result.exit_code == 0, result.output
    assert "(passwords, sha1, replaced its earlier import)" in result.stdout
    assert count(registry, "password") == 5 and count(registry, "123456") == 0
    assert [e["mode"] for e in import_events(registry)] == ["new", "replace"]


def test_replace_creates_a_breach_that_does_not_exist_yet(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    hashes, _, _ = files(tmp_path)
    result = run_import(runner, hashes, *ARGS, "--breach", "Fresh", "--replace")
    assert result.exit_code == 0, result.output
    assert [e["mode"] for e in import_events(registry)] == ["new"]


def test_add_adds_files_to_an_earlier_import(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    hashes, more, _ = files(tmp_path)
    assert run_import(runner, hashes, *ARGS, "--breach", "Leak").exit_code == 0

    result = run_import(runner, more, *ARGS, "--breach", "Leak", "--add", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["mode"], report["lines"], report["password_entries"]) == ("add", 2, 3)
    assert count(registry, "password") == 15 and count(registry, "qwerty") == 2
    record = breach(registry, "Leak")
    assert record is not None and (record.lines_read, record.password_entries) == (4, 3)
    assert [e["mode"] for e in import_events(registry)] == ["new", "add"]


def test_add_of_addresses_already_there_keeps_one_entry_per_address(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("a@example.org\nb@example.org\n")
    second.write_text("b@example.org\nc@example.org\nB@example.org\n")
    emails = ("--type", "emails", "--no-monitor", "--breach", "Mails")
    assert run_import(runner, first, *emails).exit_code == 0

    result = run_import(runner, second, *emails, "--add", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["email_entries"] == 3
    for address in ("a@example.org", "b@example.org", "c@example.org"):
        assert email_breaches(registry, address) == ["Mails"]


def test_add_to_a_breach_that_does_not_exist_is_refused(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    hashes, _, _ = files(tmp_path)
    before = dump(registry)
    result = run_import(runner, hashes, *ARGS, "--breach", "Typo", "--add")
    assert result.exit_code == 2, result.output
    assert "no breach 'Typo' to add to" in result.output
    assert dump(registry) == before


def test_add_of_another_kind_is_refused(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    emails = tmp_path / "emails.txt"
    emails.write_text("nurse@example.org\n")
    assert run_import(runner, emails, "--type", "emails", "--breach", "Forum").exit_code == 0
    hashes, _, _ = files(tmp_path)
    before = dump(registry)

    result = run_import(runner, hashes, *ARGS, "--breach", "Forum", "--add")

    assert result.exit_code == 2, result.output
    assert "breach 'Forum' holds emails, not passwords" in result.output
    assert dump(registry) == before
    assert email_breaches(registry, "nurse@example.org") == ["Forum"]


def test_replace_and_add_together_are_refused(runner: CliRunner, tmp_path: Path) -> None:
    hashes, _, _ = files(tmp_path)
    result = run_import(runner, hashes, *ARGS, "--replace", "--add")
    assert result.exit_code == 2 and "choose one" in result.output, result.output
