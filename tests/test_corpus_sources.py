"""Per-prefix files are known by their content, not only by an `ABCDE.txt` name, and
folders are walked whole: a suffix whose prefix cannot be read from its file's name is
refused (it cannot be stored), a tree `AB/ABCDE.txt` is read, and no file of a folder is
skipped or read as something else in silence. Every refusal commits nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auth.breach.formats import LineError, suffix_count
from auth.services import Services
from tests.test_corpus_import import count, dump, hexsha1, run_import

PASSWORDS = {"correct horse": 7, "tr0ub4dor": 3, "hunter2": 11, "letmein-please": 2}
ARGS = ("--type", "passwords", "--no-monitor")


def range_body(prefix: str, entries: dict[str, int]) -> bytes:
    """A range as HIBP's API answers it and the downloader's `-s false` saves it: CRLF
    between lines, none after the last."""
    lines = sorted(f"{hexsha1(p)[5:]}:{n}" for p, n in entries.items() if hexsha1(p)[:5] == prefix)
    return "\r\n".join(lines).encode()


def by_prefix() -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for password, n in PASSWORDS.items():
        out.setdefault(hexsha1(password)[:5], {})[password] = n
    return out


def write_ranges(folder: Path, name: str = "{prefix}.txt", tree: bool = False) -> Path:
    for prefix, entries in by_prefix().items():
        path = folder / (prefix[:2] if tree else "") / name.format(prefix=prefix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(range_body(prefix, entries))
    return folder


def test_a_renamed_per_prefix_file_is_refused_not_read_as_passwords(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    prefix, entries = next(iter(by_prefix().items()))
    path = tmp_path / "range-download.txt"
    path.write_bytes(range_body(prefix, entries))
    before = dump(registry)

    result = run_import(runner, path, *ARGS)

    assert result.exit_code == 2, result.output
    assert str(path) in result.output
    assert "a suffix without its prefix cannot be stored" in result.output
    assert "5-hex prefix" in result.output
    assert dump(registry) == before


def test_per_prefix_lines_on_stdin_are_refused_too(registry: Services, runner: CliRunner) -> None:
    prefix, entries = next(iter(by_prefix().items()))
    before = dump(registry)

    result = run_import(runner, "-", *ARGS, "--breach", "Piped", input=range_body(prefix, entries))

    assert result.exit_code == 2, result.output
    assert "stdin" in result.output and "cannot be stored" in result.output
    assert dump(registry) == before


def test_forcing_plain_on_a_renamed_per_prefix_file_is_what_the_user_asked(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    """--format plain is explicit: the lines are then passwords, and nothing is guessed."""
    path = tmp_path / "suffixes.txt"
    path.write_bytes(b"0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n")
    result = run_import(runner, path, *ARGS, "--format", "plain", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["format"] == "plain"


def test_a_folder_of_renamed_per_prefix_files_is_refused(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    folder = write_ranges(tmp_path / "ranges", name="range-{prefix}-copy.txt")
    before = dump(registry)

    result = run_import(runner, folder, *ARGS)

    assert result.exit_code == 2, result.output
    assert "range-" in result.output and "cannot be stored" in result.output
    assert dump(registry) == before


@pytest.mark.parametrize("name", ["{prefix}.txt", "{prefix}", "{lower}.txt"])
def test_a_tree_of_per_prefix_files_is_walked(
    registry: Services, runner: CliRunner, tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "pwnedpasswords"
    for prefix, entries in by_prefix().items():
        path = folder / prefix[:2] / name.format(prefix=prefix, lower=prefix.lower())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(range_body(prefix, entries))

    result = run_import(runner, folder, *ARGS, "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["breach"], report["format"], report["bad"]) == ("pwnedpasswords", "prefix", 0)
    assert report["sources"][0]["files"] == len(by_prefix())
    assert {p: count(registry, p) for p in PASSWORDS} == PASSWORDS


def test_a_folder_name_that_contradicts_the_file_name_is_an_error(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    folder = write_ranges(tmp_path / "pwnedpasswords", tree=True)
    prefix = next(iter(by_prefix()))
    wrong = "00" if prefix[:2] != "00" else "FF"
    (folder / wrong).mkdir(exist_ok=True)
    (folder / prefix[:2] / f"{prefix}.txt").rename(folder / wrong / f"{prefix}.txt")
    before = dump(registry)

    result = run_import(runner, folder, *ARGS)

    assert result.exit_code == 2, result.output
    assert f"{prefix}.txt" in result.output
    assert f"prefix {prefix}" in result.output and f"folder {wrong}/" in result.output
    assert dump(registry) == before


def test_other_files_among_per_prefix_files_are_refused_by_name(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    folder = write_ranges(tmp_path / "pwnedpasswords")
    (folder / "README.md").write_text("not a prefix file: 5BAA61E4C9B93F3F0682250B6CF8331B7EE:1\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "range-copy.txt").write_bytes(b"0018A45C4D1DEF81644B54AB7F969B88D65:1")
    before = dump(registry)

    result = run_import(runner, folder, *ARGS)

    assert result.exit_code == 2, result.output
    assert "README.md" in result.output and "range-copy.txt" in result.output
    assert "2 other file(s)" in result.output
    assert dump(registry) == before


def test_the_same_prefix_twice_is_refused(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    folder = write_ranges(tmp_path / "pwnedpasswords")
    prefix, entries = next(iter(by_prefix().items()))
    (folder / "extra").mkdir()
    (folder / "extra" / f"{prefix.lower()}.txt").write_bytes(range_body(prefix, entries))
    before = dump(registry)

    result = run_import(runner, folder, *ARGS)

    assert result.exit_code == 2, result.output
    assert f"prefix {prefix} again" in result.output and "counted twice" in result.output
    assert dump(registry) == before


def test_a_hash_file_among_per_prefix_files_is_refused_for_its_format(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    """Named like a range, holding full SHA1:COUNT lines: one import reads one format."""
    folder = write_ranges(tmp_path / "pwnedpasswords")
    (folder / "FFFFF.txt").write_text(f"{hexsha1('other')}:1\n")
    before = dump(registry)

    result = run_import(runner, folder, *ARGS)

    assert result.exit_code == 2, result.output
    assert "FFFFF.txt reads as SHA-1 hashes" in result.output
    assert "one import reads one format" in result.output
    assert dump(registry) == before


def test_an_empty_folder_is_refused(registry: Services, runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "empty" / "AB").mkdir(parents=True)
    result = run_import(runner, tmp_path / "empty", *ARGS)
    assert result.exit_code == 2 and "no files inside" in result.output, result.output


def test_a_folder_of_plain_lists_is_one_breach(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    folder = tmp_path / "leak"
    (folder / "part2").mkdir(parents=True)
    (folder / "part1.txt").write_text("hunter2\nhunter2\n")
    (folder / "part2" / "more.txt").write_text("hunter2\nletmein-please\n")

    result = run_import(runner, folder, *ARGS, "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sources"][0]["files"] == 2
    assert count(registry, "hunter2") == 3 and count(registry, "letmein-please") == 1


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            b"0018A45C4D1DEF81644B54AB7F969B88D65:12",
            ("ABCDE0018A45C4D1DEF81644B54AB7F969B88D65", 12),
        ),
        (b"0018a45c4d1def81644b54ab7f969b88d65:7", ("ABCDE0018A45C4D1DEF81644B54AB7F969B88D65", 7)),
        (
            b"0018A45C4D1DEF81644B54AB7F969B88D65:3 ",
            ("ABCDE0018A45C4D1DEF81644B54AB7F969B88D65", 3),
        ),
        (b"0018A45C4D1DEF81644B54AB7F969B88D6G:1", None),  # not hex
        (b"0018A45C4D1DEF81644B54AB7F969B88D65:\xd9\xa1", None),  # an Arabic-Indic one
        (b"0018A45C4D1DEF81644B54AB7F969B88D65:1234567890123", None),  # 13 digits
        (b"0018A45C4D1DEF81644B54AB7F969B88D65:3000000000", None),  # beyond the column
        (b"0018A45C4D1DEF81644B54AB7F969B88D6:1", None),  # 34 digits
    ],
)
def test_a_suffix_line_is_read_whole_or_refused(
    line: bytes, expected: tuple[str, int] | None
) -> None:
    if expected is None:
        with pytest.raises(LineError):
            suffix_count(line, b"ABCDE")
    else:
        digest, n = suffix_count(line, b"ABCDE")
        assert (digest.hex().upper(), n) == expected
