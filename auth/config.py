"""Settings from the environment, with defaults that serve one machine with no setup.

The environment variable names are a contract (see README): renaming one breaks deployments.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from auth.activity.policy import ActivityPolicy, parse_policy
from auth.errors import InvalidInput

SOURCES = ("local", "hibp")
FAILURE_POLICIES = ("fail_open", "fail_closed")
LANGUAGES = ("fr", "en")
MFA_POLICIES = ("findings", "all")
LOG_FORMATS = ("json", "text")
# What the policy table may do with a new finding: force a reset, require a second factor
# at next sign-in, or nothing (the console shows it).
FINDING_ACTIONS = ("reset", "mfa", "none")
FINDING_KINDS = ("valid_credential", "password_in_breach", "email_in_breach")
DEFAULT_FINDING_POLICY = {
    "valid_credential": "reset",  # a leaked e-mail:password still signs in
    "password_in_breach": "reset",  # the password was seen in a corpus at sign-in
    "email_in_breach": "mfa",  # the address is in a breach: a stolen password must not do
}


@dataclass(frozen=True)
class Argon2Params:
    """argon2id cost; the defaults are OWASP's (m=19 MiB, t=2, p=1)."""

    time_cost: int = 2
    memory_cost: int = 19 * 1024
    parallelism: int = 1


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    """Who may tell the service a client's address (auth/web/proxy.py): the `count` proxies
    nearest to it, or the proxies whose address lies in one of `networks`. Neither (the
    default) trusts nobody: forwarding headers are ignored."""

    count: int = 0
    networks: tuple[Network, ...] = ()


@dataclass(frozen=True)
class Settings:
    instance_path: Path
    database_url: str
    secret_key: str
    redis_url: str | None = None
    breach_sources: tuple[str, ...] = ("local",)
    breach_failure_policy: str = "fail_open"
    hibp_api_key: str | None = None
    hibp_passwords_url: str = "https://api.pwnedpasswords.com"
    hibp_api_url: str = "https://haveibeenpwned.com/api/v3"
    hibp_timeout: float = 5.0
    argon2: Argon2Params = field(default_factory=Argon2Params)
    range_cache_seconds: int = 3600
    api_rate_limit: str = "600 per minute"
    secret_rate_limit: str = "30 per minute"
    ratelimit_key_prefix: str = "breachguard"
    log_level: str = "INFO"
    # Second factors.
    mfa_encryption_keys: tuple[str, ...] = ()  # first encrypts, all decrypt
    totp_issuer: str = "breachguard"
    totp_window: int = 1  # accepted steps either side of now
    mfa_max_failures: int = 5  # within mfa_failure_window, then the factor step locks
    mfa_failure_window: int = 15 * 60
    mfa_lock_seconds: int = 60  # first lock; doubles with each further lock
    mfa_ip_rate_limit: str = "20 per minute"
    login_rate_limit: str = "30 per minute"
    webauthn_rp_id: str = "localhost"
    webauthn_rp_name: str = "breachguard"
    webauthn_origins: tuple[str, ...] = ("http://localhost:5000",)
    webauthn_timeout: int = 120  # seconds a challenge lives
    # Forced resets and notices.
    public_url: str = "http://localhost:5000"  # links in e-mails; https: Secure cookies
    reset_token_minutes: int = 30  # a link asked for on /forgot, from the notice's sending
    reset_forced_token_hours: int = 72  # a forced reset's link, from the notice's sending
    reset_requires_mfa: bool = True  # a forced reset makes a second factor mandatory
    reset_batch: int = 5000  # accounts per transaction in a bulk reset
    default_language: str = "fr"
    smtp_url: str | None = None  # unset: .eml files in the outbox folder
    smtp_connections: int = 4  # notices sent at once, over as many SMTP connections
    mail_from: str = "breachguard <no-reply@localhost>"
    # Who to ask when a phone or key is lost (shown at the second step): an address, a phone
    # number or a page, as free text. Unset, the page tells people to ask their organisation.
    support_contact: str | None = None
    notice_max_attempts: int = 8
    forgot_rate_limit: str = "5 per minute"
    # The login flow (auth/signin/flow.py).
    mfa_required: str = "findings"  # or "all": every account, after mfa_grace_days
    mfa_grace_days: int = 14
    login_backoff_after: int = 5  # consecutive wrong passwords before delays start
    login_backoff_seconds: int = 1  # first delay; doubles with each further failure
    login_backoff_max: int = 15 * 60
    login_lock_after: int = 20  # consecutive wrong passwords that lock the account
    ip_ban_after: int = 50  # wrong passwords from one address within ip_ban_window...
    ip_ban_window: int = 10 * 60
    ip_ban_seconds: int = 60 * 60  # ...ban it this long (0: no automatic bans)
    continuation_seconds: int = 300  # between the password and the second factor
    session_lifetime: int = 12 * 3600  # a page session ends this long after sign-in...
    session_idle: int = 30 * 60  # ...or after this long without a request
    hook_rate_limit: str = "6000 per minute"  # per hook API key (the portal)
    # Continuous monitoring and the security console.
    finding_policy: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FINDING_POLICY))
    hibp_notify_token: str | None = None  # bearer token HIBP's callback must present
    hibp_rate_per_minute: int = 10  # the HIBP plan's limit (Pwned 1: 10 per minute)
    # HIBP's enterprise k-anonymity service (range subscriptions): not in the public API v3,
    # so no default; `monitor subscribe` refuses to run without it.
    hibp_kanon_url: str | None = None
    hibp_kanon_api_key: str | None = field(default=None, repr=False)
    log_format: str = "json"  # structured logs; "text" for a person at a terminal
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    # Alerts for the security team (auth/activity/alerts.py): grouped per cause, then pushed.
    security_alert_email: str | None = None
    alert_webhook_url: str | None = field(default=None, repr=False)  # may hold a token
    alert_webhook_secret: str | None = field(default=None, repr=False)  # HMAC-SHA256 key
    alert_group_seconds: int = 3600  # a repeat of an open alert's cause within this joins it
    exposure_retention_days: int = 90  # subject keys kept for `report exposure`
    # The activity guard's table (auth/activity/policy.py): ACTION.FIELD=VALUE over defaults.
    activity_policy: ActivityPolicy = field(default_factory=ActivityPolicy)
    # Sign-in risk (auth/activity): password spraying, credential stuffing, new networks.
    spray_accounts: int = 20  # accounts tried with one wrong password within spray_window
    spray_window: int = 3600
    spray_requires_mfa: bool = True  # the accounts a spray touched need a second factor
    stuffing_accounts: int = 10  # accounts tried from one network within stuffing_window...
    stuffing_window: int = 600
    stuffing_failure_percent: int = 80  # ...mostly failing: the network is banned
    new_sign_in_requires_mfa: bool = True  # a sign-in from a network the account never used

    @property
    def outbox_path(self) -> Path:
        return self.instance_path / "outbox"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, got {raw!r}") from None


