"""HibpClient, Checker and scan against a second breachguard serving HIBP's protocol on loopback.

`remote` is another breachguard with its own database and corpus, served by a real werkzeug
server in a thread; the client under test talks to it exactly as it would to HIBP.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from auth import accounts, apikeys, audit, migrate
from auth.audit import GENESIS
from auth.breach import scan as scanning
from auth.breach.checker import BreachStatus, Checker, HibpSource, LocalSource
from auth.breach.hibp import HibpClient, HibpSettings
from auth.breach.importer import Importer, Source
from auth.cli import main
from auth.config import Settings
from auth.db import Database
from auth.errors import BreachSourceError
from auth.models import Base, BreachKind, Finding, FindingKind
from auth.services import Services, build
from auth.web.factory import create_app
from tests.helpers_server import Served, closed_port, serving

ACTOR = audit.Actor.cli("tester")
PG_URL = os.environ.get("TEST_DATABASE_URL")


def sha1_hex(value: str) -> str:
    return hashlib.sha1(value.encode()).hexdigest().upper()  # noqa: S324 - HIBP's scheme


PASSWORD = sha1_hex("password")
SIBLING = PASSWORD[:5] + "00D4F6E8FA6EECAD2A3AA415EEC418D38EC"


@functools.cache
def two_emails_sharing_a_prefix() -> tuple[str, str]:
    seen: dict[str, str] = {}
    for i in range(200_000):
        email = f"nurse{i}@example.org"
        prefix = sha1_hex(email)[:6]
        if prefix in seen:
            return seen[prefix], email
        seen[prefix] = email
    raise AssertionError("no collision found")


# -- seeding -----------------------------------------------------------------------------------


def import_lines(registry: Services, tmp: Path, kind: BreachKind, name: str, body: str) -> None:
    path = tmp / f"{name}-{kind}.txt"
    path.write_text(body)
    with registry.db.session() as session:
        Importer(session, registry.hasher, ACTOR).run(Source(str(path)), kind, breach=name)


def add_account(
    registry: Services, email: str, now: dt.datetime, password: str | None = None
) -> int:
    with registry.db.session() as session:
        return accounts.create(
            session, email=email, password=password, hasher=registry.hasher, actor=ACTOR, now=now
        ).id


def make_key(registry: Services, role: str, now: dt.datetime) -> str:
    with registry.db.session() as session:
        return apikeys.create(session, role=role, name=role, actor=ACTOR, now=now).token


# -- the remote breachguard --------------------------------------------------------------------


@pytest.fixture(scope="session")
def _remote_template(_template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second migrated database: a SQLite file to copy, or a PostgreSQL database beside ours."""
    if not PG_URL:
        yield _template_db
        return
    url = make_url(PG_URL)
    name = f"{url.database}_remote"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    remote_url = url.set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(remote_url)
    yield remote_url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def remote_registry(
    _remote_template: str, settings: Settings, tmp_path: Path
) -> Iterator[Services]:
    if PG_URL:
        url = _remote_template
        db = Database(url)
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            conn.execute(
                text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :g)"), {"g": GENESIS}
            )
        db.dispose()
    else:
        target = tmp_path / "remote.db"
        shutil.copy(_remote_template, target)
        url = f"sqlite:///{target}"
    services = build(
        dataclasses.replace(
            settings,
            instance_path=tmp_path / "remote-instance",
            database_url=url,
            ratelimit_key_prefix=settings.ratelimit_key_prefix + "-remote",
        )
    )
    yield services
    services.close()


@pytest.fixture
def remote(remote_registry: Services, tmp_path: Path, now: dt.datetime) -> Iterator[Served]:
    """The remote breachguard, holding its own corpus, served on 127.0.0.1."""
    doctor_a, doctor_b = two_emails_sharing_a_prefix()
    import_lines(
        remote_registry,
        tmp_path,
        BreachKind.PASSWORDS,
        "RemotePw",
        f"{PASSWORD}:100\n{SIBLING}:7\n",
    )
    import_lines(
        remote_registry,
        tmp_path,
        BreachKind.EMAILS,
        "RemoteLeak",
        f"nurse@example.org\ndoctor@example.org\n{doctor_a}\n{doctor_b}\n",
    )
    app = create_app(registry=remote_registry)
    with serving(app) as served:
        yield served


