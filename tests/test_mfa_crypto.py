"""TOTP secrets at rest: AES-GCM round trip, account binding, key rotation."""

import base64
import datetime as dt
import os

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from auth import accounts, audit
from auth.mfa import factors
from auth.mfa.crypto import DecryptionError, KeyRing
from auth.models import MfaFactor
from auth.services import Services


def key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def test_a_secret_round_trips_and_the_ciphertext_hides_it() -> None:
    ring = KeyRing([key()])
    token = ring.encrypt("JBSWY3DPEHPK3PXP", context="totp:account:1")
    assert "JBSWY3DPEHPK3PXP" not in token
    assert ring.decrypt(token, context="totp:account:1") == "JBSWY3DPEHPK3PXP"
    assert ring.encrypt("same", context="c") != ring.encrypt("same", context="c")  # fresh nonce


def test_a_secret_moved_to_another_account_does_not_decrypt() -> None:
    ring = KeyRing([key()])
    token = ring.encrypt("JBSWY3DPEHPK3PXP", context="totp:account:1")
    with pytest.raises(DecryptionError):
        ring.decrypt(token, context="totp:account:2")


def test_a_tampered_secret_does_not_decrypt() -> None:
    ring = KeyRing([key()])
    token = ring.encrypt("JBSWY3DPEHPK3PXP", context="c")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(DecryptionError):
        ring.decrypt(flipped, context="c")


def test_old_keys_still_decrypt_after_a_new_key_is_put_first() -> None:
    old, new = key(), key()
    token = KeyRing([old]).encrypt("s3cret", context="c")
    rotated = KeyRing([new, old])
    assert rotated.decrypt(token, context="c") == "s3cret"
    assert rotated.needs_rotation(token)
    with pytest.raises(DecryptionError, match="unknown key"):
        KeyRing([new]).decrypt(token, context="c")


def test_rotate_keys_reencrypts_every_secret_under_the_current_key(
    registry: Services, now: dt.datetime
) -> None:
    old = KeyRing(registry.settings.mfa_encryption_keys)
    actor = audit.Actor.cli("t")
    with registry.db.session() as s:
        account = accounts.create(
            s, email="a@example.fr", hasher=registry.hasher, actor=actor, now=now
        )
        pending = factors.start_totp(
            s, account=account, name="Phone", keys=old, issuer="bg", now=now
        )
    new_ring = KeyRing([key(), *registry.settings.mfa_encryption_keys])
    with registry.db.session() as s:
        assert factors.rotate_keys(s, keys=new_ring, actor=actor, now=now) == 1
    with registry.db.session() as s:
        token = s.execute(select(MfaFactor.secret_enc)).scalar_one()
    assert not new_ring.needs_rotation(token or "")
    assert new_ring.decrypt(token or "", context=factors.context(account.id)) == pending.secret
    with pytest.raises(DecryptionError):
        old.decrypt(token or "", context=factors.context(account.id))


def test_an_empty_key_ring_is_refused_with_the_variable_named() -> None:
    with pytest.raises(Exception, match="MFA_ENCRYPTION_KEYS"):
        KeyRing([])


def test_rotate_keys_cli_reencrypts_and_says_how_many(
    registry: Services, runner: CliRunner, cli_env: dict[str, str], now: dt.datetime
) -> None:
    from auth.cli import main

    actor = audit.Actor.cli("t")
    with registry.db.session() as s:
        account = accounts.create(
            s, email="b@example.fr", hasher=registry.hasher, actor=actor, now=now
        )
        factors.start_totp(
            s, account=account, name="Phone", keys=registry.keys, issuer="bg", now=now
        )
    new = key()
    env = {**cli_env, "MFA_ENCRYPTION_KEYS": f"{new},{cli_env['MFA_ENCRYPTION_KEYS']}"}
    result = runner.invoke(main, ["mfa", "rotate-keys"], env=env)
    assert result.exit_code == 0 and "re-encrypted 1 secret(s)" in result.output
    again = runner.invoke(main, ["mfa", "rotate-keys"], env=env)
    assert "re-encrypted 0 secret(s)" in again.output
