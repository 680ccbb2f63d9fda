"""The wheel is the product: built, installed into a fresh virtualenv and run from a folder
outside the source tree, it serves what `make run` serves, and it puts nothing at the top of
site-packages but `auth` (issue #23)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import requests

import auth
from auth import migrate
from auth.db import make_engine
from tests.helpers_server import ServeProcess, closed_port
from tests.test_migrations import empty_url  # noqa: F401  (a fresh database under test)

ROOT = Path(__file__).resolve().parents[1]
# Never copied to the build: setuptools would pack a stale build/lib into the new wheel.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", ".*_cache", ".hypothesis", "__pycache__", "node_modules", "instance",
    "build", "dist", "*.egg-info",
)  # fmt: skip

# Python names .js after /etc/mime.types when there is one; browsers run either.
JAVASCRIPT = {"text/javascript", "application/javascript"}


def run(*command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


def files_under(folder: Path) -> set[str]:
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def new_user(home: Path, **config: str) -> dict[str, str]:
    """A shell with no PYTHONPATH and no breachguard configuration but `config`."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8", **config}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built as the README says (`python -m build`: an sdist, then the wheel from it), from a
    copy of the working tree, with this virtualenv's setuptools: nothing is downloaded."""
    work = tmp_path_factory.mktemp("build")
    shutil.copytree(ROOT, work / "source", ignore=NOT_SOURCES)
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", work / "dist", work / "source")
    (built,) = (work / "dist").glob("*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding the wheel alone. Its dependencies come from this project's
    site-packages, named in a .pth file written after the install (so pip does not take the
    editable install for this one); Python reads no .pth file of a folder named that way, so
    the editable install's path to the source tree stays out."""
    folder = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", "--without-pip", folder)
    python = folder / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel)
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip()
    Path(purelib, "project-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return folder


def test_the_wheel_holds_auth_alone_with_its_pages_migrations_and_corpus(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {name.split("/")[0] for name in names} == {
        "auth",
        f"breachguard-{auth.__version__}.dist-info",
    }
    expected = (
        {f"auth/{name}" for name in files_under(ROOT / "auth")}
        | {f"auth/migrations/{name}" for name in files_under(ROOT / "migrations")}
        | {f"auth/static/{name}" for name in files_under(ROOT / "static")}
    )
    # A new package of auth/ missing here belongs in pyproject.toml's [tool.setuptools] packages.
    assert sorted(expected - names) == []
    assert {"auth/static/style.css", "auth/static/webauthn.js"} <= names
    assert {"auth/migrations/env.py", "auth/migrations/script.py.mako"} <= names
    assert any(name.startswith("auth/sample/") for name in names)


def test_the_installed_wheel_runs_init_demo_and_serve_from_any_folder(
    venv: Path, tmp_path: Path
) -> None:
    """What `make run` does, with the installed command, from a folder that holds nothing."""
    here, env, command = tmp_path / "anywhere", new_user(tmp_path), venv / "bin" / "breachguard"
    here.mkdir()
    imported = run(
        venv / "bin" / "python", "-c", "import auth; print(auth.__file__)", cwd=here, env=env
    )
    assert Path(imported.strip()).is_relative_to(venv), "the source tree's auth was imported"
    run(command, "init", cwd=here, env=env)
    demo = run(command, "demo", cwd=here, env=env)
    assert "Sample breaches imported: CommonPasswords, SanteForum2021, Webmail2022" in demo
    assert (here / "instance").is_dir()

    server = ServeProcess(env, closed_port(), tmp_path / "serve.log", cli=command, cwd=here)
    try:
        server.wait_up()
        login = requests.get(server.base + "/login", timeout=5)
        assert login.status_code == 200
        assert '<link rel="stylesheet" href="/static/style.css">' in login.text
        for name, types in [("style.css", {"text/css"}), ("webauthn.js", JAVASCRIPT)]:
            answer = requests.get(f"{server.base}/static/{name}", timeout=5)
            assert answer.status_code == 200, name
            assert answer.headers["Content-Type"].split(";")[0] in types
            assert answer.content == (ROOT / "static" / name).read_bytes()
    finally:
        server.stop()


def test_the_installed_wheel_migrates_a_fresh_database(
    venv: Path,
    empty_url: str,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    """`breachguard init` runs the wheel's Alembic scripts (SQLite, or PostgreSQL when
    TEST_DATABASE_URL is set) up to the source tree's head."""
    env = new_user(
        tmp_path, BREACHGUARD_INSTANCE=str(tmp_path / "instance"), DATABASE_URL=empty_url
    )
    run(venv / "bin" / "breachguard", "init", cwd=tmp_path, env=env)
    engine = make_engine(empty_url)
    try:
        assert migrate.behind(engine) is None
    finally:
        engine.dispose()
