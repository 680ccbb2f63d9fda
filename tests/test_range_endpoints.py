"""The HIBP-compatible range endpoints, served from a corpus imported into the real database."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from auth import apikeys, audit
from auth.breach.importer import Importer, Source
from auth.models import BreachKind
from auth.services import Services

ACTOR = audit.Actor.cli("tester")
SUFFIX_LINE = re.compile(r"\A[0-9A-F]{35}:[0-9]+\Z")

LOWEST = "0" * 40
LOWEST_NEIGHBOUR = "00001" + "0" * 35  # first digest of the next range up
HIGHEST = "F" * 40
HIGHEST_NEIGHBOUR = "FFFFE" + "F" * 35  # last digest of the range below
PASSWORD = hashlib.sha1(b"password").hexdigest().upper()  # noqa: S324 - HIBP's scheme
SIBLING = PASSWORD[:5] + "00D4F6E8FA6EECAD2A3AA415EEC418D38EC"  # same range, sorts first


def import_file(registry: Services, path: Path, kind: BreachKind, name: str) -> None:
    with registry.db.session() as session:
        Importer(session, registry.hasher, ACTOR).run(Source(str(path)), kind, breach=name)


def seed_passwords(registry: Services, tmp_path: Path, counts: dict[str, int], name: str) -> None:
    path = tmp_path / f"{name}.txt"
    path.write_text("".join(f"{d}:{c}\n" for d, c in counts.items()))
    import_file(registry, path, BreachKind.PASSWORDS, name)


def seed_emails(registry: Services, tmp_path: Path, emails: list[str], name: str) -> None:
    path = tmp_path / f"{name}-emails.txt"
    path.write_text("".join(e + "\n" for e in emails))
    import_file(registry, path, BreachKind.EMAILS, name)


@pytest.fixture
def corpus(registry: Services, tmp_path: Path) -> Services:
    seed_passwords(
        registry,
        tmp_path,
        {
            PASSWORD: 10434004,
            SIBLING: 3,
            LOWEST: 11,
            LOWEST_NEIGHBOUR: 12,
            HIGHEST: 13,
            HIGHEST_NEIGHBOUR: 14,
        },
        "Big",
    )
    seed_passwords(registry, tmp_path, {PASSWORD: 6}, "Small")
    return registry


def lines(body: bytes) -> list[str]:
    return body.decode("ascii").split("\r\n") if body else []


# -- /range/{prefix} ---------------------------------------------------------------------------


def test_a_range_is_byte_compatible_with_pwned_passwords(
    corpus: Services, client: FlaskClient
) -> None:
    response = client.get(f"/range/{PASSWORD[:5]}")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.data == (f"{SIBLING[5:]}:3\r\n{PASSWORD[5:]}:10434010").encode()
    assert "Cache-Control" in response.headers
    assert "max-age" in response.headers["Cache-Control"]


def test_the_prefix_is_case_insensitive(corpus: Services, client: FlaskClient) -> None:
    upper = client.get(f"/range/{PASSWORD[:5]}")
    lower = client.get(f"/range/{PASSWORD[:5].lower()}")

    assert lower.status_code == 200
    assert lower.data == upper.data != b""


def test_lines_are_sorted_uppercase_suffix_count_without_a_trailing_crlf(
    registry: Services, client: FlaskClient, tmp_path: Path
) -> None:
    digests = {f"ABCDE{i * 7919:035x}": i + 1 for i in range(40)}  # lower-case in the file
    seed_passwords(registry, tmp_path, digests, "Many")

    body = client.get("/range/abcde").data

    assert not body.endswith(b"\r\n")
    assert b"\n" not in body.replace(b"\r\n", b"")
    got = lines(body)
    assert all(SUFFIX_LINE.match(line) for line in got)
    assert got == sorted(got)
    assert dict(line.split(":") for line in got) == {
        d[5:].upper(): str(c) for d, c in digests.items()
    }


def test_the_lowest_range_holds_the_all_zero_digest_and_nothing_beyond(
    corpus: Services, client: FlaskClient
) -> None:
    assert client.get("/range/00000").data == f"{LOWEST[5:]}:11".encode()
    assert client.get("/range/00001").data == f"{LOWEST_NEIGHBOUR[5:]}:12".encode()


def test_the_highest_range_holds_the_all_f_digest_and_nothing_below(
    corpus: Services, client: FlaskClient
) -> None:
    assert client.get("/range/FFFFF").data == f"{HIGHEST[5:]}:13".encode()
    assert client.get("/range/fffff").data == f"{HIGHEST[5:]}:13".encode()
    assert client.get("/range/FFFFE").data == f"{HIGHEST_NEIGHBOUR[5:]}:14".encode()


@pytest.mark.parametrize("prefix", ["12345", "ABCDE", "abcde", "0F0F0", "FFFF0", "00010"])
def test_a_valid_prefix_with_nothing_in_it_answers_one_count_zero_line(
    corpus: Services, client: FlaskClient, prefix: str
) -> None:
    """As HIBP's full corpus always does: some clients fail on an empty body."""
    response = client.get(f"/range/{prefix}")

    assert response.status_code == 200
    [line] = lines(response.data)
    assert SUFFIX_LINE.match(line) and line.endswith(":0")


