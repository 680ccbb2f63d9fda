"""WebAuthn ceremonies against crafted responses (tests/soft_authenticator.py), on a real DB."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import Connection, func, select, update

from auth import accounts, audit
from auth.config import Settings
from auth.errors import InvalidInput
from auth.mfa import webauthn as wa
from auth.mfa.webauthn import authentication
from auth.models import Account, AuditEvent, MfaFactor, WebauthnChallenge, table
from auth.services import Services
from tests.soft_authenticator import ORIGIN, SoftAuthenticator, b64url, unb64url

RP = wa.RelyingParty(id="localhost", name="breachguard", origins=(ORIGIN,), timeout=120)
ACTOR = audit.Actor.cli("tester")
AAGUID = bytes.fromhex("00112233445566778899aabbccddeeff")


def make_account(registry: Services, now: dt.datetime, email: str = "ana@example.org") -> Account:
    with registry.db.session() as session:
        return accounts.create(
            session, email=email, name="Ana Lopes", hasher=registry.hasher, actor=ACTOR, now=now
        )


def finish_reg(
    registry: Services,
    account: Account,
    challenge_id: str,
    credential: Any,
    now: dt.datetime,
    *,
    name: str,
) -> MfaFactor:
    """wa.finish_registration with this module's relying party and actor."""
    return wa.finish_registration(
        registry.db,
        account=account,
        challenge_id=challenge_id,
        credential=credential,
        name=name,
        rp=RP,
        now=now,
        actor=ACTOR,
    )


def finish_auth(
    registry: Services,
    account: Account | None,
    challenge_id: str,
    credential: Any,
    now: dt.datetime,
) -> wa.UsedFactor:
    """wa.finish_authentication with this module's relying party and actor."""
    return wa.finish_authentication(
        registry.db,
        challenge_id=challenge_id,
        credential=credential,
        rp=RP,
        now=now,
        actor=ACTOR,
        account=account,
    )


def register(
    registry: Services,
    account: Account,
    now: dt.datetime,
    key: SoftAuthenticator | None = None,
    **create: Any,
) -> tuple[SoftAuthenticator, MfaFactor]:
    key = key or SoftAuthenticator()
    challenge_id, options = wa.begin_registration(registry.db, account=account, rp=RP, now=now)
    factor = finish_reg(
        registry, account, challenge_id, key.create(options, **create), now, name="YubiKey 5"
    )
    return key, factor


def authenticate(
    registry: Services,
    key: SoftAuthenticator,
    now: dt.datetime,
    *,
    account: Account | None,
    counter: int,
    **get: Any,
) -> wa.UsedFactor:
    challenge_id, options = wa.begin_authentication(registry.db, account=account, rp=RP, now=now)
    return finish_auth(
        registry, account, challenge_id, key.get(options, counter=counter, **get), now
    )


def stored(registry: Services, factor_id: int) -> MfaFactor:
    with registry.db.session() as session:
        factor = session.get(MfaFactor, factor_id)
        assert factor is not None
        return factor


def events(registry: Services, action: audit.Action) -> list[AuditEvent]:
    with registry.db.session() as session:
        rows = session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars()
        return list(rows)


@pytest.fixture
def account(registry: Services, now: dt.datetime) -> Account:
    return make_account(registry, now)


@pytest.fixture
def other(registry: Services, now: dt.datetime) -> Account:
    return make_account(registry, now, "bruno@example.org")


# --- the happy path ---------------------------------------------------------------------


