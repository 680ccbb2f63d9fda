"""Leaked lists come in the encodings their authors' machines used. A line that is not
UTF-8 is read as cp1252 by default (and counted, with its line number), `--encoding`
names another, and UTF-16 files are recognised by their byte order mark. Whatever the
encoding, a password is stored as HIBP stores it: the SHA-1 of its UTF-8 bytes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auth.services import Services
from tests.test_corpus_import import count, dump, email_breaches, hexsha1, run_import


def test_a_line_that_is_not_utf8_is_read_as_cp1252_and_counted(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes("plain\nété\n".encode() + b"caf\xe9\n\x80uro\nplain\n")

    result = run_import(runner, path, "--type", "passwords", "--no-monitor")

    assert result.exit_code == 0, result.output
    assert "2 read as cp1252" in result.stdout
    assert f"not UTF-8, read as cp1252: {path} line 3, {path} line 4" in result.stderr
    assert count(registry, "café") == 1 and count(registry, "€uro") == 1
    assert count(registry, "été") == 1 and count(registry, "plain") == 2


def test_the_json_report_counts_cp1252_lines_by_file_and_line(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "combos.txt"
    path.write_bytes(b"ok@example.org:fine\nm\xfcller@example.org:p\xe4sswort\n")

    result = run_import(runner, path, "--type", "combos", "--no-monitor", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["cp1252_lines"] == 1 and report["bad"] == 0
    assert report["cp1252_samples"] == [{"file": str(path), "line": 2}]
    assert report["sources"][0]["cp1252_lines"] == 1
    assert count(registry, "pässwort") == 1
    assert email_breaches(registry, "müller@example.org") == ["combos"]


def test_a_byte_neither_utf8_nor_cp1252_is_a_bad_line(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "emails.txt"
    path.write_bytes(b"a@example.org\n\x81b@example.org\n")
    result = run_import(runner, path, "--type", "emails", "--no-monitor", "--keep-bad", "--json")
    report = json.loads(result.stdout)
    assert report["bad_samples"] == [
        {"file": str(path), "line": 2, "error": "neither UTF-8 nor cp1252 (byte 1)"}
    ]


@pytest.mark.parametrize(
    ("encoding", "password"),
    [("cp1252", "prix 10€"), ("latin-1", "prix 10\x80"), ("utf-8", None)],
)
def test_encoding_names_how_every_line_is_read(
    registry: Services, runner: CliRunner, tmp_path: Path, encoding: str, password: str | None
) -> None:
    path = tmp_path / "combos.txt"
    path.write_bytes(b"nurse@example.org:prix 10\x80\n")

    result = run_import(
        runner, path, "--type", "combos", "--encoding", encoding, "--no-monitor", "--json"
    )

    report = json.loads(result.stdout)
    assert report["cp1252_lines"] == 0
    assert report["sources"][0]["encodings"] == [encoding]
    if password is None:  # strict UTF-8: a bad line, and a file of nothing else commits nothing
        assert result.exit_code == 1
        assert report["bad_samples"][0]["error"] == "not valid UTF-8 (byte 26)"
        assert count(registry, "prix 10€") == 0
    else:
        assert result.exit_code == 0, result.output
        assert count(registry, password) == 1


def test_latin1_reads_accented_letters_as_their_utf8_passwords(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"d\xe9j\xe0 vu\n")
    result = run_import(runner, path, "--type", "passwords", "--encoding", "latin-1")
    assert result.exit_code == 0, result.output
    assert count(registry, "déjà vu") == 1


@pytest.mark.parametrize("name", ["no-such-codec", "base64"])
def test_an_unknown_encoding_is_refused_with_exit_2(
    registry: Services, runner: CliRunner, tmp_path: Path, name: str
) -> None:
    path = tmp_path / "list.txt"
    path.write_text("hunter2\n")
    before = dump(registry)
    result = run_import(runner, path, "--type", "passwords", "--encoding", name)
    assert result.exit_code == 2, result.output
    assert f"--encoding {name}: not a text encoding" in result.output
    assert dump(registry) == before


def test_hash_files_are_read_the_same_whatever_the_encoding(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "hibp.txt"
    path.write_text(f"{hexsha1('password')}:10\r\n")
    result = run_import(runner, path, "--type", "passwords", "--encoding", "cp1252", "--json")
    assert json.loads(result.stdout)["format"] == "sha1"
    assert count(registry, "password") == 10


# -- UTF-16 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_a_utf16_file_is_recognised_by_its_bom(
    registry: Services, runner: CliRunner, tmp_path: Path, codec: str
) -> None:
    """Notepad's "Unicode", PowerShell 5's `>`: a BOM, then two bytes a character."""
    path = tmp_path / "list.txt"
    path.write_bytes(("\ufeff" + "été\r\nhunter2\r\nété\r\n𝄞 clef\r\n").encode(codec))

    result = run_import(runner, path, "--type", "passwords", "--no-monitor", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["format"], report["bad"], report["cp1252_lines"]) == ("plain", 0, 0)
    assert report["sources"][0]["encodings"] == ["utf-16"]
    assert count(registry, "été") == 2 and count(registry, "hunter2") == 1
    assert count(registry, "𝄞 clef") == 1


def test_a_gzipped_utf16_hash_file_is_read_as_hashes(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "hibp.txt.gz"
    text = f"{hexsha1('password')}:10\r\n{hexsha1('123456')}:4\r\n"
    path.write_bytes(gzip.compress(("\ufeff" + text).encode("utf-16")))

    result = run_import(runner, path, "--type", "passwords", "--no-monitor", "--json")

    assert json.loads(result.stdout)["format"] == "sha1"
    assert count(registry, "password") == 10 and count(registry, "123456") == 4


def test_utf16_combos_without_a_bom_are_read_when_named(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "combos.txt"
    path.write_bytes("élise@example.org:mot de passe\n".encode("utf-16-le"))

    result = run_import(runner, path, "--type", "combos", "--encoding", "utf-16-le", "--no-monitor")

    assert result.exit_code == 0, result.output
    assert count(registry, "mot de passe") == 1
    assert email_breaches(registry, "élise@example.org") == ["combos"]


def test_a_lone_surrogate_in_utf16_is_one_bad_line(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "list.txt"
    lone = "\ud800".encode("utf-16-le", "surrogatepass")
    path.write_bytes(
        b"\xff\xfe"
        + "good\n".encode("utf-16-le")
        + b"x\x00"
        + lone
        + b"\n\x00"
        + "fine\n".encode("utf-16-le")
    )

    result = run_import(runner, path, "--type", "passwords", "--no-monitor", "--keep-bad", "--json")

    report = json.loads(result.stdout)
    assert report["bad_samples"] == [{"file": str(path), "line": 2, "error": "not valid UTF-16"}]
    assert count(registry, "good") == 1 and count(registry, "fine") == 1


def test_a_utf16_file_cut_in_the_middle_of_a_character_commits_nothing(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(("\ufeff" + "hunter2\n" * 3).encode("utf-16-le") + b"x")
    before = dump(registry)

    result = run_import(runner, path, "--type", "passwords", "--no-monitor")

    assert result.exit_code == 2, result.output
    assert str(path) in result.output and "could not read the file" in result.output
    assert dump(registry) == before
