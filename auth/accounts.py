"""Accounts: creation and the streaming, idempotent CSV import."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from auth import audit
from auth.breach.hashing import email_sha1, normalise_email
from auth.errors import ImportAborted, InvalidInput, one_line
from auth.models import Account
from auth.passwords import Hasher, is_argon2_hash

ACCOUNTS = cast(Table, Account.__table__)  # Core table: executemany UPDATE by primary key
COLUMNS = ("email", "name", "professional_id", "password_hash")
BATCH = 1000


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
    if any("\udc80" <= ch <= "\udcff" for value in fields for ch in value):
        raise InvalidInput("not valid UTF-8")
    if len(fields) > len(columns):
        hint = (
            "; quote the password hash, it contains commas" if "$argon2" in ",".join(fields) else ""
        )
        raise InvalidInput(
            f"expected at most {len(columns)} fields ({', '.join(columns)}), "
            f"got {len(fields)}{hint}"
        )
    values = dict(zip(columns, (f.strip() for f in fields), strict=False))
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
    """Yield valid rows; bad ones go to the report with their line number."""
    reader = csv.reader(stream)
    columns: tuple[str, ...] = COLUMNS
    seen: dict[str, int] = {}
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
        if row.email in seen:
            report.bad.append((line, f"email: {row.email} already on line {seen[row.email]}"))
            continue
        seen[row.email] = line
        yield row


def _apply_batch(
    session: Session, rows: list[Row], report: ImportReport, actor: audit.Actor, now: dt.datetime
) -> None:
    existing = {
        a.email: a
        for a in session.execute(
            select(
                Account.id,
                Account.email,
                Account.name,
                Account.professional_id,
                Account.password_hash,
            ).where(Account.email.in_([r.email for r in rows]))
        ).all()
    }
    new, changed, events = [], [], []
    for r in rows:
        old = existing.get(r.email)
        if old is None:
            new.append(r)
            continue
        diff: dict[str, str | None] = {}
        if old.name != r.name:
            diff["name"] = r.name
        if old.professional_id != r.professional_id:
            diff["professional_id"] = r.professional_id
        if r.password_hash is not None and old.password_hash != r.password_hash:
            diff["password_hash"] = "changed"  # never the hash itself in the trail
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
    if new:
        ids = session.execute(
            insert(Account).returning(Account.id, Account.email, sort_by_parameter_order=True),
            [
                {
                    "email": r.email,
                    "email_sha1": email_sha1(r.email),
                    "name": r.name,
                    "professional_id": r.professional_id,
                    "password_hash": r.password_hash,
                    "created_at": now,
                    "updated_at": now,
                }
                for r in new
            ],
        ).all()
        events.extend(
            audit.Event(actor, audit.Action.ACCOUNT_CREATED, f"account:{i}", {"email": e})
            for i, e in ids
        )
    if changed:
        session.connection().execute(
            update(ACCOUNTS).where(ACCOUNTS.c.id == bindparam("_id")), changed
        )
    report.created += len(new)
    report.updated += len(changed)
    audit.append(session, events, now=now)


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
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    pending: list[Row] = []
    for row in read_rows(text, report):
        pending.append(row)
        if len(pending) >= batch:
            _apply_batch(session, pending, report, actor, now)
            pending = []
    if pending:
        _apply_batch(session, pending, report, actor, now)
    if report.bad and not skip_bad:
        raise ImportAborted(_bad_rows_message(report.bad))
    return report


def _bad_rows_message(bad: list[tuple[int, str]], shown: int = 20) -> str:
    lines = [f"line {n}: {msg}" for n, msg in bad[:shown]]
    more = f"\n... and {len(bad) - shown} more" if len(bad) > shown else ""
    return (
        f"{len(bad)} bad row(s); nothing was imported (use --skip-bad to import the rest):\n"
        + "\n".join(lines)
        + more
    )
