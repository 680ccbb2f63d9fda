"""An account's registered security keys, as py_webauthn describes them, and their names."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session
from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor

from auth.errors import one_line
from auth.mfa.webauthn.errors import InvalidName
from auth.models import FactorKind, MfaFactor

NAME_MAX = 100


def _transports(raw: str) -> list[AuthenticatorTransport]:
    """Stored transport names as py_webauthn enums; names it does not know are dropped."""
    try:
        names = json.loads(raw or "[]")
    except ValueError:
        return []
    known = {t.value: t for t in AuthenticatorTransport}
    return [known[n] for n in names if isinstance(n, str) and n in known]


def descriptors(session: Session, account_id: int) -> list[PublicKeyCredentialDescriptor]:
    """The account's WebAuthn credentials, for excludeCredentials / allowCredentials."""
    factors = session.execute(
        select(MfaFactor)
        .where(
            MfaFactor.account_id == account_id,
            MfaFactor.kind == FactorKind.WEBAUTHN,
            MfaFactor.credential_id.is_not(None),
        )
        .order_by(MfaFactor.id)
    ).scalars()
    return [
        PublicKeyCredentialDescriptor(id=f.credential_id, transports=_transports(f.transports))
        for f in factors
        if f.credential_id is not None
    ]


def clean_name(name: str) -> str:
    cleaned = one_line(name, "name", InvalidName)
    if not 1 <= len(cleaned) <= NAME_MAX:
        raise InvalidName(
            f"name: give the security key a name of 1 to {NAME_MAX} characters (got {len(cleaned)})"
        )
    return cleaned
