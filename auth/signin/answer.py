"""What a sign-in step answers: the verdict, and what the caller needs to act on it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from auth.models import iso_utc
from auth.signin.rules import Decision, Verdict


@dataclass(frozen=True)
class Answer:
    verdict: Verdict
    account_id: int | None = None
    session_epoch: int | None = None  # what a session opened now must carry
    continuation: str | None = None
    continuation_expires_at: dt.datetime | None = None
    message: str = ""  # for the person, from the second step (e.g. codes left)

    @property
    def decision(self) -> Decision:
        return self.verdict.decision

    def to_json(self) -> dict[str, Any]:
        """The hook's answer body; no internal reason leaks for a deny."""
        v = self.verdict
        return {
            "decision": v.decision.value,
            "reasons": list(v.public_reasons),
            "factors": list(v.factors),
            "continuation": self.continuation,
            "continuation_expires_at": _iso(self.continuation_expires_at),
            "enroll_by": _iso(v.enroll_by),
            "message": self.message or None,
        }


def _iso(value: dt.datetime | None) -> str | None:
    return iso_utc(value) if value else None