@pytest.fixture
def remote_key(remote_registry: Services, now: dt.datetime) -> str:
    return make_key(remote_registry, "security", now)


@pytest.fixture
def local_corpus(registry: Services, tmp_path: Path) -> Services:
    import_lines(registry, tmp_path, BreachKind.PASSWORDS, "LocalPw", f"{PASSWORD}:5\n")
    import_lines(registry, tmp_path, BreachKind.EMAILS, "LocalLeak", "nurse@example.org\n")
    return registry


@pytest.fixture
def hibp(remote: Served, remote_key: str) -> Iterator[HibpClient]:
    client = remote.client(api_key=remote_key, cache_size=0)
    yield client
    client.close()


# -- HibpClient against breachguard ------------------------------------------------------------


def test_password_range_returns_the_real_entries_and_drops_the_padding(
    remote: Served, hibp: HibpClient
) -> None:
    found = hibp.password_range(PASSWORD[:5].lower())

    assert found == {PASSWORD[5:]: 100, SIBLING[5:]: 7}
    assert remote.paths == [f"/range/{PASSWORD[:5]}"]
    assert remote.recorder.headers[0]["add-padding"] == "true"


def test_an_empty_padded_range_is_an_empty_answer_not_an_error(hibp: HibpClient) -> None:
    assert hibp.password_range("12345") == {}


def test_email_range_parses_breachguard_json(hibp: HibpClient) -> None:
    nurse, doctor = sha1_hex("nurse@example.org"), sha1_hex("doctor@example.org")

    found = hibp.email_range(nurse[:6])

    assert found[nurse[6:]] == ("RemoteLeak",)
    assert hibp.email_range(doctor[:6])[doctor[6:]] == ("RemoteLeak",)


def test_an_empty_email_range_is_404_and_an_empty_answer(remote: Served, hibp: HibpClient) -> None:
    taken = {sha1_hex(e)[:6] for e in ("nurse@example.org", "doctor@example.org")}
    taken |= {sha1_hex(e)[:6] for e in two_emails_sharing_a_prefix()}
    empty = next(p for p in ("000000", "FFFFFF", "ABCDEF") if p not in taken)

    assert hibp.email_range(empty) == {}
    assert remote.paths == [f"/api/v3/breachedaccount/range/{empty}"]


def test_a_hook_key_is_refused_e_mail_ranges(
    remote: Served, remote_registry: Services, now: dt.datetime
) -> None:
    client = remote.client(api_key=make_key(remote_registry, "hook", now))

    with pytest.raises(BreachSourceError, match="403"):
        client.email_range(sha1_hex("nurse@example.org")[:6])
    client.close()


# -- Checker: local + HIBP ---------------------------------------------------------------------


def test_the_checker_combines_the_local_corpus_and_hibp(
    local_corpus: Services, hibp: HibpClient
) -> None:
    checker = Checker([LocalSource(local_corpus.db), HibpSource(hibp)])

    pw = checker.check_password("password")
    nurse = checker.check_email("  Nurse@Example.org ")
    doctor = checker.check_email("doctor@example.org")
    nobody = checker.check_email("nobody@example.org")
    fresh = checker.check_password("a password nobody has leaked")

    assert [(r.source, r.count) for r in pw.results] == [("local", 5), ("hibp", 100)]
    assert pw.count == 100 and not pw.refused_by_policy and pw.errors == ()
    assert nurse.breaches == ("LocalLeak", "RemoteLeak")
    assert doctor.breaches == ("RemoteLeak",)
    assert nobody.breaches == () and not nobody.exposed
    assert fresh.count == 0 and not fresh.exposed
    assert [c.status for c in (pw, nurse, doctor, nobody, fresh)] == [
        BreachStatus.EXPOSED,
        BreachStatus.EXPOSED,
        BreachStatus.EXPOSED,
        BreachStatus.NOT_FOUND,
        BreachStatus.NOT_FOUND,
    ]


def _down_client(api_key: str | None = "bg_x_y") -> HibpClient:
    port = closed_port()
    return HibpClient(
        HibpSettings(
            passwords_url=f"http://127.0.0.1:{port}",
            api_url=f"http://127.0.0.1:{port}/api/v3",
            api_key=api_key,
            connect_timeout=0.5,
            read_timeout=0.5,
            retries=1,
            backoff=0.05,
        )
    )


