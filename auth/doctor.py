"""`breachguard doctor`: a configuration checked before it goes live.

The checks are pure functions over Settings and Secrets (where SECRET_KEY and
MFA_ENCRYPTION_KEYS come from); only the probes (auth/probes.py) touch the network.
Each finding names the variable to change and a value to give it, never a secret's value.

Several hosts. The doctor sees one host, so it infers the others from what the
configuration shares: a DATABASE_URL that names a database server (anything but SQLite) or
a REDIS_URL is there to be reached by several hosts, so a configuration with either is
judged as one that several hosts may run. Two things then become errors: secrets that each
host would generate into its own instance folder, and a SQLite file (one host's disk).
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from auth.config import Argon2Params, Settings, load_settings
from auth.probes import PROBE_SECONDS, Probe, Service, probe


class Severity(enum.StrEnum):
    ERROR = "error"  # the configuration must not go live as it is: exit status 1
    WARNING = "warning"  # it works, but probably not as meant


class Code(enum.StrEnum):
    SECRET_KEY_IN_INSTANCE = "secret_key_in_instance"
    MFA_KEYS_IN_INSTANCE = "mfa_keys_in_instance"
    SECRET_KEY_SHORT = "secret_key_short"
    PUBLIC_URL_NOT_HTTPS = "public_url_not_https"
    WEBAUTHN_ORIGIN_MISMATCH = "webauthn_origin_mismatch"
    WEBAUTHN_RP_ID_MISMATCH = "webauthn_rp_id_mismatch"
    SQLITE_SEVERAL_HOSTS = "sqlite_several_hosts"
    HIBP_WITHOUT_KEY = "hibp_without_key"
    ARGON2_BELOW_OWASP = "argon2_below_owasp"
    SMTP_NOT_SET = "smtp_not_set"
    MAIL_FROM_LOCALHOST = "mail_from_localhost"
    ALERT_WEBHOOK_UNSIGNED = "alert_webhook_unsigned"
    ALERTS_GO_NOWHERE = "alerts_go_nowhere"
    DATABASE_NOT_READY = "database_not_ready"
    REDIS_UNREACHABLE = "redis_unreachable"
    SMTP_UNREACHABLE = "smtp_unreachable"


@dataclass(frozen=True)
class Change:
    variable: str
    value: str  # a value to give it, or how to make one; never a secret


@dataclass(frozen=True)
class Finding:
    code: Code
    severity: Severity
    problem: str
    changes: tuple[Change, ...]


class Origin(enum.StrEnum):
    ENVIRONMENT = "environment"
    INSTANCE = "instance folder"


@dataclass(frozen=True)
class Secrets:
    """Where the service's secrets come from (load_settings falls back to generated files)."""

    secret_key: Origin
    mfa_keys: Origin

    def sources(self, instance: Path) -> dict[str, str]:
        """Each secret's variable and where it comes from (a file's path, never a value)."""

        def where(origin: Origin, file: str) -> str:
            return "the environment" if origin is Origin.ENVIRONMENT else str(instance / file)

        return {
            "SECRET_KEY": where(self.secret_key, "secret_key"),
            "MFA_ENCRYPTION_KEYS": where(self.mfa_keys, "mfa_keys"),
        }


def secrets_from(env: Mapping[str, str]) -> Secrets:
    def origin(name: str) -> Origin:
        return Origin.ENVIRONMENT if env.get(name) else Origin.INSTANCE

    return Secrets(secret_key=origin("SECRET_KEY"), mfa_keys=origin("MFA_ENCRYPTION_KEYS"))


# Stand-ins for the secrets the instance folder would hold: the doctor reads no secret it
# does not need and creates no file (load_settings would generate them).
_STAND_INS = {
    "SECRET_KEY": "doctor-stand-in",
    "MFA_ENCRYPTION_KEYS": base64.urlsafe_b64encode(bytes(32)).decode("ascii"),
}


def settings_from(env: Mapping[str, str]) -> tuple[Settings, Secrets]:
    """The settings the service would run with, and where their secrets come from.
    Raises InvalidInput, naming the variable, for a value the service would refuse."""
    found = secrets_from(env)
    stand_ins = {name: value for name, value in _STAND_INS.items() if not env.get(name)}
    return load_settings({**env, **stand_ins}), found


def shared_by(settings: Settings) -> str | None:
    """Why several hosts may run this configuration (see the module's docstring), or None."""
    if not _is_sqlite(settings.database_url):
        return "DATABASE_URL names a database server"
    if settings.redis_url:
        return "REDIS_URL is set"
    return None


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


# --- the checks: pure ----------------------------------------------------------------------

Check = Callable[[Settings, Secrets], Iterable[Finding]]
NEW_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
NEW_AES_KEY = (
    "python -c 'import os, base64; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
)


