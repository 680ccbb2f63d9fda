"""The relying party: who we are to authenticators, and how accounts are named to them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from webauthn.helpers.cose import COSEAlgorithmIdentifier

from auth.config import Settings

# ES256 first: every authenticator supports it; EdDSA and RS256 (Windows Hello) follow.
# https://www.w3.org/TR/webauthn-3/#dom-publickeycredentialcreationoptions-pubkeycredparams
ALGORITHMS: Final = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]


@dataclass(frozen=True)
class RelyingParty:
    """Who we are to authenticators: the RP ID (a registrable domain) and the page origins."""

    id: str
    name: str
    origins: tuple[str, ...]
    timeout: int  # seconds a challenge lives; also the browser's timeout hint

    @classmethod
    def from_settings(cls, settings: Settings) -> RelyingParty:
        return cls(
            id=settings.webauthn_rp_id,
            name=settings.webauthn_rp_name,
            origins=tuple(settings.webauthn_origins),
            timeout=settings.webauthn_timeout,
        )


def user_handle(account_id: int) -> bytes:
    """The WebAuthn user.id for an account: 16 bytes of SHA-256 over a fixed label and the id.

    Derived rather than stored, so no column is needed; it carries no e-mail or name as the
    spec asks (https://www.w3.org/TR/webauthn-3/#sctn-user-handle-privacy). It is not a
    secret: it only has to be stable and distinct per account.
    """
    return hashlib.sha256(f"breachguard-user:{account_id}".encode()).digest()[:16]