def test_fail_open_lets_decisions_go_on_when_hibp_is_down_and_lists_the_error(
    local_corpus: Services,
) -> None:
    client = _down_client()
    checker = Checker([LocalSource(local_corpus.db), HibpSource(client)], fail_closed=False)

    started = time.monotonic()
    pw = checker.check_password("password")
    email = checker.check_email("nurse@example.org")
    elapsed = time.monotonic() - started
    client.close()

    assert (
        not pw.refused_by_policy and not email.refused_by_policy
    )  # a sign-in or a new password goes on
    assert pw.status is email.status is BreachStatus.EXPOSED  # the local corpus saw both
    assert pw.count == 5
    assert email.breaches == ("LocalLeak",)
    assert len(pw.errors) == 1 and pw.errors[0].startswith("hibp: ")
    assert len(email.errors) == 1 and email.errors[0].startswith("hibp: ")
    assert elapsed < 5


@pytest.mark.parametrize("fail_closed", [False, True])
def test_a_check_nobody_saw_is_failed_when_hibp_is_down_under_either_policy(
    local_corpus: Services, fail_closed: bool
) -> None:
    client = _down_client()
    checker = Checker([LocalSource(local_corpus.db), HibpSource(client)], fail_closed=fail_closed)

    started = time.monotonic()
    pw = checker.check_password("a password nobody has leaked")
    email = checker.check_email("nobody@example.org")
    elapsed = time.monotonic() - started
    client.close()

    assert pw.status is email.status is BreachStatus.FAILED
    assert (
        pw.refused_by_policy is email.refused_by_policy is fail_closed
    )  # the policy: refuse a decision, or not
    assert pw.errors and email.errors
    assert elapsed < 5


def test_the_cli_uses_hibp_when_configured_and_exits_1_on_a_remote_only_hit(
    cli_env: dict[str, str], remote: Served, remote_key: str
) -> None:
    env = {
        **cli_env,
        "BREACH_SOURCES": "local,hibp",
        "HIBP_PASSWORDS_URL": remote.url,
        "HIBP_API_URL": f"{remote.url}/api/v3",
        "HIBP_API_KEY": remote_key,
    }
    runner = CliRunner(env=env)

    pw = runner.invoke(main, ["check", "password"], input="password\n")
    email = runner.invoke(main, ["check", "email", "doctor@example.org"])

    assert pw.exit_code == 1, pw.output
    assert "100" in pw.stdout
    assert email.exit_code == 1, email.output
    assert "RemoteLeak" in email.stdout
    assert f"/range/{PASSWORD[:5]}" in remote.paths


# -- scan: local corpus ------------------------------------------------------------------------


def _findings(registry: Services) -> list[Finding]:
    with registry.db.session() as session:
        return list(session.execute(select(Finding).order_by(Finding.id)).scalars())


def test_scan_records_an_email_in_breach_finding_once_and_bumps_last_seen(
    local_corpus: Services, now: dt.datetime
) -> None:
    nurse = add_account(local_corpus, "nurse@example.org", now)
    add_account(local_corpus, "clean@example.org", now)
    later = now + dt.timedelta(hours=3)

    with local_corpus.db.session() as session:
        first = scanning.scan(session, sources=("local",), hibp=None, actor=ACTOR, now=now)
    with local_corpus.db.session() as session:
        second = scanning.scan(session, sources=("local",), hibp=None, actor=ACTOR, now=later)

    assert (first.accounts, first.new_findings) == (2, 1)
    assert (second.accounts, second.new_findings) == (2, 0)
    [finding] = _findings(local_corpus)
    assert (finding.account_id, finding.kind, finding.source, finding.breach) == (
        nurse,
        FindingKind.EMAIL_IN_BREACH,
        "local",
        "LocalLeak",
    )
    assert finding.first_seen == now
    assert finding.last_seen == later


def _scan(runner: CliRunner, fmt: str) -> tuple[int, str, str]:
    result = runner.invoke(main, ["scan", "--format", fmt])
    return result.exit_code, result.stdout, result.stderr


