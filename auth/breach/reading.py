"""Opening a corpus file: decompressed when it is gzip, bzip2 or xz; refused, with the
command that unpacks it, when it is an archive of files (7z, zip, tar, also inside gzip,
bzip2 or xz); read as lines of bytes with a byte order mark dropped wherever one starts a
line. A UTF-16 or UTF-32 file (a BOM at its start says so) is transcoded to UTF-8 lines."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, cast

from auth.errors import InvalidInput


class Opened:
    """A corpus file open for reading: its lines, and how far into the file they are."""

    def __init__(self, path: str, stream: IO[bytes], raw: IO[bytes] | None) -> None:
        self.path = path
        self.stream = stream  # decompressed, and able to peek
        self.raw = raw  # the file on disk, whose position measures progress; None: stdin
        self.codec = wide_encoding(_peek(stream, 4))
        self._text: io.TextIOWrapper | None = None

    def position(self) -> int | None:
        return None if self.raw is None else self.raw.tell()

    def lines(self, codec: str | None = None) -> Iterator[tuple[int, bytes]]:
        """(line number, bytes without the line ending); `codec` (or the one a BOM names)
        is an encoding whose lines cannot be split as bytes: they arrive as UTF-8."""
        codec = self.codec or codec
        if codec is None:
            return lines(self.stream)
        # surrogatepass: a lone surrogate survives into the UTF-8 bytes, which are then
        # invalid, so that one line is reported as malformed instead of the whole file.
        self._text = io.TextIOWrapper(
            self.stream, encoding=codec, errors="surrogatepass", newline="\n"
        )
        return lines(line.encode("utf-8", "surrogatepass") for line in self._text)

    def close(self) -> None:
        if self._text is not None:
            self._text.detach()  # the streams are closed below, stdin never
        if self.raw is None:
            if self.stream is not sys.stdin.buffer:
                cast(io.BufferedReader, self.stream).detach()
            return
        if self.stream is not self.raw:
            self.stream.close()
        self.raw.close()


@contextmanager
def opened(path: str) -> Iterator[Opened]:
    """`path` open for reading (`-`: stdin); InvalidInput when it cannot be read as lines."""
    if path == "-":
        stdin = sys.stdin.buffer
        # io.BytesIO (a test's stdin) cannot peek: a reader over it can, closed by detaching.
        stream = stdin if hasattr(stdin, "peek") else io.BufferedReader(cast(Any, stdin))
        handle = Opened(path, stream, None)
    else:
        try:
            raw = open(path, "rb")  # closed by Opened.close
        except OSError as exc:
            raise InvalidInput(f"{path}: could not open the file: {exc.strerror}") from exc
        try:
            handle = Opened(path, _decompressed(path, raw), raw)
        except BaseException:
            raw.close()
            raise
    try:
        yield handle
    finally:
        handle.close()


def _decompressed(path: str, raw: IO[bytes]) -> IO[bytes]:
    head = _peek(raw, ARCHIVE_PEEK)
    _refuse_archive(path, head, "")
    stream: IO[bytes] = raw
    if head.startswith(b"\x1f\x8b"):
        stream, packer = cast(IO[bytes], gzip.GzipFile(fileobj=raw)), "gzip"
    elif head.startswith(b"BZh"):
        stream, packer = cast(IO[bytes], bz2.BZ2File(raw)), "bzip2"
    elif head.startswith(b"\xfd7zXZ\x00"):
        stream, packer = cast(IO[bytes], lzma.LZMAFile(raw)), "xz"
    else:
        return stream
    try:
        # A .tar.gz is a tar archive once unpacked: its lines are not a corpus either.
        _refuse_archive(path, _peek(stream, ARCHIVE_PEEK), f" inside {packer}")
    except (OSError, EOFError, lzma.LZMAError) as exc:
        stream.close()
        raise InvalidInput(f"{path}: could not read the file: {exc}; nothing was imported") from exc
    except InvalidInput:
        stream.close()
        raise
    return stream


def _peek(stream: IO[bytes], size: int) -> bytes:
    """Up to `size` bytes from the start, left in the stream (every stream here buffers)."""
    head: bytes = cast(Any, stream).peek(size)
    return head[:size]


def _refuse_archive(path: str, head: bytes, where: str) -> None:
    archive = archive_kind(head)
    if archive is not None:
        kind, unpack = archive
        raise InvalidInput(f"{path} is a {kind} archive{where}: unpack it first ({unpack} {path})")


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


def wide_encoding(head: bytes) -> str | None:
    """The codec a byte order mark at the start of a file names, when its lines cannot be
    read as bytes (UTF-16, UTF-32); None otherwise (a UTF-8 BOM is dropped per line)."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return None


def lines(stream: Iterator[bytes] | IO[bytes]) -> Iterator[tuple[int, bytes]]:
    # A UTF-8 BOM can start any line: HIBP's downloader writes each prefix's block through
    # a fresh UTF-8 writer, so one stands before the first hash of every block.
    for number, line in enumerate(stream, 1):
        if line.startswith(BOM):
            line = line[3:]
        yield number, line.rstrip(b"\r\n")


BOM = b"\xef\xbb\xbf"
