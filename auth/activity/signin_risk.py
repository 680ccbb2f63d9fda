"""Sign-in risk, carried out: the login flow (auth/signin/flow.py) reports each hashed
attempt here; the rules (auth/activity/risk.py) judge it on the counters
(auth/activity/risk_counters.py), and what they find is acted on:

- a password spray raises PASSWORD_SPRAY and, with SPRAY_REQUIRES_MFA, requires a second
  factor of every account the spray touched;
- credential stuffing bans the network for IP_BAN_SECONDS and raises CREDENTIAL_STUFFING;
- every attempt naming an existing account is recorded (SignInRecord); a correct password
  from a network new to the account queues a "new sign-in" e-mail and raises NEW_SIGN_IN;
  a network becomes known to the account once a sign-in from it completes.

The counters cost no database round trip, and an allowed sign-in's record and its
network's last use are one statement: the sign-in is what a person waits for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from auth import audit
from auth.activity import risk
from auth.activity.alerts import raise_alert
from auth.activity.networks import network_of
from auth.activity.risk_counters import MemoryCounters, RedisCounters, RiskCounters
from auth.config import REDIS_TIMEOUTS, Settings
from auth.db import Database, dialect_insert
from auth.errors import InvalidInput
from auth.models import (
    Account,
    AccountNetwork,
    AlertKind,
    Notice,
    NoticeStatus,
    SignInRecord,
    UTCDateTime,
    iso_utc,
    table,
)
from auth.signin import bans

log = logging.getLogger(__name__)
ACTOR = audit.Actor.policy("sign_in_risk")
NOTICE = "new_sign_in"  # the notice kind (auth/notify/messages.py)
USER_AGENT_CHARS = 200
_SI, _AN, _A, _N = table(SignInRecord), table(AccountNetwork), table(Account), table(Notice)
T = TypeVar("T")
# A known network's last use moves at most this often: the sign-ins of an office every
# morning need not each rewrite its row.
LAST_USE_STEP = dt.timedelta(days=1)
_COLUMNS = ("account_id", "at", "ip", "network", "user_agent", "outcome", "new_network", "via")
_RECORD = insert(_SI).values(
    {c: bindparam(c, type_=UTCDateTime if c == "at" else None) for c in _COLUMNS}
)


@dataclass(frozen=True)
class Spray:
    label: str  # names the spray without its digest (alerts.raise_alert's cause)
    accounts: list[int]  # the accounts tried with the password within the window


@dataclass(frozen=True)
class Attempt:
    """A hashed sign-in attempt on an existing account, as it is recorded."""

    account_id: int
    ip: str
    user_agent: str
    via: str
    outcome: str  # the flow's decision
    new_network: bool
    at: dt.datetime
    network_last_used: dt.datetime | None = None  # this network's last use, when known

    @property
    def network(self) -> str:
        return network_of(self.ip)

    def values(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "at": self.at,
            "ip": self.ip[:45],
            "network": self.network,
            "user_agent": self.user_agent[:USER_AGENT_CHARS],
            "outcome": self.outcome,
            "new_network": self.new_network,
            "via": "pages" if self.via == "page" else self.via.partition(":")[0][:10],
        }


def known_network(conn: Session | Connection, account_id: int, ip: str, now: dt.datetime) -> None:
    """The network of `ip` becomes (or stays) known to the account: a sign-in from it
    completed."""
    conn.execute(know(conn, account_id, network_of(ip), now))


def know(conn: Session | Connection, account_id: int, network: str, now: dt.datetime) -> Any:
    """The upsert that makes `network` known to the account (its last use moved to now)."""
    upsert = dialect_insert(conn)(_AN).values(
        account_id=account_id, network=network, first_at=now, last_at=now
    )
    return upsert.on_conflict_do_update(
        index_elements=[_AN.c.account_id, _AN.c.network], set_={"last_at": now}
    )


class SignInRisk:
    def __init__(self, settings: Settings, policy: risk.RiskPolicy, counters: RiskCounters) -> None:
        self.settings = settings
        self.policy = policy
        self.counters = counters
        # Derived, so SECRET_KEY itself never keys two different things.
        self._key = hmac.new(
            settings.secret_key.encode(), b"breachguard:sign-in-risk", hashlib.sha256
        ).digest()

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInRisk:
        policy = risk.RiskPolicy.from_settings(settings)
        windows = {"spray_window": policy.spray_window, "stuffing_window": policy.stuffing_window}
        if not settings.redis_url:
            return cls(settings, policy, MemoryCounters(**windows))
        import redis

        client = redis.Redis.from_url(settings.redis_url, **REDIS_TIMEOUTS)
        counters = RedisCounters(client, prefix=settings.ratelimit_key_prefix, **windows)
        return cls(settings, policy, counters)

    def digest(self, password: str) -> str:
        """The keyed digest a wrong password is counted under."""
        data = b"password:" + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def _who(self, address: str) -> str:
        data = b"address:" + address.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()[:32]

    def _count(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """A counter's answer, or None when its store does not answer: the sign-in goes on
        (the per-address limits and bans still hold), and the outage is logged."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # Redis down or slow: fail open, as the rate limits do
            log.warning("sign-in risk counters unavailable: %s", type(exc).__name__)
            return None

    # --- what the flow reports --------------------------------------------------------

    def record(self, session: Session, attempt: Attempt) -> None:
        """Record a refused attempt, in the caller's transaction."""
        session.execute(insert(_SI).values(attempt.values()))

    def spray_of(self, password: str, *, account_id: int, now: dt.datetime) -> Spray | None:
        """A wrong password on an existing account, counted under its keyed digest (in
        Redis or memory, before any database transaction); the spray it belongs to once
        past the line, else None."""
        digest = self.digest(password)
        tried = self._count(self.counters.spray, digest, account_id, now=now)
        if tried is None or not risk.is_spray(len(tried), self.policy):
            return None
        label = self._count(self.counters.spray_label, digest, now=now) or "spray"
        return Spray(label, tried)

    def spray_found(
        self, session: Session, spray: Spray, *, account_id: int, ip: str, now: dt.datetime
    ) -> None:
        """In the refusal's transaction: the alert, and the second factor the accounts it
        tried must now use."""
        tried = spray.accounts
        raise_alert(
            session,
            kind=AlertKind.PASSWORD_SPRAY,
            cause=spray.label,
            accounts=tried,
            addresses=[ip],
            evidence={
                "accounts_tried": len(tried),
                "window_seconds": int(self.policy.spray_window.total_seconds()),
                "timeline": [{"at": iso_utc(now), "account": account_id, "ip": ip}],
            },
            now=now,
            settings=self.settings,
        )
        if self.policy.spray_requires_mfa:
            session.execute(
                update(_A)
                .where(_A.c.id.in_(tried), _A.c.mfa_required.is_(False))
                .values(mfa_required=True, updated_at=now)
            )

    def attempt(
        self, db: Database, *, address: str, ip: str, failed: bool, now: dt.datetime
    ) -> None:
        """Any hashed attempt (known address or not), counted per network; a network that
        crosses the stuffing line is banned and an alert raised."""
        network = network_of(ip)
        tally = self._count(
            self.counters.network, network, self._who(address), failed=failed, now=now
        )
        if tally is None or not risk.is_stuffing(tally, self.policy):
            return
        self._count(self.counters.forget_network, network)
        window = int(self.policy.stuffing_window.total_seconds())
        length = self.settings.ip_ban_seconds
        with db.session() as session:
            if length > 0 and _is_network(network):
                bans.add(
                    session,
                    network,
                    reason=(
                        f"credential stuffing: {tally.accounts} accounts, {tally.failures} of "
                        f"{tally.attempts} attempts failed within {window} s"
                    ),
                    expires_at=now + dt.timedelta(seconds=length),
                    actor=ACTOR,
                    now=now,
                    automatic=True,
                )
            raise_alert(
                session,
                kind=AlertKind.CREDENTIAL_STUFFING,
                cause=f"network:{network}",
                addresses=[network, ip],
                evidence={
                    "accounts": tally.accounts,
                    "attempts": tally.attempts,
                    "failures": tally.failures,
                    "window_seconds": window,
                    "banned_seconds": length,
                    "timeline": [{"at": iso_utc(now), "ip": ip, "banned": length > 0}],
                },
                now=now,
                settings=self.settings,
            )

    def signed_in(self, db: Database, attempt: Attempt, *, complete: bool) -> None:
        """A correct password on an account (any verdict but deny): recorded; a complete
        sign-in makes its network known. From a known network, one statement; from a new
        one, also the person's e-mail and the alert."""
        if attempt.new_network:
            with db.session() as session:
                self._from_new_network(session, attempt, complete=complete)
            return
        last = attempt.network_last_used
        touch = complete and (last is None or last <= attempt.at - LAST_USE_STEP)
        values = attempt.values()
        if not touch:
            db.run(_RECORD, values)
        elif db.dialect == "postgresql":
            db.run(_RECORD_AND_USE_PG, values)
        else:
            with db.connection() as conn:
                conn.execute(_RECORD, values)
                conn.execute(know(conn, attempt.account_id, attempt.network, attempt.at))

    def _from_new_network(self, session: Session, attempt: Attempt, *, complete: bool) -> None:
        now, network = attempt.at, attempt.network
        record_id = session.execute(
            insert(_SI).values(attempt.values()).returning(_SI.c.id)
        ).scalar_one()
        if complete:
            session.execute(know(session, attempt.account_id, network, now))
        group = dt.timedelta(seconds=self.settings.alert_group_seconds)
        told = session.execute(
            select(func.count())
            .select_from(_SI)
            .where(
                _SI.c.account_id == attempt.account_id,
                _SI.c.network == network,
                _SI.c.new_network.is_(True),
                _SI.c.outcome != "deny",
                _SI.c.at >= now - group,
                _SI.c.id != record_id,
            )
        ).scalar_one()
        if not told:  # one e-mail per new network while its alert is grouped
            session.execute(
                insert(_N).values(
                    account_id=attempt.account_id,
                    kind=NOTICE,
                    idempotency_key=f"{NOTICE}:{record_id}",
                    token_id=None,
                    reason="",
                    status=NoticeStatus.QUEUED.value,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        raise_alert(
            session,
            kind=AlertKind.NEW_SIGN_IN,
            cause=f"account:{attempt.account_id}",
            accounts=[attempt.account_id],
            addresses=[attempt.ip],
            evidence={
                "timeline": [
                    {
                        "at": iso_utc(now),
                        "sign_in": record_id,
                        "ip": attempt.ip,
                        "network": network,
                        "outcome": attempt.outcome,
                    }
                ]
            },
            now=now,
            settings=self.settings,
        )


def _record_and_use_pg() -> Any:
    """WITH rec AS (INSERT INTO sign_ins …), used AS (INSERT INTO account_networks … ON
    CONFLICT DO UPDATE) SELECT rec.id FROM rec: one statement on PostgreSQL."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    at = bindparam("at", type_=UTCDateTime)
    upsert = pg_insert(_AN).values(
        account_id=bindparam("account_id"), network=bindparam("network"), first_at=at, last_at=at
    )
    used = upsert.on_conflict_do_update(
        index_elements=[_AN.c.account_id, _AN.c.network], set_={"last_at": at}
    ).returning(_AN.c.account_id)
    rec = _RECORD.returning(_SI.c.id).cte("rec")
    return select(rec.c.id).add_cte(used.cte("used"))


_RECORD_AND_USE_PG = _record_and_use_pg()


def _is_network(network: str) -> bool:
    try:
        bans.parse_network(network)
    except InvalidInput:
        return False  # an address the caller could not give in IP form: alert, no ban
    return True


def notice_record_id(notice: Notice) -> int | None:
    """The sign-in a "new sign-in" notice is about (its idempotency key names it)."""
    prefix = f"{NOTICE}:"
    key = notice.idempotency_key or ""
    if not key.startswith(prefix) or not key[len(prefix) :].isdigit():
        return None
    return int(key[len(prefix) :])
