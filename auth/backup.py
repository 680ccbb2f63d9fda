"""`breachguard backup`: a consistent copy of the SQLite database, taken while the service
runs. PostgreSQL has its own tools (pg_dump; README, Backups)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from auth.errors import InvalidInput

PG_DUMP = (
    "breachguard backup copies a SQLite database; on PostgreSQL use pg_dump -Fc "
    "(README, Backups), and keep SECRET_KEY and MFA_ENCRYPTION_KEYS with the dump"
)


@dataclass(frozen=True)
class Backup:
    source: Path
    target: Path
    size: int  # bytes


def sqlite_file(database_url: str) -> Path:
    """The SQLite file behind DATABASE_URL; InvalidInput for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise InvalidInput(PG_DUMP)
    if not url.database or url.database == ":memory:":
        raise InvalidInput("DATABASE_URL is an in-memory SQLite database: nothing to back up")
    return Path(url.database)


def backup_sqlite(source: Path, target: Path, *, force: bool = False) -> Backup:
    """Copy `source` into `target` with SQLite's online backup API, in one step: one read
    transaction sees one state of the database, and in WAL mode writers go on meanwhile
    (a copy in several steps restarts whenever another connection writes, and under a
    steady load may never end). The copy is written beside `target` and moved into place
    when complete, mode 0600 (it holds password hashes and encrypted TOTP secrets); an
    existing `target` is replaced only with `force`."""
    if not source.is_file():
        raise InvalidInput(f"no database file at {source}: run `breachguard init` first")
    if target.exists() and not force:
        raise InvalidInput(f"{target} exists: choose another name, or --force to replace it")
    if target.exists() and target.resolve() == source.resolve():
        raise InvalidInput(f"{target} is the database itself")
    if not target.parent.is_dir():
        raise InvalidInput(f"no folder {target.parent} to write {target.name} into")
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    partial = Path(name)
    try:
        _copy(source, partial)
        if force:
            os.replace(partial, target)
        else:
            os.link(partial, target)  # fails, rather than replace, a file made meanwhile
            partial.unlink()
        _sync_folder(target.parent)
    except FileExistsError:
        raise InvalidInput(f"{target} exists: choose another name, or --force") from None
    finally:
        partial.unlink(missing_ok=True)
    return Backup(source, target, target.stat().st_size)


def _copy(source: Path, target: Path) -> None:
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        writer = sqlite3.connect(target)
        try:
            reader.backup(writer)  # pages=-1: the whole database in one step
            # One self-contained file: a copy in WAL mode would need its -wal beside it.
            writer.execute("PRAGMA journal_mode=DELETE")
        finally:
            writer.close()
    finally:
        reader.close()
    with target.open("rb") as fh:
        os.fsync(fh.fileno())


def _sync_folder(folder: Path) -> None:
    """The new name survives a crash once the folder is synced too."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
