"""Line formats of breach corpora, parsed as pure functions of one line.

Each parser takes the raw bytes of a line (without its line ending) and returns a value,
or raises LineError whose message says what is wrong with it. Plaintext passwords exist
only between a parse and the SHA-1 that follows it.
"""

from __future__ import annotations

import binascii
import enum
import hashlib
import re
from collections.abc import Sequence

from auth.breach.hashing import email_sha1, normalise_email
from auth.errors import InvalidEmail


class LineError(ValueError):
    """One malformed line; the import counts it and goes on."""


class Format(enum.StrEnum):
    SHA1 = "sha1"  # HIBP Pwned Passwords: SHA1:COUNT (or a bare SHA1)
    PREFIX = "prefix"  # the downloader's per-prefix files: SUFFIX:COUNT, prefix in the name
    PLAIN = "plain"  # one password per line
    EMAILS = "emails"  # one e-mail address per line
    COMBOS = "combos"  # email:password, email;password or email<TAB>password
    NTLM = "ntlm"  # HIBP's NTLM hashes (HASH:COUNT, 32 hex digits): recognised, refused


_SHA1_LINE = re.compile(rb"\A([0-9A-Fa-f]{40})(?::(\d{1,12}))?\s*\Z")
_SUFFIX_LINE = re.compile(rb"\A([0-9A-Fa-f]{35}):(\d{1,12})\s*\Z")
_NTLM_LINE = re.compile(rb"\A[0-9A-Fa-f]{32}:\d{1,12}\s*\Z")
_NTLM_SUFFIX_LINE = re.compile(rb"\A[0-9A-Fa-f]{27}:\d{1,12}\s*\Z")
_COMBO_SEPARATORS = re.compile(r"[:;\t]")
# pwned_passwords.count is a 32-bit integer: a larger count is a bad line, not a failed import.
MAX_COUNT = 2**31 - 1


def decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineError(f"not valid UTF-8 (byte {exc.start + 1})") from None


def sha1_count(raw: bytes) -> tuple[bytes, int]:
    # Fast path for the canonical `40HEX:DIGITS` line (nearly every line of HIBP's file),
    # about twice as fast as the regex. It accepts exactly what _SHA1_LINE accepts for that
    # shape: unhexlify takes only hex digits (either case), bytes.isdigit only ASCII 0-9.
    # Anything else (bare SHA1, trailing blanks, errors) takes the regex below.
    if len(raw) > 41 and raw[40] == 58:  # b":"
        tail = raw[41:]
        if len(tail) <= 12 and tail.isdigit():
            try:
                return binascii.unhexlify(raw[:40]), _count(tail)
            except binascii.Error:
                pass
    m = _SHA1_LINE.match(raw)
    if m is None:
        raise LineError("expected SHA1:COUNT (40 hexadecimal characters, a colon, a number)")
    return bytes.fromhex(m.group(1).decode("ascii")), _count(m.group(2) or b"1")


def suffix_count(raw: bytes, prefix: bytes) -> tuple[bytes, int]:
    m = _SUFFIX_LINE.match(raw)
    if m is None:
        raise LineError("expected SUFFIX:COUNT (35 hexadecimal characters, a colon, a number)")
    return bytes.fromhex((prefix + m.group(1)).decode("ascii")), _count(m.group(2))


def _count(raw: bytes) -> int:
    count = int(raw)
    if count > MAX_COUNT:
        raise LineError(f"the count {count} is larger than {MAX_COUNT}")
    return count


def password_digest(raw: bytes) -> bytes:
    """SHA-1 of a plain-password line, as hashing.password_sha1(decode(raw)) computes it.

    Valid UTF-8 is its own UTF-8 encoding, so the bytes are hashed as they are once checked
    (an ASCII line needs no check): this saves a decode and an encode per line.
    """
    if not raw.isascii():
        decode(raw)
    return hashlib.sha1(raw, usedforsecurity=False).digest()


def email_digest(raw: bytes) -> bytes:
    try:
        return email_sha1(normalise_email(decode(raw)))
    except InvalidEmail as exc:
        raise LineError(str(exc)) from None


def combo(raw: bytes) -> tuple[str, str]:
    """Split `email<sep>password` at the first separator; the password is kept verbatim."""
    text = decode(raw)
    m = _COMBO_SEPARATORS.search(text)
    if m is None:
        raise LineError("expected email:password (or ; or tab as separator)")
    password = text[m.end() :]
    if not password:
        raise LineError("the password after the separator is empty")
    try:
        email = normalise_email(text[: m.start()])
    except InvalidEmail:
        raise LineError("the part before the separator is not an e-mail address") from None
    return email, password


def sniff(first_lines: Sequence[bytes], filename: str | None) -> Format:
    """Guess a password file's format from its first lines (and name, for per-prefix files).

    Any hash-shaped line among them decides, so a header line is reported as malformed
    instead of turning a hash file into a list of "passwords".
    """
    for line in first_lines:
        if _SHA1_LINE.match(line):
            return Format.SHA1
        if _SUFFIX_LINE.match(line) and prefix_from_name(filename) is not None:
            return Format.PREFIX
        if _NTLM_LINE.match(line) or _NTLM_SUFFIX_LINE.match(line):
            return Format.NTLM
    return Format.PLAIN


def prefix_from_name(filename: str | None) -> bytes | None:
    """`ABCDE.txt` (the downloader's naming) -> b'ABCDE'."""
    if not filename:
        return None
    stem = filename.rsplit("/", 1)[-1].split(".", 1)[0]
    if re.fullmatch(r"[0-9A-Fa-f]{5}", stem):
        return stem.upper().encode("ascii")
    return None
