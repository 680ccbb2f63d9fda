"""Registering the accounts' e-mail prefixes for HIBP's breach callbacks (the push model).

What HIBP documents publicly (API v3): `GET /subscription/status`, whose `IncludesKAnon`
says whether the plan has k-anonymity access to breached accounts, and `Rpm` its rate.
What it does NOT document publicly: registering prefixes. HIBP's enterprise k-anonymity
service, as Mozilla Monitor uses it, takes `POST {root}/range/subscribe` with
`{"hashPrefix": "ABCDEF"}` and the `Hibp-Enterprise-Api-Key` header, answers 201 (new) or
200 (already subscribed), and later calls back with `{breachName, hashPrefix,
hashSuffixes}` (auth/web/hibp_notify.py). That protocol is spoken here, against the root
URL HIBP hands out with such a plan (HIBP_KANON_URL), never a guessed default.

A pass covers the accounts with ids in (lo, hi], in prefix order, its cursor committed
after each prefix; once done, the next pass covers only accounts created since.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from auth import audit
from auth.breach.hashing import EMAIL_PREFIX_LEN, prefix_bounds, sha1_hex
from auth.breach.monitor import read_state, write_state
from auth.breach.pacing import Budget, Pacer
from auth.config import Settings
from auth.db import Database
from auth.errors import BreachSourceError
from auth.models import utcnow

STATE = "hibp_subscribe"
USER_AGENT = "breachguard/0.1 (credential-leak protection)"
TIMEOUT = (3.05, 10.0)


@dataclass(frozen=True)
class Plan:
    name: str
    includes_kanon: bool
    rpm: int | None


class SubscribeClient:
    """HTTP to HIBP: the plan's status (public API) and range subscriptions (k-anon API)."""

    def __init__(
        self, *, api_url: str, api_key: str | None, kanon_url: str, kanon_key: str | None
    ) -> None:
        self.api_url, self.kanon_url = api_url.rstrip("/"), kanon_url.rstrip("/")
        import requests  # on first use, as auth/breach/hibp.py does

        self._api_key, self._kanon_key = api_key, kanon_key
        self._http = requests.Session()
        self._http.headers["User-Agent"] = USER_AGENT

    @classmethod
    def from_settings(cls, settings: Settings) -> SubscribeClient:
        if not settings.hibp_kanon_url:
            raise BreachSourceError("HIBP_KANON_URL is not set")
        return cls(
            api_url=settings.hibp_api_url,
            api_key=settings.hibp_api_key,
            kanon_url=settings.hibp_kanon_url,
            kanon_key=settings.hibp_kanon_api_key or settings.hibp_api_key,
        )

    def plan(self) -> Plan:
        """`GET /subscription/status` (documented in HIBP's API v3)."""
        if not self._api_key:
            raise BreachSourceError("HIBP_API_KEY is needed to read the plan's status")
        url = f"{self.api_url}/subscription/status"
        body = self._call("GET", url, headers={"hibp-api-key": self._api_key}, ok=(200,))[1]
        if not isinstance(body, dict) or not isinstance(body.get("SubscriptionName"), str):
            raise BreachSourceError(f"{url} sent no SubscriptionName")
        rpm = body.get("Rpm")
        return Plan(
            body["SubscriptionName"],
            body.get("IncludesKAnon") is True,
            rpm if isinstance(rpm, int) else None,
        )

    def subscribe(self, prefix: str) -> bool:
        """Register one prefix; True when new (201), False when it already was (200)."""
        headers = {"Hibp-Enterprise-Api-Key": self._kanon_key or ""}
        status, _ = self._call(
            "POST",
            f"{self.kanon_url}/range/subscribe",
            headers=headers,
            json={"hashPrefix": prefix},
            ok=(200, 201),
        )
        return status == 201

    def _call(
        self, method: str, url: str, *, ok: tuple[int, ...], **kwargs: Any
    ) -> tuple[int, Any]:
        import requests

        try:
            response = self._http.request(method, url, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise BreachSourceError(f"{method} {url} failed: {type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise BreachSourceError(f"HIBP refused the key for {url} (HTTP {response.status_code})")
        if response.status_code not in ok:
            raise BreachSourceError(f"{method} {url} answered HTTP {response.status_code}")
        try:
            return response.status_code, response.json() if response.content else None
        except ValueError:
            return response.status_code, None

    def close(self) -> None:
        self._http.close()


@dataclass
class SubscribeResult:
    created: int = 0
    existing: int = 0
    finished: bool = False
    cursor: str = ""
    errors: list[str] = field(default_factory=list)


def _next_prefix(session: Session, after: str, lo: int, hi: int) -> str | None:
    low = prefix_bounds(after)[1] if after else b""
    first = session.execute(
        text(
            "SELECT email_sha1 FROM accounts WHERE email_sha1 >= :low AND id > :lo AND id <= :hi"
            " ORDER BY email_sha1 LIMIT 1"  # one row, not every later one through the driver
        ),
        {"low": low, "lo": lo, "hi": hi},
    ).first()
    return None if first is None else sha1_hex(bytes(first[0]))[:EMAIL_PREFIX_LEN]


def _begin(session: Session) -> dict[str, Any]:
    """The pass in progress, or a new one over the accounts created since the last."""
    state = read_state(session, STATE) or {"lo": 0, "hi": 0, "after": "", "done": True}
    if state.get("done"):
        top = session.execute(text("SELECT MAX(id) FROM accounts")).scalar() or 0
        state = {"lo": int(state["hi"]), "hi": int(top), "after": "", "done": False}
    return state


def run(
    db: Database,
    client: SubscribeClient,
    *,
    actor: audit.Actor,
    pacer: Pacer,
    budget: Budget,
    clock: Any = utcnow,
) -> SubscribeResult:
    result = SubscribeResult()
    budget.start()
    while True:
        with db.session() as session:
            state = _begin(session)
            prefix = _next_prefix(session, state["after"], state["lo"], state["hi"])
            if prefix is None:
                state["done"] = True
                write_state(session, STATE, state, now=clock())
                result.finished, result.cursor = True, state["after"]
                _audit(session, actor, result, clock())
                return result
        result.cursor = state["after"]
        if not budget.take(pacer):
            return _stop(db, actor, result, clock)
        try:
            created = client.subscribe(prefix)
        except BreachSourceError as exc:
            result.errors.append(f"subscribe {prefix}: {exc}")
            return _stop(db, actor, result, clock)
        with db.session() as session:
            state["after"] = prefix
            write_state(session, STATE, state, now=clock())
        result.created += int(created)
        result.existing += int(not created)
        result.cursor = prefix


def _stop(db: Database, actor: audit.Actor, result: SubscribeResult, clock: Any) -> SubscribeResult:
    with db.session() as session:
        _audit(session, actor, result, clock())
    return result


def _audit(session: Session, actor: audit.Actor, result: SubscribeResult, now: dt.datetime) -> None:
    audit.append(
        session,
        [
            audit.Event(
                actor,
                audit.Action.HIBP_SUBSCRIBED,
                "hibp",
                {
                    "created": result.created,
                    "existing": result.existing,
                    "finished": result.finished,
                    "errors": len(result.errors),
                },
            )
        ],
        now=now,
    )
