"""`breachguard corpus import` and the Importer, against the real test database.

Every test reads back what the database holds (digests, counts, breaches, findings), never
what the importer says it did alone.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import inspect, select, text

from auth import accounts, audit
from auth.breach import store
from auth.breach.importer import Importer, Source
from auth.cli import main
from auth.errors import InvalidInput
from auth.models import Breach, BreachKind, Finding, FindingKind
from auth.services import Services

ACTOR = audit.Actor.cli("tester")


def sha1(text_: str) -> bytes:
    return hashlib.sha1(text_.encode("utf-8")).digest()  # noqa: S324 - HIBP's scheme


def hexsha1(text_: str) -> str:
    return sha1(text_).hex().upper()


def run_import(runner: CliRunner, target: str | Path, *args: str, **kw: Any) -> Result:
    return runner.invoke(main, ["corpus", "import", str(target), *args], **kw)


def count(registry: Services, password: str) -> int:
    with registry.db.engine.connect() as conn:
        return store.password_count(conn, sha1(password))


def count_of_digest(registry: Services, digest_hex: str) -> int:
    with registry.db.engine.connect() as conn:
        return store.password_count(conn, bytes.fromhex(digest_hex))


def email_breaches(registry: Services, email: str) -> list[str]:
    with registry.db.engine.connect() as conn:
        return store.email_breaches(conn, sha1(email))


def breach(registry: Services, name: str) -> Breach | None:
    with registry.db.session() as session:
        return session.execute(select(Breach).where(Breach.name == name)).scalar_one_or_none()


def all_password_digests(registry: Services) -> set[bytes]:
    with registry.db.engine.connect() as conn:
        return {bytes(r[0]) for r in conn.execute(text("SELECT sha1 FROM pwned_passwords"))}


def dump(registry: Services) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order: the database's whole state."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with registry.db.engine.connect() as conn:
        for table in sorted(inspect(conn).get_table_names()):
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608
            out[table] = sorted(
                (tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows),
                key=repr,
            )
    return out


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def report_json(result: Result) -> dict[str, Any]:
    ok(result)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# -- formats ----------------------------------------------------------------------------------


def test_hibp_sha1_count_lines_are_stored_with_their_counts(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    corpus = tmp_path / "pwned-passwords-sha1-ordered-by-hash-v8.txt"
    corpus.write_bytes(
        f"{hexsha1('password')}:10434004\r\n{hexsha1('123456').lower()}:42\r\n".encode()
    )

    report = report_json(run_import(runner, corpus, "--type", "passwords", "--json"))

    assert report["format"] == "sha1"
    assert report["password_entries"] == 2
    assert count(registry, "password") == 10434004
    assert count(registry, "123456") == 42
    assert breach(registry, "pwned-passwords-sha1-ordered-by-hash-v8") is not None


def test_bare_sha1_lines_count_once_per_line(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    corpus = tmp_path / "bare.txt"
    corpus.write_text(f"{hexsha1('alpha')}\n{hexsha1('beta')}\n{hexsha1('alpha')}\n")

    report = report_json(run_import(runner, corpus, "--type", "passwords", "--json"))

    assert report["format"] == "sha1"
    assert report["bad"] == 0
    assert count(registry, "alpha") == 2
    assert count(registry, "beta") == 1


def test_a_per_prefix_file_takes_its_prefix_from_its_name(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    digest = hexsha1("password")
    other = digest[:5] + "0" * 35
    corpus = tmp_path / f"{digest[:5]}.txt"
    corpus.write_bytes(f"{other[5:]}:3\r\n{digest[5:]}:10434004\r\n".encode())

    report = report_json(run_import(runner, corpus, "--type", "passwords", "--json"))

    assert report["format"] == "prefix"
    assert count(registry, "password") == 10434004
    assert count_of_digest(registry, other) == 3
    assert all_password_digests(registry) == {bytes.fromhex(digest), bytes.fromhex(other)}


def test_a_folder_of_per_prefix_files_is_one_breach(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    folder = tmp_path / "pwnedpasswords"
    folder.mkdir()
    a, b = hexsha1("password"), hexsha1("letmein")
    (folder / f"{a[:5]}.txt").write_text(f"{a[5:]}:7\r\n")
    (folder / f"{b[:5].lower()}.txt").write_text(f"{b[5:]}:5\r\n")

    result = run_import(runner, folder, "--type", "passwords", "--format", "prefix", "--json")
    report = report_json(result)

    assert report["breach"] == "pwnedpasswords"
    assert report["password_entries"] == 2
    assert report["lines"] == 2
    assert count(registry, "password") == 7
    assert count(registry, "letmein") == 5


def test_plain_passwords_count_occurrences_keep_inner_spaces_and_drop_crlf(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    corpus = tmp_path / "rockyou-ish.txt"
    corpus.write_bytes(
        b"hunter2\r\nhunter2\r\ncorrect horse battery\r\nhunter2\n\xc3\xa9t\xc3\xa9\n"
    )

    report = report_json(run_import(runner, corpus, "--type", "passwords", "--json"))

    assert report["format"] == "plain"
    assert count(registry, "hunter2") == 3
    assert count(registry, "correct horse battery") == 1
    assert count(registry, "été") == 1
    assert count(registry, "hunter2\r") == 0
    assert count(registry, "correcthorsebattery") == 0
    assert report["password_entries"] == 3


def test_email_lists_are_trimmed_lower_cased_and_nfkc_folded(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    corpus = tmp_path / "emails.txt"
    corpus.write_text(
        "  Nurse@Example.ORG  \r\nｎｕｒｓｅ@example.org\nＮＵＲＳＥ@ＥＸＡＭＰＬＥ.org\u00a0\n"
        "nurse@example.org\nother@example.org\n",
        encoding="utf-8",
    )

    report = report_json(
        run_import(runner, corpus, "--type", "emails", "--breach", "Forum2021", "--json")
    )

    assert report["bad"] == 0
    assert report["email_entries"] == 2
    assert email_breaches(registry, "nurse@example.org") == ["Forum2021"]
    assert email_breaches(registry, "other@example.org") == ["Forum2021"]


@pytest.mark.parametrize("separator", [":", ";", "\t"], ids=["colon", "semicolon", "tab"])
def test_combo_lists_split_on_colon_semicolon_or_tab_and_keep_the_password_whole(
    runner: CliRunner, registry: Services, tmp_path: Path, separator: str
) -> None:
    corpus = tmp_path / "combos.txt"
    corpus.write_text(
        f"Leaked@Example.org{separator}pa:ss;w\tord\r\nsecond@example.org{separator}simple\n"
    )

    report = report_json(
        run_import(runner, corpus, "--type", "combos", "--breach", "Combo", "--json")
    )

    assert report["bad"] == 0
    assert report["email_entries"] == 2
    assert count(registry, "pa:ss;w\tord") == 1
    assert count(registry, "simple") == 1
    for fragment in ("pa", "ss;w\tord", "ss", "w"):
        assert count(registry, fragment) == 0
    assert email_breaches(registry, "leaked@example.org") == ["Combo"]
    assert email_breaches(registry, "second@example.org") == ["Combo"]


BOM = b"\xef\xbb\xbf"


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_line(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    hibp = tmp_path / "notepad-hibp.txt"
    hibp.write_bytes(BOM + f"{hexsha1('password')}:10\r\n{hexsha1('123456')}:5\r\n".encode())
    plain = tmp_path / "notepad-plain.txt"
    plain.write_bytes(BOM + b"letmein\r\n")
    emails = tmp_path / "notepad-emails.txt"
    emails.write_bytes(BOM + b"nurse@example.org\r\n")

    first = report_json(run_import(runner, hibp, "--type", "passwords", "--json"))
    second = report_json(run_import(runner, plain, "--type", "passwords", "--json"))
    third = report_json(run_import(runner, emails, "--type", "emails", "--json"))

    assert (first["format"], first["bad"]) == ("sha1", 0)
    assert count(registry, "password") == 10
    assert count(registry, "123456") == 5
    assert second["bad"] == 0
    assert count(registry, "letmein") == 1
    assert third["bad"] == 0
    assert email_breaches(registry, "nurse@example.org") == ["notepad-emails"]


# -- compression and stdin ---------------------------------------------------------------------

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
}


@pytest.mark.parametrize("ext", list(COMPRESSORS))
def test_compressed_corpora_are_read_transparently(
    runner: CliRunner, registry: Services, tmp_path: Path, ext: str
) -> None:
    plain = f"{hexsha1('password')}:9\n{hexsha1('qwerty')}:4\n".encode()
    corpus = tmp_path / f"hibp.txt.{ext}"
    corpus.write_bytes(COMPRESSORS[ext](plain))

    report = report_json(run_import(runner, corpus, "--type", "passwords", "--json"))

    assert report["breach"] == "hibp"
    assert report["format"] == "sha1"
    assert report["bad"] == 0
    assert count(registry, "password") == 9
    assert count(registry, "qwerty") == 4


def test_a_dash_reads_the_corpus_from_stdin(runner: CliRunner, registry: Services) -> None:
    result = run_import(
        runner,
        "-",
        "--type",
        "passwords",
        "--breach",
        "Piped",
        "--date",
        "2021-03-04",
        "--json",
        input=b"from stdin\r\nfrom stdin\r\nanother\r\n",
    )

    report = report_json(result)
    assert report["breach"] == "Piped"
    assert count(registry, "from stdin") == 2
    assert count(registry, "another") == 1
    record = breach(registry, "Piped")
    assert record is not None
    assert str(record.breach_date) == "2021-03-04"


def test_stdin_without_a_breach_name_is_a_clear_error_with_exit_2(
    runner: CliRunner, registry: Services
) -> None:
    before = dump(registry)

    result = run_import(runner, "-", "--type", "passwords", input=b"secret\n")

    assert result.exit_code == 2, result.output
    assert "--breach" in result.output
    assert "Traceback" not in result.output
    assert dump(registry) == before


def test_a_missing_file_is_exit_2_naming_it(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-corpus.txt"

    result = run_import(runner, missing, "--type", "passwords")

    assert result.exit_code == 2, result.output
    assert str(missing) in result.output


# -- only digests -----------------------------------------------------------------------------


def _cells(registry: Services) -> list[tuple[str, str, bytes]]:
    """(table, column, value as bytes) for every text or binary cell in the database."""
    cells = []
    for table, rows in dump(registry).items():
        with registry.db.engine.connect() as conn:
            columns = [c["name"] for c in inspect(conn).get_columns(table)]
        for row in rows:
            for column, value in zip(columns, row, strict=True):
                if isinstance(value, str):
                    cells.append((table, column, value.encode("utf-8")))
                elif isinstance(value, bytes):
                    cells.append((table, column, value))
    return cells


def test_no_table_holds_a_leaked_password_or_unknown_email_in_plaintext(
    runner: CliRunner, registry: Services, tmp_path: Path, now: Any
) -> None:
    password = "Plaintext-Sentinel-7f3a"
    combo_password = "Combo-Sentinel-91c2"
    stranger = "stranger-sentinel@example.org"
    with registry.db.session() as session:
        accounts.create(
            session,
            email="member@example.org",
            password=combo_password,
            hasher=registry.hasher,
            actor=ACTOR,
            now=now,
        )
    plain = tmp_path / "plain.txt"
    plain.write_text(f"{password}\n{password}\n")
    combos = tmp_path / "combos.txt"
    combos.write_text(f"{stranger}:{password}\nmember@example.org:{combo_password}\n")

    ok(run_import(runner, plain, "--type", "passwords"))
    ok(run_import(runner, combos, "--type", "combos"))

    assert count(registry, password) == 3
    assert count(registry, combo_password) == 1
    cells = _cells(registry)
    assert any(t == "pwned_passwords" for t, _, _ in cells)  # the scan saw the corpus
    for secret in (password, combo_password, stranger):
        leaks = [(t, c) for t, c, v in cells if secret.encode() in v]
        assert leaks == [], f"{secret!r} stored in plaintext in {leaks}"
    lengths = {
        len(v) for t, c, v in cells if t in ("pwned_passwords", "breached_emails") and c == "sha1"
    }
    assert lengths == {20}


# -- counts ------------------------------------------------------------------------------------


def test_a_digest_count_is_the_sum_over_breaches(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    first = tmp_path / "first.txt"
    first.write_text(f"{hexsha1('password')}:100\n{hexsha1('only-first')}:1\n")
    second = tmp_path / "second.txt"
    second.write_text("password\npassword\npassword\n")

    ok(run_import(runner, first, "--type", "passwords"))
    ok(run_import(runner, second, "--type", "passwords"))

    assert count(registry, "password") == 103
    assert count(registry, "only-first") == 1
    rng = dict(store.password_range(registry.db, hexsha1("password")[:5]).rows)
    assert rng[sha1("password")] == 103


def test_counts_are_summed_across_batches_of_one_import(
    registry: Services, tmp_path: Path, now: Any
) -> None:
    corpus = tmp_path / "spread.txt"
    corpus.write_text("".join(f"common\nrare-{i}\n" for i in range(9)))

    with registry.db.session() as session:
        report = Importer(session, registry.hasher, ACTOR, batch=3).run(
            Source(str(corpus)), BreachKind.PASSWORDS, now=now
        )

    assert report.password_entries == 10
    assert count(registry, "common") == 9
    assert count(registry, "rare-8") == 1


def test_a_combo_list_whose_passwords_repeat_across_batches_sums_their_counts(
    registry: Services, tmp_path: Path, now: Any
) -> None:
    # In no order and larger than a batch: most batches meet digests written before them.
    leak = tmp_path / "combos.txt"
    lines = [f"user{i}@example.org:{'password' if i % 3 else f'pw{i % 50}'}" for i in range(1200)]
    leak.write_text("\n".join(lines) + "\n")

    with registry.db.session() as session:
        report = Importer(session, registry.hasher, ACTOR, batch=100).run(
            Source(str(leak)), BreachKind.COMBOS, now=now
        )

    assert (report.password_entries, report.email_entries) == (51, 1200)
    assert count(registry, "password") == 800
    assert count(registry, "pw7") == 8
    assert email_breaches(registry, "user1199@example.org") == [report.breach]


def test_reimporting_a_breach_replaces_its_counts(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    other = tmp_path / "other.txt"
    other.write_text("password\n")
    ok(run_import(runner, other, "--type", "passwords"))
    corpus = tmp_path / "leak.txt"
    corpus.write_text("password\npassword\ndropped-later\n")
    ok(run_import(runner, corpus, "--type", "passwords", "--breach", "Leak"))
    assert count(registry, "password") == 3

    corpus.write_text("password\npassword\npassword\npassword\n")
    report = report_json(
        run_import(runner, corpus, "--type", "passwords", "--breach", "Leak", "--replace", "--json")
    )

    assert count(registry, "password") == 5  # 1 from `other` + 4, not 1 + 2 + 4
    assert count(registry, "dropped-later") == 0
    assert report["password_entries"] == 1
    record = breach(registry, "Leak")
    assert record is not None
    assert (record.lines_read, record.password_entries) == (4, 1)


def test_reimporting_an_email_list_replaces_its_addresses(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    corpus = tmp_path / "emails.txt"
    corpus.write_text("kept@example.org\ngone@example.org\n")
    ok(run_import(runner, corpus, "--type", "emails", "--breach", "List"))
    corpus.write_text("kept@example.org\n")
    ok(run_import(runner, corpus, "--type", "emails", "--breach", "List", "--replace"))

    assert email_breaches(registry, "kept@example.org") == ["List"]
    assert email_breaches(registry, "gone@example.org") == []


# -- bad lines ---------------------------------------------------------------------------------


def test_malformed_and_undecodable_lines_are_counted_with_line_numbers_never_fatal(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    corpus = tmp_path / "mixed.txt"
    corpus.write_bytes(
        b"\n".join(
            [
                f"{hexsha1('good')}:5".encode(),  # 1
                b"",  # 2 blank
                b"this is not a digest",  # 3
                f"{hexsha1('bad')[:39]}:1".encode(),  # 4 too short
                b"\xff\xfe\x00garbage",  # 5 not UTF-8
                f"{hexsha1('also good')}:2".encode(),  # 6
                b"",  # 7 blank
            ]
        )
        + b"\n"
    )

    result = run_import(runner, corpus, "--type", "passwords", "--format", "sha1", "--keep-bad")

    ok(result)
    assert "3 malformed" in result.stdout
    assert "2 blank" in result.stdout
    for line in (3, 4, 5):
        assert f"line {line}:" in result.stderr
    assert "line 1:" not in result.stderr and "line 6:" not in result.stderr
    assert count(registry, "good") == 5
    assert count(registry, "also good") == 2
    record = breach(registry, "mixed")
    assert record is not None
    assert (record.lines_read, record.lines_bad) == (7, 3)


def test_a_password_not_in_the_encoding_given_is_a_bad_line_not_a_guess(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    corpus = tmp_path / "latin1.txt"
    corpus.write_bytes(b"fine\nd\xe9j\xe0vu\n\nfine\n")

    report = report_json(
        run_import(
            runner, corpus, "--type", "passwords", "--encoding", "utf-8", "--json", "--keep-bad"
        )
    )

    assert report["lines"] == 4
    assert report["blank"] == 1
    assert report["bad"] == 1
    assert report["bad_samples"][0]["line"] == 2
    assert "UTF-8" in report["bad_samples"][0]["error"]
    assert count(registry, "fine") == 2
    assert len(all_password_digests(registry)) == 1


def test_bad_email_and_combo_lines_are_reported_by_number(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    emails = tmp_path / "emails.txt"
    # 0x81 is neither UTF-8 nor cp1252 (one of the five bytes cp1252 leaves undefined)
    emails.write_bytes(b"good@example.org\nnot-an-address\n   \n\x81bad@example.org\n")
    combos = tmp_path / "combos.txt"
    combos.write_bytes(b"no separator here\nuser@example.org:\nok@example.org:pw\n\r\n")

    e = report_json(run_import(runner, emails, "--type", "emails", "--json", "--keep-bad"))
    c = report_json(run_import(runner, combos, "--type", "combos", "--json", "--keep-bad"))

    assert (e["lines"], e["blank"], e["bad"]) == (4, 1, 2)
    assert [s["line"] for s in e["bad_samples"]] == [2, 4]
    assert (c["lines"], c["blank"], c["bad"]) == (4, 1, 2)
    assert [s["line"] for s in c["bad_samples"]] == [1, 2]
    assert email_breaches(registry, "good@example.org") == ["emails"]
    assert email_breaches(registry, "ok@example.org") == ["combos"]
    assert email_breaches(registry, "user@example.org") == []


def test_a_count_too_large_to_store_is_a_bad_line_not_a_failed_import(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    big = hexsha1("huge")
    sha1_file = tmp_path / "counts.txt"
    sha1_file.write_text(f"{hexsha1('normal')}:2147483647\n{big}:3000000000\n")
    prefix_file = tmp_path / f"{big[:5]}.txt"
    prefix_file.write_text(f"{big[5:]}:99999999999\n{'0' * 35}:8\n")

    one = report_json(run_import(runner, sha1_file, "--type", "passwords", "--json", "--keep-bad"))
    two = report_json(
        run_import(runner, prefix_file, "--type", "passwords", "--json", "--keep-bad")
    )

    assert (one["bad"], [s["line"] for s in one["bad_samples"]]) == (1, [2])
    assert (two["bad"], [s["line"] for s in two["bad_samples"]]) == (1, [1])
    assert count(registry, "normal") == 2147483647
    assert count(registry, "huge") == 0
    assert count_of_digest(registry, big[:5] + "0" * 35) == 8


def test_only_the_first_bad_lines_are_shown_and_the_rest_are_summed(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    corpus = tmp_path / "noisy.txt"
    corpus.write_text("".join(f"junk {i}\n" for i in range(25)) + f"{hexsha1('x')}:1\n")

    result = run_import(runner, corpus, "--type", "passwords", "--format", "sha1", "--keep-bad")

    ok(result)
    assert "25 malformed" in result.stdout
    assert "line 1:" in result.stderr
    assert "and 15 more" in result.stderr
    assert count(registry, "x") == 1


# -- one transaction ---------------------------------------------------------------------------


def test_a_corrupt_compressed_file_fails_and_leaves_the_database_as_it_was(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    good = tmp_path / "leak.txt"
    good.write_text("password\nkeep-me\n")
    ok(run_import(runner, good, "--type", "passwords", "--breach", "Leak"))
    before = dump(registry)
    lines = "".join(f"password-{i:06d}\n" for i in range(20000)).encode()
    broken = tmp_path / "leak.txt.gz"
    packed = gzip.compress(lines)
    broken.write_bytes(packed[: len(packed) // 2])  # ends mid-stream

    result = run_import(runner, broken, "--type", "passwords", "--breach", "Leak", "--replace")

    assert result.exit_code == 2
    assert "could not read the file" in result.output and "nothing was imported" in result.output
    assert "Traceback" not in result.output
    assert dump(registry) == before
    assert count(registry, "keep-me") == 1


def test_a_failure_after_batches_were_written_rolls_everything_back(
    registry: Services, tmp_path: Path, now: Any
) -> None:
    folder = tmp_path / "ranges"
    folder.mkdir()
    a = hexsha1("password")
    (folder / f"{a[:5]}.txt").write_text(
        "".join(f"{i:035X}:1\n" for i in range(50)) + f"{a[5:]}:9\n"
    )
    # a name that fits, but a gzip stream cut short: found only after batches were written
    (folder / "FFFFF.txt.gz").write_bytes(gzip.compress(b"0" * 35 + b":1\n" * 5000)[:40])
    before = dump(registry)

    with pytest.raises(InvalidInput, match=r"FFFFF\.txt"), registry.db.session() as session:
        Importer(session, registry.hasher, ACTOR, batch=10).run(
            Source(str(folder)), BreachKind.PASSWORDS, now=now
        )

    assert dump(registry) == before
    assert breach(registry, "ranges") is None
    assert count(registry, "password") == 0


# -- combos against accounts -------------------------------------------------------------------


def _valid_credential_findings(registry: Services) -> list[tuple[int, str, str]]:
    with registry.db.session() as session:
        rows = session.execute(
            select(Finding.account_id, Finding.source, Finding.breach).where(
                Finding.kind == FindingKind.VALID_CREDENTIAL
            )
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_leaked_password_that_still_verifies_is_a_valid_credential_finding_once(
    runner: CliRunner, registry: Services, tmp_path: Path, now: Any
) -> None:
    with registry.db.session() as session:
        exposed = accounts.create(
            session,
            email="exposed@example.org",
            password="Still:Valid pass",
            hasher=registry.hasher,
            actor=ACTOR,
            now=now,
        ).id
        accounts.create(
            session,
            email="changed@example.org",
            password="a new password",
            hasher=registry.hasher,
            actor=ACTOR,
            now=now,
        )
        accounts.create(
            session, email="nopass@example.org", hasher=registry.hasher, actor=ACTOR, now=now
        )
    corpus = tmp_path / "webmail.txt"
    corpus.write_text(
        "EXPOSED@example.org:Still:Valid pass\r\n"
        "changed@example.org;the old password\r\n"
        "nopass@example.org\tanything\r\n"
        "exposed@example.org:some other leak\r\n"
    )

    first = report_json(
        run_import(runner, corpus, "--type", "combos", "--breach", "Webmail", "--json")
    )
    again = report_json(
        run_import(runner, corpus, "--type", "combos", "--breach", "Webmail", "--replace", "--json")
    )

    assert first["valid_credentials"] == 1
    assert again["valid_credentials"] == 0
    assert _valid_credential_findings(registry) == [(exposed, "local", "Webmail")]


def test_a_wrong_leaked_password_is_no_valid_credential(
    runner: CliRunner, registry: Services, tmp_path: Path, now: Any
) -> None:
    with registry.db.session() as session:
        accounts.create(
            session,
            email="safe@example.org",
            password="correct one",
            hasher=registry.hasher,
            actor=ACTOR,
            now=now,
        )
    corpus = tmp_path / "combos.txt"
    corpus.write_text("safe@example.org:correct on\nsafe@example.org:correct one \n")

    result = run_import(runner, corpus, "--type", "combos", "--json")

    assert report_json(result)["valid_credentials"] == 0
    assert _valid_credential_findings(registry) == []
    assert email_breaches(registry, "safe@example.org") == ["combos"]


def test_a_header_line_does_not_turn_a_hash_file_into_passwords(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    path = tmp_path / "hashes.txt"
    a = hexsha1("password")
    path.write_text(f"hash:count\n{a}:7\n")
    result = run_import(
        runner, path, "--type", "passwords", "--breach", "H", "--json", "--keep-bad"
    )
    report = json.loads(result.output)
    assert report["format"] == "sha1" and report["bad"] == 1
    assert report["bad_samples"][0]["line"] == 1
    assert count(registry, "password") == 7


def test_counts_saturate_instead_of_overflowing_the_column(
    runner: CliRunner, registry: Services, tmp_path: Path
) -> None:
    path = tmp_path / "big.txt"
    a = hexsha1("password")
    path.write_text(f"{a}:2000000000\n{a}:2000000000\n")
    assert run_import(runner, path, "--type", "passwords", "--breach", "Big").exit_code == 0
    assert count(registry, "password") == 2**31 - 1
