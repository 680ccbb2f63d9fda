"""A software WebAuthn authenticator for tests: crafts what a browser and a security key would
send back, with every field open to tampering.

Attestation "none", an EC P-256 key (ES256), authenticator data laid out as in
https://www.w3.org/TR/webauthn-3/#sctn-authenticator-data
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
ORIGIN = "http://localhost:5000"
RP_ID = "localhost"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    def __init__(
        self,
        *,
        credential_id: bytes | None = None,
        aaguid: bytes = bytes(16),
        transports: tuple[str, ...] = ("usb",),
        backup_eligible: bool = False,
        backup_state: bool = False,
        attachment: str = "cross-platform",
    ) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = credential_id if credential_id is not None else os.urandom(32)
        self.aaguid = aaguid
        self.transports = transports
        self.backup_eligible = backup_eligible
        self.backup_state = backup_state
        self.attachment = attachment
        self.user_id: bytes | None = None  # learnt at registration, returned as userHandle

    def cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _flags(self, *, present: bool, verified: bool, attested: bool) -> int:
        flags = (UP if present else 0) | (UV if verified else 0) | (AT if attested else 0)
        return flags | (BE if self.backup_eligible else 0) | (BS if self.backup_state else 0)

    def auth_data(
        self,
        *,
        rp_id: str,
        counter: int,
        present: bool = True,
        verified: bool = True,
        attested: bool = False,
    ) -> bytes:
        data = hashlib.sha256(rp_id.encode()).digest()
        data += bytes([self._flags(present=present, verified=verified, attested=attested)])
        data += struct.pack(">I", counter)
        if attested:
            data += self.aaguid
            data += struct.pack(">H", len(self.credential_id)) + self.credential_id
            data += self.cose_public_key()
        return data

    @staticmethod
    def client_data(kind: str, challenge: bytes | str, origin: str) -> bytes:
        text = challenge if isinstance(challenge, str) else b64url(challenge)
        return json.dumps(
            {"type": kind, "challenge": text, "origin": origin, "crossOrigin": False}
        ).encode()

    def create(
        self,
        options_json: str,
        *,
        origin: str = ORIGIN,
        rp_id: str | None = None,
        counter: int = 0,
        present: bool = True,
        challenge: bytes | None = None,
    ) -> dict[str, Any]:
        """What navigator.credentials.create() resolves to, as JSON (toJSON())."""
        options = json.loads(options_json)
        self.user_id = unb64url(options["user"]["id"])
        client_data = self.client_data(
            "webauthn.create",
            challenge if challenge is not None else options["challenge"],
            origin,
        )
        attestation = cbor2.dumps(
            {
                "fmt": "none",
                "attStmt": {},
                "authData": self.auth_data(
                    rp_id=rp_id or options["rp"]["id"],
                    counter=counter,
                    present=present,
                    attested=True,
                ),
            }
        )
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": list(self.transports),
            },
            "type": "public-key",
            "clientExtensionResults": {},
            "authenticatorAttachment": self.attachment,
        }

    def get(
        self,
        options_json: str,
        *,
        counter: int,
        origin: str = ORIGIN,
        rp_id: str | None = None,
        present: bool = True,
        user_handle: bytes | bool | None = True,
        signing_key: ec.EllipticCurvePrivateKey | None = None,
        client_data: bytes | None = None,
    ) -> dict[str, Any]:
        """What navigator.credentials.get() resolves to, as JSON.

        user_handle: True sends the one learnt at registration, None sends none, bytes those.
        client_data: replaces clientDataJSON after signing (tampering in transit).
        """
        options = json.loads(options_json)
        data = self.auth_data(
            rp_id=rp_id or options["rpId"], counter=counter, present=present, attested=False
        )
        signed_client_data = self.client_data("webauthn.get", options["challenge"], origin)
        signature = (signing_key or self.key).sign(
            data + hashlib.sha256(signed_client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        handle = self.user_id if user_handle is True else user_handle
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "response": {
                "clientDataJSON": b64url(client_data or signed_client_data),
                "authenticatorData": b64url(data),
                "signature": b64url(signature),
                "userHandle": b64url(handle) if isinstance(handle, bytes) else None,
            },
            "type": "public-key",
            "clientExtensionResults": {},
            "authenticatorAttachment": self.attachment,
        }
