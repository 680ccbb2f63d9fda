"""Corpus files as the real tools write them: HIBP's downloader puts a byte order mark at
the start of every prefix block, NTLM downloads look like SHA-1 ones but are not, and
archives of files (7z, zip, tar) are not corpora. Nothing is imported in silence: what
cannot be read is refused with what it is and what to do, and nothing is committed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from auth.services import Services
from tests.test_corpus_import import count, count_of_digest, dump, hexsha1, run_import

BOM = b"\xef\xbb\xbf"
PASSWORDS = {"correct horse": 7, "tr0ub4dor": 3, "hunter2": 11, "letmein-please": 2}


def blocks() -> dict[str, list[str]]:
    """prefix -> its sorted `SHA1:COUNT` lines."""
    out: dict[str, list[str]] = {}
    for password, n in PASSWORDS.items():
        digest = hexsha1(password)
        out.setdefault(digest[:5], []).append(f"{digest}:{n}")
    return {prefix: sorted(lines) for prefix, lines in sorted(out.items())}


def downloader_file(path: Path, *, crlf: bool = False) -> Path:
    """One file, one block per prefix, each block behind its own BOM (the downloader writes
    every block through a fresh UTF-8 writer)."""
    end = b"\r\n" if crlf else b"\n"
    with path.open("wb") as fh:
        for lines in blocks().values():
            fh.write(BOM + end.join(line.encode() for line in lines) + end)
    return path


def downloader_ranges(folder: Path) -> Path:
    """`haveibeenpwned-downloader pwnedpasswords -s false`: a file `ABCDE.txt` per prefix
    holding the API's answer as it came, `SUFFIX:COUNT` lines, CRLF between them and none
    after the last."""
    folder.mkdir()
    for prefix, lines in blocks().items():
        # neighbours, so that every file has several lines, as real ranges do
        suffixes = sorted([f"{'0' * 35}:1", *(line[5:] for line in lines), f"{'F' * 35}:2"])
        (folder / f"{prefix}.txt").write_bytes("\r\n".join(suffixes).encode())
    return folder


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_a_bom_before_every_block_loses_no_hash(
    registry: Services, runner: CliRunner, tmp_path: Path, crlf: bool
) -> None:
    path = downloader_file(tmp_path / "pwnedpasswords.txt", crlf=crlf)
    assert path.read_bytes().count(BOM) == len({hexsha1(p)[:5] for p in PASSWORDS})

    result = run_import(runner, path, "--type", "passwords", "--no-monitor")

    assert result.exit_code == 0, result.output
    assert {p: count(registry, p) for p in PASSWORDS} == PASSWORDS


def test_the_downloaders_per_prefix_files_lose_no_hash(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    folder = downloader_ranges(tmp_path / "pwnedpasswords")
    for path in folder.iterdir():
        body = path.read_bytes()
        assert body.count(b"\r\n") == body.count(b"\n") >= 2 and not body.endswith(b"\n")
    lines = len(PASSWORDS) + 2 * len(blocks())

    result = run_import(runner, folder, "--type", "passwords", "--no-monitor")

    assert result.exit_code == 0, result.output
    assert f"(passwords, prefix, new breach): {lines} lines, {lines} password" in result.stdout
    assert "0 malformed, 0 blank" in result.stdout
    assert {p: count(registry, p) for p in PASSWORDS} == PASSWORDS
    assert count_of_digest(registry, hexsha1("hunter2")[:5] + "F" * 35) == 2


def test_one_per_prefix_file_of_the_downloader_is_read_alone(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    folder = downloader_ranges(tmp_path / "pwnedpasswords")
    prefix = hexsha1("hunter2")[:5]
    result = run_import(runner, folder / f"{prefix}.txt", "--type", "passwords", "--no-monitor")
    assert result.exit_code == 0, result.output
    assert count(registry, "hunter2") == PASSWORDS["hunter2"]
    assert all(count(registry, p) == 0 for p in PASSWORDS if hexsha1(p)[:5] != prefix)


def ntlm_lines() -> bytes:
    return b"".join(f"{os.urandom(16).hex().upper()}:{n}\n".encode() for n in range(1, 50))


def test_an_ntlm_file_is_refused_for_what_it_is(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "pwnedpasswords_ntlm.txt"
    path.write_bytes(BOM + ntlm_lines())
    before = dump(registry)

    result = run_import(runner, path, "--type", "passwords", "--no-monitor")

    assert result.exit_code == 2, result.output
    assert "NTLM" in result.output and "SHA-1" in result.output
    assert dump(registry) == before


def test_ntlm_per_prefix_files_are_refused_too(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "ABCDE.txt"
    path.write_bytes(
        b"".join(f"{os.urandom(14).hex()[:27].upper()}:3\r\n".encode() for _ in range(9))
    )
    result = run_import(runner, path, "--type", "passwords", "--no-monitor")
    assert result.exit_code == 2 and "NTLM" in result.output, result.output


def zip_of(path: Path, inner: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(inner, inner.name)
    return path


def tar_of(path: Path, inner: Path) -> Path:
    with tarfile.open(path, "w") as archive:
        archive.add(inner, inner.name)
    return path


def seven_zip_of(path: Path, inner: Path) -> Path:
    if shutil.which("7z") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("7z not installed: apt-get install -y p7zip-full")
        pytest.skip("7z not installed: apt-get install -y p7zip-full")
    subprocess.run(["7z", "a", "-bd", str(path), str(inner)], check=True, capture_output=True)
    return path


@pytest.mark.parametrize(
    ("make", "name", "kind", "unpack"),
    [
        (seven_zip_of, "pwned.7z", "7z", "7z x"),
        (zip_of, "pwned.zip", "zip", "unzip"),
        (tar_of, "pwned.tar", "tar", "tar xf"),
    ],
)
def test_an_archive_is_refused_with_the_command_that_unpacks_it(
    registry: Services,
    runner: CliRunner,
    tmp_path: Path,
    make: object,
    name: str,
    kind: str,
    unpack: str,
) -> None:
    inner = downloader_file(tmp_path / "pwnedpasswords.txt")
    archive = make(tmp_path / name, inner)  # type: ignore[operator]
    before = dump(registry)

    result = run_import(runner, archive, "--type", "passwords", "--no-monitor")

    assert result.exit_code == 2, result.output
    assert f"is a {kind} archive" in result.output and f"{unpack} " in result.output
    assert dump(registry) == before


def test_the_bom_is_dropped_on_any_line_of_a_plain_list(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(BOM + b"hunter2\n" + BOM + b"letmein-please\n")
    result = run_import(runner, path, "--type", "passwords", "--format", "plain", "--no-monitor")
    assert result.exit_code == 0, result.output
    assert count(registry, "hunter2") == 1 and count(registry, "letmein-please") == 1


# --- the exit status tells the truth ------------------------------------------------------


def sha1_lines(n: int) -> list[bytes]:
    return [f"{hexsha1(f'pw{i}')}:{i + 1}".encode() for i in range(n)]


def test_a_file_of_nothing_but_junk_never_exits_0_nor_commits(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "junk.txt"
    path.write_bytes(b"".join(f"{i:X}:not-a-hash\n".encode() for i in range(50)))
    before = dump(registry)
    for extra in ([], ["--keep-bad"], ["--max-bad", "100"]):
        result = run_import(
            runner, path, "--type", "passwords", "--format", "sha1", "--no-monitor", *extra
        )
        assert result.exit_code == 1, (extra, result.output)
        assert "nothing committed: every line is malformed" in result.stderr
        assert dump(registry) == before


def test_more_malformed_lines_than_max_bad_commits_nothing_unless_keep_bad(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "mostly.txt"
    path.write_bytes(b"\n".join([*sha1_lines(98), b"junk one", b"junk two"]) + b"\n")
    before = dump(registry)
    args = ("--type", "passwords", "--format", "sha1", "--no-monitor")

    refused = run_import(runner, path, *args)
    assert refused.exit_code == 1
    assert "2.0% of the lines are malformed, more than --max-bad 1%" in refused.stderr
    assert "line 99" in refused.stderr  # the report still comes first
    assert dump(registry) == before

    assert run_import(runner, path, *args, "--max-bad", "5").exit_code == 0
    assert count(registry, "pw0") == 1


def test_keep_bad_imports_the_good_lines(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "mostly.txt"
    path.write_bytes(b"\n".join([*sha1_lines(10), b"junk"]) + b"\n")
    result = run_import(runner, path, "--type", "passwords", "--no-monitor", "--keep-bad")
    assert result.exit_code == 0, result.output
    assert count(registry, "pw9") == 10
