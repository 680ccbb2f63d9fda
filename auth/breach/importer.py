"""`corpus import`: stream a breach file into the local corpus, in constant memory.

One transaction per file: a failed import leaves the corpus as it was. Lines are read as
bytes, parsed one by one, summed per batch in a dict (bounded by the batch size) and
written set-based. Malformed lines are counted and their numbers kept (the first few),
never fatal. Combo lists are also checked against account password hashes at import time.
"""

from __future__ import annotations

import datetime as dt
import lzma
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth import audit
from auth.breach import findings, formats, reading
from auth.breach.formats import Format, LineError
from auth.breach.hashing import password_sha1
from auth.breach.store import CorpusWriter
from auth.errors import InvalidInput
from auth.models import Account, Breach, BreachKind, FindingKind, utcnow
from auth.passwords import Hasher

BATCH = 100_000
SNIFF_LINES = 5  # a header line or two must not turn a hash file into a password list
SAMPLES = 10
COMBO_BATCH = 20_000


@dataclass
class ImportReport:
    breach: str
    kind: str
    format: str = ""
    lines: int = 0
    blank: int = 0
    bad: int = 0
    bad_samples: list[tuple[int, str]] = field(default_factory=list)
    password_entries: int = 0
    email_entries: int = 0
    valid_credentials: int = 0
    seconds: float = 0.0

    def bad_line(self, line: int, message: str) -> None:
        self.bad += 1
        if len(self.bad_samples) < SAMPLES:
            self.bad_samples.append((line, message))

    def as_dict(self) -> dict[str, Any]:
        return {
            "breach": self.breach,
            "kind": self.kind,
            "format": self.format,
            "lines": self.lines,
            "blank": self.blank,
            "bad": self.bad,
            "bad_samples": [{"line": n, "error": m} for n, m in self.bad_samples],
            "password_entries": self.password_entries,
            "email_entries": self.email_entries,
            "valid_credentials": self.valid_credentials,
            "seconds": round(self.seconds, 3),
        }


