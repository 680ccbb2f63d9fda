"""TOTP (RFC 6238) checks as a pure function of the secret, the code, the time and the
last accepted step; the caller stores the step, so a code is accepted once only.

https://www.rfc-editor.org/rfc/rfc6238
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import pyotp

INTERVAL = 30
DIGITS = 6


class TotpStatus(enum.StrEnum):
    OK = "ok"
    REPLAYED = "replayed"  # right code, but its step was already used: wait for the next
    INVALID = "invalid"


@dataclass(frozen=True)
class TotpCheck:
    status: TotpStatus
    step: int | None = None  # the matched time step (store it when OK)


def new_secret() -> str:
    """160 random bits in base32, the size RFC 4226 recommends for HMAC-SHA1."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, account_name: str, issuer: str) -> str:
    """The otpauth:// URI authenticator apps read from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(
        name=account_name, issuer_name=issuer
    )


def check(
    secret: str,
    code: str,
    *,
    now: float,
    last_step: int | None,
    window: int = 1,
    digits: int = DIGITS,
    digest: Any = hashlib.sha1,
) -> TotpCheck:
    """Accept `code` if it matches a step within ±window of now and is newer than last_step.

    Every candidate step is compared (constant time), so timing says nothing of which matched.
    """
    code = "".join(code.split())
    if len(code) != digits or not code.isdigit():
        return TotpCheck(TotpStatus.INVALID)
    otp = pyotp.TOTP(secret, digits=digits, digest=digest, interval=INTERVAL)
    current = int(now) // INTERVAL
    matched: int | None = None
    for step in range(current - window, current + window + 1):
        candidate = otp.generate_otp(step)
        if hmac.compare_digest(candidate, code) and matched is None:
            matched = step
    if matched is None:
        return TotpCheck(TotpStatus.INVALID)
    if last_step is not None and matched <= last_step:
        return TotpCheck(TotpStatus.REPLAYED, matched)
    return TotpCheck(TotpStatus.OK, matched)
