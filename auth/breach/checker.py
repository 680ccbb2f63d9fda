"""One checker over the configured breach sources (local corpus, HIBP).

Sources are asked by digest; the HIBP source sends only the k-anonymity prefix and
matches the suffix here. Every answer has a status: `exposed` (a source has seen it),
`not_found` (every source answered, none has seen it) or `failed` (no source has seen
it and at least one could not answer). A check that a person or a tool asked for reports
that status whatever the policy: a source that failed is never "not found".
`BREACH_FAILURE_POLICY` governs only the decisions that must go on without an answer
(a sign-in, a new password): `fail_open` lets them go on when a source is down,
`fail_closed` refuses them.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from auth import metrics
from auth.breach import store
from auth.breach.hashing import (
    EMAIL_PREFIX_LEN,
    PASSWORD_PREFIX_LEN,
    email_sha1,
    normalise_email,
    password_sha1,
    sha1_hex,
)
from auth.breach.hibp import HibpClient
from auth.db import Database
from auth.errors import BreachguardError, BreachSourceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BreachResult:
    """What one source said: a count (passwords) or breach names (e-mails), or an error."""

    source: str
    count: int = 0
    breaches: tuple[str, ...] = ()
    error: str | None = None


class BreachStatus(enum.StrEnum):
    """What a check says about one input, once every source has been asked."""

    EXPOSED = "exposed"  # at least one source has seen it
    NOT_FOUND = "not_found"  # every source answered and none has seen it
    FAILED = "failed"  # none has seen it, and at least one could not answer


@dataclass(frozen=True)
class Check:
    results: tuple[BreachResult, ...]
    fail_closed: bool = False  # BREACH_FAILURE_POLICY, for the decisions it governs

    @property
    def count(self) -> int:
        """Times seen: the largest count any source gave (sources overlap, so no sum)."""
        return max((r.count for r in self.results), default=0)

    @property
    def breaches(self) -> tuple[str, ...]:
        return tuple(sorted({b for r in self.results for b in r.breaches}))

    @property
    def exposed(self) -> bool:
        return self.count > 0 or bool(self.breaches)

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(f"{r.source}: {r.error}" for r in self.results if r.error)

    @property
    def failed_sources(self) -> tuple[str, ...]:
        return tuple(r.source for r in self.results if r.error)

    @property
    def status(self) -> BreachStatus:
        """What to report. A sighting by one source stands even if another failed (its
        error is still listed); without one, a failed source makes the check failed."""
        if self.exposed:
            return BreachStatus.EXPOSED
        if self.failed_sources:
            return BreachStatus.FAILED
        return BreachStatus.NOT_FOUND

    @property
    def refused_by_policy(self) -> bool:
        """For a decision that must go on without an answer (a new password at reset): a
        source failed and BREACH_FAILURE_POLICY is fail_closed. What a check reports is
        `status`, which says `failed` under either policy."""
        return self.fail_closed and bool(self.failed_sources)


class BreachSource(Protocol):
    name: str

    def password_count(self, digest: bytes) -> int: ...

    def email_breaches(self, digest: bytes) -> tuple[str, ...]: ...


class LocalSource:
    name = "local"

    def __init__(self, db: Database) -> None:
        self.db = db

    def password_count(self, digest: bytes) -> int:
        with self.db.connection() as conn:
            return store.password_count(conn, digest)

    def email_breaches(self, digest: bytes) -> tuple[str, ...]:
        with self.db.connection() as conn:
            return tuple(store.email_breaches(conn, digest))


class HibpSource:
    name = "hibp"

    def __init__(self, client: HibpClient) -> None:
        self.client = client

    def password_count(self, digest: bytes) -> int:
        hexed = sha1_hex(digest)
        found = self.client.password_range(hexed[:PASSWORD_PREFIX_LEN])
        return found.get(hexed[PASSWORD_PREFIX_LEN:], 0)

    def email_breaches(self, digest: bytes) -> tuple[str, ...]:
        hexed = sha1_hex(digest)
        found = self.client.email_range(hexed[:EMAIL_PREFIX_LEN])
        return tuple(found.get(hexed[EMAIL_PREFIX_LEN:], ()))


class Checker:
    def __init__(self, sources: Sequence[BreachSource], *, fail_closed: bool = False) -> None:
        self.sources = tuple(sources)
        self.fail_closed = fail_closed

    def check_password(self, password: str, *, local_count: int | None = None) -> Check:
        """local_count: the local corpus's count for this password when the caller has read
        it already, in a transaction of its own (the sign-in reads it with the account)."""
        digest = password_sha1(password)

        def ask(source: BreachSource) -> BreachResult:
            if local_count is not None and isinstance(source, LocalSource):
                return BreachResult(source.name, count=local_count)
            return BreachResult(source.name, count=source.password_count(digest))

        return self._ask(ask, "password")

    def check_email(self, email: str) -> Check:
        digest = email_sha1(normalise_email(email))
        return self._ask(lambda s: BreachResult(s.name, breaches=s.email_breaches(digest)), "email")

    def _ask(self, ask: _Ask, kind: str) -> Check:
        results = []
        for source in self.sources:
            try:
                results.append(metrics.ask_source(source.name, kind, ask, source))
            except (BreachSourceError, BreachguardError) as exc:
                log.warning("breach source %s failed: %s", source.name, exc)
                results.append(BreachResult(source.name, error=str(exc)))
        return Check(tuple(results), fail_closed=self.fail_closed)


class _Ask(Protocol):
    def __call__(self, source: BreachSource) -> BreachResult: ...