def _between(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = _int(env, name, default)
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}, got {value}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    return _choices(env, name, "true" if default else "false", ("true", "false")) == "true"


def _choices(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, "").strip() or default
    if value not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _sources(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    unknown = [s for s in names if s not in SOURCES]
    if unknown or not names:
        raise InvalidInput(f"BREACH_SOURCES must list {', '.join(SOURCES)}; got {raw!r}")
    return names


def _public_url(raw: str) -> str:
    """The address people use, without a trailing slash: http(s)://host[:port][/path]."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise InvalidInput(
            f"PUBLIC_URL must be http:// or https:// and a host (e.g. https://portal.example.fr); "
            f"got {raw!r}"
        )
    return raw.strip().rstrip("/")


def _trusted_proxies(raw: str) -> TrustedProxies:
    """TRUSTED_PROXIES: how many proxies stand in front (`1`), or their networks
    (`127.0.0.1/32,10.0.0.0/8`; a bare address is one host)."""
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if len(items) == 1 and items[0].isdigit():
        return TrustedProxies(count=int(items[0]))
    networks = []
    for item in items:
        try:
            network = ipaddress.ip_network(item)
        except ValueError:
            raise InvalidInput(
                f"TRUSTED_PROXIES must be a number of proxies (e.g. 1) or their networks "
                f"(e.g. 127.0.0.1/32,10.0.0.0/8); {item!r} is neither (a network has no host "
                "bits set: 10.0.0.0/8, not 10.0.0.7/8)"
            ) from None
        if network.prefixlen == 0:  # a client could then name any address it likes
            raise InvalidInput(
                f"TRUSTED_PROXIES: {item} trusts every address; name the proxies' networks"
            )
        networks.append(network)
    return TrustedProxies(networks=tuple(networks))


def _finding_policy(raw: str) -> dict[str, str]:
    """`kind=action,...` over the defaults, e.g. `email_in_breach=reset`."""
    policy = dict(DEFAULT_FINDING_POLICY)
    for n, item in enumerate((i.strip() for i in raw.split(",") if i.strip()), 1):
        kind, sep, action = (p.strip() for p in item.partition("="))
        if not sep or kind not in FINDING_KINDS or action not in FINDING_ACTIONS:
            raise InvalidInput(
                f"FINDING_POLICY item {n} ({item!r}) must be KIND=ACTION with KIND one of "
                f"{', '.join(FINDING_KINDS)} and ACTION one of {', '.join(FINDING_ACTIONS)}"
            )
        policy[kind] = action
    return policy


def _new_aes_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def _keys(raw: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    for i, key in enumerate(keys, 1):
        try:
            ok = len(base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))) == 32
        except ValueError:
            ok = False
        if not ok:
            raise InvalidInput(
                f"MFA_ENCRYPTION_KEYS: key {i} is not 32 bytes in base64url "
                "(make one with: python -c 'import os,base64;"
                "print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
            )
    return keys


def instance_secret(
    instance_path: Path, filename: str, make: Callable[[], str] = lambda: secrets.token_urlsafe(48)
) -> str:
    """Read a generated secret from the instance folder, creating it (mode 0600) once."""
    path = instance_path / filename
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


# Every Redis client of the service: a Redis that does not answer costs a second, not a hang.
REDIS_TIMEOUTS: dict[str, int] = {"socket_connect_timeout": 1, "socket_timeout": 1}


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from environment variables (``os.environ`` by default)."""
    env = os.environ if env is None else env
    instance = Path(env.get("BREACHGUARD_INSTANCE") or "instance").resolve()
    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'breachguard.db'}"
    secret_key = env.get("SECRET_KEY") or instance_secret(instance, "secret_key")
    return Settings(
        instance_path=instance,
        database_url=database_url,
        secret_key=secret_key,
        redis_url=env.get("REDIS_URL") or None,
        breach_sources=_sources(env.get("BREACH_SOURCES", "local")),
        breach_failure_policy=_choices(env, "BREACH_FAILURE_POLICY", "fail_open", FAILURE_POLICIES),
        hibp_api_key=env.get("HIBP_API_KEY") or None,
        hibp_passwords_url=(env.get("HIBP_PASSWORDS_URL") or Settings.hibp_passwords_url).rstrip(
            "/"
        ),
        hibp_api_url=(env.get("HIBP_API_URL") or Settings.hibp_api_url).rstrip("/"),
        hibp_timeout=float(env.get("HIBP_TIMEOUT") or 5.0),
        argon2=Argon2Params(
            time_cost=_int(env, "ARGON2_TIME_COST", Argon2Params.time_cost),
            memory_cost=_int(env, "ARGON2_MEMORY_COST", Argon2Params.memory_cost),
            parallelism=_int(env, "ARGON2_PARALLELISM", Argon2Params.parallelism),
        ),
        range_cache_seconds=_int(env, "RANGE_CACHE_SECONDS", 3600),
        api_rate_limit=env.get("API_RATE_LIMIT") or Settings.api_rate_limit,
        secret_rate_limit=env.get("SECRET_RATE_LIMIT") or Settings.secret_rate_limit,
        ratelimit_key_prefix=env.get("RATELIMIT_KEY_PREFIX") or "breachguard",
        log_level=env.get("LOG_LEVEL") or "INFO",
        mfa_encryption_keys=_keys(
            env.get("MFA_ENCRYPTION_KEYS") or instance_secret(instance, "mfa_keys", _new_aes_key)
        ),
        totp_issuer=env.get("TOTP_ISSUER") or Settings.totp_issuer,
        totp_window=_int(env, "MFA_TOTP_WINDOW", Settings.totp_window),
        mfa_max_failures=_int(env, "MFA_MAX_FAILURES", Settings.mfa_max_failures),
        mfa_failure_window=_int(env, "MFA_FAILURE_WINDOW", Settings.mfa_failure_window),
        mfa_lock_seconds=_int(env, "MFA_LOCK_SECONDS", Settings.mfa_lock_seconds),
        mfa_ip_rate_limit=env.get("MFA_IP_RATE_LIMIT") or Settings.mfa_ip_rate_limit,
        login_rate_limit=env.get("LOGIN_RATE_LIMIT") or Settings.login_rate_limit,
        public_url=_public_url(env.get("PUBLIC_URL") or Settings.public_url),
        reset_token_minutes=_int(env, "RESET_TOKEN_MINUTES", Settings.reset_token_minutes),
        reset_forced_token_hours=_int(
            env, "RESET_FORCED_TOKEN_HOURS", Settings.reset_forced_token_hours
        ),
        reset_requires_mfa=_choices(env, "RESET_REQUIRES_MFA", "true", ("true", "false")) == "true",
        reset_batch=_int(env, "RESET_BATCH", Settings.reset_batch),
        default_language=_choices(env, "DEFAULT_LANGUAGE", "fr", LANGUAGES),
        smtp_url=env.get("SMTP_URL") or None,
        smtp_connections=_between(env, "SMTP_CONNECTIONS", Settings.smtp_connections, 1, 32),
        mail_from=env.get("MAIL_FROM") or Settings.mail_from,
        support_contact=(env.get("SUPPORT_CONTACT") or "").strip() or None,
        notice_max_attempts=_int(env, "NOTICE_MAX_ATTEMPTS", Settings.notice_max_attempts),
        forgot_rate_limit=env.get("FORGOT_RATE_LIMIT") or Settings.forgot_rate_limit,
        mfa_required=_choices(env, "MFA_REQUIRED", Settings.mfa_required, MFA_POLICIES),
        mfa_grace_days=_int(env, "MFA_GRACE_DAYS", Settings.mfa_grace_days),
        login_backoff_after=_int(env, "LOGIN_BACKOFF_AFTER", Settings.login_backoff_after),
        login_backoff_seconds=_int(env, "LOGIN_BACKOFF_SECONDS", Settings.login_backoff_seconds),
        login_backoff_max=_int(env, "LOGIN_BACKOFF_MAX", Settings.login_backoff_max),
        login_lock_after=_int(env, "LOGIN_LOCK_AFTER", Settings.login_lock_after),
        ip_ban_after=_int(env, "IP_BAN_AFTER", Settings.ip_ban_after),
        ip_ban_window=_int(env, "IP_BAN_WINDOW", Settings.ip_ban_window),
        ip_ban_seconds=_int(env, "IP_BAN_SECONDS", Settings.ip_ban_seconds),
        continuation_seconds=_int(env, "CONTINUATION_SECONDS", Settings.continuation_seconds),
        session_lifetime=_int(env, "SESSION_LIFETIME", Settings.session_lifetime),
        session_idle=_int(env, "SESSION_IDLE_TIMEOUT", Settings.session_idle),
        hook_rate_limit=env.get("HOOK_RATE_LIMIT") or Settings.hook_rate_limit,
        finding_policy=_finding_policy(env.get("FINDING_POLICY", "")),
        hibp_notify_token=env.get("HIBP_NOTIFY_TOKEN") or None,
        hibp_rate_per_minute=_int(env, "HIBP_RATE_PER_MINUTE", Settings.hibp_rate_per_minute),
        hibp_kanon_url=(env.get("HIBP_KANON_URL") or "").rstrip("/") or None,
        hibp_kanon_api_key=env.get("HIBP_KANON_API_KEY") or None,
        log_format=_choices(env, "LOG_FORMAT", Settings.log_format, LOG_FORMATS),
        trusted_proxies=_trusted_proxies(env.get("TRUSTED_PROXIES", "")),
        security_alert_email=(env.get("SECURITY_ALERT_EMAIL") or "").strip() or None,
        alert_webhook_url=(env.get("ALERT_WEBHOOK_URL") or "").strip() or None,
        alert_webhook_secret=env.get("ALERT_WEBHOOK_SECRET") or None,
        alert_group_seconds=_int(env, "ALERT_GROUP_SECONDS", Settings.alert_group_seconds),
        exposure_retention_days=_between(
            env, "EXPOSURE_RETENTION_DAYS", Settings.exposure_retention_days, 1, 3650
        ),
        activity_policy=parse_policy(env.get("ACTIVITY_POLICY", "")),
        spray_accounts=_between(env, "SPRAY_ACCOUNTS", Settings.spray_accounts, 2, 100_000),
        spray_window=_between(env, "SPRAY_WINDOW", Settings.spray_window, 60, 7 * 86400),
        spray_requires_mfa=_flag(env, "SPRAY_REQUIRES_MFA", Settings.spray_requires_mfa),
        stuffing_accounts=_between(
            env, "STUFFING_ACCOUNTS", Settings.stuffing_accounts, 2, 100_000
        ),
        stuffing_window=_between(env, "STUFFING_WINDOW", Settings.stuffing_window, 60, 86400),
        stuffing_failure_percent=_between(
            env, "STUFFING_FAILURE_PERCENT", Settings.stuffing_failure_percent, 1, 100
        ),
        new_sign_in_requires_mfa=_flag(
            env, "NEW_SIGN_IN_REQUIRES_MFA", Settings.new_sign_in_requires_mfa
        ),
        webauthn_rp_id=env.get("WEBAUTHN_RP_ID") or Settings.webauthn_rp_id,
        webauthn_rp_name=env.get("WEBAUTHN_RP_NAME") or Settings.webauthn_rp_name,
        webauthn_origins=tuple(
            o.strip().rstrip("/")
            for o in (env.get("WEBAUTHN_ORIGINS") or "http://localhost:5000").split(",")
            if o.strip()
        ),
    )