def test_padding_adds_800_to_1000_count_zero_lines(corpus: Services, client: FlaskClient) -> None:
    sizes = set()
    for _ in range(6):
        response = client.get(f"/range/{PASSWORD[:5]}", headers={"Add-Padding": "true"})
        assert response.status_code == 200
        assert not response.data.endswith(b"\r\n")
        got = lines(response.data)
        sizes.add(len(got))
        assert 802 <= len(got) <= 1002  # the 2 real entries, and 800 to 1,000 more
        assert all(SUFFIX_LINE.match(line) for line in got)
        assert got == sorted(got)
        entries = dict(line.split(":") for line in got)
        assert len(entries) == len(got)  # no suffix twice
        assert entries[PASSWORD[5:]] == "10434010"
        assert entries[SIBLING[5:]] == "3"
        assert {c for s, c in entries.items() if s not in (PASSWORD[5:], SIBLING[5:])} == {"0"}
    assert len(sizes) > 1  # the size varies, so it says nothing about the range


def test_padding_also_hides_an_empty_range(corpus: Services, client: FlaskClient) -> None:
    got = lines(client.get("/range/12345", headers={"Add-Padding": "True"}).data)

    assert 800 <= len(got) <= 1000
    assert {line.split(":")[1] for line in got} == {"0"}


def test_without_the_padding_header_there_is_no_padding(
    corpus: Services, client: FlaskClient
) -> None:
    for headers in ({}, {"Add-Padding": "false"}):
        got = lines(client.get(f"/range/{PASSWORD[:5]}", headers=headers).data)
        assert len(got) == 2


@pytest.mark.parametrize("prefix", ["ABCD", "ABCDEF", "ABCDG", "0x123", "5BAA６", "ZZZZZ"])
def test_a_bad_password_prefix_is_400_with_a_one_line_reason(
    client: FlaskClient, prefix: str
) -> None:
    response = client.get(f"/range/{prefix}")

    assert response.status_code == 400
    reason = response.get_data(as_text=True).strip()
    assert reason
    assert "\n" not in reason
    assert "5 hexadecimal" in reason


# -- /api/v3/breachedaccount/range/{prefix} ----------------------------------------------------


def make_key(registry: Services, role: str, now: dt.datetime) -> apikeys.NewKey:
    with registry.db.session() as session:
        return apikeys.create(session, role=role, name=f"{role} key", actor=ACTOR, now=now)


def email_hex(email: str) -> str:
    return hashlib.sha1(email.encode()).hexdigest().upper()  # noqa: S324


@pytest.fixture
def emails(registry: Services, tmp_path: Path) -> Services:
    seed_emails(registry, tmp_path, ["nurse@example.org", "doctor@example.org"], "Forum2021")
    seed_emails(registry, tmp_path, ["Nurse@Example.org"], "Adobe")
    return registry


def test_email_range_lists_suffixes_with_their_breaches(
    emails: Services, client: FlaskClient, now: dt.datetime
) -> None:
    key = make_key(emails, "security", now)
    digest = email_hex("nurse@example.org")

    response = client.get(
        f"/api/v3/breachedaccount/range/{digest[:6].lower()}",
        headers={"hibp-api-key": key.token},
    )

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    expected = {digest[6:]: ["Adobe", "Forum2021"]}
    doctor = email_hex("doctor@example.org")
    if doctor[:6] == digest[:6]:
        expected[doctor[6:]] = ["Forum2021"]
    assert {e["hashSuffix"]: e["websites"] for e in body} == expected
    for entry in body:
        assert set(entry) == {"hashSuffix", "websites"}
        assert re.fullmatch(r"[0-9A-F]{34}", entry["hashSuffix"])


def test_email_range_accepts_a_bearer_token(
    emails: Services, client: FlaskClient, now: dt.datetime
) -> None:
    key = make_key(emails, "admin", now)
    digest = email_hex("doctor@example.org")

    response = client.get(
        f"/api/v3/breachedaccount/range/{digest[:6]}",
        headers={"Authorization": f"Bearer {key.token}"},
    )

    assert response.status_code == 200
    assert {"hashSuffix": digest[6:], "websites": ["Forum2021"]} in response.get_json()


