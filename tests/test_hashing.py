"""HIBP's digest conventions and e-mail normalisation."""

import pytest

from auth.breach.hashing import (
    email_sha1,
    normalise_email,
    parse_prefix,
    password_sha1,
    prefix_bounds,
    sha1_hex,
)
from auth.errors import InvalidEmail


def test_password_digest_is_uppercase_sha1_of_utf8() -> None:
    # HIBP's documented example: "P@ssw0rd" -> 21BD12DC183F740EE76F27B78EB39C8AD972A757
    assert sha1_hex(password_sha1("P@ssw0rd")) == "21BD12DC183F740EE76F27B78EB39C8AD972A757"
    assert sha1_hex(password_sha1("été")) == sha1_hex(password_sha1("\u00e9t\u00e9"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Claire.Martin@Example.FR \n", "claire.martin@example.fr"),
        ("ｃｌａｉｒｅ@example.fr", "claire@example.fr"),  # fullwidth folds under NFKC
        ("dr.o'neil+portal@chu-exemple.fr", "dr.o'neil+portal@chu-exemple.fr"),
    ],
)
def test_emails_are_trimmed_folded_and_lower_cased(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        *("", "claire", "claire@", "@example.fr", "a@b", "a b@example.fr", "a@@example.fr"),
        *("a@-x.fr", "clai\x00re@example.fr", "claire\x7f@example.fr", "cl\x1bre@example.fr"),
    ],
)
def test_what_is_not_an_address_is_refused_with_its_value(raw: str) -> None:
    with pytest.raises(InvalidEmail, match="not an e-mail address"):
        normalise_email(raw)


def test_email_digest_is_taken_after_normalisation() -> None:
    assert email_sha1(normalise_email(" A@Example.org")) == email_sha1("a@example.org")


def test_prefixes_must_be_hex_of_the_right_length() -> None:
    assert parse_prefix("abcde", 5) == "ABCDE"
    for bad in ("abcd", "abcdef", "abcdg", "ab de"):
        with pytest.raises(ValueError, match="5 hexadecimal"):
            parse_prefix(bad, 5)


def test_prefix_bounds_cover_exactly_the_digests_under_the_prefix() -> None:
    lo, hi = prefix_bounds("ABCDE")
    assert lo == bytes.fromhex("ABCDE" + "0" * 35)
    assert hi == bytes.fromhex("ABCDF" + "0" * 35)
    lo, hi = prefix_bounds("FFFFF")
    assert lo <= bytes.fromhex("F" * 40) < hi
