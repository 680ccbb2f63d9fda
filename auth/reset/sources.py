"""Where a forced-reset job's targets come from: an e-mail file, a list from the API, one
account, or the open findings of a scan. Each is read in batches, so no run holds them all,
and has a fingerprint, so the same input finds the same job again."""

from __future__ import annotations

import csv
import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from sqlalchemy import String, func, select
from sqlalchemy.orm import Session

from auth.breach.hashing import normalise_email
from auth.bulk import among_bound, ids_value
from auth.errors import InvalidInput
from auth.models import Account, Finding, FindingStatus
from auth.prepared import Prepared
from auth.reset.forced import Target


@dataclass
class Batch:
    items: list[Target]
    emails: dict[int, str]  # account id -> e-mail, for the outcome rows
    unknown: list[str] = field(default_factory=list)


class Source(Protocol):
    """Where targets come from; read in batches so no run holds them all."""

    label: str
    by_finding: bool  # reset once per finding (a scan), rather than once per job
    in_account_order: bool  # its batches come in account order (else a job sorts them first)

    def fingerprint(self, session: Session, reason: str) -> str: ...

    def total(self) -> int | None: ...

    def batches(self, session_factory: Callable[[], Session], size: int) -> Iterator[Batch]: ...


@runtime_checkable
class Listed(Protocol):
    """A source that is a list of addresses: it can hand them over whole, normalised, to be
    resolved in one statement (auth/reset/ordering.py)."""

    def addresses(self) -> Iterator[str]: ...


@functools.cache
def _lookup(dialect: str) -> Prepared:
    """The accounts of a list of addresses, built once per database and run on the
    driver's cursor (auth.prepared); the list is one parameter, not one per address."""
    return Prepared(
        select(Account.email, Account.id).where(
            among_bound(dialect, Account.email, "emails", String)
        )
    )


def _resolve(session: Session, emails: Sequence[str]) -> Batch:
    conn = session.connection()
    dialect = conn.dialect.name
    ids = dict(_lookup(dialect).rows(conn, {"emails": ids_value(dialect, emails)}))
    return Batch(
        [Target(ids[e]) for e in emails if e in ids],
        {v: k for k, v in ids.items()},
        [e for e in emails if e not in ids],
    )


def email_cells(stream: IO[str]) -> Iterator[tuple[int, str]]:
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
    in_account_order = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = f"emails {path.name}"
        self._count = 0
        self._scanned: tuple[tuple[str, int, int], str] | None = None  # (file key, fingerprint)

    def _open(self) -> IO[str]:
        return self.path.open(encoding="utf-8-sig", newline="")

    def validate(self, reason: str) -> list[tuple[int, str]]:
        """Bad lines as (number, message); counts the good ones and, in the same pass,
        computes the job's fingerprint (a file of 1e5 lines is read once, not twice,
        before the job starts)."""
        bad: list[tuple[int, str]] = []
        self._count = 0
        key = self._key(reason)
        digest = hashlib.sha256(b"emails\x00" + reason.encode())
        with self._open() as stream:
            for number, cell in email_cells(stream):
                try:
                    digest.update(normalise_email(cell).encode() + b"\x00")
                    self._count += 1
                except InvalidInput as exc:
                    bad.append((number, str(exc)))
        self._scanned = None if bad else (key, digest.hexdigest())
        return bad

    def fingerprint(self, session: Session, reason: str) -> str:
        # What validate() computed, unless the file (or the reason) changed since.
        if self._scanned is None or self._scanned[0] != self._key(reason):
            bad = self.validate(reason)
            if bad:
                number, message = bad[0]
                raise InvalidInput(f"{self.path.name} line {number}: {message}")
        assert self._scanned is not None
        return self._scanned[1]

    def _key(self, reason: str) -> tuple[str, int, int]:
        stat = self.path.stat()
        return (reason, stat.st_size, stat.st_mtime_ns)

    def total(self) -> int | None:
        return self._count

    def addresses(self) -> Iterator[str]:
        with self._open() as stream:
            for _, cell in email_cells(stream):
                yield normalise_email(cell)

    def batches(self, session_factory: Callable[[], Session], size: int) -> Iterator[Batch]:
        chunk: list[str] = []
        for address in self.addresses():
            chunk.append(address)
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
    in_account_order = False

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

    def addresses(self) -> Iterator[str]:
        return iter(self.emails)

    def batches(self, session_factory: Callable[[], Session], size: int) -> Iterator[Batch]:
        for start in range(0, len(self.emails), size):
            with session_factory() as session:
                yield _resolve(session, self.emails[start : start + size])


class OneAccount:
    by_finding = False
    in_account_order = True

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
    in_account_order = True

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
