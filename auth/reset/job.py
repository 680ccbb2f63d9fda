"""`breachguard reset` as a recorded, resumable job.

The same input (targets and reason) always finds the same job, so running the command
again — after success, Ctrl-C or kill -9 — continues it: every batch is its own committed
transaction, and accounts a batch already reset are skipped by the unique reset key.
Outcomes go to a sink (the terminal, a report file) a batch at a time, as they happen.
A batch that fails is retried account by account, so one bad account does not stop the
rest.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from auth import audit, csvout
from auth.db import Database
from auth.errors import one_line
from auth.models import JobStatus, ResetJob, utcnow
from auth.reset import forced
from auth.reset.forced import Plan, ResetOutcome
from auth.reset.sources import Batch, Source

log = logging.getLogger(__name__)


class AccountResult(NamedTuple):
    """What the run did for one listed address or account."""

    email: str
    account_id: int | None
    outcome: ResetOutcome
    detail: str


Sink = Callable[[list[AccountResult]], None]


@dataclass
class JobReport:
    job_id: int | None
    dry_run: bool
    counts: dict[ResetOutcome, int] = field(default_factory=lambda: dict.fromkeys(ResetOutcome, 0))
    failed: list[AccountResult] = field(default_factory=list)

    def extend(self, rows: list[AccountResult]) -> None:
        for outcome, n in collections.Counter(row.outcome for row in rows).items():
            self.counts[outcome] += n
        self.failed += [row for row in rows if row.outcome is ResetOutcome.FAILED]

    def summary(self) -> dict[str, int]:
        return {o.value: self.counts[o] for o in ResetOutcome}


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
            self.writer = csvout.Writer(self.fh, ["email", "account_id", "outcome", "detail"])

    def __call__(self, rows: list[AccountResult]) -> None:
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
                self.writer.row([email, account_id, outcome.value, detail])

    def close(self, report: JobReport) -> None:
        if self.json:
            tail = {"job": report.job_id, "dry_run": report.dry_run, "summary": report.summary()}
            self.fh.write("\n], " + json.dumps(tail)[1:] + "\n")
        self.fh.close()


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
        job = session.execute(
            select(ResetJob).where(ResetJob.fingerprint == fingerprint)
        ).scalar_one_or_none()
        if job is None and not dry_run:
            job = ResetJob(
                fingerprint=fingerprint,
                source=source.label[:200],
                reason=reason,
                actor=str(actor),
                status=JobStatus.RUNNING,
                targets=source.total() or 0,
                started_at=now(),
            )
            session.add(job)
            session.flush()
        job_id = job.id if job is not None else None
    report = JobReport(None if dry_run else job_id, dry_run)
    key = "" if source.by_finding or job_id is None else f"job:{job_id}"
    plan = Plan(reason, key, job_id, require_mfa, actor)
    for part in source.batches(db, batch):
        rows = [
            AccountResult(email, None, ResetOutcome.UNKNOWN, "no account with this address")
            for email in part.unknown
        ]
        if part.items:
            rows += _dry_run(db, part, plan) if dry_run else _apply(db, part, plan, secret_key, now)
        report.extend(rows)
        if sink is not None and rows:
            sink(rows)
        if progress:
            progress(len(part.items) + len(part.unknown))
    if not dry_run and job_id is not None:
        _finish(db, job_id, report, actor, now())
    return report


def _dry_run(db: Database, part: Batch, plan: Plan) -> list[AccountResult]:
    with db.session() as session:
        return _rows(part, forced.classify(session, part.items, plan))


def _apply(
    db: Database, part: Batch, plan: Plan, secret_key: str, now: Callable[[], dt.datetime]
) -> list[AccountResult]:
    try:
        with db.session() as session:
            result = forced.apply(session, part.items, plan, secret_key=secret_key, now=now())
            return _rows(part, result)
    except SQLAlchemyError:
        log.warning("a reset batch failed; retrying its %d accounts one by one", len(part.items))
    rows: list[AccountResult] = []
    for target in part.items:
        email = part.emails.get(target.account_id, "")
        try:
            with db.session() as session:
                result = forced.apply(session, [target], plan, secret_key=secret_key, now=now())
            rows += _rows(Batch([target], {target.account_id: email}), result)
        except SQLAlchemyError as exc:
            detail = type(getattr(exc, "orig", None) or exc).__name__
            rows.append(AccountResult(email, target.account_id, ResetOutcome.FAILED, detail))
    return rows


def _rows(part: Batch, result: forced.BatchResult) -> list[AccountResult]:
    rows = [AccountResult(part.emails.get(a, ""), a, ResetOutcome.RESET, "") for a in result.reset]
    rows += [
        AccountResult(
            part.emails.get(a, ""), a, ResetOutcome.ALREADY, "already waiting for a reset"
        )
        for a in result.already
    ]
    return rows


def _finish(
    db: Database, job_id: int, report: JobReport, actor: audit.Actor, now: dt.datetime
) -> None:
    with db.session() as session:
        record = session.get(ResetJob, job_id)
        assert record is not None
        record.reset += report.counts[ResetOutcome.RESET]
        record.already = report.counts[ResetOutcome.ALREADY]
        record.unknown = report.counts[ResetOutcome.UNKNOWN]
        record.failed = report.counts[ResetOutcome.FAILED]
        if not report.failed:
            record.status, record.finished_at = JobStatus.DONE, now
        event = audit.Event(
            actor, audit.Action.RESET_JOB_FINISHED, f"reset_job:{job_id}", report.summary()
        )
        audit.append(session, [event], now=now)
