"""Where a forced-reset job's targets come from: an e-mail file, a list from the API, one
account, or the open findings of a scan. A list is kept in a private database as it is
checked (auth/reset/ordering.py); a scan is read a batch at a time. No run holds them all
in memory, and each has a fingerprint, so the same input finds the same job again."""

from __future__ import annotations

import csv
import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from sqlalchemy import String, func, select
from sqlalchemy.orm import Session

from auth.breach.hashing import normalise_email
from auth.bulk import among_bound, ids_value
from auth.errors import InvalidInput
from auth.models import Account, Finding, FindingStatus
from auth.prepared import Prepared
from auth.reset.forced import Batch, Target
from auth.reset.ordering import AccountOrder


class Source(Protocol):
    """Where targets come from, with a fingerprint so that the same input finds the same
    job again."""

    label: str
    by_finding: bool  # reset once per finding (a scan), rather than once per job

    def fingerprint(self, session: Session, reason: str) -> str: ...

    def total(self) -> int | None: ...


@runtime_checkable
class Scanned(Source, Protocol):
    """Targets read from the service's database a batch at a time, in account order."""

    def batches(self, session_factory: Callable[[], Session], size: int) -> Iterator[Batch]: ...


@runtime_checkable
class Listed(Source, Protocol):
    """A list of addresses, handed over checked and normalised in a private database
    (auth/reset/ordering.py), to be resolved there and reset in account order."""

    def staged(self) -> AccountOrder: ...


@functools.cache
def _lookup(dialect: str) -> Prepared:
    """The accounts of a list of addresses, built once per database and run on the
    driver's cursor (auth.prepared); the list is one parameter, not one per address."""
    return Prepared(
        select(Account.email, Account.id).where(
            among_bound(dialect, Account.email, "emails", String)
        )
    )


def account_ids(session_factory: Callable[[], Session], emails: Sequence[str]) -> dict[str, int]:
    """The ids of the accounts of these (normalised) addresses, the unknown ones left out."""
    with session_factory() as session:
        conn = session.connection()
        dialect = conn.dialect.name
        return dict(_lookup(dialect).rows(conn, {"emails": ids_value(dialect, emails)}))


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
    """`--emails FILE`: read once, every line checked before anything changes, the
    addresses kept in a private database (auth/reset/ordering.py) as they are read."""

    by_finding = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = f"emails {path.name}"
        self._count = 0
        self._scanned: tuple[tuple[str, int, int], str] | None = None  # (file key, fingerprint)
        self._staged: AccountOrder | None = None

    def _open(self) -> IO[str]:
        return self.path.open(encoding="utf-8-sig", newline="")

    def validate(self, reason: str) -> list[tuple[int, str]]:
        """Bad lines as (number, message). In the same pass: counts the good ones, computes
        the job's fingerprint and stages the addresses, so a file of 1e5 lines is read once."""
        bad: list[tuple[int, str]] = []
        self._count = 0
        self.close()
        key = self._key(reason)
        digest = hashlib.sha256(b"emails\x00" + reason.encode())
        staged = AccountOrder()

        def good(stream: IO[str]) -> Iterator[str]:
            for number, cell in email_cells(stream):
                try:
                    email = normalise_email(cell)
                except InvalidInput as exc:
                    bad.append((number, str(exc)))
                    continue
                digest.update(email.encode() + b"\x00")
                self._count += 1
                yield email

        try:
            with self._open() as stream:
                staged.stage(good(stream))
        except BaseException:
            staged.close()
            raise
        if bad:
            staged.close()
            self._scanned = None
        else:
            self._scanned, self._staged = (key, digest.hexdigest()), staged
        return bad

    def _current(self, reason: str) -> str:
        """The fingerprint and the staged list of the file as it is now (read again if it
        or the reason changed since validate); InvalidInput naming the first bad line."""
        if self._scanned is None or self._scanned[0] != self._key(reason) or self._staged is None:
            bad = self.validate(reason)
            if bad:
                number, message = bad[0]
                raise InvalidInput(f"{self.path.name} line {number}: {message}")
        assert self._scanned is not None
        return self._scanned[1]

    def fingerprint(self, session: Session, reason: str) -> str:
        return self._current(reason)

    def staged(self) -> AccountOrder:
        """The list as the last fingerprint() read it; the caller owns (and closes) it."""
        if self._staged is None:
            raise RuntimeError("EmailFile.staged() before fingerprint()")
        staged, self._staged = self._staged, None
        return staged

    def close(self) -> None:
        if self._staged is not None:
            self._staged.close()
            self._staged = None

    def _key(self, reason: str) -> tuple[str, int, int]:
        stat = self.path.stat()
        return (reason, stat.st_size, stat.st_mtime_ns)

    def total(self) -> int | None:
        return self._count


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

    def staged(self) -> AccountOrder:
        staged = AccountOrder()
        staged.stage(self.emails)
        return staged


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
