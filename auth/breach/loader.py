"""One import's files read in turn, line by line, into batches the CorpusWriter stores.

The format of each file is sniffed from its first lines (or given), and one import reads
one format, so a stray file is refused rather than read as something else. Batches are
shared by the import's files: a folder of a million small per-prefix files is written in
full batches, as one large file is. Combo lists are also checked against account
password hashes, a batch at a time.
"""

from __future__ import annotations

import datetime as dt
import lzma
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice

from sqlalchemy import String, select
from sqlalchemy.orm import Session

from auth import audit
from auth.breach import findings, formats, reading
from auth.breach.formats import Decoding, Format, LineError
from auth.breach.hashing import email_sha1, password_sha1
from auth.breach.import_report import ImportReport, SourceReport
from auth.breach.sources import CorpusFile
from auth.breach.store import CorpusWriter
from auth.db import among
from auth.errors import InvalidInput
from auth.models import Account, BreachKind, FindingKind
from auth.passwords import Hasher

SNIFF_LINES = 5  # a header line or two must not turn a hash file into a password list
COMBO_BATCH = 20_000

DESCRIBED = {
    Format.SHA1: "SHA-1 hashes (SHA1:COUNT)",
    Format.PREFIX: "per-prefix SUFFIX:COUNT lines",
    Format.PLAIN: "plain passwords",
}

Progress = Callable[[int], None]  # called with bytes consumed since the last call


@dataclass
class Tally:
    """Where one file's line counts and samples go."""

    report: ImportReport
    source: SourceReport
    path: str

    def bad(self, line: int, message: str) -> None:
        self.report.bad_line(self.source, self.path, line, message)

    def cp1252(self, line: int) -> None:
        self.report.cp1252_line(self.source, self.path, line)