def test_email_range_with_nothing_in_it_is_404(
    emails: Services, client: FlaskClient, now: dt.datetime
) -> None:
    key = make_key(emails, "security", now)
    taken = {email_hex("nurse@example.org")[:6], email_hex("doctor@example.org")[:6]}
    empty = next(p for p in ("000000", "FFFFFF", "123456") if p not in taken)

    response = client.get(
        f"/api/v3/breachedaccount/range/{empty}", headers={"hibp-api-key": key.token}
    )

    assert response.status_code == 404


def test_email_range_without_a_key_is_401(emails: Services, client: FlaskClient) -> None:
    response = client.get(f"/api/v3/breachedaccount/range/{email_hex('nurse@example.org')[:6]}")

    assert response.status_code == 401
    assert response.get_json()["statusCode"] == 401
    assert "hashSuffix" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "token",
    ["garbage", "bg_000000000000_not-the-secret", "Bearer", ""],
    ids=["garbage", "unknown-id", "word", "empty"],
)
def test_email_range_with_a_garbage_key_is_401(
    emails: Services, client: FlaskClient, token: str
) -> None:
    response = client.get(
        f"/api/v3/breachedaccount/range/{email_hex('nurse@example.org')[:6]}",
        headers={"hibp-api-key": token},
    )

    assert response.status_code == 401


def test_a_right_id_with_a_wrong_secret_is_401(
    emails: Services, client: FlaskClient, now: dt.datetime
) -> None:
    key = make_key(emails, "security", now)
    forged = key.token[:-4] + ("AAAA" if not key.token.endswith("AAAA") else "BBBB")

    response = client.get(
        f"/api/v3/breachedaccount/range/{email_hex('nurse@example.org')[:6]}",
        headers={"Authorization": f"Bearer {forged}"},
    )

    assert response.status_code == 401


def test_email_range_with_a_revoked_key_is_401(
    emails: Services, client: FlaskClient, now: dt.datetime
) -> None:
    key = make_key(emails, "security", now)
    url = f"/api/v3/breachedaccount/range/{email_hex('nurse@example.org')[:6]}"
    assert client.get(url, headers={"hibp-api-key": key.token}).status_code == 200
    with emails.db.session() as session:
        apikeys.revoke(session, key.id, actor=ACTOR, now=now)

    assert client.get(url, headers={"hibp-api-key": key.token}).status_code == 401
    assert client.get(url, headers={"Authorization": f"Bearer {key.token}"}).status_code == 401


def test_email_range_with_a_hook_key_is_403(
    emails: Services, client: FlaskClient, now: dt.datetime
) -> None:
    key = make_key(emails, "hook", now)

    response = client.get(
        f"/api/v3/breachedaccount/range/{email_hex('nurse@example.org')[:6]}",
        headers={"hibp-api-key": key.token},
    )

    assert response.status_code == 403
    assert "hashSuffix" not in response.get_data(as_text=True)


@pytest.mark.parametrize("prefix", ["ABCDE", "ABCDEF0", "ABCDEG"])
def test_a_bad_email_prefix_is_400_with_a_one_line_reason(
    registry: Services, client: FlaskClient, now: dt.datetime, prefix: str
) -> None:
    key = make_key(registry, "security", now)

    response = client.get(
        f"/api/v3/breachedaccount/range/{prefix}", headers={"hibp-api-key": key.token}
    )

    assert response.status_code == 400
    reason = response.get_data(as_text=True).strip()
    assert "6 hexadecimal" in reason
    assert "\n" not in reason


def test_padding_pads_a_prefix_with_many_entries_too(corpus: Services) -> None:
    from auth.web.range import padded

    real = {f"{i:035X}": i + 1 for i in range(1500)}
    out = padded(real)
    assert 1500 + 800 <= len(out) <= 1500 + 1000
    assert {s: c for s, c in out.items() if c} == real


def test_ntlm_mode_is_refused_with_a_clear_message(corpus: Services, client: FlaskClient) -> None:
    response = client.get(f"/range/{PASSWORD[:5]}?mode=ntlm")
    assert response.status_code == 400 and b"SHA-1" in response.data
    assert client.get(f"/range/{PASSWORD[:5]}?mode=sha1").status_code == 200


# -- caching, compression and browsers ---------------------------------------------------------


def test_a_range_is_plain_text_with_a_validator_and_a_date(
    corpus: Services, client: FlaskClient
) -> None:
    response = client.get(f"/range/{PASSWORD[:5]}")

    assert response.headers["Content-Type"].split(";")[0] == "text/plain"
    assert response.headers["ETag"].startswith('"')  # strong: the same bytes every time
    assert response.last_modified is not None
    assert client.get(f"/range/{PASSWORD[:5]}").headers["ETag"] == response.headers["ETag"]


