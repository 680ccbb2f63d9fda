"""SQLite on a full disk, or opened read-only: a command says so in one line naming the file
and the cause, exits 2, and leaves the database as it was. The full disk is a real one: a
small tmpfs mounted for the test (root only; skipped elsewhere, failed under CI)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

IMPORT = ("corpus", "import", "--type", "passwords", "--no-monitor")
CLI = [sys.executable, "-c", "from auth.cli import main; main()"]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs: {done.stderr!r}")
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def corpus_file(path: Path, lines: int) -> Path:
    with path.open("w") as fh:
        for i in range(lines):
            digest = hashlib.sha1(str(i).encode()).hexdigest().upper()  # noqa: S324 - HIBP's scheme
            fh.write(f"{digest}:{i % 50 + 1}\n")
    return path


def fingerprint(db: Path) -> tuple[int, int, str]:
    with sqlite3.connect(db) as conn:
        passwords = conn.execute("SELECT COUNT(*) FROM pwned_passwords").fetchone()[0]
        breaches = conn.execute("SELECT COUNT(*) FROM breaches").fetchone()[0]
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
    return passwords, breaches, check


def test_a_full_disk_is_one_line_exit_2_and_the_database_unchanged(
    small_disk: Path, tmp_path: Path
) -> None:
    db = small_disk / "breachguard.db"
    env = {
        "BREACHGUARD_INSTANCE": str(small_disk / "instance"),
        "DATABASE_URL": f"sqlite:///{db}",
        "SECRET_KEY": "k" * 40,
        "LOG_FORMAT": "text",
    }
    assert run(env, "init").returncode == 0
    small = corpus_file(tmp_path / "small.txt", 1_000)
    assert (
        run(
            env, "corpus", "import", str(small), "--type", "passwords", "--breach", "Small"
        ).returncode
        == 0
    )
    before = fingerprint(db)

    big = corpus_file(tmp_path / "big.txt", 200_000)  # far more than 3 MiB once indexed
    result = run(env, *IMPORT, str(big), "--breach", "Big")

    assert result.returncode == 2, result.stderr[-3000:]
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr[-3000:]
    assert str(db) in lines[0] and "full" in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert fingerprint(db) == before


def test_a_read_only_database_is_one_line_exit_2(tmp_path: Path) -> None:
    db = tmp_path / "breachguard.db"
    env = {
        "BREACHGUARD_INSTANCE": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{db}",
        "SECRET_KEY": "k" * 40,
        "LOG_FORMAT": "text",
    }
    assert run(env, "init").returncode == 0
    before = fingerprint(db)
    read_only = {**env, "DATABASE_URL": f"sqlite:///file:{db}?mode=ro&uri=true"}

    small = corpus_file(tmp_path / "small.txt", 100)
    result = run(
        read_only, "corpus", "import", str(small), "--type", "passwords", "--breach", "Small"
    )

    assert result.returncode == 2, result.stderr[-3000:]
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "readonly" in lines[0], result.stderr[-3000:]
    assert fingerprint(db) == before