def test_scan_cli_prints_parseable_json_csv_and_table_and_exits_1_with_findings(
    runner: CliRunner, local_corpus: Services, now: dt.datetime
) -> None:
    add_account(local_corpus, "Nurse@Example.org", now)
    add_account(local_corpus, "clean@example.org", now)

    code, out, err = _scan(runner, "json")
    assert code == 1, out + err
    assert "1 new finding" in err
    [record] = json.loads(out)
    assert record["email"] == "nurse@example.org"
    assert (record["kind"], record["source"], record["breach"]) == (
        "email_in_breach",
        "local",
        "LocalLeak",
    )
    first_seen = dt.datetime.fromisoformat(record["first_seen"])

    code, out, err = _scan(runner, "csv")
    assert code == 1
    assert "0 new finding" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["email"], r["kind"], r["breach"]) for r in rows] == [
        ("nurse@example.org", "email_in_breach", "LocalLeak")
    ]
    assert dt.datetime.fromisoformat(rows[0]["first_seen"]) == first_seen
    assert dt.datetime.fromisoformat(rows[0]["last_seen"]) >= first_seen

    code, out, _ = _scan(runner, "table")
    assert code == 1
    header, *body = out.splitlines()
    assert header.split() == ["EMAIL", "KIND", "SOURCE", "BREACH", "FIRST_SEEN", "LAST_SEEN"]
    assert [line.split()[:4] for line in body] == [
        ["nurse@example.org", "email_in_breach", "local", "LocalLeak"]
    ]
    assert len(_findings(local_corpus)) == 1


def test_scan_cli_exits_0_when_nothing_is_exposed(
    runner: CliRunner, local_corpus: Services, now: dt.datetime
) -> None:
    add_account(local_corpus, "clean@example.org", now)

    for fmt in ("table", "csv", "json"):
        code, out, err = _scan(runner, fmt)
        assert code == 0, out + err
    assert json.loads(_scan(runner, "json")[1]) == []
    assert _scan(runner, "csv")[1].splitlines() == ["email,kind,source,breach,first_seen,last_seen"]
    assert _findings(local_corpus) == []


# -- scan: HIBP --------------------------------------------------------------------------------


def test_a_hibp_scan_asks_once_per_email_prefix(
    registry: Services, remote: Served, hibp: HibpClient, now: dt.datetime
) -> None:
    doctor_a, doctor_b = two_emails_sharing_a_prefix()
    a = add_account(registry, doctor_a, now)
    b = add_account(registry, doctor_b, now)
    n = add_account(registry, "nurse@example.org", now)
    add_account(registry, "clean@example.org", now)
    expected_prefixes = {
        sha1_hex(e)[:6] for e in (doctor_a, "nurse@example.org", "clean@example.org")
    }

    with registry.db.session() as session:
        report = scanning.scan(session, sources=("hibp",), hibp=hibp, actor=ACTOR, now=now)
    with registry.db.session() as session:
        again = scanning.scan(session, sources=("hibp",), hibp=hibp, actor=ACTOR, now=now)

    asked = [p for p in remote.paths if p.startswith("/api/v3/breachedaccount/range/")]
    first_round = asked[: len(expected_prefixes)]
    assert len(asked) == 2 * len(expected_prefixes) == 2 * report.prefixes_asked
    assert sorted(first_round) == sorted(
        f"/api/v3/breachedaccount/range/{p}" for p in expected_prefixes
    )
    assert report.errors == []
    assert report.new_findings == 3 and again.new_findings == 0
    assert sorted((f.account_id, f.source, f.breach) for f in _findings(registry)) == sorted(
        [(a, "hibp", "RemoteLeak"), (b, "hibp", "RemoteLeak"), (n, "hibp", "RemoteLeak")]
    )


def test_a_hibp_scan_with_hibp_down_reports_errors_not_findings(
    registry: Services, now: dt.datetime
) -> None:
    add_account(registry, "nurse@example.org", now)
    client = _down_client()

    with registry.db.session() as session:
        report = scanning.scan(session, sources=("hibp",), hibp=client, actor=ACTOR, now=now)
    client.close()

    assert len(report.errors) == 1
    assert report.new_findings == 0
    assert report.failed_accounts == 1  # not checked, so not known to be clean


# -- check CLI ---------------------------------------------------------------------------------


def test_check_password_reads_stdin_and_exits_1_when_pwned(
    runner: CliRunner, local_corpus: Services
) -> None:
    pwned = runner.invoke(main, ["check", "password"], input="password\n")
    fresh = runner.invoke(main, ["check", "password"], input="not leaked anywhere\r\n")

    assert pwned.exit_code == 1, pwned.output
    assert "5" in pwned.stdout and "pwned" in pwned.stdout
    assert fresh.exit_code == 0, fresh.output
    assert "not found" in fresh.stdout


