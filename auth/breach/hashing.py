"""HIBP's digest conventions, and e-mail normalisation, as pure functions.

Pwned Passwords: uppercase hex SHA-1 of the UTF-8 password; ranges are the first
5 hex characters. E-mail range search: SHA-1 of the normalised address, 6-character prefix.
https://haveibeenpwned.com/API/v3#PwnedPasswords
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from auth.errors import InvalidEmail

PASSWORD_PREFIX_LEN = 5
EMAIL_PREFIX_LEN = 6
_HEX = re.compile(r"\A[0-9A-Fa-f]+\Z")
# Deliberately permissive local part (RFC 5322 allows much); strict on the shape: one @,
# a dotted domain of letters, digits and hyphens (IDNs arrive here already NFKC-folded).
_EMAIL = re.compile(
    # no control character in the local part: PostgreSQL cannot even look a NUL up (a 500)
    r"\A[^@\s\"<>(),;:\\\[\]\x00-\x1f\x7f]{1,64}@(?=.{1,253}\Z)"
    r"([^\W_]([\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}\Z"
)


def normalise_email(raw: str) -> str:
    """Trim, NFKC-fold and lower-case an address; raise InvalidEmail when it is not one."""
    email = unicodedata.normalize("NFKC", raw).strip().lower()
    if not _EMAIL.match(email):
        shown = raw if len(raw) <= 80 else raw[:77] + "..."
        raise InvalidEmail(f"not an e-mail address: {shown!r}")
    return email


def sha1_bytes(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).digest()


def password_sha1(password: str) -> bytes:
    return sha1_bytes(password)


def email_sha1(normalised_email: str) -> bytes:
    return sha1_bytes(normalised_email)


def sha1_hex(digest: bytes) -> str:
    return digest.hex().upper()


def parse_prefix(prefix: str, length: int) -> str:
    """Validate a k-anonymity prefix; returns it upper-cased."""
    if len(prefix) != length or not _HEX.match(prefix):
        raise ValueError(f"the prefix must be {length} hexadecimal characters, got {prefix!r}")
    return prefix.upper()


def prefix_bounds(prefix: str) -> tuple[bytes, bytes]:
    """The [low, high) range of 20-byte digests that start with a hex prefix.

    For the last prefix (FFFFF) high is 21 bytes of 0xFF: byte strings compare as memcmp
    then length, so every 20-byte digest sorts below it.
    """
    bits = 4 * len(prefix)
    value = int(prefix, 16)
    low = (value << (160 - bits)).to_bytes(20, "big")
    if value + 1 == 1 << bits:
        return low, b"\xff" * 21
    high = ((value + 1) << (160 - bits)).to_bytes(20, "big")
    return low, high
