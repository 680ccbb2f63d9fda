"""The authentication ceremony: an assertion from a registered key signs an account in.

https://www.w3.org/TR/webauthn-3/#sctn-verifying-assertion

Sign counters are compared by us, after the signature has been verified, so that nobody can
flag someone else's key as cloned with an unsigned response; a regression marks the factor
`possibly_cloned` for good (https://www.w3.org/TR/webauthn-3/#sctn-sign-counter).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from webauthn import (
    generate_authentication_options,
    options_to_json,
    verify_authentication_response,
)
from webauthn.helpers import bytes_to_base64url, parse_authentication_credential_json
from webauthn.helpers.structs import AuthenticationCredential, UserVerificationRequirement

from auth import audit
from auth.db import Database
from auth.mfa.webauthn.challenges import AUTHENTICATE, new_challenge, spend, store_challenge
from auth.mfa.webauthn.credentials import descriptors
from auth.mfa.webauthn.errors import (
    REFUSALS,
    CeremonyRejected,
    ChallengeError,
    ClonedCredential,
    UnknownCredential,
    WebauthnError,
    rejected,
)
from auth.mfa.webauthn.relying_party import RelyingParty, user_handle
from auth.models import Account, FactorKind, MfaFactor, table

_FA = table(MfaFactor)
_FACTOR_BY_CREDENTIAL = select(
    _FA.c.id, _FA.c.account_id, _FA.c.public_key, _FA.c.possibly_cloned
).where(_FA.c.credential_id == bindparam("credential"), _FA.c.kind == FactorKind.WEBAUTHN.value)
_COUNTER = (
    update(_FA)
    .where(_FA.c.id == bindparam("factor"), _FA.c.possibly_cloned.is_(False))
    .values(
        sign_count=bindparam("count"),
        last_used_at=bindparam("used_at"),
        backup_state=bindparam("backed_up"),
    )
)
_COUNTER_GREW = _COUNTER.where(_FA.c.sign_count < bindparam("count"))
_COUNTER_ZERO = _COUNTER.where(_FA.c.sign_count == 0)
# A regression flags the key once: whoever flips the flag writes the audit event.
_FLAG_CLONED = (
    update(_FA)
    .where(_FA.c.id == bindparam("factor"), _FA.c.possibly_cloned.is_(False))
    .values(possibly_cloned=True)
    .returning(_FA.c.account_id, _FA.c.sign_count)
)
_FACTOR_EXISTS = select(_FA.c.id).where(_FA.c.id == bindparam("factor"))


def begin_authentication(
    db: Database,
    *,
    account: Account | None,
    rp: RelyingParty,
    now: dt.datetime,
    challenge: bytes | None = None,
) -> tuple[str, str]:
    """Store an authentication challenge; return (challenge_id, options JSON for credentials.get).

    With an account, allowCredentials lists its keys (second factor after the password);
    without, it is empty and the browser offers discoverable passkeys
    (https://www.w3.org/TR/webauthn-3/#dom-publickeycredentialrequestoptions-allowcredentials).
    (An account without keys gets an empty list too; finish_authentication then accepts
    only a key of that account, so callers should not offer WebAuthn to it.)
    """
    raw = new_challenge(challenge)
    with db.session() as session:
        allow = descriptors(session, account.id) if account is not None else []
        challenge_id = store_challenge(
            session,
            account_id=account.id if account is not None else None,
            purpose=AUTHENTICATE,
            challenge=raw,
            expires_at=now + dt.timedelta(seconds=rp.timeout),
        )
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=raw,
        timeout=rp.timeout * 1000,
        allow_credentials=allow,
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return challenge_id, options_to_json(options)


def _parse_assertion(
    credential: str | dict[str, Any], rp: RelyingParty
) -> AuthenticationCredential | CeremonyRejected:
    try:
        parsed = parse_authentication_credential_json(credential)
    except REFUSALS as exc:
        return rejected(exc, rp)
    if bytes_to_base64url(parsed.raw_id) != parsed.id:
        return CeremonyRejected("the security key's response was refused: id and rawId differ")
    return parsed


@dataclass(frozen=True)
class FoundFactor:
    """The registered credential an assertion names (what verification needs of its row)."""

    id: int
    account_id: int
    public_key: bytes
    possibly_cloned: bool


def _find_factor(
    conn: Connection, *, parsed: AuthenticationCredential, account_id: int | None
) -> FoundFactor | WebauthnError:
    """The registered factor for the response's credential id, checked against the account
    and the userHandle (https://www.w3.org/TR/webauthn-3/#sctn-verifying-assertion, step 6)."""
    found = conn.execute(_FACTOR_BY_CREDENTIAL, {"credential": parsed.raw_id}).first()
    if found is None or not found.public_key:
        return UnknownCredential("this security key is not registered here")
    factor_id, factor_account, public_key, possibly_cloned = found
    if account_id is not None and factor_account != account_id:
        return UnknownCredential("this security key is not registered to this account")
    handle = parsed.response.user_handle
    if account_id is None and handle is None:
        return CeremonyRejected(
            "the passkey did not say which account it is for (no userHandle); "
            "use a passkey, or sign in with your password first"
        )
    if handle is not None and handle != user_handle(factor_account):
        return UnknownCredential(
            "this passkey's user handle names another account than the one it is registered to"
        )
    return FoundFactor(factor_id, factor_account, bytes(public_key), bool(possibly_cloned))


@dataclass(frozen=True)
class UsedFactor:
    """The factor an assertion was accepted from, as stored by that sign-in."""

    id: int
    account_id: int
    sign_count: int
    last_used_at: dt.datetime
    backup_state: bool
    possibly_cloned: bool = False
    kind: str = FactorKind.WEBAUTHN.value


def _record_use(
    conn: Connection,
    *,
    factor: FoundFactor,
    new_count: int,
    backed_up: bool,
    now: dt.datetime,
    actor: audit.Actor,
) -> UsedFactor | WebauthnError:
    """Store the new counter, or flag the factor if its counter did not grow.

    The UPDATE re-checks the counter against the row itself, so two assertions racing cannot
    both move it; whichever loses is treated as a regression, as the spec would have it.
    A regression flags the factor and writes its audit event in the caller's transaction.
    """
    statement = _COUNTER_ZERO if new_count == 0 else _COUNTER_GREW
    moved = conn.execute(
        statement,
        {"factor": factor.id, "count": new_count, "used_at": now, "backed_up": backed_up},
    ).rowcount
    if moved == 1:
        return UsedFactor(factor.id, factor.account_id, new_count, now, backed_up)
    flagged = conn.execute(_FLAG_CLONED, {"factor": factor.id}).first()
    if flagged is None:  # flagged already (by a concurrent request), or removed meanwhile
        if conn.execute(_FACTOR_EXISTS, {"factor": factor.id}).first() is None:
            return UnknownCredential("this security key was removed meanwhile")
        return _cloned(factor.id)
    account_id, stored = flagged
    audit.append(
        conn,
        [
            audit.Event(
                actor,
                audit.Action.MFA_CLONE_SUSPECTED,
                f"account:{account_id}",
                {"factor": factor.id, "stored": stored, "received": new_count},
            )
        ],
        now=now,
    )
    return ClonedCredential(
        f"this security key's signature counter went backwards (expected more than {stored}, "
        f"got {new_count}): it may have been copied, so it is blocked; "
        "use another factor and register the key again",
        factor_id=factor.id,
    )


def _cloned(factor_id: int) -> ClonedCredential:
    return ClonedCredential(
        "this security key is blocked because it may have been copied; "
        "use another factor and register the key again",
        factor_id=factor_id,
    )


def _assert(
    conn: Connection,
    *,
    challenge_id: str,
    parsed: AuthenticationCredential | CeremonyRejected,
    rp: RelyingParty,
    now: dt.datetime,
    actor: audit.Actor,
    account_id: int | None,
) -> UsedFactor | WebauthnError:
    """The assertion ceremony inside one transaction; a refusal is returned, not raised, so
    that the caller commits what it wrote (the spent challenge, a clone flag and its event)."""
    expected = spend(
        conn, challenge_id=challenge_id, account_id=account_id, purpose=AUTHENTICATE, now=now
    )
    if isinstance(expected, ChallengeError):
        return expected
    if isinstance(parsed, CeremonyRejected):
        return parsed
    factor = _find_factor(conn, parsed=parsed, account_id=account_id)
    if isinstance(factor, WebauthnError):
        return factor
    if factor.possibly_cloned:
        return _cloned(factor.id)
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=expected,
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
            credential_public_key=factor.public_key,
            credential_current_sign_count=0,
            require_user_verification=False,
        )
    except REFUSALS as exc:
        return rejected(exc, rp)
    return _record_use(
        conn,
        factor=factor,
        new_count=verified.new_sign_count,
        backed_up=verified.credential_backed_up,
        now=now,
        actor=actor,
    )


def finish_authentication(
    db: Database,
    *,
    challenge_id: str,
    credential: str | dict[str, Any],
    rp: RelyingParty,
    now: dt.datetime,
    actor: audit.Actor,
    account: Account | None = None,
) -> UsedFactor:
    """Verify navigator.credentials.get()'s response; return the factor used.

    https://www.w3.org/TR/webauthn-3/#sctn-verifying-assertion
    With account=None (passkey sign-in) the caller signs in factor.account_id.

    One transaction, committed whatever the outcome: the challenge is spent (a conditional
    UPDATE, so it is single-use even when verification then fails), the credential read,
    the assertion verified, the counter moved (or the factor flagged, with its audit event).
    The signature is verified before the counter is looked at: py_webauthn gets a stored
    count of 0 so that its own check never fires, and _record_use compares the counters.
    The JSON is parsed before the transaction begins, so that the write lock (SQLite) is
    held for the statements and the signature check only.
    """
    parsed = _parse_assertion(credential, rp)
    with db.connection() as conn:
        outcome = _assert(
            conn,
            challenge_id=challenge_id,
            parsed=parsed,
            rp=rp,
            now=now,
            actor=actor,
            account_id=account.id if account is not None else None,
        )
    if isinstance(outcome, WebauthnError):
        raise outcome
    return outcome
