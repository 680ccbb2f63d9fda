"""`corpus import`: breach files into one breach of the local corpus, in constant memory.

One transaction per import, however many files it reads: a failed import leaves the
corpus as it was. Every folder is walked before anything is written (sources), then the
files are read in turn (loader): lines parsed one by one, summed in batches and written
set-based. Malformed lines are counted and the first few named by file and line, never
fatal. A breach already imported is replaced, added to, or (ImportMode.NEW) refused.
"""

from __future__ import annotations

import datetime as dt
import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth import audit
from auth.breach import formats
from auth.breach.formats import Format
from auth.breach.import_report import ImportReport, SourceReport
from auth.breach.loader import Loader, Progress
from auth.breach.sources import CorpusFile, Source
from auth.breach.store import CorpusWriter
from auth.errors import InvalidInput
from auth.models import Breach, BreachKind, utcnow
from auth.passwords import Hasher

__all__ = ["BreachExists", "ImportMode", "ImportReport", "Importer", "Progress", "Source"]

BATCH = 100_000


class ImportMode(enum.StrEnum):
    NEW = "new"  # the breach must not exist yet
    REPLACE = "replace"  # the breach's earlier import is replaced
    ADD = "add"  # added to the breach's earlier import


class BreachExists(InvalidInput):
    """A second import under a breach's name, without saying to replace or add."""


@dataclass
class Importer:
    session: Session
    hasher: Hasher
    actor: audit.Actor
    batch: int = BATCH
    progress: Progress | None = None

    def run(
        self,
        sources: Source | Sequence[Source],
        kind: BreachKind,
        *,
        breach: str | None = None,
        date: dt.date | None = None,
        fmt: Format | None = None,
        encoding: str | None = None,
        mode: ImportMode = ImportMode.REPLACE,
        now: dt.datetime | None = None,
    ) -> ImportReport:
        """Read every file of `sources` into one breach, in the caller's transaction.

        `encoding` (a codec name) is how plain passwords, e-mails and combos are decoded;
        by default UTF-8, and cp1252 for a line that is not UTF-8. `mode` says what
        becomes of an earlier import under that name: REPLACE by default, as in-process
        callers (the demo) re-import on purpose; the CLI asks for NEW unless told.
        """
        started = time.perf_counter()
        now = now or utcnow()
        sources = [sources] if isinstance(sources, Source) else list(sources)
        name = _breach_name(sources, breach)
        decoding, codec = (
            formats.decoding_for(encoding) if encoding else (formats.UTF8_OR_CP1252, None)
        )
        plan = [(source, source.files()) for source in sources]  # every folder walked first
        _refuse_repeats([f for _, files in plan for f in files])
        record, mode = self._breach(name, kind, date, now, mode)
        report = ImportReport(breach=name, kind=kind, mode=mode)
        writer = CorpusWriter(self.session.connection(), record.id)
        if mode is not ImportMode.ADD:
            writer.clear(
                passwords=kind in (BreachKind.PASSWORDS, BreachKind.COMBOS),
                emails=kind in (BreachKind.EMAILS, BreachKind.COMBOS),
            )
        loader = Loader(
            self.session,
            self.hasher,
            self.actor,
            writer,
            report,
            kind=kind,
            fmt=fmt,
            decoding=decoding,
            codec=codec,
            now=now,
            batch=self.batch,
            progress=self.progress,
        )
        for source, files in plan:
            report.sources.append(SourceReport(path=source.path, files=len(files)))
            for file in files:
                loader.file(file, report.sources[-1])
        loader.flush()
        # Counted once, at the end: each count is a scan over the breach's rows.
        report.password_entries, report.email_entries = writer.entries()
        self._record(record, kind, report, now)
        report.seconds = time.perf_counter() - started
        self._audit(report, now)
        return report

    def _audit(self, report: ImportReport, now: dt.datetime) -> None:
        hidden = ("bad_samples", "cp1252_samples", "seconds")
        details = {k: v for k, v in report.as_dict().items() if k not in hidden}
        event = audit.Event(
            self.actor, audit.Action.CORPUS_IMPORTED, f"breach:{report.breach}", details
        )
        audit.append(self.session, [event], now=now)

    def _breach(
        self, name: str, kind: str, date: dt.date | None, now: dt.datetime, mode: ImportMode
    ) -> tuple[Breach, ImportMode]:
        """The breach's row, and what this import does to it (NEW when there was none)."""
        record = self.session.execute(
            select(Breach).where(Breach.name == name)
        ).scalar_one_or_none()
        if record is None:
            if mode is ImportMode.ADD:
                raise InvalidInput(
                    f"there is no breach {name!r} to add to; import without --add to create it"
                )
            record, mode = Breach(name=name, kind=kind, imported_at=now), ImportMode.NEW
            self.session.add(record)
        elif mode is ImportMode.NEW:
            raise BreachExists(
                f"breach {name!r} already exists ({record.kind}, imported "
                f"{record.imported_at:%Y-%m-%d}, {record.lines_read} lines): pass --replace "
                "to replace that import, or --add to add these files to it; nothing was changed"
            )
        elif mode is ImportMode.ADD and record.kind != kind:
            raise InvalidInput(
                f"breach {name!r} holds {record.kind}, not {kind}: --add keeps one kind per "
                "breach; import under another --breach name"
            )
        if date is not None:
            record.breach_date = date
        self.session.flush()
        return record, mode

    @staticmethod
    def _record(record: Breach, kind: BreachKind, report: ImportReport, now: dt.datetime) -> None:
        record.kind = kind
        if report.mode == ImportMode.ADD:
            record.lines_read += report.lines
            record.lines_bad += report.bad
        else:
            record.lines_read, record.lines_bad = report.lines, report.bad
        record.password_entries = report.password_entries
        record.email_entries = report.email_entries
        record.imported_at = now


def _breach_name(sources: Sequence[Source], breach: str | None) -> str:
    if not sources:
        raise InvalidInput("no file to import")
    if any(s.path == "-" for s in sources) and len(sources) > 1:
        raise InvalidInput("`-` (stdin) must be the only FILE of an import")
    name = (breach or "").strip()
    if name:
        return name
    if len(sources) > 1:
        raise InvalidInput("several FILEs make one breach: name it with --breach NAME")
    return sources[0].default_breach_name()


def _refuse_repeats(files: Sequence[CorpusFile]) -> None:
    """A file given twice (itself and in its folder, or twice by name) would count twice."""
    seen: dict[str, str] = {}
    for f in files:
        if f.path == "-":
            continue
        real = str(Path(f.path).resolve())
        if real in seen:
            raise InvalidInput(
                f"{f.path} is read twice (also as {seen[real]}): its lines would count twice"
            )
        seen[real] = f.path
