"""HIBP's range answers, read strictly (pure functions): a garbled or empty answer is a
failure of the source, never "not breached". https://haveibeenpwned.com/API/v3
"""

from __future__ import annotations

import email.utils
import json
import re
from datetime import UTC, datetime
from typing import cast

from auth.errors import BreachSourceError

PASSWORD_PREFIX_RE = re.compile(r"[0-9A-Fa-f]{5}")
EMAIL_PREFIX_RE = re.compile(r"[0-9A-Fa-f]{6}")
_PASSWORD_LINE_RE = re.compile(r"([0-9A-Fa-f]{35}):([0-9]{1,20})")
_EMAIL_SUFFIX_RE = re.compile(r"[0-9A-Fa-f]{34}")
# A server that writes through .NET's default UTF-8 encoder (as HIBP's own tools do) starts
# the body with a byte order mark; it says nothing about the data.
_UTF8_BOM = b"\xef\xbb\xbf"


def checked_prefix(prefix: str, pattern: re.Pattern[str], what: str, length: int) -> str:
    """A wrong prefix is a caller bug (ValueError), not HIBP being unavailable."""
    if not isinstance(prefix, str) or pattern.fullmatch(prefix) is None:
        raise ValueError(
            f"{what} range prefix must be exactly {length} hex characters, got {prefix!r}"
        )
    return prefix.upper()


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After in seconds (HIBP sends delta-seconds; HTTP-dates work too); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds or seconds == float("inf"):  # NaN or inf: unusable
        return None
    return max(seconds, 0.0)


def password_body(body: bytes, url: str) -> dict[str, int]:
    """Parse ``SUFFIX:COUNT`` lines (CRLF or LF). An empty or garbled body is an error.

    With Add-Padding a range always has hundreds of lines, so an empty 200 is not HIBP (a proxy
    or truncated answer) and must not be mistaken for "not breached".
    """
    try:
        text = body.removeprefix(_UTF8_BOM).decode("ascii")
    except UnicodeDecodeError as exc:
        raise BreachSourceError(f"HIBP password range {url} sent a non-ASCII body") from exc
    result: dict[str, int] = {}
    lines = 0
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        match = _PASSWORD_LINE_RE.fullmatch(line)
        if match is None:
            raise BreachSourceError(
                f"HIBP password range {url} sent a malformed line {number}: {line[:60]!r}"
            )
        lines += 1
        count = int(match.group(2))
        if count > 0:
            result[match.group(1).upper()] = count
    if lines == 0:
        raise BreachSourceError(f"HIBP password range {url} sent an empty body")
    return result


def email_body(body: bytes, url: str) -> dict[str, tuple[str, ...]]:
    """Parse ``[{"hashSuffix": ..., "websites": [...]}, ...]``; anything else is an error."""
    try:
        data: object = json.loads(body.removeprefix(_UTF8_BOM))
    except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
        raise BreachSourceError(f"HIBP e-mail range {url} sent a body that is not JSON") from exc
    if not isinstance(data, list):
        raise BreachSourceError(f"HIBP e-mail range {url} sent JSON that is not a list")
    result: dict[str, tuple[str, ...]] = {}
    for index, entry in enumerate(data):
        suffix = entry.get("hashSuffix") if isinstance(entry, dict) else None
        websites = entry.get("websites") if isinstance(entry, dict) else None
        if (
            not isinstance(suffix, str)
            or _EMAIL_SUFFIX_RE.fullmatch(suffix) is None
            or not isinstance(websites, list)
            or not all(isinstance(site, str) for site in websites)
        ):
            raise BreachSourceError(
                f"HIBP e-mail range {url} sent a malformed entry at index {index}"
            )
        result[suffix.upper()] = tuple(cast(list[str], websites))
    return result
