"""Opening a corpus file: decompressed when it is gzip, bzip2 or xz; refused, with the
command that unpacks it, when it is an archive of files (7z, zip, tar); read as lines with
a byte order mark dropped wherever one starts a line."""

from __future__ import annotations

import bz2
import gzip
import lzma
import sys
from collections.abc import Iterator
from typing import IO, cast

from auth.errors import InvalidInput


def open_binary(path: str) -> tuple[IO[bytes], IO[bytes]]:
    """(decompressed stream, raw stream whose position measures progress)."""
    if path == "-":
        return sys.stdin.buffer, sys.stdin.buffer
    raw = open(path, "rb")  # closed by the caller
    head = raw.peek(ARCHIVE_PEEK)[:ARCHIVE_PEEK] if hasattr(raw, "peek") else b""
    archive = archive_kind(head)
    if archive is not None:
        raw.close()
        kind, unpack = archive
        raise InvalidInput(f"{path} is a {kind} archive: unpack it first ({unpack} {path})")
    magic = head[:6]
    stream: IO[bytes] = raw
    if magic.startswith(b"\x1f\x8b"):
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw))
    elif magic.startswith(b"BZh"):
        stream = cast(IO[bytes], bz2.BZ2File(raw))
    elif magic.startswith(b"\xfd7zXZ\x00"):
        stream = cast(IO[bytes], lzma.LZMAFile(raw))
    return stream, raw


ARCHIVE_PEEK = 262  # a tar header's magic ends at byte 262


def archive_kind(head: bytes) -> tuple[str, str] | None:
    """(what it is, the command that unpacks it) for archives that hold files, not lines."""
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z", "7z x"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip", "unzip"
    if head[257:262] == b"ustar":
        return "tar", "tar xf"
    return None


def lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    # A UTF-8 BOM can start any line: HIBP's downloader writes each prefix's block through
    # a fresh UTF-8 writer, so one stands before the first hash of every block.
    for number, line in enumerate(stream, 1):
        if line.startswith(BOM):
            line = line[3:]
        yield number, line.rstrip(b"\r\n")


BOM = b"\xef\xbb\xbf"
