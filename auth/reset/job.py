"""`breachguard reset` as a recorded, resumable job, in constant memory.

The same input (targets and reason) always finds the same job, so running the command
again — after success, Ctrl-C or kill -9 — continues it: every batch is its own committed
transaction, and accounts a batch already reset are skipped by the unique reset key.
Targets are read, resolved and applied a batch at a time, and outcomes go to a sink
(the terminal, a report file) as they happen, so 50,000 accounts cost what 50 do.
A batch that fails is retried account by account, so one bad account does not stop the rest.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import datetime as dt
import hashlib
import json
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy import String, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from auth import audit
from auth.breach.hashing import normalise_email
from auth.bulk import among
from auth.db import Database
from auth.errors import InvalidInput
from auth.models import Account, Finding, FindingStatus, JobStatus, ResetJob, utcnow
from auth.reset import forced
from auth.reset.forced import Outcome, Plan, Target

log = logging.getLogger(__name__)
# Batches applied at once on PostgreSQL, each in its own transaction: while the server
# works on one, the other's rows are built, and the server's work is spread over two
# backends. They touch disjoint accounts (a duplicate waits on the row lock, then finds
# the account reset); only the audit append is taken in turn, on the chain's head row,
# last in each batch. SQLite has one writer: one batch at a time.
PARALLEL_BATCHES = 2
Row = tuple[str, "int | None", Outcome, str]  # e-mail, account id, outcome, detail


@dataclass
class Batch:
    items: list[Target]
    emails: dict[int, str]  # account id -> e-mail, for the outcome rows
    unknown: list[str] = field(default_factory=list)


class Source(Protocol):
    """Where targets come from; read in batches so no run holds them all."""

    label: str
    by_finding: bool  # reset once per finding (a scan), rather than once per job

    def fingerprint(self, session: Session, reason: str) -> str: ...

    def total(self) -> int | None: ...

    def batches(self, session_factory: Callable[[], Session], size: int) -> Iterator[Batch]: ...


def _resolve(session: Session, emails: Sequence[str]) -> Batch:
    # `= ANY(array)` on PostgreSQL: one parameter, not one bound (and adapted) per address.
    ids = dict(
        session.execute(
            select(Account.email, Account.id).where(among(session, Account.email, emails, String))
        ).all()
    )
    return Batch(
        [Target(ids[e]) for e in emails if e in ids],
        {v: k for k, v in ids.items()},
        [e for e in emails if e not in ids],
    )


def _email_cells(stream: IO[str]) -> Iterator[tuple[int, str]]:
    """(line number, the address-like cell): one address per line, or a CSV with an
    `email` column (or the first cell holding an @)."""
    column: int | None = None
    for number, row in enumerate(csv.reader(stream), 1):
        if len(row) == 1 and column in (None, 0):  # the common case: one address per line
            cell = row[0].strip()
            if number == 1 and cell.lower() == "email":
                column = 0
            elif cell:
                yield number, cell
            continue
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        lowered = [c.lower() for c in cells]
        if number == 1 and "email" in lowered:
            column = lowered.index("email")
            continue
        candidates = [cells[column]] if column is not None and column < len(cells) else cells
        yield number, next((c for c in candidates if "@" in c), candidates[0] if candidates else "")


class EmailFile:
    """`--emails FILE`: checked whole first (a bad line changes nothing), then streamed."""

    by_finding = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = f"emails {path.name}"
        self._count = 0
        self._fingerprints: dict[tuple[str, int, int], str] = {}

    def _open(self) -> IO[str]:
        return self.path.open(encoding="utf-8-sig", newline="")

    def validate(self, reason: str | None = None) -> list[tuple[int, str]]:
        """Bad lines as (number, message); counts the good ones. Given the job's reason, the
        same pass computes the fingerprint (a file of 1e5 lines is read once, not twice,
        before the job starts)."""
        bad: list[tuple[int, str]] = []
        self._count = 0
        key = self._key(reason or "")
        h = self._hash(reason or "")
        with self._open() as stream:
            for number, cell in _email_cells(stream):
                try:
                    h.update(normalise_email(cell).encode() + b"\x00")
                    self._count += 1
                except InvalidInput as exc:
                    bad.append((number, str(exc)))
        if reason is not None and not bad:
            self._fingerprints[key] = h.hexdigest()
        return bad

    def fingerprint(self, session: Session, reason: str) -> str:
        # Computed by validate() already, unless the file changed since.
        key = self._key(reason)
        if key not in self._fingerprints:
            h = self._hash(reason)
            with self._open() as stream:
                for _, cell in _email_cells(stream):
                    h.update(normalise_email(cell).encode() + b"\x00")
            self._fingerprints[key] = h.hexdigest()
        return self._fingerprints[key]

    def _key(self, reason: str) -> tuple[str, int, int]:
        stat = self.path.stat()
        return (reason, stat.st_size, stat.st_mtime_ns)

    @staticmethod
    def _hash(reason: str) -> Any:
        return hashlib.sha256(b"emails\x00" + reason.encode())

    def total(self) -> int | None:
        return self._count

    def batches(self, session_factory: Callable[[], Session], size: int) -> Iterator[Batch]:
        with self._open() as stream:
            chunk: list[str] = []
            for _, cell in _email_cells(stream):
                chunk.append(normalise_email(cell))
                if len(chunk) >= size:
                    yield self._batch(session_factory, chunk)
                    chunk = []
            if chunk:
                yield self._batch(session_factory, chunk)

    @staticmethod
    def _batch(session_factory: Callable[[], Session], chunk: list[str]) -> Batch:
        with session_factory() as session:
            return _resolve(session, list(dict.fromkeys(chunk)))


class EmailList:
    """A list of addresses (the API); normalised at once, naming the first bad one."""

    by_finding = False

    def __init__(self, raw: Iterable[str], label: str = "api emails") -> None:
        self.label = label
        self.emails: list[str] = []
        for i, value in enumerate(raw):
            try:
                self.emails.append(normalise_email(value))
            except InvalidInput as exc:
                raise InvalidInput(f"emails[{i}]: {exc}") from None
        self.emails = list(dict.fromkeys(self.emails))

    def fingerprint(self, session: Session, reason: str) -> str:
        h = hashlib.sha256(b"emails\x00" + reason.encode())
        for e in self.emails:
            h.update(e.encode() + b"\x00")
        return h.hexdigest()

    def total(self) -> int | None:
        return len(self.emails)

    def batches(self, session_factory: Callable[[], Session], size: int) -> Iterator[Batch]:
        for start in range(0, len(self.emails), size):
            with session_factory() as session:
                yield _resolve(session, self.emails[start : start + size])


class OneAccount:
    by_finding = False

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self.label = f"account {account_id}"

    def fingerprint(self, session: Session, reason: str) -> str:
        email = session.execute(select(Account.email).where(Account.id == self.account_id)).scalar()
        if email is None:
            raise InvalidInput(f"--account: no account with id {self.account_id}")
        return hashlib.sha256(f"account\x00{reason}\x00{self.account_id}".encode()).hexdigest()

    def total(self) -> int | None:
        return 1

    def batches(self, session_factory: Callable[[], Session], size: int) -> Iterator[Batch]:
        with session_factory() as session:
            email = session.execute(
                select(Account.email).where(Account.id == self.account_id)
            ).scalar_one()
        yield Batch([Target(self.account_id)], {self.account_id: email})


class FromScan:
    """Open findings no reset has acted on yet, a batch of accounts at a time (keyset paging)."""

    by_finding = True

    def __init__(self, kinds: Sequence[str] = ()) -> None:
        self.kinds = list(kinds)
        self.label = "from-scan" + (f" ({', '.join(self.kinds)})" if self.kinds else "")
        self._total: int | None = None

    def _where(self) -> list[object]:
        conds: list[object] = [Finding.status == FindingStatus.OPEN, Finding.reset_id.is_(None)]
        if self.kinds:
            conds.append(Finding.kind.in_(self.kinds))
        return conds

    def fingerprint(self, session: Session, reason: str) -> str:
        accounts, top = session.execute(
            select(func.count(func.distinct(Finding.account_id)), func.max(Finding.id)).where(
                *self._where()  # type: ignore[arg-type]
            )
        ).one()
        self._total = int(accounts or 0)
        key = f"scan\x00{reason}\x00{','.join(self.kinds)}\x00{accounts}\x00{top}"
        return hashlib.sha256(key.encode()).hexdigest()

    def total(self) -> int | None:
        return self._total

    def batches(self, session_factory: Callable[[], Session], size: int) -> Iterator[Batch]:
        after = 0
        while True:
            with session_factory() as session:
                ids = list(
                    session.execute(
                        select(Finding.account_id)
                        .where(*self._where(), Finding.account_id > after)  # type: ignore[arg-type]
                        .group_by(Finding.account_id)
                        .order_by(Finding.account_id)
                        .limit(size)
                    ).scalars()
                )
                if not ids:
                    return
                rows = session.execute(
                    select(Finding.account_id, Finding.id, Account.email)
                    .join(Account, Account.id == Finding.account_id)
                    .where(*self._where(), Finding.account_id.in_(ids))  # type: ignore[arg-type]
                    .order_by(Finding.account_id, Finding.id)
                ).all()
            per: dict[int, list[int]] = {}
            emails: dict[int, str] = {}
            for account_id, finding_id, email in rows:
                per.setdefault(account_id, []).append(finding_id)
                emails[account_id] = email
            yield Batch([Target(a, tuple(f)) for a, f in per.items()], emails)
            after = ids[-1]


Sink = Callable[[Row], None]


@dataclass
class JobReport:
    job_id: int | None
    dry_run: bool
    counts: dict[Outcome, int] = field(default_factory=lambda: {o: 0 for o in Outcome})
    failed: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.counts[row[2]] += 1
        if row[2] is Outcome.FAILED:
            self.failed.append(row)

    def summary(self) -> dict[str, int]:
        return {o.value: self.counts[o] for o in Outcome}


class ReportFile:
    """Outcomes per account, written as they come: CSV, or JSON lines in a JSON document."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.json = path.suffix.lower() == ".json"
        self.fh = path.open("w", newline="")
        self.first = True
        if self.json:
            self.fh.write('{"accounts": [\n')
        else:
            self.writer = csv.writer(self.fh, lineterminator="\n")
            self.writer.writerow(["email", "account_id", "outcome", "detail"])

    def __call__(self, row: Row) -> None:
        email, account_id, outcome, detail = row
        if self.json:
            record = {
                "email": email,
                "account_id": account_id,
                "outcome": outcome.value,
                "detail": detail,
            }
            self.fh.write(("" if self.first else ",\n") + json.dumps(record))
            self.first = False
        else:
            self.writer.writerow(
                [email, account_id if account_id is not None else "", outcome.value, detail]
            )

    def close(self, report: JobReport) -> None:
        if self.json:
            tail = {"job": report.job_id, "dry_run": report.dry_run, "summary": report.summary()}
            self.fh.write("\n], " + json.dumps(tail)[1:] + "\n")
        self.fh.close()


