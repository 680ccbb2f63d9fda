"""Line formats of breach corpora, parsed as pure functions of one line.

Each parser takes one line (without its line ending) and returns a value, or raises
LineError whose message says what is wrong with it. Hash lines are parsed as bytes; plain
passwords, e-mails and combos become text through a Decoding first. Plaintext passwords
exist only between a parse and the SHA-1 that follows it.
"""

from __future__ import annotations

import binascii
import codecs
import enum
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from auth.breach.hashing import email_sha1, normalise_email
from auth.errors import InvalidEmail, InvalidInput


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


@dataclass(frozen=True)
class Decoding:
    """How the bytes of a plain-password, e-mail or combo line become text.

    By default a line is UTF-8, and one that is not is read as cp1252 (the Windows code
    page most leaked lists were written in) rather than dropped; the caller counts those.
    Hash lines are ASCII and never go through here.
    """

    encoding: str = "utf-8"
    fallback: str | None = "cp1252"
    name: str = "UTF-8"  # what the lines are, in messages
    transcoded: bool = False  # lines re-encoded from UTF-16/32: a byte offset means nothing

    def text(self, raw: bytes) -> tuple[str, bool]:
        """(the line's text, whether it was read with the fallback)."""
        try:
            return raw.decode(self.encoding), False
        except UnicodeDecodeError as exc:
            if self.fallback is None:
                where = "" if self.transcoded else f" (byte {exc.start + 1})"
                raise LineError(f"not valid {self.name}{where}") from None
        try:
            return raw.decode(self.fallback), True
        except UnicodeDecodeError as exc:
            raise LineError(f"neither UTF-8 nor {self.fallback} (byte {exc.start + 1})") from None

    @property
    def is_utf8(self) -> bool:
        return self.encoding == "utf-8"


UTF8_OR_CP1252 = Decoding()


def decoding_for(name: str) -> tuple[Decoding, str | None]:
    """`--encoding NAME` -> (how each line is decoded, the codec the whole stream must be
    transcoded from first, or None when the encoding keeps ASCII bytes as they are)."""
    try:
        codec = codecs.lookup(name).name
        "A".encode(codec)  # LookupError for codecs that are not text encodings (base64)
    except LookupError:
        raise InvalidInput(
            f"--encoding {name}: not a text encoding Python knows (try utf-8, cp1252, latin-1)"
        ) from None
    if ascii_compatible(codec):
        return Decoding(codec, None, name.upper()), None
    return Decoding("utf-8", None, name.upper(), transcoded=True), codec


def ascii_compatible(codec: str) -> bool:
    """Whether every ASCII byte means its ASCII character: then a line can be split on
    b"\\n" and decoded alone, and an ASCII line is its own UTF-8."""
    ascii = bytes(range(128))
    try:
        return ascii.decode(codec) == ascii.decode("ascii")
    except UnicodeDecodeError:
        return False


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
    # The same fast path as sha1_count's, for `35HEX:DIGITS` (every line of a range file);
    # `prefix` comes from a file name already checked to be 5 hex digits.
    if len(raw) > 36 and raw[35] == 58:  # b":"
        tail = raw[36:]
        if len(tail) <= 12 and tail.isdigit():
            try:
                return binascii.unhexlify(prefix + raw[:35]), _count(tail)
            except binascii.Error:
                pass
    m = _SUFFIX_LINE.match(raw)
    if m is None:
        raise LineError("expected SUFFIX:COUNT (35 hexadecimal characters, a colon, a number)")
    return bytes.fromhex((prefix + m.group(1)).decode("ascii")), _count(m.group(2))


def _count(raw: bytes) -> int:
    count = int(raw)
    if count > MAX_COUNT:
        raise LineError(f"the count {count} is larger than {MAX_COUNT}")
    return count


def password_digest(raw: bytes, decoding: Decoding = UTF8_OR_CP1252) -> tuple[bytes, bool]:
    """(SHA-1 of a plain-password line's UTF-8 text, whether it was read with the fallback).

    An ASCII line, and valid UTF-8, is its own UTF-8 encoding: those bytes are hashed as
    they are, which saves a decode and an encode per line.
    """
    if not raw.isascii():
        text, fell_back = decoding.text(raw)
        if fell_back or not decoding.is_utf8:
            return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).digest(), fell_back
    return hashlib.sha1(raw, usedforsecurity=False).digest(), False


def email_digest(text: str) -> bytes:
    try:
        return email_sha1(normalise_email(text))
    except InvalidEmail as exc:
        raise LineError(str(exc)) from None


def combo(text: str) -> tuple[str, str]:
    """Split `email<sep>password` at the first separator; the password is kept verbatim."""
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


def sniff(first_lines: Sequence[bytes]) -> Format | None:
    """Guess a password file's format from its first non-blank lines (None: there are none).

    Any hash-shaped line among them decides, so a header line is reported as malformed
    instead of turning a hash file into a list of "passwords". The content decides alone:
    a per-prefix file is PREFIX whatever its name, so one that lost its name is refused
    (its prefix is unknown) instead of being read as passwords.
    """
    for line in first_lines:
        if _SHA1_LINE.match(line):
            return Format.SHA1
        if _SUFFIX_LINE.match(line):
            return Format.PREFIX
        if _NTLM_LINE.match(line) or _NTLM_SUFFIX_LINE.match(line):
            return Format.NTLM
    return Format.PLAIN if first_lines else None


_PREFIX_NAME = re.compile(r"[0-9A-Fa-f]{5}")


def prefix_from_name(filename: str | None) -> bytes | None:
    """`ABCDE.txt`, `abcde`, `ABCDE.txt.gz` (the downloader's naming) -> b'ABCDE'."""
    if not filename:
        return None
    stem = filename.rsplit("/", 1)[-1].split(".", 1)[0]
    if _PREFIX_NAME.fullmatch(stem):
        return stem.upper().encode("ascii")
    return None
