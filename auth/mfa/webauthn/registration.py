"""The registration ceremony: a new security key or passkey becomes a factor.

https://www.w3.org/TR/webauthn-3/#sctn-registering-a-new-credential
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from webauthn import generate_registration_options, options_to_json, verify_registration_response
from webauthn.helpers import parse_registration_credential_json
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from auth import audit
from auth.db import Database
from auth.mfa.webauthn.challenges import REGISTER, consume_challenge, new_challenge, store_challenge
from auth.mfa.webauthn.credentials import clean_name, descriptors
from auth.mfa.webauthn.errors import REFUSALS, CeremonyRejected, rejected
from auth.mfa.webauthn.relying_party import ALGORITHMS, RelyingParty, user_handle
from auth.models import Account, FactorKind, MfaFactor


def begin_registration(
    db: Database,
    *,
    account: Account,
    rp: RelyingParty,
    now: dt.datetime,
    challenge: bytes | None = None,
) -> tuple[str, str]:
    """Store a registration challenge; return (challenge_id, options JSON for credentials.create).

    Passkeys are preferred (resident key, user verification), attestation is not asked for
    (we keep no allow-list of models), and the account's keys are excluded so one is not
    registered twice (https://www.w3.org/TR/webauthn-3/#sctn-registering-a-new-credential).
    """
    raw = new_challenge(challenge)
    with db.session() as session:
        exclude = descriptors(session, account.id)
        challenge_id = store_challenge(
            session,
            account_id=account.id,
            purpose=REGISTER,
            challenge=raw,
            expires_at=now + dt.timedelta(seconds=rp.timeout),
        )
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=user_handle(account.id),
        user_name=account.email,
        user_display_name=account.name or account.email,
        challenge=raw,
        timeout=rp.timeout * 1000,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=exclude,
        supported_pub_key_algs=list(ALGORITHMS),
    )
    return challenge_id, options_to_json(options)


def _parse_registration(
    credential: str | dict[str, Any], rp: RelyingParty
) -> RegistrationCredential:
    try:
        return parse_registration_credential_json(credential)
    except REFUSALS as exc:
        raise rejected(exc, rp) from exc


def finish_registration(
    db: Database,
    *,
    account: Account,
    challenge_id: str,
    credential: str | dict[str, Any],
    name: str,
    rp: RelyingParty,
    now: dt.datetime,
    actor: audit.Actor,
) -> MfaFactor:
    """Verify navigator.credentials.create()'s response and store the credential as a factor.

    https://www.w3.org/TR/webauthn-3/#sctn-registering-a-new-credential
    The name is checked before the challenge is spent, so a bad name can be corrected.
    """
    name = clean_name(name)
    expected = consume_challenge(
        db, challenge_id=challenge_id, account_id=account.id, purpose=REGISTER, now=now
    )
    parsed = _parse_registration(credential, rp)
    try:
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=expected,
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
            require_user_verification=False,
            supported_pub_key_algs=list(ALGORITHMS),
        )
    except REFUSALS as exc:
        raise rejected(exc, rp) from exc
    transports = [t.value for t in parsed.response.transports or []]
    try:
        with db.session() as session:
            taken = session.execute(
                select(MfaFactor.id).where(MfaFactor.credential_id == verified.credential_id)
            ).first()
            if taken is not None:
                raise CeremonyRejected("this security key is already registered")
            factor = MfaFactor(
                account_id=account.id,
                kind=FactorKind.WEBAUTHN,
                name=name,
                credential_id=verified.credential_id,
                public_key=verified.credential_public_key,
                sign_count=verified.sign_count,
                transports=json.dumps(transports),
                aaguid=verified.aaguid,
                backup_eligible=verified.credential_device_type
                == CredentialDeviceType.MULTI_DEVICE,
                backup_state=verified.credential_backed_up,
                possibly_cloned=False,
                confirmed_at=now,
                created_at=now,
            )
            session.add(factor)
            session.flush()
            audit.append(
                session,
                [
                    audit.Event(
                        actor,
                        audit.Action.MFA_ENROLLED,
                        f"account:{account.id}",
                        {"kind": FactorKind.WEBAUTHN.value, "factor": factor.id, "name": name},
                    )
                ],
                now=now,
            )
    except IntegrityError as exc:  # registered by a concurrent request since our check
        raise CeremonyRejected("this security key is already registered") from exc
    return factor