def _job(
    session: Session,
    source: Source,
    fingerprint: str,
    reason: str,
    actor: audit.Actor,
    now: dt.datetime,
) -> int:
    job = session.execute(
        select(ResetJob).where(ResetJob.fingerprint == fingerprint)
    ).scalar_one_or_none()
    if job is None:
        job = ResetJob(
            fingerprint=fingerprint,
            source=source.label[:200],
            reason=reason,
            actor=str(actor),
            status=JobStatus.RUNNING,
            targets=source.total() or 0,
            started_at=now,
        )
        session.add(job)
        session.flush()
    return job.id


def run(
    db: Database,
    source: Source,
    *,
    reason: str,
    actor: audit.Actor,
    secret_key: str,
    require_mfa: bool,
    batch: int = 1000,
    dry_run: bool = False,
    sink: Sink | None = None,
    progress: Callable[[int], None] | None = None,
    now: Callable[[], dt.datetime] = utcnow,
) -> JobReport:
    """Reset every target of `source`; outcomes go to `sink` one account at a time."""
    reason = " ".join(reason.split())  # empty: the notice says it in its own language
    with db.session() as session:
        fingerprint = source.fingerprint(session, reason)
        if dry_run:
            job_id = session.execute(
                select(ResetJob.id).where(ResetJob.fingerprint == fingerprint)
            ).scalar()
        else:
            job_id = _job(session, source, fingerprint, reason, actor, now())
    report = JobReport(job_id if not dry_run else None, dry_run)
    key = "" if source.by_finding or job_id is None else f"job:{job_id}"
    plan = Plan(reason, key, job_id, require_mfa, actor)

    def emit(row: Row) -> None:
        report.add(row)
        if sink is not None:
            sink(row)

    parts = source.batches(db.sessions, batch)
    if _shared(db):
        parts = _ahead(parts)

    def classify(part: Batch) -> list[Row]:
        with db.session() as session:
            return _rows(part, forced.classify(session, part.items, plan))

    def apply(part: Batch) -> list[Row]:
        return _apply_batch(db, part, plan, secret_key, now)

    workers = 1 if dry_run or db.dialect != "postgresql" else PARALLEL_BATCHES
    for part, rows in _in_order(parts, classify if dry_run else apply, workers):
        for email in part.unknown:
            emit((email, None, Outcome.UNKNOWN, "no account with this address"))
        for row in rows:
            emit(row)
        if progress:
            progress(len(part.items) + len(part.unknown))
    if not dry_run and job_id is not None:
        _finish(db, job_id, report, actor, now())
    return report