def test_check_password_never_takes_the_password_from_argv(
    runner: CliRunner, local_corpus: Services
) -> None:
    result = runner.invoke(main, ["check", "password", "password"], input="")

    assert result.exit_code == 2
    assert "pwned" not in result.output


def test_check_password_without_stdin_is_exit_2(runner: CliRunner, local_corpus: Services) -> None:
    result = runner.invoke(main, ["check", "password"], input="")

    assert result.exit_code == 2
    assert "standard input" in result.output


def test_check_email_exits_1_when_exposed_and_0_when_not(
    runner: CliRunner, local_corpus: Services
) -> None:
    exposed = runner.invoke(main, ["check", "email", " NURSE@example.org"])
    clean = runner.invoke(main, ["check", "email", "clean@example.org"])
    bad = runner.invoke(main, ["check", "email", "not-an-address"])

    assert exposed.exit_code == 1, exposed.output
    assert "LocalLeak" in exposed.stdout
    assert clean.exit_code == 0, clean.output
    assert "not found" in clean.stdout
    assert bad.exit_code == 2
    assert "not-an-address" in bad.output


# -- JSON API ----------------------------------------------------------------------------------


def post(client: FlaskClient, path: str, token: str | None, **kw: object) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.post(f"/api/v1/check/{path}", headers=headers, **kw)  # type: ignore[arg-type]
    return response.status_code, response.get_json(silent=True) or {}


def test_a_hook_key_checks_passwords_but_not_emails(
    client: FlaskClient, local_corpus: Services, now: dt.datetime
) -> None:
    hook = make_key(local_corpus, "hook", now)

    status, body = post(client, "password", hook, json={"password": "password"})
    assert status == 200
    assert (body["status"], body["pwned"], body["count"], body["failed"]) == (
        "exposed",
        True,
        5,
        False,
    )
    status, body = post(client, "password", hook, json={"password": "unleaked one"})
    assert (status, body["status"], body["pwned"], body["count"]) == (200, "not_found", False, 0)

    status, body = post(client, "email", hook, json={"email": "nurse@example.org"})
    assert status == 403
    assert "breaches" not in body


def test_a_security_key_checks_emails(
    client: FlaskClient, local_corpus: Services, now: dt.datetime
) -> None:
    key = make_key(local_corpus, "security", now)

    status, body = post(client, "email", key, json={"email": "Nurse@Example.org"})
    assert (status, body["breached"], body["breaches"]) == (200, True, ["LocalLeak"])
    status, body = post(client, "email", key, json={"email": "clean@example.org"})
    assert (status, body["breached"], body["breaches"]) == (200, False, [])
    status, body = post(client, "email", key, json={"email": "not-an-address"})
    assert (status, body.get("field")) == (400, "email")


def test_the_check_api_needs_a_valid_key(client: FlaskClient, local_corpus: Services) -> None:
    assert post(client, "password", None, json={"password": "password"})[0] == 401
    assert post(client, "password", "bg_nope_nope", json={"password": "password"})[0] == 401
    assert post(client, "email", None, json={"email": "nurse@example.org"})[0] == 401


@pytest.mark.parametrize(
    ("path", "field", "kw"),
    [
        ("password", "password", {"json": {"password": 123}}),
        ("password", "password", {"json": {"pasword": "typo"}}),
        ("password", "password", {"json": {"password": ""}}),
        ("password", "password", {"json": ["password"]}),
        ("password", "body", {"data": "{not json", "content_type": "application/json"}),
        ("email", "email", {"json": {"email": None}}),
        ("email", "email", {"data": "email=a@b.org"}),
    ],
    ids=["number", "typo", "empty", "list", "broken-json", "null", "form"],
)
def test_a_bad_body_is_400_naming_the_field(
    client: FlaskClient,
    local_corpus: Services,
    now: dt.datetime,
    path: str,
    field: str,
    kw: dict[str, object],
) -> None:
    key = make_key(local_corpus, "admin", now)

    status, body = post(client, path, key, **kw)

    assert status == 400
    assert body.get("field") == field
    assert field in body["error"]
