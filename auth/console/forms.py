"""A form field's error, in the reader's language, named so the page shows it beside the
field it is about."""

from __future__ import annotations

from auth.errors import InvalidInput


class FieldError(InvalidInput):
    """`message` is already in the reader's language; `field` is the form field's name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
