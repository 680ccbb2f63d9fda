"""One exception root, so callers (CLI, API) can turn any of ours into a clear message."""

from __future__ import annotations

import unicodedata


class BreachguardError(Exception):
    """Root of every error breachguard raises on purpose."""


class InvalidInput(BreachguardError):
    """Input that cannot be accepted; the message names the field or line."""


def one_line(raw: str, field: str, error: type[InvalidInput] | None = None) -> str:
    """A person's free text (a name, a reason) as one line: runs of whitespace become one
    space. Refuses control characters (`error`, InvalidInput by default): PostgreSQL cannot
    store a NUL (the write failed with a 500) and nobody can read the others. Format
    characters stay: some names need a zero-width joiner."""
    text = " ".join(raw.split())
    if has_control(text):
        raise (error or InvalidInput)(f"{field}: no control characters")
    return text


def has_control(text: str) -> bool:
    """Whether the text holds a control character (a NUL, which PostgreSQL cannot store,
    or any other that nobody can read)."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


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
