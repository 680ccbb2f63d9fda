"""What a WebAuthn ceremony refuses, and py_webauthn's reasons made readable."""

from __future__ import annotations

from webauthn.helpers.exceptions import WebAuthnException

from auth.errors import BreachguardError, InvalidInput
from auth.mfa.webauthn.relying_party import RelyingParty

# What py_webauthn (and the bytes it parses) may raise on a malformed or forged response.
REFUSALS = (WebAuthnException, ValueError, TypeError, KeyError, IndexError)


class WebauthnError(BreachguardError):
    """A WebAuthn ceremony failed; the message says what was expected and what arrived."""


class ChallengeError(WebauthnError):
    """The challenge is unknown, already used, expired, or for another account or purpose."""


class CeremonyRejected(WebauthnError):
    """py_webauthn (or we) refused the response: origin, RP ID, signature, JSON, presence..."""


class UnknownCredential(WebauthnError):
    """The credential is not registered, or not to this account."""


class InvalidName(WebauthnError, InvalidInput):
    """The name given to a new security key is empty or too long."""


class ClonedCredential(WebauthnError):
    """The sign counter went backwards: two authenticators may hold this key."""

    def __init__(self, message: str, *, factor_id: int) -> None:
        super().__init__(message)
        self.factor_id = factor_id


def rejected(exc: Exception, rp: RelyingParty) -> CeremonyRejected:
    """py_webauthn's reason, made readable where it says too little."""
    message = str(exc) or type(exc).__name__
    if message == "Unexpected RP ID hash":
        message = f"the response was made for another site than {rp.id!r} (RP ID hash differs)"
    elif message == "Client data challenge was not expected challenge":
        message = "it answers another challenge than the one this server issued"
    elif "See __cause__" in message and exc.__cause__ is not None:
        message = f"{message.split('. See __cause__')[0]}: {exc.__cause__}"
    return CeremonyRejected(f"the security key's response was refused: {message}")