def test_a_client_whose_copy_is_current_gets_304(corpus: Services, client: FlaskClient) -> None:
    first = client.get(f"/range/{PASSWORD[:5]}")

    by_tag = client.get(f"/range/{PASSWORD[:5]}", headers={"If-None-Match": first.headers["ETag"]})
    by_date = client.get(
        f"/range/{PASSWORD[:5]}", headers={"If-Modified-Since": first.headers["Last-Modified"]}
    )

    assert by_tag.status_code == by_date.status_code == 304
    assert by_tag.data == by_date.data == b""
    stale = client.get(f"/range/{PASSWORD[:5]}", headers={"If-None-Match": '"not-this-one"'})
    assert stale.status_code == 200 and stale.data == first.data


def test_tag_and_date_change_when_the_corpus_changes(
    corpus: Services, client: FlaskClient, tmp_path: Path
) -> None:
    before = client.get(f"/range/{PASSWORD[:5]}")

    seed_passwords(corpus, tmp_path, {PASSWORD: 1}, "Later")
    after = client.get(
        f"/range/{PASSWORD[:5]}",
        headers={
            "If-None-Match": before.headers["ETag"],
            "If-Modified-Since": before.headers["Last-Modified"],
        },
    )

    assert after.status_code == 200
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.last_modified is not None and before.last_modified is not None
    assert after.last_modified >= before.last_modified
    assert f"{PASSWORD[5:]}:10434011".encode() in after.data


def test_an_empty_range_is_the_same_answer_every_time(
    corpus: Services, client: FlaskClient
) -> None:
    first, second = client.get("/range/12345"), client.get("/range/12345")
    assert first.data == second.data and first.headers["ETag"] == second.headers["ETag"]
    assert client.get("/range/12346").data != first.data


def test_a_padded_answer_has_a_weak_validator_and_revalidates(
    corpus: Services, client: FlaskClient
) -> None:
    padded = {"Add-Padding": "true"}
    first = client.get(f"/range/{PASSWORD[:5]}", headers=padded)

    assert first.headers["ETag"].startswith('W/"')  # the padding differs on every call
    again = client.get(
        f"/range/{PASSWORD[:5]}", headers=padded | {"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304
    assert "Add-Padding" in first.headers["Vary"]


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_a_range_is_compressed_when_asked(
    corpus: Services, client: FlaskClient, encoding: str
) -> None:
    import gzip

    import brotli

    plain = client.get(f"/range/{PASSWORD[:5]}", headers={"Add-Padding": "true"})
    packed = client.get(
        f"/range/{PASSWORD[:5]}", headers={"Add-Padding": "true", "Accept-Encoding": encoding}
    )

    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == encoding
    assert "Accept-Encoding" in packed.headers["Vary"]
    raw = gzip.decompress(packed.data) if encoding == "gzip" else brotli.decompress(packed.data)
    assert len(packed.data) < len(raw) / 1.5
    got = dict(line.split(":") for line in lines(raw))
    assert got[PASSWORD[5:]] == "10434010" and 800 <= len(got) <= 1002


def test_pages_are_never_compressed(client: FlaskClient) -> None:
    """A page holds its CSRF token: compressed beside attacker-chosen text, its size would
    leak the token (BREACH)."""
    response = client.get("/login", headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 200 and "Content-Encoding" not in response.headers


def test_any_browser_origin_may_read_a_range_with_padding(
    corpus: Services, client: FlaskClient
) -> None:
    preflight = client.options(
        f"/range/{PASSWORD[:5]}",
        headers={
            "Origin": "https://pharmacy.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "add-padding",
        },
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    assert "add-padding" in preflight.headers["Access-Control-Allow-Headers"].lower()

    got = client.get(
        f"/range/{PASSWORD[:5]}",
        headers={"Origin": "https://pharmacy.example", "Add-Padding": "true"},
    )
    assert got.headers["Access-Control-Allow-Origin"] == "*"


def test_no_browser_origin_may_read_the_email_range(emails: Services, client: FlaskClient) -> None:
    preflight = client.options(
        "/api/v3/breachedaccount/range/ABCDEF",
        headers={
            "Origin": "https://pharmacy.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "hibp-api-key",
        },
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Headers" not in preflight.headers


@pytest.mark.parametrize(
    "path",
    ["/api/v3/breachedaccount/range/", "/api/v3/breachedaccount/range/ABCDEF/more", "/api/v3/x"],
)
def test_email_range_404s_are_json_never_html(
    emails: Services, client: FlaskClient, now: dt.datetime, path: str
) -> None:
    key = make_key(emails, "security", now)
    response = client.get(path, headers={"hibp-api-key": key.token})

    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert b"<html" not in response.data.lower()
