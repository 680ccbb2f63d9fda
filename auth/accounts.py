"""Accounts: creation and the streaming, idempotent CSV import."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    bindparam,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from auth import audit
from auth.breach.hashing import email_sha1, normalise_email
from auth.db import among, insert_rows
from auth.errors import ImportAborted, InvalidInput, one_line
from auth.models import Account, AccountStatus, table
from auth.passwords import Hasher, is_argon2_hash

ACCOUNTS = table(Account)
# The addresses an import has read so far, with their line: a second line with one of them
# is a bad row. Temporary (each connection its own), created and dropped by import_csv.
_LINES = Table(
    "account_import_lines",
    MetaData(),
    Column("email", String(320), primary_key=True),
    Column("line", Integer, nullable=False),
    prefixes=["TEMPORARY"],
    sqlite_with_rowid=False,  # the e-mail is the key: one B-tree instead of two
)
COLUMNS = ("email", "name", "professional_id", "password_hash")
BATCH = 1000
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)


@dataclass(frozen=True)
class Row:
    line: int
    email: str
    name: str
    professional_id: str | None
    password_hash: str | None


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)

    @property
    def committed(self) -> int:
        return self.created + self.updated


def create(
    session: Session,
    *,
    email: str,
    name: str = "",
    professional_id: str | None = None,
    password: str | None = None,
    hasher: Hasher,
    actor: audit.Actor,
    now: dt.datetime,
) -> Account:
    """Create one account; the password, if any, is hashed with argon2id at once."""
    email = normalise_email(email)
    if session.execute(select(Account.id).where(Account.email == email)).first():
        raise InvalidInput(f"an account with e-mail {email} already exists")
    account = Account(
        email=email,
        email_sha1=email_sha1(email),
        name=name.strip(),
        professional_id=(professional_id or "").strip() or None,
        password_hash=hasher.hash(password) if password else None,
        created_at=now,
        updated_at=now,
    )
    session.add(account)
    session.flush()
    audit.append(
        session,
        [
            audit.Event(
                actor, audit.Action.ACCOUNT_CREATED, f"account:{account.id}", {"email": email}
            )
        ],
        now=now,
    )
    return account


def verify_password(
    session: Session, account: Account, password: str, *, hasher: Hasher, now: dt.datetime
) -> bool:
    """Check an account's password; store a fresh hash when the argon2 parameters changed."""
    result = hasher.verify(account.password_hash, password)
    if result.new_hash is not None:
        account.password_hash = result.new_hash
        account.updated_at = now
    return result.ok


def _parse_row(line: int, fields: list[str], columns: tuple[str, ...]) -> Row:
    if _UNDECODED.search("".join(fields)):
        raise InvalidInput("not valid UTF-8")
    if len(fields) > len(columns):
        hint = (
            "; quote the password hash, it contains commas" if "$argon2" in ",".join(fields) else ""
        )
        raise InvalidInput(
            f"expected at most {len(columns)} fields ({', '.join(columns)}), "
            f"got {len(fields)}{hint}"
        )
    values = dict(zip(columns, map(str.strip, fields), strict=False))
    try:
        email = normalise_email(values.get("email", ""))
    except InvalidInput as exc:
        raise InvalidInput(f"email: {exc}") from None
    name = one_line(values.get("name", ""), "name")
    if len(name) > 200:
        raise InvalidInput("name: longer than 200 characters")
    pro_id = values.get("professional_id") or None
    if pro_id is not None and (len(pro_id) > 64 or not pro_id.isprintable()):
        raise InvalidInput("professional_id: must be at most 64 printable characters")
    pw_hash = values.get("password_hash") or None
    if pw_hash is not None and not is_argon2_hash(pw_hash):
        raise InvalidInput("password_hash: not an argon2 hash ($argon2id$...)")
    return Row(line, email, name, pro_id, pw_hash)


def read_rows(stream: IO[str], report: ImportReport) -> Iterator[Row]:
    """Yield well-formed rows; bad ones go to the report with their line number. An
    address given twice is caught later, by _first_occurrences."""
    reader = csv.reader(stream)
    columns: tuple[str, ...] = COLUMNS
    for fields in reader:
        line = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if line == 1 and fields[0].strip().lower().lstrip("\ufeff") == "email":
            header = tuple(f.strip().lower() for f in fields)
            unknown = [c for c in header if c not in COLUMNS]
            if unknown:
                report.bad.append((line, f"unknown column(s) {', '.join(unknown)}"))
                return
            columns = header
            continue
        try:
            row = _parse_row(line, fields, columns)
        except InvalidInput as exc:
            report.bad.append((line, str(exc)))
            continue
        yield row


def existing(emails: list[str]) -> Select[tuple[int, str, str, str | None, str | None]]:
    """The accounts already there among a batch's addresses, found through the unique
    index on e-mail with one array parameter, whatever the batch's size."""
    return select(
        ACCOUNTS.c.id,
        ACCOUNTS.c.email,
        ACCOUNTS.c.name,
        ACCOUNTS.c.professional_id,
        ACCOUNTS.c.password_hash,
    ).where(among(ACCOUNTS.c.email, emails, String))


