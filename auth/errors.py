"""One exception root, so callers (CLI, API) can turn any of ours into a clear message."""

from __future__ import annotations


class BreachguardError(Exception):
    """Root of every error breachguard raises on purpose."""


class InvalidInput(BreachguardError):
    """Input that cannot be accepted; the message names the field or line."""


class InvalidEmail(InvalidInput):
    """Not an e-mail address."""


class BreachSourceError(BreachguardError):
    """A breach source (HIBP, another breachguard) could not answer."""


class ImportAborted(BreachguardError):
    """An import found bad rows and committed nothing."""


class AuditChainBroken(BreachguardError):
    """The audit trail's hash chain does not verify."""


class NotFound(BreachguardError):
    """The thing asked for does not exist."""
