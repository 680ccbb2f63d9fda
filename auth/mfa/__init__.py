"""Second factors: TOTP, WebAuthn and recovery codes (factors, totp, webauthn/, recovery,
crypto for secrets at rest), checked at sign-in (verify, throttle), counted (census)."""