def check_secrets(settings: Settings, secrets: Secrets) -> Iterable[Finding]:
    several = shared_by(settings)
    where = secrets.sources(settings.instance_path)
    if several and secrets.secret_key is Origin.INSTANCE:
        yield Finding(
            Code.SECRET_KEY_IN_INSTANCE,
            Severity.ERROR,
            f"SECRET_KEY comes from {where['SECRET_KEY']} and {several}: a host without "
            "that file makes its own key, and refuses the sessions and reset links the "
            "others sign",
            (Change("SECRET_KEY", f"one value on every host: that file's, or {NEW_SECRET}"),),
        )
    if several and secrets.mfa_keys is Origin.INSTANCE:
        yield Finding(
            Code.MFA_KEYS_IN_INSTANCE,
            Severity.ERROR,
            f"MFA_ENCRYPTION_KEYS come from {where['MFA_ENCRYPTION_KEYS']} and {several}: a host "
            "without that file makes its own key, and cannot read the TOTP secrets the "
            "others stored",
            (
                Change(
                    "MFA_ENCRYPTION_KEYS",
                    f"the contents of {where['MFA_ENCRYPTION_KEYS']} on every host (a new "
                    "key would leave the stored TOTP secrets unreadable); with no such file "
                    f"yet, {NEW_AES_KEY}",
                ),
            ),
        )
    if secrets.secret_key is Origin.ENVIRONMENT and len(settings.secret_key) < 32:
        yield Finding(
            Code.SECRET_KEY_SHORT,
            Severity.WARNING,
            f"SECRET_KEY (from the environment) has {len(settings.secret_key)} characters: "
            "a short key can be guessed offline from one signed cookie",
            (Change("SECRET_KEY", NEW_SECRET),),
        )


def check_public_url(settings: Settings, secrets: Secrets) -> Iterable[Finding]:
    parts = urlsplit(settings.public_url)
    if parts.scheme != "https":
        yield Finding(
            Code.PUBLIC_URL_NOT_HTTPS,
            Severity.ERROR,
            f"PUBLIC_URL is {settings.public_url}: reset links in e-mails travel in clear, "
            "the session cookie is not Secure, and browsers refuse security keys and passkeys "
            "on plain http anywhere but localhost",
            (Change("PUBLIC_URL", f"https://{parts.hostname}{parts.path}"),),
        )


