"""Prometheus metrics: counters moved by the code paths (one call each), and gauges read
from the database when scraped.

Under gunicorn every worker is its own process, so `breachguard serve` turns on
prometheus_client's multiprocess mode (`enable_multiprocess`) before the workers fork:
each worker then writes its counters to files in a fresh folder and a scrape, whichever
worker answers it, adds them up. Anywhere else (tests, `flask run`) values live in memory.

The gauges are counted from the tables at scrape time rather than kept in memory, since
several workers and instances change those rows: the database is the one truth.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, or_, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from auth.db import Database
from auth.models import (
    Account,
    AccountStatus,
    Finding,
    FindingKind,
    FindingStatus,
    IpBan,
    Notice,
    NoticeStatus,
    table,
    utcnow,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
T = TypeVar("T")

REGISTRY = CollectorRegistry()  # ours only: no process metrics of the test runner

LOGIN_DECISIONS = Counter(
    "breachguard_login_decisions",
    "Sign-in decisions (first step) by outcome and surface (hook, page).",
    ["decision", "via"],
    registry=REGISTRY,
)
MFA_FAILURES = Counter(
    "breachguard_mfa_failures",
    "Second-factor failures counted against an account, by kind of proof.",
    ["kind"],
    registry=REGISTRY,
)
BREACH_SOURCE_SECONDS = Histogram(
    "breachguard_breach_source_seconds",
    "Time to ask one breach source about one password or e-mail.",
    ["source", "kind"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
BREACH_SOURCE_ERRORS = Counter(
    "breachguard_breach_source_errors",
    "Breach source calls that failed (timeouts, HTTP errors).",
    ["source"],
    registry=REGISTRY,
)
RESETS = Counter(
    "breachguard_resets",
    "Accounts whose password reset was forced, by who forced it (cli, policy, api_key).",
    ["via"],
    registry=REGISTRY,
)
# Labelled, like every counter here: a labelled child is made on first use, after
# enable_multiprocess, so it writes to the workers' files (an unlabelled one would not).
PASSWORD_HASHES = Counter(
    "breachguard_password_hashes",
    "Password hash verifications (argon2), by account: known, or unknown (a dummy hash).",
    ["account"],
    registry=REGISTRY,
)
PASSWORD_HASH_CPU = Counter(
    "breachguard_password_hash_cpu_seconds",
    "CPU time of the verifying threads inside argon2: what a flood costs in hashing, and "
    "so what throttling before hashing saves.",
    ["account"],
    registry=REGISTRY,
)

ALERTS = Counter(
    "breachguard_alerts",
    "Alerts for the security team by kind: new ones, and repeats grouped into an open one.",
    ["kind", "grouped"],
    registry=REGISTRY,
)
ALERT_DELIVERIES = Counter(
    "breachguard_alert_deliveries",
    "Alert pushes by channel (webhook, email) and outcome: sent, retrying, failed (for good).",
    ["channel", "outcome"],
    registry=REGISTRY,
)


# --- the instrumentation: one call per code path ------------------------------------------


def login_decided(decision: str, via: str) -> None:
    """`via` is "page", "hook" or "hook:<key id>": the surface only, not one series per key."""
    LOGIN_DECISIONS.labels(decision, via.split(":", 1)[0]).inc()


def mfa_failed(kind: str) -> None:
    MFA_FAILURES.labels(kind).inc()


def ask_source(source: str, kind: str, ask: Callable[..., T], *args: Any) -> T:
    """Call a breach source, timing it; a failure is counted, then raised on."""
    started = time.perf_counter()
    try:
        return ask(*args)
    except Exception:
        BREACH_SOURCE_ERRORS.labels(source).inc()
        raise
    finally:
        BREACH_SOURCE_SECONDS.labels(source, kind).observe(time.perf_counter() - started)


def password_hashed(cpu_seconds: float, *, known: bool) -> None:
    account = "known" if known else "unknown"
    PASSWORD_HASHES.labels(account).inc()
    PASSWORD_HASH_CPU.labels(account).inc(cpu_seconds)


def alert_raised(kind: str, *, new: bool) -> None:
    ALERTS.labels(kind, "no" if new else "yes").inc()


def alert_pushed(channel: str, outcome: str) -> None:
    ALERT_DELIVERIES.labels(channel, outcome).inc()


def resets_forced(via: str, count: int) -> None:
    if count:
        RESETS.labels(via).inc(count)


# --- gauges from the database ---------------------------------------------------------------

_N, _F, _A, _B = table(Notice), table(Finding), table(Account), table(IpBan)


class DatabaseGauges(Collector):
    """Queue depth, open findings, locked accounts and active bans, counted at scrape time."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "breachguard_database_up", "1 if the gauges below could be read from the database."
        )
        try:
            try:
                families = self._read()
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                # A pooled connection died with the server: the pool has dropped its
                # connections, so the first scrape after a recovery reads on a new one.
                families = self._read()
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[Metric]:
        now = utcnow()
        with self.db.connection() as conn:
            notices: dict[str, int] = dict(
                conn.execute(select(_N.c.status, func.count()).group_by(_N.c.status)).all()
            )
            findings: dict[str, int] = dict(
                conn.execute(
                    select(_F.c.kind, func.count())
                    .where(_F.c.status == FindingStatus.OPEN.value)
                    .group_by(_F.c.kind)
                ).all()
            )
            locked = conn.execute(
                select(func.count()).where(_A.c.status == AccountStatus.LOCKED.value)
            ).scalar_one()
            bans = conn.execute(
                select(func.count()).where(
                    _B.c.removed_at.is_(None),
                    or_(_B.c.expires_at.is_(None), _B.c.expires_at > now),
                )
            ).scalar_one()
        queue = GaugeMetricFamily(
            "breachguard_notices",
            "E-mail notices by status (queued is the backlog).",
            None,
            ["status"],
        )
        for status in NoticeStatus:
            queue.add_metric([status.value], notices.get(status.value, 0))
        open_ = GaugeMetricFamily(
            "breachguard_open_findings", "Open findings by kind of evidence.", None, ["kind"]
        )
        for kind in FindingKind:
            open_.add_metric([kind.value], findings.get(kind.value, 0))
        return [
            queue,
            open_,
            GaugeMetricFamily(
                "breachguard_locked_accounts", "Accounts locked by wrong passwords.", locked
            ),
            GaugeMetricFamily(
                "breachguard_active_ip_bans", "IP bans in force (manual and automatic).", bans
            ),
        ]


# --- exposition -------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def enable_multiprocess(folder: Path) -> None:
    """Before gunicorn forks: every worker writes its values under `folder` (made empty)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)
    # The value class is chosen when prometheus_client is imported, which the CLI did
    # before this point; labelled children (all of ours) are made on first use, after it.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


class RedisGauge(Collector):
    """Whether the Redis that holds the rate limits answered the scrape's ping."""

    def __init__(self, up: bool) -> None:
        self.up = up

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "breachguard_redis_up",
            "1 if the rate limits' Redis answers; 0: limits are counted per process meanwhile.",
        )
        gauge.add_metric([], 1 if self.up else 0)
        yield gauge


def exposition(db: Database, *, redis_up: bool | None = None) -> bytes:
    """The text a scrape gets: the counters (summed over workers) and the gauges;
    breachguard_redis_up when the service uses Redis."""
    if multiprocess_dir():
        counters = CollectorRegistry()
        multiprocess.MultiProcessCollector(counters)  # type: ignore[no-untyped-call]
    else:
        counters = REGISTRY
    gauges = CollectorRegistry()
    gauges.register(DatabaseGauges(db))
    if redis_up is not None:
        gauges.register(RedisGauge(redis_up))
    return generate_latest(counters) + generate_latest(gauges)
