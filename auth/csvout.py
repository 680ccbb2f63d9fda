"""Every CSV the project writes goes through this writer, which keeps a spreadsheet from
running a cell as a formula (CSV injection, OWASP's rule).

A text cell that starts with = + - @, a tab or a carriage return is written behind a
single quote: spreadsheets show it as text. Addresses and breach names come from leaks
and lists that anyone may have written (`=HYPERLINK(...)@example.org` is a valid address).
Numbers are written as they are, so -1 stays a number.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """The value as it is safe to write: text that a spreadsheet would evaluate gets a
    leading quote; None is an empty cell."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def uncell(text: str) -> str:
    """A cell as read back from a file cell() wrote: the guarding quote dropped, so that
    `scan --format csv` can feed `reset --emails`."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


class Writer:
    """csv.writer with every cell passed through cell(); rows end with a bare newline."""

    def __init__(self, stream: TextIO, header: Sequence[str] | None = None) -> None:
        self._csv = csv.writer(stream, lineterminator="\n")
        if header is not None:
            self._csv.writerow(header)

    def row(self, values: Iterable[object]) -> None:
        self._csv.writerow([cell(v) for v in values])


class RecordWriter:
    """Rows given as mappings, in the order of `fields`, after a header line."""

    def __init__(self, stream: TextIO, fields: Sequence[str]) -> None:
        self.fields = tuple(fields)
        self._writer = Writer(stream, header=self.fields)

    def record(self, values: Mapping[str, Any]) -> None:
        self._writer.row(values.get(f) for f in self.fields)