class Source:
    """A corpus file (plain, .gz, .bz2, .xz), stdin (`-`), or a folder of per-prefix files."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = "-" if path == "-" else Path(path).name
        if path != "-" and not Path(path).exists():
            raise InvalidInput(f"{path}: no such file or folder")

    @property
    def is_dir(self) -> bool:
        return self.path != "-" and Path(self.path).is_dir()

    def files(self) -> list[Path]:
        if not self.is_dir:
            return [Path(self.path)]
        found = sorted(p for p in Path(self.path).iterdir() if formats.prefix_from_name(p.name))
        if not found:
            raise InvalidInput(f"{self.path}: no per-prefix files (named like ABCDE.txt) inside")
        return found

    def total_bytes(self) -> int | None:
        if self.path == "-":
            return None
        return sum(p.stat().st_size for p in self.files())


Progress = Callable[[int], None]  # called with bytes consumed since the last call


@dataclass
class Importer:
    session: Session
    hasher: Hasher
    actor: audit.Actor
    batch: int = BATCH
    progress: Progress | None = None

    def run(
        self,
        source: Source,
        kind: BreachKind,
        *,
        breach: str | None = None,
        date: dt.date | None = None,
        fmt: Format | None = None,
        now: dt.datetime | None = None,
    ) -> ImportReport:
        started = time.perf_counter()
        now = now or utcnow()
        name = (breach or "").strip() or _default_name(source)
        report = ImportReport(breach=name, kind=kind)
        record = self._breach(name, kind, date, now)
        writer = CorpusWriter(self.session.connection(), record.id)
        writer.clear(
            passwords=kind in (BreachKind.PASSWORDS, BreachKind.COMBOS),
            emails=kind in (BreachKind.EMAILS, BreachKind.COMBOS),
        )
        for path in source.files():
            self._file(str(path) if source.path != "-" else "-", kind, fmt, writer, report, now)
        # Counted once, at the end: each count is a scan over the breach's rows.
        report.password_entries, report.email_entries = writer.entries()
        record.kind = kind
        record.lines_read, record.lines_bad = report.lines, report.bad
        record.password_entries = report.password_entries
        record.email_entries = report.email_entries
        record.imported_at = now
        report.seconds = time.perf_counter() - started
        audit.append(
            self.session,
            [
                audit.Event(
                    self.actor,
                    audit.Action.CORPUS_IMPORTED,
                    f"breach:{name}",
                    {
                        k: v
                        for k, v in report.as_dict().items()
                        if k not in ("bad_samples", "seconds")
                    },
                )
            ],
            now=now,
        )
        return report

    def _breach(self, name: str, kind: str, date: dt.date | None, now: dt.datetime) -> Breach:
        record = self.session.execute(
            select(Breach).where(Breach.name == name)
        ).scalar_one_or_none()
        if record is None:
            record = Breach(name=name, kind=kind, imported_at=now)
            self.session.add(record)
        if date is not None:
            record.breach_date = date
        self.session.flush()
        return record

    def _file(
        self,
        path: str,
        kind: BreachKind,
        fmt: Format | None,
        writer: CorpusWriter,
        report: ImportReport,
        now: dt.datetime,
    ) -> None:
        try:
            stream, raw = reading.open_binary(path)
        except OSError as exc:
            raise InvalidInput(f"{path}: could not open the file: {exc.strerror}") from exc
        try:
            position = [0]

            def tick() -> None:
                if self.progress is not None and raw is not sys.stdin.buffer:
                    here = raw.tell()
                    self.progress(here - position[0])
                    position[0] = here

            lines = reading.lines(stream)
            if kind is BreachKind.EMAILS:
                report.format = Format.EMAILS
                self._emails(lines, writer, report, tick)
            elif kind is BreachKind.COMBOS:
                report.format = Format.COMBOS
                self._combos(lines, writer, report, tick, now)
            else:
                self._passwords(lines, path, fmt, writer, report, tick)
            tick()
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            # A truncated archive or an unreadable file: the caller's transaction rolls back.
            raise InvalidInput(
                f"{path}: could not read the file: {exc}; nothing was imported"
            ) from exc
        finally:
            if stream is not raw:
                stream.close()
            if raw is not sys.stdin.buffer:
                raw.close()

    def _passwords(
        self,
        lines: Iterator[tuple[int, bytes]],
        path: str,
        fmt: Format | None,
        writer: CorpusWriter,
        report: ImportReport,
        tick: Callable[[], None],
    ) -> None:
        # This loop runs once per line of files of up to a billion lines, so it keeps to
        # locals: a plain dict with a bound .get (not Counter's __missing__ machinery), the
        # line count taken from the line number once at the end instead of per line.
        counts: dict[bytes, int] = {}
        get = counts.get
        batch = self.batch
        head = list(islice(lines, SNIFF_LINES))
        chosen = fmt or formats.sniff([line for _, line in head if line], path)
        report.format = report.format or chosen
        parse = _password_parser(chosen, path)
        number = 0
        for number, line in chain(head, lines):
            if not line:
                report.blank += 1
                continue
            try:
                digest, count = parse(line)
            except LineError as exc:
                report.bad_line(number, str(exc))
                continue
            counts[digest] = get(digest, 0) + count
            if len(counts) >= batch:
                writer.add_passwords(counts)
                counts.clear()
                tick()
        report.lines += number
        writer.add_passwords(counts)

    def _emails(
        self,
        lines: Iterator[tuple[int, bytes]],
        writer: CorpusWriter,
        report: ImportReport,
        tick: Callable[[], None],
    ) -> None:
        digests: set[bytes] = set()
        for number, line in lines:
            report.lines += 1
            if not line.strip():
                report.blank += 1
                continue
            try:
                digests.add(formats.email_digest(line))
            except LineError as exc:
                report.bad_line(number, str(exc))
                continue
            if len(digests) >= self.batch:
                writer.add_emails(digests)
                digests.clear()
                tick()
        writer.add_emails(digests)

    def _combos(
        self,
        lines: Iterator[tuple[int, bytes]],
        writer: CorpusWriter,
        report: ImportReport,
        tick: Callable[[], None],
        now: dt.datetime,
    ) -> None:
        pairs: dict[str, set[str]] = {}
        size = 0
        for number, line in lines:
            report.lines += 1
            if not line.strip():
                report.blank += 1
                continue
            try:
                email, password = formats.combo(line)
            except LineError as exc:
                report.bad_line(number, str(exc))
                continue
            pairs.setdefault(email, set()).add(password)
            size += 1
            if size >= min(self.batch, COMBO_BATCH):
                self._combo_batch(pairs, writer, report, now)
                pairs, size = {}, 0
                tick()
        self._combo_batch(pairs, writer, report, now)

    def _combo_batch(
        self,
        pairs: dict[str, set[str]],
        writer: CorpusWriter,
        report: ImportReport,
        now: dt.datetime,
    ) -> None:
        """Store the digests, then try each leaked password on the account it names, if any."""
        from auth.breach.hashing import email_sha1

        if not pairs:
            return
        counts: Counter[bytes] = Counter()
        for passwords in pairs.values():
            counts.update(password_sha1(p) for p in passwords)
        writer.add_passwords(counts)
        writer.add_emails(email_sha1(e) for e in pairs)
        accounts = self.session.execute(
            select(Account.id, Account.email, Account.password_hash).where(
                Account.email.in_(list(pairs)), Account.password_hash.is_not(None)
            )
        ).all()
        hits = [
            account_id
            for account_id, email, stored in accounts
            if any(self.hasher.verify(stored, p).ok for p in pairs[email])
        ]
        if hits:
            report.valid_credentials += findings.record(
                self.session,
                [(a, FindingKind.VALID_CREDENTIAL, "local", report.breach) for a in hits],
                actor=self.actor,
                now=now,
            )


def _password_parser(fmt: Format, path: str) -> Callable[[bytes], tuple[bytes, int]]:
    if fmt is Format.NTLM:
        raise InvalidInput(
            f"{path}: these are NTLM hashes (HASH:COUNT, 32 hexadecimal digits, as the "
            "downloader's -n writes them); breachguard stores SHA-1: download the SHA-1 "
            "corpus instead"
        )
    if fmt is Format.SHA1:
        return formats.sha1_count
    if fmt is Format.PREFIX:
        prefix = formats.prefix_from_name(path)
        if prefix is None:
            raise InvalidInput(
                f"{path}: per-prefix files must be named after their prefix (ABCDE.txt)"
            )
        return lambda line: formats.suffix_count(line, prefix)
    if fmt is Format.PLAIN:
        return lambda line: (formats.password_digest(line), 1)
    raise InvalidInput(f"format {fmt} is not a password format")


def _default_name(source: Source) -> str:
    if source.path == "-":
        raise InvalidInput("--breach NAME is required when reading from stdin")
    name = source.name
    for ext in (".gz", ".bz2", ".xz", ".txt", ".csv"):
        name = name.removesuffix(ext)
    return name
