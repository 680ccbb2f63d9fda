"""HIBP's push model: a breach notification names a prefix and the suffixes in it.

HIBP calls back with `{breachName, hashPrefix, hashSuffixes}` for the prefixes registered
with `monitor subscribe`: the SHA-1 of each normalised e-mail address it found in the new
breach, split 6 + 34 hex. The accounts whose digests match get an e-mail-in-breach finding
(source `hibp`), recorded once, so a repeated callback changes nothing but `last_seen`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from auth import audit
from auth.breach import findings
from auth.errors import InvalidInput, has_control
from auth.models import Account, FindingKind

ACTOR = audit.Actor("hibp", "notify")
_PREFIX = re.compile(r"[0-9A-Fa-f]{6}")
_SUFFIX = re.compile(r"[0-9A-Fa-f]{34}")
NAME_MAX = 200  # findings.breach


class BadField(InvalidInput):
    """A notification field is missing or malformed; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Notification:
    breach: str
    prefix: str
    suffixes: tuple[str, ...]

    @property
    def digests(self) -> list[bytes]:
        return [bytes.fromhex(self.prefix + s) for s in self.suffixes]


def parse(body: Any) -> Notification:
    """Validate HIBP's callback body; raises BadField naming the first bad field."""
    if not isinstance(body, Mapping):
        raise BadField(
            "body", "the body must be a JSON object with breachName, hashPrefix, hashSuffixes"
        )
    name = body.get("breachName")
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX:
        raise BadField(
            "breachName", f"breachName must be a non-empty string of at most {NAME_MAX} characters"
        )
    if has_control(name):
        raise BadField("breachName", "breachName must hold no control characters")
    prefix = body.get("hashPrefix")
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise BadField(
            "hashPrefix", "hashPrefix must be the first 6 hexadecimal characters of a SHA-1"
        )
    suffixes = body.get("hashSuffixes")
    if not isinstance(suffixes, list):
        raise BadField("hashSuffixes", "hashSuffixes must be a list of 34-hex-character strings")
    for i, suffix in enumerate(suffixes):
        if not isinstance(suffix, str) or not _SUFFIX.fullmatch(suffix):
            raise BadField("hashSuffixes", f"hashSuffixes[{i}] is not 34 hexadecimal characters")
    return Notification(
        name.strip(), prefix.upper(), tuple(dict.fromkeys(s.upper() for s in suffixes))
    )


@dataclass(frozen=True)
class Recorded:
    matched_accounts: int
    new_findings: int


def record(session: Any, note: Notification, *, now: dt.datetime) -> Recorded:
    """Findings for the accounts the notification names, in the caller's transaction."""
    ids: list[int] = []
    digests = note.digests
    for start in range(0, len(digests), 1000):
        ids.extend(
            session.execute(
                select(Account.id).where(Account.email_sha1.in_(digests[start : start + 1000]))
            ).scalars()
        )
    keys = [(a, FindingKind.EMAIL_IN_BREACH, "hibp", note.breach) for a in sorted(ids)]
    new = findings.record(session, keys, actor=ACTOR, now=now)
    audit.append(
        session,
        [
            audit.Event(
                ACTOR,
                audit.Action.HIBP_NOTIFIED,
                f"breach:{note.breach}",
                {
                    "prefix": note.prefix,
                    "suffixes": len(note.suffixes),
                    "matched": len(ids),
                    "new_findings": new,
                },
            )
        ],
        now=now,
    )
    return Recorded(len(ids), new)
