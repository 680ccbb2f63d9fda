"""TOTP: RFC 6238 vectors, the ±1 window edges, and replay refusal."""

import base64
import hashlib

import pyotp
import pytest

from auth.mfa import totp
from auth.mfa.totp import TotpStatus

SEEDS = {
    "sha1": (b"12345678901234567890", hashlib.sha1),
    "sha256": (b"12345678901234567890123456789012", hashlib.sha256),
    "sha512": (b"1234567890" * 6 + b"1234", hashlib.sha512),
}
# RFC 6238, appendix B: (time, sha1, sha256, sha512), 8 digits.
VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("t", "sha1", "sha256", "sha512"), VECTORS)
def test_rfc6238_appendix_b_vectors_verify(t: int, sha1: str, sha256: str, sha512: str) -> None:
    for name, expected in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        seed, digest = SEEDS[name]
        secret = base64.b32encode(seed).decode()
        result = totp.check(
            secret, expected, now=t, last_step=None, window=0, digits=8, digest=digest
        )
        assert result.status is TotpStatus.OK, (t, name)
        assert result.step == t // 30
        wrong = f"{(int(expected) + 1) % 10**8:08d}"
        assert (
            totp.check(
                secret, wrong, now=t, last_step=None, window=0, digits=8, digest=digest
            ).status
            is TotpStatus.INVALID
        )


SECRET = pyotp.random_base32()
NOW = 1_800_000_015.0  # mid-step
STEP = int(NOW) // 30


def code_at(step: int) -> str:
    return pyotp.TOTP(SECRET).at(step * 30)


def test_codes_one_step_either_side_are_accepted_two_are_not() -> None:
    for offset in (-1, 0, 1):
        assert (
            totp.check(SECRET, code_at(STEP + offset), now=NOW, last_step=None).status
            is TotpStatus.OK
        )
    for offset in (-2, 2):
        assert (
            totp.check(SECRET, code_at(STEP + offset), now=NOW, last_step=None).status
            is TotpStatus.INVALID
        )


def test_the_window_is_configurable() -> None:
    assert (
        totp.check(SECRET, code_at(STEP + 2), now=NOW, last_step=None, window=2).status
        is TotpStatus.OK
    )
    assert (
        totp.check(SECRET, code_at(STEP - 1), now=NOW, last_step=None, window=0).status
        is TotpStatus.INVALID
    )


def test_a_replayed_code_is_refused_as_replayed_not_as_wrong() -> None:
    first = totp.check(SECRET, code_at(STEP), now=NOW, last_step=None)
    assert first.status is TotpStatus.OK
    again = totp.check(SECRET, code_at(STEP), now=NOW + 5, last_step=first.step)
    assert again.status is TotpStatus.REPLAYED


def test_an_older_code_after_a_newer_one_is_replayed() -> None:
    assert (
        totp.check(SECRET, code_at(STEP - 1), now=NOW, last_step=STEP).status is TotpStatus.REPLAYED
    )


def test_the_next_step_after_a_used_one_is_accepted() -> None:
    assert totp.check(SECRET, code_at(STEP + 1), now=NOW, last_step=STEP).status is TotpStatus.OK


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes_are_invalid(code: str) -> None:
    assert totp.check(SECRET, code, now=NOW, last_step=None).status is TotpStatus.INVALID


def test_spaces_inside_a_code_are_forgiven() -> None:
    code = code_at(STEP)
    assert (
        totp.check(SECRET, f"{code[:3]} {code[3:]}", now=NOW, last_step=None).status
        is TotpStatus.OK
    )


def test_provisioning_uri_names_issuer_and_account() -> None:
    uri = totp.provisioning_uri(SECRET, account_name="claire@example.fr", issuer="Portail Santé")
    assert uri.startswith("otpauth://totp/Portail%20Sant%C3%A9:claire%40example.fr?")
    assert f"secret={SECRET}" in uri and "issuer=Portail%20Sant%C3%A9" in uri


def test_new_secrets_are_160_bits_of_base32() -> None:
    secret = totp.new_secret()
    assert len(base64.b32decode(secret)) == 20
    assert secret != totp.new_secret()


def test_lower_case_and_unpadded_secrets_are_read_as_authenticator_apps_read_them() -> None:
    secret = pyotp.random_base32(36)  # not a multiple of 8: the padding is implied
    code = pyotp.TOTP(secret).at(NOW)
    assert totp.check(secret.lower(), code, now=NOW, last_step=None).status is TotpStatus.OK
