"""`breachguard reset` as a recorded, resumable job, in constant memory.

The same input (targets and reason) always finds the same job, so running the command
again — after success, Ctrl-C or kill -9 — continues it: every batch is its own committed
transaction, and accounts a batch already reset are skipped by the unique reset key.
Targets are read, resolved and applied a batch at a time, and outcomes go to a sink
(the terminal, a report file) as they happen, so 50,000 accounts cost what 50 do.
A batch that fails is retried account by account, so one bad account does not stop the rest.

A list of addresses is first resolved and sorted (auth/reset/ordering.py), unknown
addresses reported then, and then reset in account order. In the list's order
every batch's rows landed on pages spread over the accounts table and each index keyed by
account, and each commit wrote them all: on SQLite, plain sqlite3 writes of the same rows
for 1e5 of 1e6 accounts (batches of 5000) took 5.1-5.8 s in account order against
6.9-11.7 s in random order; the CLI took 5.0-5.6 s sorted against 10.3-10.8 s as listed
(batches of 1000). PostgreSQL keeps more of those pages in its shared buffers, and gains
less: 7.1-7.7 s sorted against 8.1-8.2 s as listed (batches of 1000, three runs each),
6.98-7.10 s against 6.93-6.96 s with batches of 5000.

Batches are read ahead by a helper thread (_ahead). On SQLite it also makes each batch's
tokens and audit tails (forced.Draft) while this thread's statements for the batch before
run in SQLite without the GIL.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import datetime as dt
import functools
import json
import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from auth import audit
from auth.db import Database
from auth.errors import one_line
from auth.models import JobStatus, ResetJob, utcnow
from auth.reset import forced
from auth.reset.forced import Batch, Outcome, Plan
from auth.reset.sources import Listed, Scanned, Source, account_ids

log = logging.getLogger(__name__)
# Batches applied at once on PostgreSQL, each in its own transaction: while the server
# works on one, the other's rows are built, and the server's work is spread over two
# backends. They touch disjoint accounts (a duplicate waits on the row lock, then finds
# the account reset); only the audit append is taken in turn, on the chain's head row,
# last in each batch. SQLite has one writer: one batch at a time.
PARALLEL_BATCHES = 2
Row = tuple[str, "int | None", Outcome, str]  # e-mail, account id, outcome, detail


# Outcomes go to a sink a batch at a time (in order; a batch's rows once it committed):
# called once per account, the CLI's sink and the report's count made a 1e5 reset take
# 3.99-4.02 s against 3.92-3.99 s (four alternated runs).
Sink = Callable[[list[Row]], None]


@dataclass
class JobReport:
    job_id: int | None
    dry_run: bool
    counts: dict[Outcome, int] = field(default_factory=lambda: {o: 0 for o in Outcome})
    failed: list[Row] = field(default_factory=list)

    def extend(self, rows: list[Row]) -> None:
        for outcome, n in collections.Counter(row[2] for row in rows).items():
            self.counts[outcome] += n
        if self.counts[Outcome.FAILED]:
            self.failed += [row for row in rows if row[2] is Outcome.FAILED]

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

    def __call__(self, rows: list[Row]) -> None:
        for email, account_id, outcome, detail in rows:
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
    """Reset every target of `source`; outcomes go to `sink` a batch at a time."""
    reason = one_line(reason, "reason")  # empty: the notice says it in its own language
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

    def emit(rows: list[Row]) -> None:
        report.extend(rows)
        if sink is not None and rows:
            sink(rows)

    def emit_unknown(emails: list[str]) -> None:
        emit([(email, None, Outcome.UNKNOWN, "no account with this address") for email in emails])
        if progress and emails:
            progress(len(emails))

    def classify(part: Batch) -> list[Row]:
        with db.session() as session:
            return _rows(part, forced.classify(session, part.items, plan))

    def apply(part: Batch) -> list[Row]:
        return _apply_batch(db, part, plan, secret_key, now)

    workers = 1 if dry_run or db.dialect != "postgresql" else PARALLEL_BATCHES
    # Closed in reverse order: the reading thread stops before the list's database closes.
    with contextlib.ExitStack() as stack:
        parts: Iterable[Batch]
        if isinstance(source, Listed):  # resolved first, then taken in account order
            order = stack.enter_context(contextlib.closing(source.staged()))
            path = _sqlite_file(db)
            unknown = (
                order.resolve(path)  # the whole list in SQL
                if path is not None
                else order.resolve_with(functools.partial(account_ids, db.sessions))
            )
            for emails in unknown:
                emit_unknown(emails)
            parts = order.batches(batch)
            if not dry_run and db.dialect == "sqlite":
                # Run by the read-ahead thread (_ahead), while this one writes a batch.
                parts = map(functools.partial(_drafted, plan=plan, secret_key=secret_key), parts)
        else:
            assert isinstance(source, Scanned)
            parts = source.batches(db.sessions, batch)
        ahead = stack.enter_context(contextlib.closing(_overlapped(db, parts)))
        for part, rows in _in_order(ahead, classify if dry_run else apply, workers):
            emit(rows)
            if progress:
                progress(len(part.items))
    if not dry_run and job_id is not None:
        _finish(db, job_id, report, actor, now())
    return report


def _overlapped(db: Database, parts: Iterable[Batch]) -> Generator[Batch]:
    """The batches read ahead by a helper thread (_ahead) where a second connection sees
    the same database; else as they come."""
    return _ahead(parts) if _shared(db) else _as_they_come(parts)


def _as_they_come(parts: Iterable[Batch]) -> Generator[Batch]:
    yield from parts


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


def _sqlite_file(db: Database) -> str | None:
    """The path of the service's database, when it is an SQLite file another connection
    can open."""
    url = db.engine.url
    return url.database if url.get_backend_name() == "sqlite" and _shared(db) else None


def _ahead(parts: Iterable[Batch]) -> Generator[Batch]:
    """The source's batches, the next one read (and, for a job's list on SQLite, drafted)
    by a helper thread while the current one is applied: the reading, the drafting and the
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
    db: Database,
    job_id: int,
    report: JobReport,
    actor: audit.Actor,
    now: dt.datetime,
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


def _drafted(part: Batch, *, plan: Plan, secret_key: str) -> Batch:
    part.draft = forced.draft(part.items, plan, secret_key=secret_key)
    return part


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
            result = forced.apply(
                session, part.items, plan, secret_key=secret_key, now=now(), made=part.draft
            )
            return _rows(part, result)
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