def test_register_then_authenticate_succeeds_and_stores_the_credential(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    key = SoftAuthenticator(
        aaguid=AAGUID, transports=("usb", "nfc"), backup_eligible=True, backup_state=False
    )
    key, factor = register(registry, account, now, key, counter=3)

    row = stored(registry, factor.id)
    assert row.account_id == account.id
    assert row.kind == "webauthn" and row.name == "YubiKey 5"
    assert row.credential_id == key.credential_id
    assert row.public_key == key.cose_public_key()
    assert row.sign_count == 3
    assert json.loads(row.transports) == ["usb", "nfc"]
    assert row.aaguid == "00112233-4455-6677-8899-aabbccddeeff"
    assert (row.backup_eligible, row.backup_state, row.possibly_cloned) == (True, False, False)
    assert row.confirmed_at == now and row.created_at == now and row.last_used_at is None
    (enrolled,) = events(registry, audit.Action.MFA_ENROLLED)
    assert enrolled.target == f"account:{account.id}"
    assert json.loads(enrolled.details) == {
        "kind": "webauthn",
        "factor": factor.id,
        "name": "YubiKey 5",
    }

    later = now + dt.timedelta(minutes=5)
    key.backup_state = True  # synced since: the stored backup state follows
    used = authenticate(registry, key, later, account=account, counter=4)
    assert used.id == factor.id and used.account_id == account.id
    assert used.sign_count == 4 and used.last_used_at == later
    row = stored(registry, factor.id)
    assert (row.sign_count, row.last_used_at, row.backup_state) == (4, later, True)
    with registry.db.session() as session:
        assert audit.verify(session).ok


def test_registration_name_is_trimmed_and_a_bad_name_leaves_the_challenge_usable(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    key = SoftAuthenticator()
    challenge_id, options = wa.begin_registration(registry.db, account=account, rp=RP, now=now)
    credential = key.create(options)
    for bad, why in (
        ("   ", "1 to 100 characters"),
        ("x" * 101, "1 to 100 characters"),
        ("key\x00one", "no control characters"),
    ):
        with pytest.raises(wa.InvalidName, match=why) as raised:
            finish_reg(registry, account, challenge_id, credential, now, name=bad)
        assert isinstance(raised.value, InvalidInput)  # the project's bad-input class too
    factor = wa.finish_registration(
        registry.db,
        account=account,
        challenge_id=challenge_id,
        credential=json.dumps(credential),  # a JSON string works as well as a dict
        name="  Work   key ",
        rp=RP,
        now=now,
        actor=ACTOR,
    )
    assert factor.name == "Work key"


def test_relying_party_comes_from_settings(settings: Settings) -> None:
    rp = wa.RelyingParty.from_settings(settings)
    assert rp == wa.RelyingParty(
        id=settings.webauthn_rp_id,
        name=settings.webauthn_rp_name,
        origins=tuple(settings.webauthn_origins),
        timeout=settings.webauthn_timeout,
    )


def test_user_handle_is_stable_opaque_and_distinct_per_account() -> None:
    assert wa.user_handle(7) == wa.user_handle(7)
    assert len(wa.user_handle(7)) == 16
    assert wa.user_handle(7) != wa.user_handle(8)
    assert wa.user_handle(7) != (7).to_bytes(16, "big")  # not the id in disguise


# --- options ----------------------------------------------------------------------------


def test_registration_options_exclude_registered_keys_prefer_passkeys_and_ask_no_attestation(
    registry: Services, account: Account, other: Account, now: dt.datetime
) -> None:
    first, _ = register(registry, account, now, SoftAuthenticator(transports=("usb", "nfc")))
    register(registry, other, now)  # another account's key is not listed

    challenge_id, raw = wa.begin_registration(registry.db, account=account, rp=RP, now=now)
    options = json.loads(raw)

    assert options["excludeCredentials"] == [
        {"id": b64url(first.credential_id), "type": "public-key", "transports": ["usb", "nfc"]}
    ]
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["attestation"] == "none"
    algs = [p["alg"] for p in options["pubKeyCredParams"]]
    assert algs[0] == -7 and {-7, -257, -8} == set(algs)
    assert options["rp"] == {"id": "localhost", "name": "breachguard"}
    assert unb64url(options["user"]["id"]) == wa.user_handle(account.id)
    assert options["user"]["name"] == "ana@example.org"
    assert options["user"]["displayName"] == "Ana Lopes"
    assert options["timeout"] == 120_000
    with registry.db.session() as session:
        row = session.get(WebauthnChallenge, challenge_id)
        assert row is not None
        assert row.purpose == "register" and row.account_id == account.id
        assert row.challenge == unb64url(options["challenge"]) and len(row.challenge) == 64
        assert row.expires_at == now + dt.timedelta(seconds=120) and row.used_at is None


def test_authentication_options_list_the_accounts_keys_and_none_for_passkey_sign_in(
    registry: Services, account: Account, other: Account, now: dt.datetime
) -> None:
    one, _ = register(registry, account, now, SoftAuthenticator(transports=("internal",)))
    two, _ = register(registry, account, now, SoftAuthenticator(transports=("usb",)))
    register(registry, other, now)

    _, raw = wa.begin_authentication(registry.db, account=account, rp=RP, now=now)
    options = json.loads(raw)
    assert options["allowCredentials"] == [
        {"id": b64url(one.credential_id), "type": "public-key", "transports": ["internal"]},
        {"id": b64url(two.credential_id), "type": "public-key", "transports": ["usb"]},
    ]
    assert options["userVerification"] == "preferred"
    assert options["rpId"] == "localhost" and options["timeout"] == 120_000

    challenge_id, raw = wa.begin_authentication(registry.db, account=None, rp=RP, now=now)
    assert json.loads(raw)["allowCredentials"] == []
    with registry.db.session() as session:
        row = session.get(WebauthnChallenge, challenge_id)
        assert row is not None and row.account_id is None and row.purpose == "authenticate"


def test_an_account_without_keys_gets_no_credentials_and_accepts_no_other_accounts_key(
    registry: Services, account: Account, other: Account, now: dt.datetime
) -> None:
    theirs, _ = register(registry, other, now)
    _, raw = wa.begin_authentication(registry.db, account=account, rp=RP, now=now)
    assert json.loads(raw)["allowCredentials"] == []
    with pytest.raises(wa.UnknownCredential, match="not registered to this account"):
        authenticate(registry, theirs, now, account=account, counter=1)


# --- rejections -------------------------------------------------------------------------


def test_registration_from_a_wrong_origin_is_rejected(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    with pytest.raises(wa.CeremonyRejected, match=r"evil\.example"):
        register(registry, account, now, origin="https://evil.example")


def test_authentication_from_a_wrong_origin_is_rejected(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    key, factor = register(registry, account, now)
    with pytest.raises(wa.CeremonyRejected, match=r"evil\.example"):
        authenticate(registry, key, now, account=account, counter=1, origin="https://evil.example")
    assert stored(registry, factor.id).sign_count == 0


def test_responses_for_another_rp_id_are_rejected(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    with pytest.raises(wa.CeremonyRejected, match="another site"):
        register(registry, account, now, rp_id="evil.example")
    key, _ = register(registry, account, now)
    with pytest.raises(wa.CeremonyRejected, match="another site"):
        authenticate(registry, key, now, account=account, counter=1, rp_id="evil.example")


def test_a_reused_challenge_is_rejected_even_after_a_failed_attempt(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    key = SoftAuthenticator()
    challenge_id, options = wa.begin_registration(registry.db, account=account, rp=RP, now=now)
    kwargs: dict[str, Any] = {
        "account": account,
        "challenge_id": challenge_id,
        "name": "key",
        "rp": RP,
        "now": now,
        "actor": ACTOR,
    }
    wa.finish_registration(registry.db, credential=key.create(options), **kwargs)
    with pytest.raises(wa.ChallengeError, match="already used"):
        wa.finish_registration(
            registry.db, credential=SoftAuthenticator().create(options), **kwargs
        )

    # Authentication: the failed first try burns the challenge.
    challenge_id, options = wa.begin_authentication(registry.db, account=account, rp=RP, now=now)
    bad = key.get(options, counter=1, origin="https://evil.example")
    good = key.get(options, counter=1)
    auth: dict[str, Any] = {"challenge_id": challenge_id, "rp": RP, "now": now, "actor": ACTOR}
    with pytest.raises(wa.CeremonyRejected):
        wa.finish_authentication(registry.db, credential=bad, account=account, **auth)
    with pytest.raises(wa.ChallengeError, match="already used"):
        wa.finish_authentication(registry.db, credential=good, account=account, **auth)


def test_an_expired_challenge_is_rejected(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    key = SoftAuthenticator()
    late = now + dt.timedelta(seconds=RP.timeout + 1)
    challenge_id, options = wa.begin_registration(registry.db, account=account, rp=RP, now=now)
    with pytest.raises(wa.ChallengeError, match="expired"):
        finish_reg(registry, account, challenge_id, key.create(options), late, name="key")
    key, _ = register(registry, account, now)
    challenge_id, options = wa.begin_authentication(registry.db, account=account, rp=RP, now=now)
    with pytest.raises(wa.ChallengeError, match="expired"):
        finish_auth(registry, account, challenge_id, key.get(options, counter=1), late)


def test_an_unknown_challenge_id_is_rejected(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    key, _ = register(registry, account, now)
    _, options = wa.begin_authentication(registry.db, account=account, rp=RP, now=now)
    with pytest.raises(wa.ChallengeError, match="unknown"):
        finish_auth(registry, account, "no-such-challenge", key.get(options, counter=1), now)


def test_a_challenge_of_another_account_is_rejected(
    registry: Services, account: Account, other: Account, now: dt.datetime
) -> None:
    key = SoftAuthenticator()
    challenge_id, options = wa.begin_registration(registry.db, account=other, rp=RP, now=now)
    with pytest.raises(wa.ChallengeError, match="another account"):
        finish_reg(registry, account, challenge_id, key.create(options), now, name="key")
    register(registry, other, now)
    key, _ = register(registry, account, now)
    for issued_for in (other, None):
        challenge_id, options = wa.begin_authentication(
            registry.db, account=issued_for, rp=RP, now=now
        )
        with pytest.raises(wa.ChallengeError, match="another account"):
            finish_auth(registry, account, challenge_id, key.get(options, counter=1), now)


def test_a_challenge_of_the_other_purpose_is_rejected(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    key, _ = register(registry, account, now)
    auth_id, auth_options = wa.begin_authentication(registry.db, account=account, rp=RP, now=now)
    reg_id, reg_options = wa.begin_registration(registry.db, account=account, rp=RP, now=now)
    with pytest.raises(wa.ChallengeError, match="not to register"):
        finish_reg(
            registry, account, auth_id, SoftAuthenticator().create(reg_options), now, name="key"
        )
    with pytest.raises(wa.ChallengeError, match="not to authenticate"):
        finish_auth(registry, account, reg_id, key.get(auth_options, counter=1), now)


def test_an_unknown_credential_is_rejected(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    register(registry, account, now)
    stranger = SoftAuthenticator()
    with pytest.raises(wa.UnknownCredential, match="not registered"):
        authenticate(registry, stranger, now, account=account, counter=1, user_handle=None)
    with pytest.raises(wa.UnknownCredential, match="not registered"):
        authenticate(
            registry, stranger, now, account=None, counter=1, user_handle=wa.user_handle(1)
        )


def test_a_credential_of_another_account_is_rejected(
    registry: Services, account: Account, other: Account, now: dt.datetime
) -> None:
    register(registry, account, now)
    theirs, factor = register(registry, other, now)
    with pytest.raises(wa.UnknownCredential, match="not registered to this account"):
        authenticate(registry, theirs, now, account=account, counter=1)
    assert stored(registry, factor.id).sign_count == 0


def test_a_bad_signature_is_rejected(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    key, factor = register(registry, account, now)
    forger = SoftAuthenticator()
    with pytest.raises(wa.CeremonyRejected, match="signature"):
        authenticate(registry, key, now, account=account, counter=1, signing_key=forger.key)
    row = stored(registry, factor.id)
    assert (row.sign_count, row.last_used_at) == (0, None)


def test_a_tampered_client_data_challenge_is_rejected(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    key, _ = register(registry, account, now)
    tampered = SoftAuthenticator.client_data("webauthn.get", b"\x01" * 64, ORIGIN)
    with pytest.raises(wa.CeremonyRejected, match="challenge"):
        authenticate(registry, key, now, account=account, counter=1, client_data=tampered)
    # Registration: clientDataJSON made for another challenge.
    with pytest.raises(wa.CeremonyRejected, match="challenge"):
        register(registry, account, now, challenge=b"\x02" * 64)


def test_a_response_without_user_presence_is_rejected(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    with pytest.raises(wa.CeremonyRejected, match="present"):
        register(registry, account, now, present=False)
    key, _ = register(registry, account, now)
    with pytest.raises(wa.CeremonyRejected, match="present"):
        authenticate(registry, key, now, account=account, counter=1, present=False)


@pytest.mark.parametrize(
    "credential",
    ["not json", "[]", {"id": "abc"}, {"id": "", "rawId": "", "response": {}, "type": "x"}],
)
def test_malformed_responses_are_rejected(
    registry: Services, account: Account, now: dt.datetime, credential: Any
) -> None:
    challenge_id, _ = wa.begin_registration(registry.db, account=account, rp=RP, now=now)
    with pytest.raises(wa.CeremonyRejected):
        finish_reg(registry, account, challenge_id, credential, now, name="key")
    register(registry, account, now)
    challenge_id, _ = wa.begin_authentication(registry.db, account=account, rp=RP, now=now)
    with pytest.raises(wa.CeremonyRejected):
        finish_auth(registry, account, challenge_id, credential, now)


def test_a_key_already_registered_is_rejected(
    registry: Services, account: Account, other: Account, now: dt.datetime
) -> None:
    key, _ = register(registry, account, now)
    with pytest.raises(wa.CeremonyRejected, match="already registered"):
        register(registry, account, now, key)
    # Someone else replaying that credential id with their own key pair gains nothing.
    copycat = SoftAuthenticator(credential_id=key.credential_id)
    with pytest.raises(wa.CeremonyRejected, match="already registered"):
        register(registry, other, now, copycat)
    with registry.db.session() as session:
        assert session.execute(select(func.count()).select_from(MfaFactor)).scalar_one() == 1


# --- sign counter -----------------------------------------------------------------------


def test_a_sign_count_regression_flags_the_key_as_cloned_and_keeps_it_refused(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    key, factor = register(registry, account, now)
    assert authenticate(registry, key, now, account=account, counter=5).sign_count == 5

    with pytest.raises(wa.ClonedCredential, match="expected more than 5, got 3") as raised:
        authenticate(registry, key, now, account=account, counter=3)
    assert raised.value.factor_id == factor.id
    row = stored(registry, factor.id)
    assert row.possibly_cloned is True and row.sign_count == 5  # committed despite the raise
    (suspected,) = events(registry, audit.Action.MFA_CLONE_SUSPECTED)
    assert suspected.target == f"account:{account.id}"
    assert json.loads(suspected.details) == {"factor": factor.id, "stored": 5, "received": 3}

    with pytest.raises(wa.ClonedCredential, match="blocked") as again:
        authenticate(registry, key, now, account=account, counter=10)
    assert again.value.factor_id == factor.id
    assert stored(registry, factor.id).sign_count == 5
    assert len(events(registry, audit.Action.MFA_CLONE_SUSPECTED)) == 1


def test_a_key_flagged_as_cloned_is_refused_before_its_signature_is_checked(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    key, _ = register(registry, account, now, counter=5)
    with pytest.raises(wa.ClonedCredential):
        authenticate(registry, key, now, account=account, counter=4)
    forger = SoftAuthenticator()
    with pytest.raises(wa.ClonedCredential, match="blocked"):
        authenticate(registry, key, now, account=account, counter=9, signing_key=forger.key)


def test_a_key_flagged_by_a_concurrent_request_is_not_updated(
    registry: Services, account: Account, now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the look-up and the update the key is flagged: the update refuses.

    The ceremony runs in one transaction, which on SQLite holds the write lock from the
    challenge's UPDATE on, so the flag is written through the ceremony's own connection: what
    is tested is that the counter's UPDATE re-checks the flag on the row (on PostgreSQL a
    concurrent transaction's committed flag is seen by that UPDATE the same way)."""
    key, factor = register(registry, account, now)
    find = authentication._find_factor
    mfa = table(MfaFactor)

    def find_then_flag(conn: Connection, **kwargs: Any) -> Any:
        found = find(conn, **kwargs)
        conn.execute(update(mfa).where(mfa.c.id == factor.id).values(possibly_cloned=True))
        return found

    monkeypatch.setattr(authentication, "_find_factor", find_then_flag)
    with pytest.raises(wa.ClonedCredential, match="blocked"):
        authenticate(registry, key, now, account=account, counter=1)
    row = stored(registry, factor.id)
    assert (row.sign_count, row.last_used_at, row.possibly_cloned) == (0, None, True)
    assert events(registry, audit.Action.MFA_CLONE_SUSPECTED) == []


def test_an_equal_nonzero_counter_counts_as_a_regression(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    key, factor = register(registry, account, now, counter=7)
    with pytest.raises(wa.ClonedCredential):
        authenticate(registry, key, now, account=account, counter=7)
    assert stored(registry, factor.id).possibly_cloned is True


def test_a_forged_regression_does_not_flag_the_key(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    """A stranger who knows the credential id must not be able to block it with a low counter."""
    key, factor = register(registry, account, now)
    authenticate(registry, key, now, account=account, counter=5)
    with pytest.raises(wa.CeremonyRejected, match="signature"):
        authenticate(
            registry,
            key,
            now,
            account=account,
            counter=1,
            signing_key=SoftAuthenticator().key,
        )
    assert stored(registry, factor.id).possibly_cloned is False
    assert events(registry, audit.Action.MFA_CLONE_SUSPECTED) == []
    assert authenticate(registry, key, now, account=account, counter=6).sign_count == 6


def test_authenticators_that_never_count_keep_working_with_zero(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    key, factor = register(registry, account, now, SoftAuthenticator(transports=("internal",)))
    for minute in range(3):
        when = now + dt.timedelta(minutes=minute)
        used = authenticate(registry, key, when, account=account, counter=0)
        assert (used.sign_count, used.last_used_at, used.possibly_cloned) == (0, when, False)
    # Once it has counted, it may not drop back to 0.
    authenticate(registry, key, now, account=account, counter=1)
    with pytest.raises(wa.ClonedCredential):
        authenticate(registry, key, now, account=account, counter=0)
    assert stored(registry, factor.id).possibly_cloned is True


# --- passkey sign-in --------------------------------------------------------------------


def test_passkey_sign_in_finds_the_account_by_credential_and_checks_the_user_handle(
    registry: Services, account: Account, other: Account, now: dt.datetime
) -> None:
    key, factor = register(registry, account, now, SoftAuthenticator(transports=("internal",)))
    register(registry, other, now)
    assert key.user_id == wa.user_handle(account.id)

    used = authenticate(registry, key, now, account=None, counter=1)
    assert (used.id, used.account_id) == (factor.id, account.id)

    with pytest.raises(wa.UnknownCredential, match="another account"):
        authenticate(
            registry, key, now, account=None, counter=2, user_handle=wa.user_handle(other.id)
        )
    with pytest.raises(wa.CeremonyRejected, match="userHandle"):
        authenticate(registry, key, now, account=None, counter=2, user_handle=None)
    # As a second factor (account known) a missing userHandle is fine (U2F-era keys send none).
    assert authenticate(registry, key, now, account=account, counter=2, user_handle=None)


# --- housekeeping -----------------------------------------------------------------------


def test_purge_removes_expired_and_used_challenges(
    registry: Services, account: Account, now: dt.datetime
) -> None:
    old, _ = wa.begin_registration(registry.db, account=account, rp=RP, now=now)
    key = SoftAuthenticator()
    used, options = wa.begin_registration(registry.db, account=account, rp=RP, now=now)
    finish_reg(registry, account, used, key.create(options), now, name="key")
    later = now + wa.CHALLENGE_GRACE + dt.timedelta(seconds=RP.timeout + 1)
    fresh, _ = wa.begin_authentication(registry.db, account=account, rp=RP, now=later)

    assert wa.purge_expired_challenges(registry.db, now=now + dt.timedelta(minutes=5)) == 0
    assert wa.purge_expired_challenges(registry.db, now=later) == 2
    with registry.db.session() as session:
        left = session.execute(select(WebauthnChallenge.id)).scalars().all()
    assert left == [fresh]
    assert old not in left
