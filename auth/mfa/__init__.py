"""Second factors: TOTP, WebAuthn, recovery codes."""