def origin_of(url: str) -> str:
    """The origin a browser reports for a page under `url`: scheme://host[:port], the
    host in lower case and the scheme's default port left out."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    port = parts.port
    if port is None or port == {"http": 80, "https": 443}.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def check_webauthn(settings: Settings, secrets: Secrets) -> Iterable[Finding]:
    public = origin_of(settings.public_url)
    if public not in {origin_of(o) for o in settings.webauthn_origins}:
        yield Finding(
            Code.WEBAUTHN_ORIGIN_MISMATCH,
            Severity.ERROR,
            f"WEBAUTHN_ORIGINS ({', '.join(settings.webauthn_origins)}) does not hold "
            f"PUBLIC_URL's origin {public}: every security key and passkey ceremony on "
            "the pages people use is refused",
            (Change("WEBAUTHN_ORIGINS", public),),
        )
    host = (urlsplit(settings.public_url).hostname or "").lower()
    rp_id = settings.webauthn_rp_id.lower()
    if host != rp_id and not host.endswith("." + rp_id):
        yield Finding(
            Code.WEBAUTHN_RP_ID_MISMATCH,
            Severity.ERROR,
            f"WEBAUTHN_RP_ID is {settings.webauthn_rp_id}, which is neither PUBLIC_URL's "
            f"host {host} nor a domain it belongs to: browsers refuse to register a key",
            (Change("WEBAUTHN_RP_ID", host),),
        )


def check_database(settings: Settings, secrets: Secrets) -> Iterable[Finding]:
    if _is_sqlite(settings.database_url) and settings.redis_url:
        yield Finding(
            Code.SQLITE_SEVERAL_HOSTS,
            Severity.ERROR,
            "DATABASE_URL is a SQLite file and REDIS_URL is set, which is there for several "
            "hosts: each would have its own database (accounts, findings, resets, audit "
            "trail). On one host REDIS_URL is not needed: each worker enforces its share "
            "of the limits",
            (
                Change("DATABASE_URL", "postgresql+psycopg://breachguard@db-host/breachguard"),
                Change("REDIS_URL", "unset, if this is the only host"),
            ),
        )


def check_hibp(settings: Settings, secrets: Secrets) -> Iterable[Finding]:
    if "hibp" in settings.breach_sources and not settings.hibp_api_key:
        yield Finding(
            Code.HIBP_WITHOUT_KEY,
            Severity.ERROR,
            f"BREACH_SOURCES has hibp but HIBP_API_KEY is unset: the e-mail range "
            f"({settings.hibp_api_url}) answers 401 to every e-mail check, and "
            f"{settings.breach_failure_policy} decides what that means",
            (Change("HIBP_API_KEY", "the key of your HIBP subscription (or remove hibp)"),),
        )


# OWASP's argon2id minimums (Password Storage Cheat Sheet): memory in KiB and passes,
# one lane; any one of them will do.
OWASP_ARGON2: tuple[tuple[int, int], ...] = (
    (47104, 1),
    (19456, 2),
    (12288, 3),
    (9216, 4),
    (7168, 5),
)


def meets_owasp(params: Argon2Params) -> bool:
    return params.parallelism >= 1 and any(
        params.memory_cost >= memory and params.time_cost >= passes
        for memory, passes in OWASP_ARGON2
    )


def check_argon2(settings: Settings, secrets: Secrets) -> Iterable[Finding]:
    params = settings.argon2
    if not meets_owasp(params):
        options = ", ".join(f"m={m} with t={t}" for m, t in OWASP_ARGON2)
        yield Finding(
            Code.ARGON2_BELOW_OWASP,
            Severity.ERROR,
            f"argon2id at m={params.memory_cost} KiB, t={params.time_cost}, "
            f"p={params.parallelism} costs an attacker less per guess than OWASP's minimum "
            f"(one of: {options}; p=1); hashes made now are upgraded at the next sign-in "
            "once the cost is raised",
            (
                Change("ARGON2_MEMORY_COST", str(Argon2Params.memory_cost)),
                Change("ARGON2_TIME_COST", str(Argon2Params.time_cost)),
                Change("ARGON2_PARALLELISM", str(Argon2Params.parallelism)),
            ),
        )


def check_mail(settings: Settings, secrets: Secrets) -> Iterable[Finding]:
    if not settings.smtp_url:
        yield Finding(
            Code.SMTP_NOT_SET,
            Severity.WARNING,
            f"SMTP_URL is unset: notices and their reset links are written to "
            f"{settings.outbox_path}, and nobody receives them",
            (Change("SMTP_URL", "smtp://user:password@mail-host:587"),),
        )
    elif settings.mail_from.rstrip(">").lower().endswith("@localhost"):
        yield Finding(
            Code.MAIL_FROM_LOCALHOST,
            Severity.WARNING,
            f"MAIL_FROM is {settings.mail_from}: mail servers refuse or file as spam a "
            "sender at localhost",
            (Change("MAIL_FROM", "breachguard <no-reply@your-domain>"),),
        )


def check_alerts(settings: Settings, secrets: Secrets) -> Iterable[Finding]:
    if settings.alert_webhook_url and not settings.alert_webhook_secret:
        yield Finding(
            Code.ALERT_WEBHOOK_UNSIGNED,
            Severity.ERROR,
            "ALERT_WEBHOOK_URL is set without ALERT_WEBHOOK_SECRET: alerts cannot be signed, "
            "so they wait in the queue and are never pushed",
            (Change("ALERT_WEBHOOK_SECRET", NEW_SECRET),),
        )
    if not settings.alert_webhook_url and not settings.security_alert_email:
        yield Finding(
            Code.ALERTS_GO_NOWHERE,
            Severity.WARNING,
            "neither ALERT_WEBHOOK_URL nor SECURITY_ALERT_EMAIL is set: alerts (a robot "
            "blocked, a password spray) are only seen in the console",
            (Change("SECURITY_ALERT_EMAIL", "soc@your-domain"),),
        )


CHECKS: tuple[Check, ...] = (
    check_secrets,
    check_public_url,
    check_webauthn,
    check_database,
    check_hibp,
    check_argon2,
    check_mail,
    check_alerts,
)


def check(settings: Settings, secrets: Secrets) -> list[Finding]:
    """Every finding, errors first."""
    found = [finding for rule in CHECKS for finding in rule(settings, secrets)]
    return sorted(found, key=lambda f: f.severity is not Severity.ERROR)


_PROBE_FINDINGS = {
    Service.DATABASE: (Code.DATABASE_NOT_READY, "DATABASE_URL", "the database"),
    Service.REDIS: (Code.REDIS_UNREACHABLE, "REDIS_URL", "Redis"),
    Service.SMTP: (Code.SMTP_UNREACHABLE, "SMTP_URL", "the SMTP server"),
}


def unreachable(found: Probe) -> Finding:
    """A failed probe as a finding: what did not answer, and what to look at."""
    code, variable, name = _PROBE_FINDINGS[found.service]
    remedy = found.remedy or "an address this host reaches, with credentials it accepts"
    return Finding(
        code,
        Severity.ERROR,
        f"{variable}: {name} at {found.target} is not ready: {found.error}",
        (Change(variable, remedy),),
    )


@dataclass(frozen=True)
class Report:
    secrets: Secrets
    shared_by: str | None  # why several hosts may run it (see the module's docstring)
    probes: tuple[Probe, ...]
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> int:
        return sum(f.severity is Severity.ERROR for f in self.findings)


def examine(settings: Settings, secrets: Secrets, *, timeout: int = PROBE_SECONDS) -> Report:
    """The checks, then the probes (every failed one an error)."""
    probes = tuple(probe(settings, timeout=timeout))
    findings = [*check(settings, secrets), *(unreachable(p) for p in probes if not p.ok)]
    findings.sort(key=lambda f: f.severity is not Severity.ERROR)
    return Report(secrets, shared_by(settings), probes, tuple(findings))