@dataclass
class Loader:
    """One import's files in turn, into batches shared by all of them."""

    session: Session
    hasher: Hasher
    actor: audit.Actor
    writer: CorpusWriter
    report: ImportReport
    kind: BreachKind
    fmt: Format | None  # None: sniffed from each file's first lines
    decoding: Decoding
    codec: str | None  # --encoding's, when it must transcode the whole stream
    now: dt.datetime
    batch: int
    progress: Progress | None = None
    counts: dict[bytes, int] = field(default_factory=dict)
    emails: set[bytes] = field(default_factory=set)
    pairs: dict[str, set[str]] = field(default_factory=dict)
    first: str = ""  # the first file whose format is known: the others must match it
    prefixes: dict[bytes, str] = field(default_factory=dict)

    def file(self, file: CorpusFile, source: SourceReport) -> None:
        tally = Tally(self.report, source, file.path)
        with reading.opened(file.path) as handle:
            where = [0]

            def tick() -> None:
                here = handle.position()
                if self.progress is not None and here is not None:
                    self.progress(here - where[0])
                    where[0] = here

            try:
                lines = handle.lines(self.codec)
                encoding = handle.codec or self.decoding.name.lower()
                decoding = self.decoding
                if handle.codec is not None:
                    decoding = Decoding("utf-8", None, handle.codec.upper(), transcoded=True)
                if encoding not in source.encodings:
                    source.encodings.append(encoding)
                self._lines(file, lines, decoding, tally, tick)
                tick()
            except UnicodeDecodeError as exc:  # only a whole-stream codec (UTF-16) raises
                raise InvalidInput(
                    f"{file.path}: could not read the file as {exc.encoding.upper()} "
                    f"({exc.reason}); nothing was imported"
                ) from exc
            except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
                # A truncated archive or an unreadable file: the caller's transaction rolls back.
                raise InvalidInput(
                    f"{file.path}: could not read the file: {exc}; nothing was imported"
                ) from exc

    def _lines(
        self,
        file: CorpusFile,
        lines: Iterator[tuple[int, bytes]],
        decoding: Decoding,
        tally: Tally,
        tick: Callable[[], None],
    ) -> None:
        if self.kind is BreachKind.EMAILS:
            self._chosen(file, Format.EMAILS, tally.source)
            self._emails(self._texts(lines, decoding, tally), tally, tick)
            return
        if self.kind is BreachKind.COMBOS:
            self._chosen(file, Format.COMBOS, tally.source)
            self._combos(self._texts(lines, decoding, tally), tally, tick)
            return
        head = list(islice(lines, SNIFF_LINES))
        sniffed = self.fmt or formats.sniff([line for _, line in head if line])
        chosen = sniffed or Format(self.report.format or Format.PLAIN)
        parse = None if chosen is Format.PLAIN else self._parser(file, chosen)
        if sniffed is not None:
            self._chosen(file, chosen, tally.source)
        if parse is None:
            self._plain(chain(head, lines), decoding, tally, tick)
        else:
            self._hashes(chain(head, lines), parse, tally, tick)

    def _chosen(self, file: CorpusFile, fmt: Format, source: SourceReport) -> None:
        if not self.report.format:
            self.report.format, self.first = fmt, file.path
        elif fmt != self.report.format:
            raise InvalidInput(
                f"{file.path} reads as {DESCRIBED[fmt]}, but {self.first} as "
                f"{DESCRIBED[Format(self.report.format)]}: one import reads one format. "
                "Import them separately (then --add), or name the format with --format"
            )
        source.format = fmt

    def _parser(self, file: CorpusFile, fmt: Format) -> Callable[[bytes], tuple[bytes, int]]:
        where = "stdin" if file.path == "-" else file.path
        if fmt is Format.NTLM:
            raise InvalidInput(
                f"{where}: these are NTLM hashes (HASH:COUNT, 32 hexadecimal digits, as the "
                "downloader's -n writes them); breachguard stores SHA-1: download the SHA-1 "
                "corpus instead"
            )
        if fmt is not Format.PREFIX:
            return formats.sha1_count
        prefix = file.prefix
        if prefix is None:
            raise InvalidInput(
                f"{where}: SUFFIX:COUNT lines (35 hexadecimal digits), and a suffix without "
                "its prefix cannot be stored: name the file after its 5-hex prefix "
                "(ABCDE.txt, as HIBP's downloader does), or import the downloader's single file"
            )
        other = self.prefixes.setdefault(prefix, file.path)
        if other != file.path:
            raise InvalidInput(
                f"{file.path}: prefix {prefix.decode()} again (also {other}): its hashes "
                "would be counted twice; keep one of the two files"
            )
        return lambda line: formats.suffix_count(line, prefix)

    def _hashes(
        self,
        lines: Iterator[tuple[int, bytes]],
        parse: Callable[[bytes], tuple[bytes, int]],
        tally: Tally,
        tick: Callable[[], None],
    ) -> None:
        # This loop runs once per line of files of up to a billion lines, so it keeps to
        # locals: a plain dict with a bound .get (not Counter's __missing__ machinery), the
        # line count taken from the line number once at the end instead of per line.
        counts = self.counts
        get = counts.get
        batch = self.batch
        source = tally.source
        number = 0
        for number, line in lines:
            if not line:
                source.blank += 1
                continue
            try:
                digest, count = parse(line)
            except LineError as exc:
                tally.bad(number, str(exc))
                continue
            counts[digest] = get(digest, 0) + count
            if len(counts) >= batch:
                self.writer.add_passwords(counts)
                counts.clear()
                tick()
        source.lines += number

    def _plain(
        self,
        lines: Iterator[tuple[int, bytes]],
        decoding: Decoding,
        tally: Tally,
        tick: Callable[[], None],
    ) -> None:
        counts = self.counts
        get = counts.get
        batch = self.batch
        source = tally.source
        digest_of = formats.password_digest
        number = 0
        for number, line in lines:
            if not line:
                source.blank += 1
                continue
            try:
                digest, fell_back = digest_of(line, decoding)
            except LineError as exc:
                tally.bad(number, str(exc))
                continue
            if fell_back:
                tally.cp1252(number)
            counts[digest] = get(digest, 0) + 1
            if len(counts) >= batch:
                self.writer.add_passwords(counts)
                counts.clear()
                tick()
        source.lines += number

    @staticmethod
    def _texts(
        lines: Iterator[tuple[int, bytes]], decoding: Decoding, tally: Tally
    ) -> Iterator[tuple[int, str]]:
        """The decodable, non-blank lines of an e-mail or combo list, as text."""
        source = tally.source
        for number, line in lines:
            source.lines += 1
            if not line.strip():
                source.blank += 1
                continue
            try:
                text, fell_back = decoding.text(line)
            except LineError as exc:
                tally.bad(number, str(exc))
                continue
            if fell_back:
                tally.cp1252(number)
            yield number, text

    def _emails(
        self, texts: Iterator[tuple[int, str]], tally: Tally, tick: Callable[[], None]
    ) -> None:
        for number, text in texts:
            try:
                self.emails.add(formats.email_digest(text))
            except LineError as exc:
                tally.bad(number, str(exc))
                continue
            if len(self.emails) >= self.batch:
                self.writer.add_emails(self.emails)
                self.emails.clear()
                tick()

    def _combos(
        self, texts: Iterator[tuple[int, str]], tally: Tally, tick: Callable[[], None]
    ) -> None:
        size = sum(len(p) for p in self.pairs.values())
        for number, text in texts:
            try:
                email, password = formats.combo(text)
            except LineError as exc:
                tally.bad(number, str(exc))
                continue
            self.pairs.setdefault(email, set()).add(password)
            size += 1
            if size >= min(self.batch, COMBO_BATCH):
                self._combo_batch()
                size = 0
                tick()

    def flush(self) -> None:
        self.writer.add_passwords(self.counts)
        self.counts.clear()
        self.writer.add_emails(self.emails)
        self.emails.clear()
        self._combo_batch()
        self.writer.finish()

    def _combo_batch(self) -> None:
        """Store the digests, then try each leaked password on the account it names, if any."""
        pairs, self.pairs = self.pairs, {}
        if not pairs:
            return
        counts: dict[bytes, int] = {}
        for passwords in pairs.values():
            for p in passwords:
                digest = password_sha1(p)
                counts[digest] = counts.get(digest, 0) + 1
        self.writer.add_passwords(counts)
        self.writer.add_emails(email_sha1(e) for e in pairs)
        session, hasher = self.session, self.hasher
        accounts = session.execute(
            select(Account.id, Account.email, Account.password_hash).where(
                among(Account.email, list(pairs), String), Account.password_hash.is_not(None)
            )
        ).all()
        hits = [
            account_id
            for account_id, email, stored in accounts
            if any(hasher.verify(stored, p).ok for p in pairs[email])
        ]
        if hits:
            self.report.valid_credentials += findings.record(
                session,
                [(a, FindingKind.VALID_CREDENTIAL, "local", self.report.breach) for a in hits],
                actor=self.actor,
                now=self.now,
            )
