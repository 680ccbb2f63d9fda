"""Encryption at rest for TOTP secrets: AES-256-GCM with a key ring.

The first key encrypts, every key decrypts, so a new key can be put first and the old ones
kept until `breachguard mfa rotate-keys` has re-encrypted everything. Each ciphertext names
its key by a short id and is bound to its account (associated data), so a secret copied
onto another account's row does not decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from auth.errors import BreachguardError

VERSION = "v1"


class DecryptionError(BreachguardError):
    """A secret could not be decrypted: unknown key, wrong account, or tampered data."""


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class KeyRing:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise BreachguardError("MFA_ENCRYPTION_KEYS is empty: no key to encrypt secrets with")
        raw = [_b64d(k) for k in keys]
        self._keys = {hashlib.sha256(k).hexdigest()[:8]: AESGCM(k) for k in raw}
        self.current = hashlib.sha256(raw[0]).hexdigest()[:8]

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self.current].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{VERSION}.{self.current}.{_b64e(nonce + sealed)}"

    def decrypt(self, token: str, *, context: str) -> str:
        try:
            version, kid, payload = token.split(".")
        except ValueError:
            raise DecryptionError("not an encrypted secret") from None
        if version != VERSION or kid not in self._keys:
            raise DecryptionError(f"secret encrypted with unknown key {kid!r}")
        data = _b64d(payload)
        try:
            return self._keys[kid].decrypt(data[:12], data[12:], context.encode()).decode()
        except InvalidTag:
            raise DecryptionError("secret does not decrypt: tampered or moved") from None

    def needs_rotation(self, token: str) -> bool:
        return token.split(".")[1] != self.current
