"""Have I Been Pwned client for the k-anonymity range endpoints (passwords and e-mail addresses).

Only a hash prefix leaves the process: the first 5 hex characters of a password's SHA-1, or the
first 6 of an e-mail address's SHA-1. HIBP answers with every suffix sharing that prefix and the
caller matches its own suffix locally. Protocol: https://haveibeenpwned.com/API/v3

This sits on the login path, so it is defensive: every request has connect and read timeouts and
a bounded body, retries are bounded, and every failure is a ``BreachSourceError`` the caller can
choose to fail open or closed on - never a hang and never a silent "not breached".
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from auth.breach.hibp_answers import (
    EMAIL_PREFIX_RE,
    PASSWORD_PREFIX_RE,
    checked_prefix,
    email_body,
    password_body,
    retry_after_seconds,
)
from auth.errors import BreachSourceError

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_PASSWORDS_URL",
    "HibpClient",
    "HibpSettings",
]

DEFAULT_PASSWORDS_URL = "https://api.pwnedpasswords.com"
DEFAULT_API_URL = "https://haveibeenpwned.com/api/v3"

logger = logging.getLogger(__name__)

# A padded password range is ~40 KB; anything near this limit is not HIBP talking.
_MAX_BODY_BYTES = 8 * 1024 * 1024
_READ_CHUNK = 64 * 1024
# Two hosts (passwords, API); enough connections for a threaded web worker.
_POOL_CONNECTIONS = 2
_POOL_MAXSIZE = 16

_PASSWORD_KIND = "password range"
_EMAIL_KIND = "e-mail range"


@dataclass(frozen=True)
class HibpSettings:
    """Where HIBP lives and how patient to be with it; defaults suit the public service."""

    passwords_url: str = DEFAULT_PASSWORDS_URL
    api_url: str = DEFAULT_API_URL
    # repr=False: settings get logged and printed; the key must not come along.
    api_key: str | None = field(default=None, repr=False)
    user_agent: str = "breachguard/0.1 (credential-leak protection)"
    connect_timeout: float = 3.05
    read_timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.5
    max_retry_after: float = 10.0
    cache_ttl: float = 300.0
    cache_size: int = 4096

    def __post_init__(self) -> None:
        """Reject settings that would make the client hang, spin or misroute (a config bug)."""
        for name in ("passwords_url", "api_url"):
            url: str = getattr(self, name)
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"HibpSettings.{name} must be an http(s) URL, got {url!r}")
        for name in ("connect_timeout", "read_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HibpSettings.{name} must be > 0 (a request must never hang)")
        for name in ("retries", "backoff", "max_retry_after", "cache_ttl", "cache_size"):
            if not getattr(self, name) >= 0:  # also rejects NaN
                raise ValueError(f"HibpSettings.{name} must be >= 0")
        if not self.user_agent:
            raise ValueError("HibpSettings.user_agent must not be empty (HIBP rejects requests)")


class _Retry(Exception):
    """One attempt failed in a way another attempt may fix (429, 5xx, network)."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay  # None: use exponential backoff