def _apply_batch(
    session: Session, rows: list[Row], report: ImportReport, actor: audit.Actor, now: dt.datetime
) -> None:
    """A batch in a constant number of statements, whatever its size: the look-ups of
    earlier lines and of the accounts, a load of the lines and of the new accounts, a read
    of their ids, an executemany of the changes, an audit append."""
    rows = _first_occurrences(session, rows, report)
    found = {a.email: a for a in session.execute(existing([r.email for r in rows]))}
    new, changed, events = [], [], []
    for r in rows:
        old = found.get(r.email)
        if old is None:
            new.append(r)
            continue
        diff = _diff(old, r)
        if not diff:
            report.unchanged += 1
            continue
        changed.append(
            {
                "_id": old.id,
                "name": r.name,
                "professional_id": r.professional_id,
                "password_hash": r.password_hash or old.password_hash,
                "updated_at": now,
            }
        )
        events.append(audit.Event(actor, audit.Action.ACCOUNT_UPDATED, f"account:{old.id}", diff))
    if changed:
        session.connection().execute(
            update(ACCOUNTS).where(ACCOUNTS.c.id == bindparam("_id")), changed
        )
    events.extend(
        audit.Event(actor, audit.Action.ACCOUNT_CREATED, f"account:{i}", {"email": e})
        for i, e in _create(session, new, now)
    )
    report.created += len(new)
    report.updated += len(changed)
    audit.append(session, events, now=now)


def _diff(old: Any, r: Row) -> dict[str, str | None]:
    """What the row changes in the stored account, as the audit trail records it."""
    diff: dict[str, str | None] = {}
    if old.name != r.name:
        diff["name"] = r.name
    if old.professional_id != r.professional_id:
        diff["professional_id"] = r.professional_id
    if r.password_hash is not None and old.password_hash != r.password_hash:
        diff["password_hash"] = "changed"  # never the hash itself in the trail
    return diff


def _first_occurrences(session: Session, rows: list[Row], report: ImportReport) -> list[Row]:
    """The rows whose address no earlier line had; the others are bad rows. The import's
    addresses so far are kept in a temporary table, so memory does not grow with the file."""
    emails = [r.email for r in rows]
    found = select(_LINES.c.email, _LINES.c.line).where(among(_LINES.c.email, emails, String))
    earlier = {email: line for email, line in session.execute(found)}
    first = []
    for r in rows:
        if r.email in earlier:
            report.bad.append((r.line, f"email: {r.email} already on line {earlier[r.email]}"))
            continue
        earlier[r.email] = r.line
        first.append(r)
    insert_rows(session, _LINES, [{"email": r.email, "line": r.line} for r in first])
    return first


def _create(session: Session, rows: list[Row], now: dt.datetime) -> list[tuple[int, str]]:
    """Insert new accounts (COPY on PostgreSQL) and return their (id, email) in file order."""
    if not rows:
        return []
    insert_rows(
        session,
        ACCOUNTS,
        [
            {
                "email": r.email,
                "email_sha1": email_sha1(r.email),
                "name": r.name,
                "professional_id": r.professional_id,
                "password_hash": r.password_hash,
            }
            for r in rows
        ],
        status=AccountStatus.ACTIVE.value,
        session_epoch=0,
        created_at=now,
        updated_at=now,
    )
    made = select(ACCOUNTS.c.id, ACCOUNTS.c.email).where(
        among(ACCOUNTS.c.email, [r.email for r in rows], String)
    )
    return [(i, e) for i, e in session.execute(made.order_by(ACCOUNTS.c.id))]


def import_csv(
    session: Session,
    stream: IO[bytes],
    *,
    actor: audit.Actor,
    now: dt.datetime,
    skip_bad: bool = False,
    batch: int = BATCH,
) -> ImportReport:
    """Create or update accounts from CSV in batches, inside the caller's transaction.

    Raises ImportAborted (and the caller rolls back) when a row is bad and skip_bad is off,
    so a file with a bad row commits nothing.
    """
    report = ImportReport()
    lines = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    with _working_space(session):
        pending: list[Row] = []
        analyzed = False
        for row in read_rows(lines, report):
            pending.append(row)
            if len(pending) >= batch:
                _apply_batch(session, pending, report, actor, now)
                pending = []
                if not analyzed:
                    _take_statistics(session)
                    analyzed = True
        if pending:
            _apply_batch(session, pending, report, actor, now)
    report.bad.sort()
    if report.bad and not skip_bad:
        raise ImportAborted(_bad_rows_message(report.bad))
    return report


@contextmanager
def _working_space(session: Session) -> Iterator[None]:
    """The import's temporary table of lines, dropped when it succeeds (a failure rolls it
    back; on SQLite, where it may stay, the next import drops it first). On SQLite, a
    bounded page cache for the import's connection, set back afterwards: one transaction
    writes every page of the indexes it grows, and with the default 2 MiB they were
    spilled to the write-ahead log and read back, batch after batch."""
    conn = session.connection()
    _LINES.drop(conn, checkfirst=True)
    _LINES.create(conn)
    sqlite = conn.dialect.name == "sqlite"
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar() if sqlite else None
    if sqlite:
        conn.exec_driver_sql(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
    try:
        yield
        _LINES.drop(conn)
    finally:
        if before is not None:
            conn.exec_driver_sql(f"PRAGMA cache_size = {before}")


_SQLITE_CACHE_KIB = 32 * 1024


def _take_statistics(session: Session) -> None:
    """PostgreSQL plans each batch's look-ups from the tables' statistics. Of a table never
    analyzed (a new database, the temporary table) it guesses the rows per page from the
    column types, far too few, and then scans the whole table for every batch: the import's
    time grew with the square of its size. Once the first batch is in, ANALYZE tells it
    (it counts the rows this transaction inserted), and its estimates then follow each
    table's growth page by page."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"ANALYZE {ACCOUNTS.name}, {_LINES.name}"))


def _bad_rows_message(bad: list[tuple[int, str]], shown: int = 20) -> str:
    lines = [f"line {n}: {msg}" for n, msg in bad[:shown]]
    more = f"\n... and {len(bad) - shown} more" if len(bad) > shown else ""
    return (
        f"{len(bad)} bad row(s); nothing was imported (use --skip-bad to import the rest):\n"
        + "\n".join(lines)
        + more
    )
