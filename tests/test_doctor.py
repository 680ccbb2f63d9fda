"""`breachguard doctor`: each finding is raised by a configuration that has the problem and
not by one without it (pure checks over Settings, no I/O); the probes make real
connections (a closed loopback port, the test database, a real redis-server, a real
aiosmtpd server); the command exits 1 on any error, 0 with warnings alone, 2 when the
configuration does not load, and never shows a secret."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auth import doctor, probes
from auth.cli import main
from auth.config import Argon2Params, Settings
from auth.doctor import Code, Origin, Secrets, Severity
from tests.conftest import PG_URL, REDIS_URL, TEST_MFA_KEY
from tests.helpers_server import closed_port
from tests.test_notify import Smtp, _auth_ok, _Collect, _server_tls, tls_files  # noqa: F401
from tests.test_redis_down import RedisServer, redis_server  # noqa: F401

FROM_ENV = Secrets(secret_key=Origin.ENVIRONMENT, mfa_keys=Origin.ENVIRONMENT)
FROM_FOLDER = Secrets(secret_key=Origin.INSTANCE, mfa_keys=Origin.INSTANCE)
LONG_SECRET = "s" * 48
SMTP_PASSWORD = "smtp-pass-do-not-show"


@pytest.fixture
def ready(tmp_path: Path) -> Settings:
    """A configuration ready for several hosts: nothing to say about it."""
    return Settings(
        instance_path=tmp_path / "instance",
        database_url="postgresql+psycopg://breachguard@db.example.internal/breachguard",
        secret_key=LONG_SECRET,
        redis_url="redis://redis.example.internal:6379/0",
        public_url="https://portal.example.fr",
        webauthn_rp_id="portal.example.fr",
        webauthn_origins=("https://portal.example.fr",),
        smtp_url=f"smtp://notices:{SMTP_PASSWORD}@mail.example.fr:587",
        mail_from="breachguard <no-reply@example.fr>",
        mfa_encryption_keys=(TEST_MFA_KEY,),
        security_alert_email="soc@example.fr",
    )


def codes(settings: Settings, secrets: Secrets = FROM_ENV) -> set[Code]:
    return {f.code for f in doctor.check(settings, secrets)}


def one(settings: Settings, code: Code, secrets: Secrets = FROM_ENV) -> doctor.Finding:
    [found] = [f for f in doctor.check(settings, secrets) if f.code is code]
    return found


def test_a_configuration_ready_for_several_hosts_has_no_finding(ready: Settings) -> None:
    assert doctor.check(ready, FROM_ENV) == []


# --- secrets and several hosts --------------------------------------------------------------


@pytest.mark.parametrize(
    ("database_url", "redis_url", "several"),
    [
        ("postgresql+psycopg://bg@db/bg", None, "DATABASE_URL names a database server"),
        ("sqlite:////srv/bg.db", "redis://r:6379/0", "REDIS_URL is set"),
        ("sqlite:////srv/bg.db", None, None),
    ],
)
def test_several_hosts_are_inferred_from_a_database_server_or_a_redis(
    ready: Settings, database_url: str, redis_url: str | None, several: str | None
) -> None:
    settings = dataclasses.replace(ready, database_url=database_url, redis_url=redis_url)
    assert doctor.shared_by(settings) == several


def test_secrets_from_the_instance_folder_are_errors_when_several_hosts_may_run(
    ready: Settings,
) -> None:
    secret = one(ready, Code.SECRET_KEY_IN_INSTANCE, FROM_FOLDER)
    keys = one(ready, Code.MFA_KEYS_IN_INSTANCE, FROM_FOLDER)

    assert secret.severity is keys.severity is Severity.ERROR
    assert str(ready.instance_path / "secret_key") in secret.problem
    assert [c.variable for c in secret.changes] == ["SECRET_KEY"]
    assert [c.variable for c in keys.changes] == ["MFA_ENCRYPTION_KEYS"]
    # the keys in use must be carried over, not replaced: the stored TOTP secrets need them
    assert str(ready.instance_path / "mfa_keys") in keys.changes[0].value
    for found in (secret, keys):
        text = found.problem + found.changes[0].value
        assert LONG_SECRET not in text and TEST_MFA_KEY not in text


def test_secrets_from_the_instance_folder_are_fine_on_one_host(ready: Settings) -> None:
    one_host = dataclasses.replace(ready, database_url="sqlite:////srv/bg.db", redis_url=None)
    assert not codes(one_host, FROM_FOLDER) & {
        Code.SECRET_KEY_IN_INSTANCE,
        Code.MFA_KEYS_IN_INSTANCE,
    }


def test_a_short_secret_key_from_the_environment_is_a_warning_that_shows_no_value(
    ready: Settings,
) -> None:
    short = dataclasses.replace(ready, secret_key="hunter2hunter2")
    found = one(short, Code.SECRET_KEY_SHORT)
    assert found.severity is Severity.WARNING and "hunter2" not in found.problem
    assert Code.SECRET_KEY_SHORT not in codes(ready)


def test_where_the_secrets_come_from_is_read_from_the_environment_without_making_files(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "not-yet"
    env = {"BREACHGUARD_INSTANCE": str(folder), "MFA_ENCRYPTION_KEYS": TEST_MFA_KEY}

    settings, secrets = doctor.settings_from(env)

    assert secrets == Secrets(secret_key=Origin.INSTANCE, mfa_keys=Origin.ENVIRONMENT)
    assert secrets.sources(settings.instance_path) == {
        "SECRET_KEY": str(folder / "secret_key"),
        "MFA_ENCRYPTION_KEYS": "the environment",
    }
    assert not folder.exists(), "the doctor generated a secret"


# --- addresses --------------------------------------------------------------------------------


def test_a_public_url_that_is_not_https_is_an_error(ready: Settings) -> None:
    plain = dataclasses.replace(
        ready,
        public_url="http://portal.example.fr",
        webauthn_origins=("http://portal.example.fr",),
    )
    found = one(plain, Code.PUBLIC_URL_NOT_HTTPS)
    assert found.severity is Severity.ERROR
    assert found.changes == (doctor.Change("PUBLIC_URL", "https://portal.example.fr"),)
    assert codes(plain) == {Code.PUBLIC_URL_NOT_HTTPS}


@pytest.mark.parametrize(
    "origins",
    [
        ("https://portal.example.fr",),
        ("https://PORTAL.example.fr:443/",),  # as a browser reports it: same origin
        ("https://other.example.fr", "https://portal.example.fr"),
    ],
)
def test_webauthn_origins_that_hold_the_public_origin_pass(
    ready: Settings, origins: tuple[str, ...]
) -> None:
    assert Code.WEBAUTHN_ORIGIN_MISMATCH not in codes(
        dataclasses.replace(ready, webauthn_origins=origins)
    )


@pytest.mark.parametrize(
    "origins",
    [
        ("http://localhost:5000",),
        ("https://portal.example.fr:8443",),
        ("http://portal.example.fr",),
    ],
)
def test_webauthn_origins_without_the_public_origin_are_an_error(
    ready: Settings, origins: tuple[str, ...]
) -> None:
    found = one(dataclasses.replace(ready, webauthn_origins=origins), Code.WEBAUTHN_ORIGIN_MISMATCH)
    assert found.severity is Severity.ERROR
    assert found.changes == (doctor.Change("WEBAUTHN_ORIGINS", "https://portal.example.fr"),)


def test_an_rp_id_must_be_the_public_host_or_a_domain_it_belongs_to(ready: Settings) -> None:
    assert Code.WEBAUTHN_RP_ID_MISMATCH not in codes(
        dataclasses.replace(ready, webauthn_rp_id="example.fr")
    )
    for wrong in ("localhost", "xample.fr", "other.example.fr"):
        found = one(dataclasses.replace(ready, webauthn_rp_id=wrong), Code.WEBAUTHN_RP_ID_MISMATCH)
        assert found.changes == (doctor.Change("WEBAUTHN_RP_ID", "portal.example.fr"),)


# --- the database, breach sources, hashing, mail -------------------------------------------


def test_sqlite_with_several_hosts_is_an_error(ready: Settings) -> None:
    shared = dataclasses.replace(ready, database_url="sqlite:////srv/bg.db")
    found = one(shared, Code.SQLITE_SEVERAL_HOSTS)
    assert found.severity is Severity.ERROR
    assert [c.variable for c in found.changes] == ["DATABASE_URL", "REDIS_URL"]
    assert found.changes[0].value.startswith("postgresql+psycopg://")
    alone = dataclasses.replace(shared, redis_url=None)
    assert Code.SQLITE_SEVERAL_HOSTS not in codes(alone)


def test_the_hibp_source_without_a_key_for_the_email_range_is_an_error(ready: Settings) -> None:
    keyless = dataclasses.replace(ready, breach_sources=("local", "hibp"))
    found = one(keyless, Code.HIBP_WITHOUT_KEY)
    assert found.severity is Severity.ERROR and found.changes[0].variable == "HIBP_API_KEY"
    assert not codes(dataclasses.replace(keyless, hibp_api_key="k" * 32))
    assert not codes(ready)  # the local corpus alone needs no key


@pytest.mark.parametrize(
    ("memory", "passes", "lanes", "meets"),
    [
        (19456, 2, 1, True),  # OWASP's first choice, the default
        (47104, 1, 1, True),
        (12288, 3, 1, True),
        (9216, 4, 1, True),
        (7168, 5, 1, True),
        (65536, 3, 4, True),
        (19455, 2, 1, False),
        (19456, 1, 1, False),
        (7168, 4, 1, False),
        (1024, 1, 1, False),  # the tests' cheap parameters
        (19456, 2, 0, False),
    ],
)
def test_argon2_parameters_below_owasp_are_an_error(
    ready: Settings, memory: int, passes: int, lanes: int, meets: bool
) -> None:
    params = Argon2Params(time_cost=passes, memory_cost=memory, parallelism=lanes)
    settings = dataclasses.replace(ready, argon2=params)
    assert doctor.meets_owasp(params) is meets
    assert (Code.ARGON2_BELOW_OWASP in codes(settings)) is not meets
    if not meets:
        found = one(settings, Code.ARGON2_BELOW_OWASP)
        assert found.severity is Severity.ERROR
        assert dict((c.variable, c.value) for c in found.changes) == {
            "ARGON2_MEMORY_COST": "19456",
            "ARGON2_TIME_COST": "2",
            "ARGON2_PARALLELISM": "1",
        }


def test_no_smtp_url_is_a_warning_and_a_sender_at_localhost_too(ready: Settings) -> None:
    outbox = one(dataclasses.replace(ready, smtp_url=None), Code.SMTP_NOT_SET)
    assert outbox.severity is Severity.WARNING
    assert str(ready.outbox_path) in outbox.problem
    local = dataclasses.replace(ready, mail_from="breachguard <no-reply@localhost>")
    assert one(local, Code.MAIL_FROM_LOCALHOST).severity is Severity.WARNING
    assert not codes(ready) & {Code.SMTP_NOT_SET, Code.MAIL_FROM_LOCALHOST}


def test_a_webhook_without_its_secret_is_an_error_and_alerts_going_nowhere_a_warning(
    ready: Settings,
) -> None:
    unsigned = dataclasses.replace(ready, alert_webhook_url="https://soc.example.fr/hook")
    assert one(unsigned, Code.ALERT_WEBHOOK_UNSIGNED).severity is Severity.ERROR
    nowhere = dataclasses.replace(ready, alert_webhook_url=None, security_alert_email=None)
    assert one(nowhere, Code.ALERTS_GO_NOWHERE).severity is Severity.WARNING
    assert not codes(ready) & {Code.ALERT_WEBHOOK_UNSIGNED, Code.ALERTS_GO_NOWHERE}


def test_errors_come_before_warnings(ready: Settings) -> None:
    both = dataclasses.replace(ready, smtp_url=None, public_url="http://portal.example.fr")
    severities = [f.severity for f in doctor.check(both, FROM_ENV)]
    assert severities == sorted(severities, key=lambda s: s is not Severity.ERROR)
    assert severities[0] is Severity.ERROR and severities[-1] is Severity.WARNING


# --- probes: real connections ---------------------------------------------------------------


def test_nothing_listening_is_reported_for_each_service_without_its_password() -> None:
    port = closed_port()
    found = [
        probes.probe_database(f"postgresql+psycopg://bg:db-pass-x@127.0.0.1:{port}/bg"),
        probes.probe_redis(f"redis://:redis-pass-x@127.0.0.1:{port}/0"),
        probes.probe_smtp(f"smtp://u:smtp-pass-x@127.0.0.1:{port}"),
    ]
    assert [p.ok for p in found] == [False, False, False]
    assert [p.target for p in found] == [
        f"127.0.0.1:{port}/bg",
        f"127.0.0.1:{port}/0",
        f"127.0.0.1:{port}",
    ]
    for p in found:
        assert "refused" in str(p.error).lower(), p.error
        assert "pass-x" not in str(p.error)
        finding = doctor.unreachable(p)
        assert finding.severity is Severity.ERROR and "pass-x" not in finding.problem


def test_the_test_database_answers_with_its_schema_current(database_url: str) -> None:
    assert probes.probe_database(database_url).ok


def test_a_sqlite_file_that_is_missing_or_empty_asks_for_init_and_is_not_created(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "none.db"
    found = probes.probe_database(f"sqlite:///{missing}")
    assert (found.ok, found.error) == (False, "no database file")
    assert "breachguard init" in doctor.unreachable(found).changes[0].value
    assert not missing.exists()

    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    found = probes.probe_database(f"sqlite:///{empty}")
    assert not found.ok and "schema is at revision None" in str(found.error)
    assert "breachguard init" in found.remedy


def test_a_real_redis_answers(redis_server: RedisServer) -> None:  # noqa: F811
    url = f"redis://127.0.0.1:{redis_server.port}/0"
    assert not probes.probe_redis(url).ok
    redis_server.start()
    assert probes.probe_redis(url).ok


def test_a_real_smtp_server_is_greeted_and_left_without_a_message() -> None:
    server = Smtp(_Collect())
    try:
        found = probes.probe_smtp(server.url)
    finally:
        server.controller.stop()
    assert found.ok, found.error
    assert server.messages == []


def test_the_smtp_probe_logs_in_as_the_service_would(tls_files: tuple[Path, Path]) -> None:  # noqa: F811
    server = Smtp(
        _Collect(),
        tls_context=_server_tls(tls_files),
        require_starttls=True,
        authenticator=_auth_ok,
    )
    base = f"127.0.0.1:{server.port}?cafile={tls_files[0]}"
    try:
        good = probes.probe_smtp(f"smtp://notices:p%40ss%3Aw%2Frd%25@{base}")
        wrong = probes.probe_smtp(f"smtp://notices:wrong-pass-x@{base}", timeout=1)
    finally:
        server.controller.stop()
    assert good.ok, good.error
    assert not wrong.ok and "wrong-pass-x" not in str(wrong.error)


# --- the command ----------------------------------------------------------------------------


def doctor_env(database_url: str, smtp_url: str, **overrides: str | None) -> dict[str, Any]:
    """A configuration ready to go live, on the test database: REDIS_URL only on PostgreSQL
    (with SQLite it would mean several hosts on one file)."""
    env: dict[str, str | None] = {
        "BREACHGUARD_INSTANCE": None,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL if PG_URL else None,
        "SECRET_KEY": LONG_SECRET,
        "MFA_ENCRYPTION_KEYS": TEST_MFA_KEY,
        "PUBLIC_URL": "https://portal.example.fr",
        "WEBAUTHN_RP_ID": "example.fr",
        "WEBAUTHN_ORIGINS": "https://portal.example.fr",
        "SMTP_URL": smtp_url,
        "MAIL_FROM": "breachguard <no-reply@example.fr>",
        "SECURITY_ALERT_EMAIL": "soc@example.fr",
        "BREACH_SOURCES": "local",
        "HIBP_API_KEY": None,
        "ARGON2_TIME_COST": None,
        "ARGON2_MEMORY_COST": None,
        "ARGON2_PARALLELISM": None,
    }
    env.update(overrides)
    return env


@pytest.fixture
def smtp_url() -> Iterator[str]:
    server = Smtp(_Collect())
    yield server.url
    server.controller.stop()


def test_a_configuration_ready_to_go_live_exits_0(
    database_url: str, smtp_url: str, tmp_path: Path
) -> None:
    env = doctor_env(database_url, smtp_url, BREACHGUARD_INSTANCE=str(tmp_path / "i"))
    result = CliRunner(env=env).invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.output
    assert "SECRET_KEY from the environment" in result.output
    assert "smtp 127.0.0.1:" in result.output and "answers" in result.output


def test_warnings_alone_exit_0(database_url: str, smtp_url: str, tmp_path: Path) -> None:
    env = doctor_env(database_url, smtp_url, SMTP_URL=None, BREACHGUARD_INSTANCE=str(tmp_path))
    result = CliRunner(env=env).invoke(main, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # stdout alone: a log line may reach stderr
    assert (report["ok"], report["errors"], report["warnings"]) == (True, 0, 1)
    assert [f["code"] for f in report["findings"]] == ["smtp_not_set"]


def test_errors_exit_1_and_the_json_names_each_variable_without_a_secret(
    database_url: str, smtp_url: str, tmp_path: Path
) -> None:
    port = closed_port()
    env = doctor_env(
        database_url,
        f"smtp://notices:{SMTP_PASSWORD}@127.0.0.1:{port}",
        BREACHGUARD_INSTANCE=str(tmp_path / "instance"),
        PUBLIC_URL="http://portal.example.fr",
        SECRET_KEY=None,  # from the instance folder
    )

    result = CliRunner(env=env).invoke(main, ["doctor", "--json"])

    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)  # stdout alone: a log line may reach stderr
    found = {f["code"]: f for f in report["findings"]}
    assert {"public_url_not_https", "smtp_unreachable"} <= found.keys()
    assert ("secret_key_in_instance" in found) is bool(PG_URL)  # several hosts on PostgreSQL
    assert found["public_url_not_https"]["severity"] == "error"
    assert found["public_url_not_https"]["change"] == [
        {"variable": "PUBLIC_URL", "value": "https://portal.example.fr"}
    ]
    assert found["smtp_unreachable"]["change"][0]["variable"] == "SMTP_URL"
    assert report["secrets"] == {
        "SECRET_KEY": str(tmp_path / "instance" / "secret_key"),
        "MFA_ENCRYPTION_KEYS": "the environment",
    }
    assert {s["service"]: s["ok"] for s in report["services"]}["smtp"] is False
    for secret in (SMTP_PASSWORD, TEST_MFA_KEY):
        assert secret not in result.output
    assert not (tmp_path / "instance").exists()


def test_a_configuration_that_does_not_load_exits_2(database_url: str, smtp_url: str) -> None:
    env = doctor_env(database_url, smtp_url, PUBLIC_URL="ftp://portal.example.fr")
    result = CliRunner(env=env).invoke(main, ["doctor"])
    assert result.exit_code == 2
    assert "PUBLIC_URL must be http:// or https://" in result.output
