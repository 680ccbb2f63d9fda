"""Where a forced-reset job's targets come from: a list of addresses (a file, or the API),
one account, or the open findings of a scan. Each has a fingerprint, so that the same
input finds the same job again, and yields its targets a batch at a time in account order.

A list of addresses is held in memory, checked, normalised and de-duplicated (README: the
memory cost per 100,000 addresses), then resolved to accounts in chunks; a scan's findings
are read from the database a batch at a time.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import String, func, select
from sqlalchemy.orm import Session

from auth import csvout
from auth.breach.hashing import normalise_email
from auth.db import Database, among
from auth.errors import InvalidInput
from auth.models import Account, Finding, FindingStatus
from auth.reset.forced import Target

LOOKUP_CHUNK = 5000  # addresses resolved per statement


@dataclass
class Batch:
    """Targets to reset in one transaction, with their addresses for the report, and the
    listed addresses no account has (reported before the batch's own rows)."""

    items: list[Target]
    emails: dict[int, str]  # account id -> e-mail
    unknown: list[str] = field(default_factory=list)


class Source(Protocol):
    label: str
    by_finding: bool  # reset once per finding (a scan), rather than once per job

    def fingerprint(self, session: Session, reason: str) -> str: ...

    def total(self) -> int | None: ...

    def batches(self, db: Database, size: int) -> Iterator[Batch]: ...


class Addresses:
    """A list of addresses, normalised, each once (where first listed), in list order."""

    by_finding = False

    def __init__(self, addresses: Iterable[str], label: str) -> None:
        self.addresses = list(dict.fromkeys(addresses))
        self.label = label

    @classmethod
    def from_values(cls, raw: Iterable[str], label: str = "api emails") -> Addresses:
        """The API's list; InvalidInput names the first bad one."""
        addresses = []
        for i, value in enumerate(raw):
            try:
                addresses.append(normalise_email(value))
            except InvalidInput as exc:
                raise InvalidInput(f"emails[{i}]: {exc}") from None
        return cls(addresses, label)

    def fingerprint(self, session: Session, reason: str) -> str:
        digest = hashlib.sha256(b"emails\x00" + reason.encode())
        for address in self.addresses:
            digest.update(address.encode() + b"\x00")
        return digest.hexdigest()

    def total(self) -> int | None:
        return len(self.addresses)

    def batches(self, db: Database, size: int) -> Iterator[Batch]:
        """First the unknown addresses (in list order), then the accounts, `size` at a time
        in account order."""
        found: dict[str, int] = {}
        # In address order, each chunk's look-ups walk one stretch of the e-mail index
        # rather than the whole of it.
        ordered = sorted(self.addresses)
        for start in range(0, len(ordered), LOOKUP_CHUNK):
            chunk = ordered[start : start + LOOKUP_CHUNK]
            with db.connection() as conn:
                rows = conn.execute(
                    select(Account.email, Account.id).where(among(Account.email, chunk, String))
                )
                found.update((email, account_id) for email, account_id in rows)
        del ordered
        unknown = [address for address in self.addresses if address not in found]
        accounts = sorted((account_id, email) for email, account_id in found.items())
        del found  # held while the batches are reset: only the sorted list is needed
        if unknown:
            yield Batch([], {}, unknown)
        for start in range(0, len(accounts), size):
            part = accounts[start : start + size]
            yield Batch([Target(account_id) for account_id, _ in part], dict(part))


def read_email_file(path: Path) -> tuple[Addresses, list[tuple[int, str]]]:
    """`--emails FILE`: the addresses, and the bad lines as (line number, message)."""
    good: list[str] = []
    bad: list[tuple[int, str]] = []
    with path.open(encoding="utf-8-sig", newline="") as stream:
        for number, cell in email_cells(stream):
            try:
                good.append(normalise_email(cell))
            except InvalidInput as exc:
                bad.append((number, str(exc)))
    return Addresses(good, f"emails {path.name}"), bad


def email_cells(stream: IO[str]) -> Iterator[tuple[int, str]]:
    """(line number, the address-like cell): one address per line, or a CSV with an
    `email` column (or the first cell holding an @)."""
    column: int | None = None
    for number, row in enumerate(csv.reader(stream), 1):
        cells = [csvout.uncell(c.strip()) for c in row]
        if not any(cells):
            continue
        lowered = [c.lower() for c in cells]
        if number == 1 and "email" in lowered:
            column = lowered.index("email")
            continue
        candidates = [cells[column]] if column is not None and column < len(cells) else cells
        yield number, next((c for c in candidates if "@" in c), candidates[0])


class OneAccount:
    by_finding = False

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self.label = f"account {account_id}"

    def _email(self, session: Session) -> str:
        email = session.execute(select(Account.email).where(Account.id == self.account_id)).scalar()
        if email is None:
            raise InvalidInput(f"--account: no account with id {self.account_id}")
        return email

    def fingerprint(self, session: Session, reason: str) -> str:
        self._email(session)
        return hashlib.sha256(f"account\x00{reason}\x00{self.account_id}".encode()).hexdigest()

    def total(self) -> int | None:
        return 1

    def batches(self, db: Database, size: int) -> Iterator[Batch]:
        with db.session() as session:
            email = self._email(session)
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

    def batches(self, db: Database, size: int) -> Iterator[Batch]:
        after = 0
        while True:
            with db.session() as session:
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
                    .where(*self._where(), among(Finding.account_id, ids))  # type: ignore[arg-type]
                    .order_by(Finding.account_id, Finding.id)
                ).all()
            per: dict[int, list[int]] = {}
            emails: dict[int, str] = {}
            for account_id, finding_id, email in rows:
                per.setdefault(account_id, []).append(finding_id)
                emails[account_id] = email
            yield Batch([Target(a, tuple(f)) for a, f in per.items()], emails)
            after = ids[-1]