class _TtlLru:
    """Prefix answers reused for a while: HIBP data changes slowly and logins repeat prefixes."""

    def __init__(self, *, ttl: float, size: int, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[float, object]] = OrderedDict()

    def get(self, key: tuple[str, str]) -> object | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, value = entry
            if self._clock() >= expires_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: tuple[str, str], value: object) -> None:
        if self._size == 0 or self._ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + self._ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class HibpClient:
    """Range look-ups against HIBP with timeouts, bounded retries and a small TTL cache.

    Safe to share between threads: the cache is locked and the connection pool is thread-safe.
    """

    def __init__(
        self,
        settings: HibpSettings,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._owns_session = session is None
        self._session = session if session is not None else self._build_session()
        self._cache = _TtlLru(ttl=settings.cache_ttl, size=settings.cache_size, clock=clock)
        self._passwords_base = settings.passwords_url.rstrip("/")
        self._api_base = settings.api_url.rstrip("/")

    @staticmethod
    def _build_session() -> requests.Session:
        """One pooled session so logins reuse TLS connections instead of handshaking each time."""
        session = requests.Session()
        # max_retries=0: retries are ours, so they honour Retry-After and the injected sleep.
        adapter = HTTPAdapter(
            pool_connections=_POOL_CONNECTIONS, pool_maxsize=_POOL_MAXSIZE, max_retries=0
        )
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def close(self) -> None:
        """Release pooled connections; an injected session belongs to the caller and stays open."""
        self._cache.clear()
        if self._owns_session:
            self._session.close()

    # -- public look-ups -------------------------------------------------------------------

    def password_range(self, prefix: str) -> dict[str, int]:
        """Suffixes (35 hex, upper case) sharing a 5-hex SHA-1 prefix, with breach counts.

        Padding entries (count 0, requested via ``Add-Padding`` so the response size does not
        reveal the prefix) are dropped.
        """
        prefix = checked_prefix(prefix, PASSWORD_PREFIX_RE, "password", 5)
        key = (_PASSWORD_KIND, prefix)
        cached = self._cache.get(key)
        if cached is not None:
            return dict(cast(dict[str, int], cached))
        url = f"{self._passwords_base}/range/{prefix}"
        status, body = self._get(_PASSWORD_KIND, url, {"Add-Padding": "true"})
        if status != 200:
            raise BreachSourceError(f"HIBP {_PASSWORD_KIND} {url} answered HTTP {status}")
        result = password_body(body, url)
        self._cache.put(key, result)
        return dict(result)

    def email_range(self, prefix: str) -> dict[str, tuple[str, ...]]:
        """Suffixes (34 hex, upper case) sharing a 6-hex SHA-1 prefix, with breach names.

        Needs an API key with k-anonymity access; 404 is HIBP's "nothing found" and yields {}.
        """
        prefix = checked_prefix(prefix, EMAIL_PREFIX_RE, "e-mail", 6)
        api_key = self._settings.api_key
        if not api_key:
            raise BreachSourceError(
                "HIBP e-mail range look-ups need an API key (HibpSettings.api_key is not set)"
            )
        key = (_EMAIL_KIND, prefix)
        cached = self._cache.get(key)
        if cached is not None:
            return dict(cast(dict[str, tuple[str, ...]], cached))
        url = f"{self._api_base}/breachedaccount/range/{prefix}"
        status, body = self._get(_EMAIL_KIND, url, {"hibp-api-key": api_key})
        if status == 404:
            result: dict[str, tuple[str, ...]] = {}
        elif status in (401, 403):
            raise BreachSourceError(
                f"HIBP rejected the API key for {url} (HTTP {status}): "
                "the hibp-api-key is missing, invalid or lacks k-anonymity access"
            )
        elif status != 200:
            raise BreachSourceError(f"HIBP {_EMAIL_KIND} {url} answered HTTP {status}")
        else:
            result = email_body(body, url)
        self._cache.put(key, result)
        return dict(result)

    # -- transport -------------------------------------------------------------------------

    def _get(self, kind: str, url: str, extra_headers: Mapping[str, str]) -> tuple[int, bytes]:
        """GET with bounded retries; returns (status, body) for any status not worth a retry.

        The body is read only for 200; a failure message names the URL but never the headers,
        which is where the API key travels.
        """
        settings = self._settings
        headers = {"User-Agent": settings.user_agent, **extra_headers}
        attempts = settings.retries + 1
        reason = ""
        for attempt in range(attempts):
            try:
                return self._attempt(kind, url, headers)
            except _Retry as exc:
                reason = exc.reason
                delay = exc.delay if exc.delay is not None else settings.backoff * 2**attempt
            if attempt + 1 >= attempts:
                break
            logger.warning(
                "HIBP %s %s: %s; retry %d of %d in %.2f s",
                kind,
                url,
                reason,
                attempt + 1,
                settings.retries,
                delay,
            )
            self._sleep(delay)
        raise BreachSourceError(
            f"HIBP {kind} {url} failed after {attempts} attempt(s); last: {reason}"
        )

    def _attempt(self, kind: str, url: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """One request. Raises _Retry for transient failures, BreachSourceError for final ones."""
        settings = self._settings
        try:
            # allow_redirects=False: requests would forward the hibp-api-key header to wherever
            # a redirect points; HIBP's range endpoints never redirect.
            response = self._session.get(
                url,
                headers=headers,
                timeout=(settings.connect_timeout, settings.read_timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout as exc:
            raise _Retry(f"timed out ({type(exc).__name__})") from exc
        except requests.ConnectionError as exc:
            raise _Retry(f"connection failed ({exc})") from exc
        except requests.RequestException as exc:
            raise BreachSourceError(f"HIBP {kind} {url} could not be requested: {exc}") from exc
        with response:
            status = response.status_code
            if status == 429:
                delay = retry_after_seconds(response.headers.get("Retry-After"))
                if delay is not None and delay > settings.max_retry_after:
                    raise BreachSourceError(
                        f"HIBP {kind} {url} is rate limited (HTTP 429) and asks to wait "
                        f"{delay:g} s, more than max_retry_after={settings.max_retry_after:g} s"
                    )
                raise _Retry("rate limited (HTTP 429)", delay)
            if 500 <= status <= 599:
                raise _Retry(f"HTTP {status}")
            if status != 200:
                return status, b""
            return status, self._read_body(response)

    def _read_body(self, response: requests.Response) -> bytes:
        """Read the body under a total deadline and size cap.

        The read timeout only bounds each socket read; a server trickling a byte at a time would
        otherwise hold a login for ever.
        """
        raw = response.raw
        read1 = getattr(raw, "read1", None)  # urllib3 >= 2 returns whatever has arrived
        deadline = time.monotonic() + self._settings.read_timeout
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                if time.monotonic() > deadline:
                    raise _Retry(
                        f"body not complete within read_timeout={self._settings.read_timeout:g} s"
                    )
                if read1 is not None:
                    chunk = cast(bytes, read1(_READ_CHUNK, decode_content=True))
                else:
                    chunk = cast(bytes, raw.read(_READ_CHUNK, decode_content=True))
                if not chunk:
                    break
                size += len(chunk)
                if size > _MAX_BODY_BYTES:
                    raise BreachSourceError(
                        f"HIBP answer from {response.url} exceeds {_MAX_BODY_BYTES} bytes"
                    )
                chunks.append(chunk)
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            raise _Retry(f"reading the answer failed ({type(exc).__name__}: {exc})") from exc
        # Fully read: hand the connection back to the pool for the next look-up.
        raw.release_conn()
        return b"".join(chunks)
