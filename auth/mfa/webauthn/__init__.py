"""WebAuthn ceremonies (security keys and passkeys) over py_webauthn, with server-side challenges.

https://www.w3.org/TR/webauthn-3/

Callers import this package (`from auth.mfa import webauthn as wa`); the ceremonies live in
registration and authentication, the challenges they spend in challenges.
"""

from auth.mfa.webauthn.authentication import (
    UsedFactor,
    begin_authentication,
    finish_authentication,
)
from auth.mfa.webauthn.challenges import (
    AUTHENTICATE,
    CHALLENGE_GRACE,
    REGISTER,
    purge_expired_challenges,
)
from auth.mfa.webauthn.credentials import NAME_MAX
from auth.mfa.webauthn.errors import (
    CeremonyRejected,
    ChallengeError,
    ClonedCredential,
    InvalidName,
    UnknownCredential,
    WebauthnError,
)
from auth.mfa.webauthn.registration import begin_registration, finish_registration
from auth.mfa.webauthn.relying_party import ALGORITHMS, RelyingParty, user_handle

__all__ = [
    "ALGORITHMS",
    "AUTHENTICATE",
    "CHALLENGE_GRACE",
    "NAME_MAX",
    "REGISTER",
    "CeremonyRejected",
    "ChallengeError",
    "ClonedCredential",
    "InvalidName",
    "RelyingParty",
    "UnknownCredential",
    "UsedFactor",
    "WebauthnError",
    "begin_authentication",
    "begin_registration",
    "finish_authentication",
    "finish_registration",
    "purge_expired_challenges",
    "user_handle",
]
