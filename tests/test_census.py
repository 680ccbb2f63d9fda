"""Second-factor coverage: counted from confirmed factors, kept once a day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from auth import accounts, audit
from auth.db import Database
from auth.mfa import census
from auth.models import FactorKind, MfaFactor, utcnow
from auth.services import Services
from tests.totp_helpers import enroll_totp

DAY = dt.date(2026, 11, 28)
NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)


def _accounts(registry: Services, n: int) -> list[int]:
    with registry.db.session() as s:
        ids = [
            accounts.create(
                s,
                email=f"p{i}@example.org",
                hasher=registry.hasher,
                actor=audit.Actor.cli("test"),
                now=utcnow(),
            ).id
            for i in range(n)
        ]
    return ids


def _webauthn(registry: Services, account_id: int, *, confirmed: bool = True) -> None:
    with registry.db.session() as s:
        s.add(
            MfaFactor(
                account_id=account_id,
                kind=FactorKind.WEBAUTHN,
                name="Key",
                credential_id=f"cred-{account_id}-{confirmed}".encode(),
                public_key=b"pk",
                confirmed_at=utcnow() if confirmed else None,
            )
        )


def test_each_account_is_counted_once_by_the_factors_it_has_confirmed(registry: Services) -> None:
    a, b, c, d = _accounts(registry, 4)
    enroll_totp(registry, a)
    _webauthn(registry, b)
    enroll_totp(registry, c)
    _webauthn(registry, c)
    _webauthn(registry, d, confirmed=False)  # a pending registration covers nothing
    with registry.db.session() as s:
        figures = census.current(s, DAY)
    assert (figures.accounts, figures.none, figures.totp, figures.webauthn, figures.both) == (
        4,
        1,
        1,
        1,
        1,
    )
    assert figures.share == 0.75


def test_a_snapshot_keeps_the_day_and_a_later_count_that_day_replaces_it(
    registry: Services,
) -> None:
    a, _ = _accounts(registry, 2)
    with registry.db.session() as s:
        census.snapshot(s, DAY - dt.timedelta(days=1))
    enroll_totp(registry, a)
    with registry.db.session() as s:
        census.snapshot(s, DAY)
        census.snapshot(s, DAY)  # twice the same day: one row
    with registry.db.session() as s:
        rows = census.history(s, DAY - dt.timedelta(days=7))
        assert [(r.day, r.covered) for r in rows] == [(DAY - dt.timedelta(days=1), 0), (DAY, 1)]
        assert census.on_or_before(s, DAY - dt.timedelta(days=2)) is None
        before = census.on_or_before(s, DAY - dt.timedelta(days=1))
        assert before is not None and before.covered == 0
        latest = census.on_or_before(s, DAY + dt.timedelta(days=3))
        assert latest is not None and latest.day == DAY


def test_the_server_counts_coverage_between_notices_at_most_once_an_hour(
    registry: Services,
) -> None:
    from auth.web import server as serve

    def housekeeping(db: Database, clock: Callable[[], float]) -> None:
        serve._housekeeping(
            db, retention_days=registry.settings.exposure_retention_days, clock=clock
        )

    (a,) = _accounts(registry, 1)
    ticks = [1000.0]
    serve._last_coverage.clear()
    housekeeping(registry.db, clock=lambda: ticks[0])
    enroll_totp(registry, a)
    ticks[0] += serve.COVERAGE_EVERY - 1
    housekeeping(registry.db, clock=lambda: ticks[0])  # within the hour: not again
    today = utcnow().date()
    with registry.db.session() as s:
        assert [r.covered for r in census.history(s, today)] == [0]
    ticks[0] += 2
    housekeeping(registry.db, clock=lambda: ticks[0])
    with registry.db.session() as s:
        assert [r.covered for r in census.history(s, today)] == [1]
    serve._last_coverage.clear()


def test_a_monitor_run_keeps_the_days_coverage(registry: Services) -> None:
    from auth.breach import monitor
    from auth.breach.pacing import Budget

    (a,) = _accounts(registry, 1)
    enroll_totp(registry, a)
    monitor.run(registry, actor=audit.Actor.cli("test"), budget=Budget(), clock=lambda: NOW)
    with registry.db.session() as s:
        assert [(r.day, r.totp) for r in census.history(s, DAY)] == [(DAY, 1)]
