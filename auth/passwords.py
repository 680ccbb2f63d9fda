"""argon2id password hashing with rehash-on-login when the parameters change."""

from __future__ import annotations

import time
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from auth import metrics
from auth.config import Argon2Params


@dataclass(frozen=True)
class Verified:
    ok: bool
    new_hash: str | None = None  # set when the stored hash should be replaced


class Hasher:
    """argon2id with the configured cost; cheap parameters are for tests only."""

    def __init__(self, params: Argon2Params) -> None:
        self._ph = PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_cost,
            parallelism=params.parallelism,
            type=Type.ID,
        )
        # Verified against for unknown accounts, so a miss costs what a hit costs.
        self._dummy = self._ph.hash("breachguard-dummy-password")
        started = time.perf_counter()
        self._ph.verify(self._dummy, "breachguard-dummy-password")
        self._typical = time.perf_counter() - started

    @property
    def typical_seconds(self) -> float:
        """How long one verify took at start-up: what refusals that skip hashing wait until
        the sign-in flow has measured real refusals (auth/signin/flow.py)."""
        return self._typical

    def hash(self, password: str) -> str:
        return self._ph.hash(password)

    def verify(self, stored: str | None, password: str) -> Verified:
        """Check a password; a missing or malformed hash never verifies but costs the same."""
        cpu = time.thread_time()
        try:
            self._ph.verify(stored or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return Verified(False)
        finally:
            metrics.password_hashed(time.thread_time() - cpu, known=stored is not None)
        if stored is None:
            return Verified(False)
        if self._ph.check_needs_rehash(stored):
            return Verified(True, self._ph.hash(password))
        return Verified(True)


def is_argon2_hash(value: str) -> bool:
    return value.startswith(("$argon2id$", "$argon2i$", "$argon2d$")) and value.count("$") >= 4