def _in_order(
    parts: Iterable[Batch], work: Callable[[Batch], list[Row]], workers: int
) -> Iterator[tuple[Batch, list[Row]]]:
    """(batch, its outcome rows), in the source's order, with up to `workers` batches in
    flight, each in its own transaction on its own connection."""
    if workers <= 1:
        for part in parts:
            yield part, work(part)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reset-batch")
    pending: collections.deque[tuple[Batch, Future[list[Row]]]] = collections.deque()
    try:
        for part in parts:
            pending.append((part, pool.submit(work, part)))
            if len(pending) >= workers:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # batches already started commit


def _shared(db: Database) -> bool:
    """Whether another thread sees the same database (not so for in-memory SQLite)."""
    url = db.engine.url
    return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))


def _ahead(parts: Iterator[Batch]) -> Iterator[Batch]:
    """The source's batches, the next one read and resolved by a helper thread (on its own
    connection) while the current one is applied: the file, the address look-up and the
    database's work on the batch before it overlap instead of taking turns. At most one
    batch waits, so memory stays that of two batches."""
    slot: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for part in parts:
                slot.put(("part", part))
                if stop.is_set():
                    return
            slot.put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            slot.put(("error", exc))

    worker = threading.Thread(target=produce, name="reset-targets", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slot.get()
            if kind == "end":
                return
            if kind == "error":
                assert isinstance(value, BaseException)
                raise value
            assert isinstance(value, Batch)
            yield value
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting to hand over one more batch
            with contextlib.suppress(queue.Empty):
                slot.get(timeout=0.05)
        worker.join()


def _finish(
    db: Database, job_id: int, report: JobReport, actor: audit.Actor, now: dt.datetime
) -> None:
    with db.session() as session:
        record = session.get(ResetJob, job_id)
        assert record is not None
        record.reset += report.counts[Outcome.RESET]
        record.already = report.counts[Outcome.ALREADY]
        record.unknown = report.counts[Outcome.UNKNOWN]
        record.failed = report.counts[Outcome.FAILED]
        if not report.failed:
            record.status, record.finished_at = JobStatus.DONE, now
        audit.append(
            session,
            [
                audit.Event(
                    actor, audit.Action.RESET_JOB_FINISHED, f"reset_job:{job_id}", report.summary()
                )
            ],
            now=now,
        )


def _rows(part: Batch, result: forced.BatchResult) -> list[Row]:
    rows: list[Row] = [(part.emails.get(a, ""), a, Outcome.RESET, "") for a in result.reset]
    rows += [
        (part.emails.get(a, ""), a, Outcome.ALREADY, "already waiting for a reset")
        for a in result.already
    ]
    return rows


def _apply_batch(
    db: Database, part: Batch, plan: Plan, secret_key: str, now: Callable[[], dt.datetime]
) -> list[Row]:
    try:
        with db.session() as session:
            return _rows(
                part, forced.apply(session, part.items, plan, secret_key=secret_key, now=now())
            )
    except SQLAlchemyError:
        log.warning("a reset batch failed; retrying its %d accounts one by one", len(part.items))
    rows: list[Row] = []
    for target in part.items:
        single = Batch([target], part.emails)
        try:
            with db.session() as session:
                rows += _rows(
                    single, forced.apply(session, [target], plan, secret_key=secret_key, now=now())
                )
        except SQLAlchemyError as exc:
            detail = type(getattr(exc, "orig", None) or exc).__name__
            rows.append(
                (part.emails.get(target.account_id, ""), target.account_id, Outcome.FAILED, detail)
            )
    return rows
