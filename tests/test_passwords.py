"""argon2id hashing: verification, and rehash when the parameters change."""

import datetime as dt

from auth import accounts
from auth.config import Argon2Params
from auth.models import Account
from auth.passwords import Hasher, is_argon2_hash
from auth.services import Services

CHEAP = Argon2Params(time_cost=1, memory_cost=1024, parallelism=1)


def test_a_hash_is_argon2id_and_verifies_only_its_password() -> None:
    hasher = Hasher(CHEAP)
    stored = hasher.hash("tulipe-rouge-88")
    assert stored.startswith("$argon2id$")
    assert hasher.verify(stored, "tulipe-rouge-88").ok
    assert not hasher.verify(stored, "tulipe-rouge-89").ok


def test_changed_parameters_yield_a_new_hash_on_successful_verify() -> None:
    old = Hasher(CHEAP).hash("pw-1234567890")
    stronger = Hasher(Argon2Params(time_cost=2, memory_cost=2048, parallelism=1))
    result = stronger.verify(old, "pw-1234567890")
    assert result.ok and result.new_hash is not None
    assert "m=2048,t=2" in result.new_hash
    assert stronger.verify(result.new_hash, "pw-1234567890") == type(result)(True, None)


def test_a_failed_verify_never_offers_a_rehash() -> None:
    old = Hasher(CHEAP).hash("pw-1234567890")
    stronger = Hasher(Argon2Params(time_cost=2, memory_cost=2048, parallelism=1))
    assert stronger.verify(old, "wrong").new_hash is None


def test_missing_or_malformed_hashes_never_verify() -> None:
    hasher = Hasher(CHEAP)
    assert not hasher.verify(None, "breachguard-dummy-password").ok
    assert not hasher.verify("not-a-hash", "x").ok


def test_argon2_hash_shape_is_recognised() -> None:
    assert is_argon2_hash(Hasher(CHEAP).hash("x"))
    assert not is_argon2_hash("$2b$12$abcdefghijklmnopqrstuv")


def test_an_account_hash_is_upgraded_in_the_database_on_successful_verify(
    registry: Services, now: dt.datetime
) -> None:
    old = Hasher(CHEAP).hash("Soleil2019!")
    with registry.db.session() as s:
        account = Account(email="c@example.fr", email_sha1=b"x" * 20, password_hash=old)
        s.add(account)
    stronger = Hasher(Argon2Params(time_cost=2, memory_cost=2048, parallelism=1))
    with registry.db.session() as s:
        account = s.get(Account, account.id)
        assert account is not None
        assert not accounts.verify_password(s, account, "wrong", hasher=stronger, now=now)
        assert account.password_hash == old
        assert accounts.verify_password(s, account, "Soleil2019!", hasher=stronger, now=now)
    with registry.db.session() as s:
        stored = s.get(Account, account.id)
        assert stored is not None and stored.password_hash != old
        assert "m=2048,t=2" in (stored.password_hash or "")
