"""Backups that restore. `breachguard backup FILE` copies a SQLite database with SQLite's
online backup API; a copy put into a fresh instance passes `breachguard audit verify`,
also when it was taken while `breachguard serve` was answering sign-ins. On PostgreSQL the
command refuses and points at the README's recipe, which is run here as written: pg_dump
-Fc, pg_restore into a fresh database, `audit verify` on it."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from auth import accounts, apikeys, audit
from auth.cli import main
from auth.models import AuditEvent, utcnow
from auth.services import Services
from tests.helpers_server import ServeProcess, closed_port

EMAIL, PASSWORD = "claire.martin@example.fr", "correct horse battery staple"
INTACT = re.compile(r"audit trail intact: (\d+) events")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def events(registry: Services) -> int:
    with registry.db.session() as session:
        return int(session.execute(select(func.count()).select_from(AuditEvent)).scalar_one())


def some_history(registry: Services) -> None:
    with registry.db.session() as session:
        accounts.create(
            session,
            email=EMAIL,
            password=PASSWORD,
            hasher=registry.hasher,
            actor=audit.Actor.cli("t"),
            now=utcnow(),
        )
        apikeys.create(
            session, role="hook", name="portal", actor=audit.Actor.cli("t"), now=utcnow()
        )


def verify(cli_env: dict[str, str], database_url: str, instance: Path) -> int:
    """`breachguard audit verify` on a restored database; the number of events."""
    env = {**cli_env, "BREACHGUARD_INSTANCE": str(instance), "DATABASE_URL": database_url}
    result = CliRunner(env=env).invoke(main, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    found = INTACT.search(result.output)
    assert found, result.output
    return int(found.group(1))


# --- SQLite: breachguard backup -------------------------------------------------------------


@pytest.fixture
def sqlite_only(database_url: str) -> None:
    if not is_sqlite(database_url):
        pytest.skip("breachguard backup copies SQLite; PostgreSQL has pg_dump (below)")


def restore_sqlite(backup: Path, folder: Path) -> str:
    """As the README says: the file into a fresh instance folder, DATABASE_URL at it."""
    folder.mkdir()
    shutil.copy(backup, folder / "breachguard.db")
    return f"sqlite:///{folder / 'breachguard.db'}"


@pytest.mark.usefixtures("sqlite_only")
def test_a_backup_restored_into_a_fresh_instance_verifies(
    registry: Services, runner: CliRunner, cli_env: dict[str, str], tmp_path: Path
) -> None:
    some_history(registry)
    target = tmp_path / "breachguard-backup.db"

    result = runner.invoke(main, ["backup", str(target)])

    assert result.exit_code == 0, result.output
    assert f"to {target}" in result.output
    assert "MFA_ENCRYPTION_KEYS (now from the environment)" in result.output
    assert cli_env["SECRET_KEY"] not in result.output
    assert cli_env["MFA_ENCRYPTION_KEYS"] not in result.output
    assert target.stat().st_mode & 0o777 == 0o600  # password hashes, encrypted TOTP secrets
    with sqlite3.connect(target) as copy:  # one file: no -wal needed beside it
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    restored = restore_sqlite(target, tmp_path / "fresh")
    assert verify(cli_env, restored, tmp_path / "fresh") == events(registry) > 0


@pytest.mark.usefixtures("sqlite_only")
def test_an_existing_file_is_replaced_only_with_force(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "backup.db"
    target.write_bytes(b"last week's backup")

    refused = runner.invoke(main, ["backup", str(target)])

    assert refused.exit_code == 2
    assert "exists" in refused.output and "--force" in refused.output
    assert target.read_bytes() == b"last week's backup"

    replaced = runner.invoke(main, ["backup", "--force", str(target)])

    assert replaced.exit_code == 0, replaced.output
    assert target.read_bytes().startswith(b"SQLite format 3\x00")


@pytest.mark.usefixtures("sqlite_only")
def test_a_missing_folder_or_the_database_itself_is_refused(
    runner: CliRunner, database_url: str, tmp_path: Path
) -> None:
    missing = runner.invoke(main, ["backup", str(tmp_path / "no" / "such" / "b.db")])
    assert missing.exit_code == 2 and "no folder" in missing.output
    itself = runner.invoke(main, ["backup", "--force", str(make_url(database_url).database)])
    assert itself.exit_code == 2 and "the database itself" in itself.output


def test_on_postgresql_backup_refuses_and_points_at_pg_dump(tmp_path: Path) -> None:
    env = {
        "BREACHGUARD_INSTANCE": str(tmp_path / "instance"),
        "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/gone",
        "SECRET_KEY": "k" * 48,
    }
    result = CliRunner(env=env).invoke(main, ["backup", str(tmp_path / "b.db")])
    assert result.exit_code == 2
    assert "pg_dump -Fc" in result.output and "README" in result.output
    assert not (tmp_path / "b.db").exists()


# --- PostgreSQL: the README's recipe --------------------------------------------------------


@pytest.fixture
def pg_restore_into(database_url: str) -> Iterator[Callable[[Path], str]]:
    """pg_dump's file restored as the README says, into a fresh database; a second dump of
    the same test replaces the first's objects in that database (pg_restore --clean), as
    each database dropped costs PostgreSQL a checkpoint."""
    if is_sqlite(database_url) or shutil.which("pg_restore") is None:
        pytest.skip("the pg_dump recipe needs PostgreSQL (TEST_DATABASE_URL) and its tools")
    url = make_url(database_url)
    server = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or ""]
    name = f"bgrestore_{uuid.uuid4().hex[:10]}"
    created = threading.Event()

    def restore(dump: Path) -> str:
        again = ["--clean", "--if-exists"] if created.is_set() else []
        if not created.is_set():
            subprocess.run(["createdb", *server, name], check=True)
            created.set()
        subprocess.run(
            ["pg_restore", "--no-owner", *again, *server, "-d", name, str(dump)], check=True
        )
        return url.set(database=name).render_as_string(hide_password=False)

    yield restore
    if created.is_set():
        subprocess.run(["dropdb", *server, "--if-exists", name], check=False)


def pg_dump(database_url: str, dump: Path) -> None:
    libpq = make_url(database_url).set(drivername="postgresql")
    subprocess.run(
        ["pg_dump", "-Fc", "-f", str(dump), libpq.render_as_string(hide_password=False)],
        check=True,
    )


def test_the_readme_pg_dump_recipe_restores_a_database_that_verifies(
    registry: Services,
    database_url: str,
    cli_env: dict[str, str],
    pg_restore_into: Callable[[Path], str],
    tmp_path: Path,
) -> None:
    some_history(registry)
    pg_dump(database_url, tmp_path / "breachguard.dump")

    restored = pg_restore_into(tmp_path / "breachguard.dump")

    assert verify(cli_env, restored, tmp_path / "fresh") == events(registry) > 0


# --- while the service writes ---------------------------------------------------------------


@pytest.fixture
def live(registry: Services, cli_env: dict[str, str], tmp_path: Path) -> Iterator[ServeProcess]:
    """`breachguard serve` on the test database."""
    env = {**os.environ, **cli_env, "LOGIN_RATE_LIMIT": "100000 per minute"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = ServeProcess(env, closed_port(), tmp_path / "serve.log", "--workers", "2")
    try:
        server.wait_up()
        yield server
    finally:
        server.stop()


def test_backups_taken_while_serve_answers_sign_ins_restore_and_verify(
    registry: Services,
    database_url: str,
    cli_env: dict[str, str],
    live: ServeProcess,
    runner: CliRunner,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    some_history(registry)
    with registry.db.session() as session:
        key = apikeys.create(
            session, role="hook", name="flood", actor=audit.Actor.cli("t"), now=utcnow()
        ).token
    if is_sqlite(database_url):  # a copy long enough for sign-ins to commit while it runs
        with sqlite3.connect(str(make_url(database_url).database)) as db:
            db.execute("CREATE TABLE filler (b BLOB)")
            db.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
                "INSERT INTO filler SELECT randomblob(1000) FROM n"
            )
    stop = threading.Event()
    statuses: list[int] = []

    def sign_ins() -> None:
        with requests.Session() as http:
            while not stop.is_set():
                answer = http.post(
                    f"{live.base}/api/v1/hook/login",
                    json={"email": EMAIL, "password": PASSWORD, "ip": "192.0.2.7"},
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=10,
                )
                statuses.append(answer.status_code)

    flood = [threading.Thread(target=sign_ins) for _ in range(4)]
    for thread in flood:
        thread.start()
    counts, during = [], []
    try:
        for n in range(2):
            before = len(statuses)
            while len(statuses) < before + 20:  # sign-ins recorded since the last copy
                stop.wait(0.01)
            started = len(statuses)
            copy = take_backup(runner, database_url, tmp_path / f"backup{n}", request)
            during.append(len(statuses) - started)
            counts.append(verify(cli_env, copy, tmp_path / f"fresh{n}"))
    finally:
        stop.set()
        for thread in flood:
            thread.join(timeout=20)

    assert set(statuses) == {200}, "a sign-in failed while a backup was taken"
    assert sum(during) > 0, "no sign-in was answered while a backup was taken"
    assert counts == sorted(counts) and len(set(counts)) == 2, counts
    assert counts[-1] <= events(registry)


def take_backup(
    runner: CliRunner, database_url: str, folder: Path, request: pytest.FixtureRequest
) -> str:
    """SQLite: `breachguard backup`, then the file into a fresh instance; PostgreSQL: the
    README's recipe. The restored database's URL."""
    folder.mkdir()
    if is_sqlite(database_url):
        result = runner.invoke(main, ["backup", str(folder / "backup.db")])
        assert result.exit_code == 0, result.output
        return restore_sqlite(folder / "backup.db", folder / "instance")
    restore: Callable[[Path], str] = request.getfixturevalue("pg_restore_into")
    pg_dump(database_url, folder / "backup.dump")
    return restore(folder / "backup.dump")
