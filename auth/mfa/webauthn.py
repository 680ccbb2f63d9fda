"""WebAuthn ceremonies (security keys and passkeys) over py_webauthn, with server-side challenges.

https://www.w3.org/TR/webauthn-3/

Challenges live in the database (`webauthn_challenges`) so that any instance can finish a
ceremony another one began, and each is spent by one conditional UPDATE committed before the
response is verified: a challenge is single-use even when verification then fails
(https://www.w3.org/TR/webauthn-3/#sctn-cryptographic-challenges).

Sign counters are compared by us, after the signature has been verified, so that nobody can
flag someone else's key as cloned with an unsigned response; a regression marks the factor
`possibly_cloned` for good (https://www.w3.org/TR/webauthn-3/#sctn-sign-counter).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any, Final, cast

from sqlalchemy import Connection, CursorResult, Result, bindparam, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from auth import audit
from auth.config import Settings
from auth.db import Database
from auth.errors import BreachguardError, InvalidInput
from auth.models import Account, FactorKind, MfaFactor, WebauthnChallenge, table
from auth.prepared import Prepared

REGISTER: Final = "register"
AUTHENTICATE: Final = "authenticate"
NAME_MAX = 100
# Used and expired challenges are kept this long, so a late retry is told "already used" or
# "expired" rather than "unknown"; then purge_expired_challenges deletes them.
CHALLENGE_GRACE = dt.timedelta(hours=1)
# ES256 first: every authenticator supports it; EdDSA and RS256 (Windows Hello) follow.
# https://www.w3.org/TR/webauthn-3/#dom-publickeycredentialcreationoptions-pubkeycredparams
ALGORITHMS: Final = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
# What py_webauthn (and the bytes it parses) may raise on a malformed or forged response.
_REFUSALS = (WebAuthnException, ValueError, TypeError, KeyError, IndexError)


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


def user_handle(account_id: int) -> bytes:
    """The WebAuthn user.id for an account: 16 bytes of SHA-256 over a fixed label and the id.

    Derived rather than stored, so no column is needed; it carries no e-mail or name as the
    spec asks (https://www.w3.org/TR/webauthn-3/#sctn-user-handle-privacy). It is not a
    secret: it only has to be stable and distinct per account.
    """
    return hashlib.sha256(f"breachguard-user:{account_id}".encode()).digest()[:16]


# --- challenges -------------------------------------------------------------------------


def _new_challenge(challenge: bytes | None) -> bytes:
    """64 random bytes unless given (tests); the spec asks for at least 16."""
    if challenge is None:
        return secrets.token_bytes(64)
    if not 16 <= len(challenge) <= 64:
        raise ValueError(f"a challenge must be 16 to 64 bytes, got {len(challenge)}")
    return challenge


def _store_challenge(
    session: Session,
    *,
    account_id: int | None,
    purpose: str,
    challenge: bytes,
    expires_at: dt.datetime,
) -> str:
    challenge_id = secrets.token_urlsafe(24)  # 32 characters
    session.add(
        WebauthnChallenge(
            id=challenge_id,
            account_id=account_id,
            purpose=purpose,
            challenge=challenge,
            expires_at=expires_at,
        )
    )
    return challenge_id


_CH, _FA = table(WebauthnChallenge), table(MfaFactor)
# Sign-ins run these on every assertion: built once, since building a statement costs more
# than running it (bench/mfa_verify.py).
_SPEND = (
    update(_CH)
    .where(
        _CH.c.id == bindparam("challenge_id"),
        _CH.c.used_at.is_(None),
        _CH.c.expires_at > bindparam("at"),
        _CH.c.purpose == bindparam("for_purpose"),
    )
    .values(used_at=bindparam("at"))
    .returning(_CH.c.challenge)
)
_SPEND_ANONYMOUS = Prepared(_SPEND.where(_CH.c.account_id.is_(None)))
_SPEND_FOR_ACCOUNT = Prepared(_SPEND.where(_CH.c.account_id == bindparam("account")))
_FACTOR_BY_CREDENTIAL = Prepared(
    select(_FA.c.id, _FA.c.account_id, _FA.c.public_key, _FA.c.possibly_cloned).where(
        _FA.c.credential_id == bindparam("credential"), _FA.c.kind == FactorKind.WEBAUTHN.value
    )
)
_CHALLENGE_STATE = select(_CH.c.purpose, _CH.c.account_id, _CH.c.used_at, _CH.c.expires_at).where(
    _CH.c.id == bindparam("challenge_id")
)
_COUNTER = (
    update(_FA)
    .where(_FA.c.id == bindparam("factor"), _FA.c.possibly_cloned.is_(False))
    .values(
        sign_count=bindparam("count"),
        last_used_at=bindparam("used_at"),
        backup_state=bindparam("backed_up"),
    )
)
_COUNTER_GREW = Prepared(_COUNTER.where(_FA.c.sign_count < bindparam("count")))
_COUNTER_ZERO = Prepared(_COUNTER.where(_FA.c.sign_count == 0))
# A regression flags the key once: whoever flips the flag writes the audit event.
_FLAG_CLONED = (
    update(_FA)
    .where(_FA.c.id == bindparam("factor"), _FA.c.possibly_cloned.is_(False))
    .values(possibly_cloned=True)
    .returning(_FA.c.account_id, _FA.c.sign_count)
)
_FACTOR_EXISTS = select(_FA.c.id).where(_FA.c.id == bindparam("factor"))


def _rowcount(result: Result[Any]) -> int:
    return cast(CursorResult[Any], result).rowcount


def _why_refused(row: Any, *, account_id: int | None, purpose: str, now: dt.datetime) -> str:
    """Name the reason a challenge could not be spent (the UPDATE only says it could not).

    row: the challenge's purpose, account_id, used_at and expires_at, or None if unknown."""
    if row is None:
        return "this sign-in attempt is unknown; please start again"
    if row.purpose != purpose:
        return f"this challenge was issued to {row.purpose}, not to {purpose}; please start again"
    if row.account_id != account_id:
        return "this challenge was issued for another account; please start again"
    if row.used_at is not None:
        return "this challenge was already used; please start again"
    if row.expires_at <= now:
        return f"this challenge expired at {row.expires_at:%H:%M:%S} UTC; please start again"
    return "this challenge cannot be used; please start again"


def _spend(
    conn: Connection, *, challenge_id: str, account_id: int | None, purpose: str, now: dt.datetime
) -> bytes | ChallengeError:
    """Spend a challenge in the caller's transaction: its bytes, or why it cannot be spent.

    One conditional UPDATE does the check and the spending, so two requests racing with one
    challenge cannot both proceed. The caller commits it whatever comes next, so a failed
    attempt burns the challenge too.
    """
    statement = _SPEND_ANONYMOUS if account_id is None else _SPEND_FOR_ACCOUNT
    spent = statement.rows(
        conn,
        {"challenge_id": challenge_id, "at": now, "for_purpose": purpose, "account": account_id},
    )
    if spent:
        return bytes(spent[0][0])
    row = conn.execute(_CHALLENGE_STATE, {"challenge_id": challenge_id}).first()  # say why
    return ChallengeError(_why_refused(row, account_id=account_id, purpose=purpose, now=now))


def _consume_challenge(
    db: Database, *, challenge_id: str, account_id: int | None, purpose: str, now: dt.datetime
) -> bytes:
    """Spend a challenge in its own committed transaction and return its bytes."""
    with db.engine.begin() as conn:
        spent = _spend(
            conn, challenge_id=challenge_id, account_id=account_id, purpose=purpose, now=now
        )
    if isinstance(spent, ChallengeError):
        raise spent
    return spent


def purge_expired_challenges(db: Database, *, now: dt.datetime) -> int:
    """Delete challenges that expired, or were used, more than CHALLENGE_GRACE ago."""
    cutoff = now - CHALLENGE_GRACE
    with db.session() as session:
        result = session.execute(
            delete(WebauthnChallenge)
            .where(or_(WebauthnChallenge.expires_at < cutoff, WebauthnChallenge.used_at < cutoff))
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)


# --- credentials ------------------------------------------------------------------------


def _transports(raw: str) -> list[AuthenticatorTransport]:
    """Stored transport names as py_webauthn enums; names it does not know are dropped."""
    try:
        names = json.loads(raw or "[]")
    except ValueError:
        return []
    known = {t.value: t for t in AuthenticatorTransport}
    return [known[n] for n in names if isinstance(n, str) and n in known]


def _descriptors(session: Session, account_id: int) -> list[PublicKeyCredentialDescriptor]:
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


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not 1 <= len(cleaned) <= NAME_MAX:
        raise InvalidName(
            f"name: give the security key a name of 1 to {NAME_MAX} characters (got {len(cleaned)})"
        )
    return cleaned


def _rejected(exc: Exception, rp: RelyingParty) -> CeremonyRejected:
    """py_webauthn's reason, made readable where it says too little."""
    message = str(exc) or type(exc).__name__
    if message == "Unexpected RP ID hash":
        message = f"the response was made for another site than {rp.id!r} (RP ID hash differs)"
    elif message == "Client data challenge was not expected challenge":
        message = "it answers another challenge than the one this server issued"
    elif "See __cause__" in message and exc.__cause__ is not None:
        message = f"{message.split('. See __cause__')[0]}: {exc.__cause__}"
    return CeremonyRejected(f"the security key's response was refused: {message}")


# --- registration -----------------------------------------------------------------------


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
    raw = _new_challenge(challenge)
    with db.session() as session:
        exclude = _descriptors(session, account.id)
        challenge_id = _store_challenge(
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
    except _REFUSALS as exc:
        raise _rejected(exc, rp) from exc


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
    name = _clean_name(name)
    expected = _consume_challenge(
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
    except _REFUSALS as exc:
        raise _rejected(exc, rp) from exc
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


# --- authentication ---------------------------------------------------------------------


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
    raw = _new_challenge(challenge)
    with db.session() as session:
        allow = _descriptors(session, account.id) if account is not None else []
        challenge_id = _store_challenge(
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
    except _REFUSALS as exc:
        return _rejected(exc, rp)
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
    found = _FACTOR_BY_CREDENTIAL.rows(conn, {"credential": parsed.raw_id})
    if not found or not found[0][2]:
        return UnknownCredential("this security key is not registered here")
    factor_id, factor_account, public_key, possibly_cloned = found[0]
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
    moved = statement.rowcount(
        conn, {"factor": factor.id, "count": new_count, "used_at": now, "backed_up": backed_up}
    )
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
    expected = _spend(
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
    except _REFUSALS as exc:
        return _rejected(exc, rp)
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
    with db.engine.begin() as conn:
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
