"""HibpClient against a real HTTP server on 127.0.0.1 that speaks HIBP's range protocol.

No mocks of requests: the fake server is scripted per test with canned answers (status,
headers, body, delay, trickle) and records what it received, so timeouts, retries, headers and
connection reuse are exercised over real sockets.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

import pytest
import requests

from auth.breach.hibp import (
    DEFAULT_API_URL,
    DEFAULT_PASSWORDS_URL,
    HibpClient,
    HibpSettings,
)
from auth.errors import BreachguardError, BreachSourceError

API_KEY = "0123456789abcdef0123456789abcdef"

PASSWORD_SHA1 = hashlib.sha1(b"password").hexdigest().upper()  # noqa: S324 - HIBP's scheme
PASSWORD_PREFIX, PASSWORD_SUFFIX = PASSWORD_SHA1[:5], PASSWORD_SHA1[5:]
EMAIL_SHA1 = hashlib.sha1(b"nurse@example.org").hexdigest().upper()  # noqa: S324
EMAIL_PREFIX, EMAIL_SUFFIX = EMAIL_SHA1[:6], EMAIL_SHA1[6:]

OTHER_SUFFIX = "0018A45C4D1DEF81644B54AB7F969B88D65"
PADDING_SUFFIX = "00D4F6E8FA6EECAD2A3AA415EEC418D38EC"


# -- the fake HIBP ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Canned:
    """One scripted answer."""

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before anything is sent
    trickle: float = 0.0  # seconds between body bytes (a slow-loris server)
    hang_up: bool = False  # close the connection without answering


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    client_port: int


class FakeHibp:
    """Threaded loopback HTTP server: answers from a script, records every request."""

    def __init__(self) -> None:
        self.script: deque[Canned] = deque()
        self.default: Canned | None = None  # answer when the script is empty
        self.received: list[Received] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, *canned: Canned) -> None:
        self.script.extend(canned)

    def always(self, canned: Canned) -> None:
        self.default = canned

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()  # releases handlers still "delaying"
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next(self, received: Received) -> Canned:
        with self._lock:
            self.received.append(received)
            if self.script:
                return self.script.popleft()
        return self.default or Canned(418, "unscripted request\n")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as HIBP behind Cloudflare

            def do_GET(self) -> None:
                received = Received(
                    method="GET",
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    client_port=self.client_address[1],
                )
                canned = fake._next(received)
                body = canned.body.encode() if isinstance(canned.body, str) else canned.body
                if canned.hang_up:
                    self.close_connection = True
                    return
                try:
                    if canned.delay and fake.stopping.wait(canned.delay):
                        return
                    self.send_response(canned.status)
                    for name, value in canned.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if canned.trickle:
                        for byte in body:
                            if fake.stopping.wait(canned.trickle):
                                return
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback only: a proxy from the environment must not see these requests."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)


@pytest.fixture
def hibp() -> Iterator[FakeHibp]:
    server = FakeHibp()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SleepRecorder:
    """Stands in for time.sleep: remembers the requested waits, waits for nothing."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class _ClientFactory(Protocol):
    def __call__(self, **overrides: object) -> HibpClient: ...


@pytest.fixture
def make_client(
    hibp: FakeHibp, sleeps: SleepRecorder, clock: FakeClock
) -> Iterator[_ClientFactory]:
    clients: list[HibpClient] = []

    def make(**overrides: object) -> HibpClient:
        """A client aimed at the fake server; keyword arguments override HibpSettings."""
        options: dict[str, object] = {
            "passwords_url": hibp.url,
            "api_url": hibp.url + "/api/v3",
            "api_key": API_KEY,
            "read_timeout": 2.0,
        }
        options.update(overrides)
        client = HibpClient(HibpSettings(**options), clock=clock, sleep=sleeps)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def password_body(*lines: str) -> str:
    return "\r\n".join(lines)


def email_body(*entries: tuple[str, list[str]]) -> str:
    return json.dumps([{"hashSuffix": suffix, "websites": sites} for suffix, sites in entries])


# -- settings --------------------------------------------------------------------------------


def test_defaults_point_at_the_public_hibp_services() -> None:
    settings = HibpSettings()
    assert settings.passwords_url == DEFAULT_PASSWORDS_URL == "https://api.pwnedpasswords.com"
    assert settings.api_url == DEFAULT_API_URL == "https://haveibeenpwned.com/api/v3"
    assert settings.api_key is None


def test_settings_repr_never_shows_the_api_key() -> None:
    assert API_KEY not in repr(HibpSettings(api_key=API_KEY))


@pytest.mark.parametrize(
    "overrides",
    [{"read_timeout": 0}, {"connect_timeout": -1}, {"retries": -1}, {"api_url": "ftp://x"}],
)
def test_settings_that_could_hang_or_misroute_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        HibpSettings(**overrides)  # type: ignore[arg-type]


def test_breach_source_error_is_a_breachguard_error() -> None:
    assert issubclass(BreachSourceError, BreachguardError)


# -- password range --------------------------------------------------------------------------


def test_password_range_parses_suffixes_and_counts(
    hibp: FakeHibp, make_client: _ClientFactory
) -> None:
    hibp.answer(Canned(body=password_body(f"{OTHER_SUFFIX}:3", f"{PASSWORD_SUFFIX}:10434004")))

    result = make_client().password_range(PASSWORD_PREFIX)

    assert result == {OTHER_SUFFIX: 3, PASSWORD_SUFFIX: 10434004}
    assert hibp.received[0].path == f"/range/{PASSWORD_PREFIX}"


def test_padding_entries_are_ignored(hibp: FakeHibp, make_client: _ClientFactory) -> None:
    hibp.answer(Canned(body=password_body(f"{OTHER_SUFFIX}:2", f"{PADDING_SUFFIX}:0")))

    assert make_client().password_range(PASSWORD_PREFIX) == {OTHER_SUFFIX: 2}


def test_lf_only_bodies_and_a_trailing_newline_are_accepted(
    hibp: FakeHibp, make_client: _ClientFactory
) -> None:
    hibp.answer(Canned(body=f"{OTHER_SUFFIX}:2\n{PASSWORD_SUFFIX}:5\n"))

    assert make_client().password_range(PASSWORD_PREFIX) == {OTHER_SUFFIX: 2, PASSWORD_SUFFIX: 5}


BOM = b"\xef\xbb\xbf"  # UTF-8, as a server writing through .NET's UTF-8 encoder sends


@pytest.mark.parametrize("newline", ["\r\n", "\n"], ids=["crlf", "lf"])
def test_a_password_body_that_begins_with_a_bom_keeps_its_first_line(
    hibp: FakeHibp, make_client: _ClientFactory, newline: str
) -> None:
    hibp.answer(Canned(body=BOM + f"{PASSWORD_SUFFIX}:9{newline}{OTHER_SUFFIX}:2".encode()))

    assert make_client().password_range(PASSWORD_PREFIX) == {PASSWORD_SUFFIX: 9, OTHER_SUFFIX: 2}


def test_a_bom_anywhere_but_the_start_of_a_password_body_is_an_error(
    hibp: FakeHibp, make_client: _ClientFactory
) -> None:
    hibp.answer(
        Canned(body=f"{OTHER_SUFFIX}:2\r\n".encode() + BOM + f"{PASSWORD_SUFFIX}:9".encode())
    )

    with pytest.raises(BreachSourceError, match="non-ASCII"):
        make_client().password_range(PASSWORD_PREFIX)


def test_a_bom_alone_is_an_empty_password_body_not_an_empty_answer(
    hibp: FakeHibp, make_client: _ClientFactory
) -> None:
    hibp.answer(Canned(body=BOM))

    with pytest.raises(BreachSourceError, match="empty body"):
        make_client().password_range(PASSWORD_PREFIX)


def test_suffixes_are_returned_upper_case(hibp: FakeHibp, make_client: _ClientFactory) -> None:
    hibp.answer(Canned(body=f"{OTHER_SUFFIX.lower()}:7"))

    assert make_client().password_range(PASSWORD_PREFIX) == {OTHER_SUFFIX: 7}


def test_password_request_asks_for_padding_and_identifies_itself(
    hibp: FakeHibp, make_client: _ClientFactory
) -> None:
    hibp.answer(Canned(body=f"{OTHER_SUFFIX}:1"))

    make_client(user_agent="breachguard-test/1").password_range(PASSWORD_PREFIX)

    headers = hibp.received[0].headers
    assert headers["add-padding"] == "true"
    assert headers["user-agent"] == "breachguard-test/1"
    assert "hibp-api-key" not in headers  # the key is for the API only


def test_prefix_is_upper_cased_in_the_url(hibp: FakeHibp, make_client: _ClientFactory) -> None:
    hibp.answer(Canned(body=f"{OTHER_SUFFIX}:1"))

    make_client().password_range(PASSWORD_PREFIX.lower())

    assert hibp.received[0].path == f"/range/{PASSWORD_PREFIX}"


@pytest.mark.parametrize(
    "body",
    [
        f"{OTHER_SUFFIX}:1\r\n<html>Just a moment...</html>",
        f"{OTHER_SUFFIX}",
        f"{OTHER_SUFFIX}:many",
        f"{OTHER_SUFFIX[:-1]}:1",
        f"{OTHER_SUFFIX}:-1",
        "",
    ],
    ids=["html", "no-count", "word-count", "short-suffix", "negative-count", "empty"],
)
def test_a_malformed_password_body_is_a_breach_source_error(
    hibp: FakeHibp, make_client: _ClientFactory, body: str
) -> None:
    hibp.answer(Canned(body=body))

    with pytest.raises(BreachSourceError):
        make_client().password_range(PASSWORD_PREFIX)


@pytest.mark.parametrize("prefix", ["5BAA", "5BAA61", "5BAAG", "", " 5BAA", "5BAA６"])
def test_an_invalid_password_prefix_is_a_caller_bug(
    hibp: FakeHibp, make_client: _ClientFactory, prefix: str
) -> None:
    with pytest.raises(ValueError, match="5 hex"):
        make_client().password_range(prefix)
    assert hibp.received == []


# -- e-mail range ----------------------------------------------------------------------------


def test_email_range_sends_the_api_key_and_parses_json(
    hibp: FakeHibp, make_client: _ClientFactory
) -> None:
    hibp.answer(
        Canned(
            body=email_body((EMAIL_SUFFIX, ["Adobe", "LinkedIn"]), (OTHER_SUFFIX[:34], [])),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
    )

    result = make_client().email_range(EMAIL_PREFIX.lower())

    assert result == {EMAIL_SUFFIX: ("Adobe", "LinkedIn"), OTHER_SUFFIX[:34]: ()}
    request = hibp.received[0]
    assert request.path == f"/api/v3/breachedaccount/range/{EMAIL_PREFIX}"
    assert request.headers["hibp-api-key"] == API_KEY
    assert request.headers["user-agent"].startswith("breachguard/")
    assert "add-padding" not in request.headers


def test_email_suffixes_are_returned_upper_case(
    hibp: FakeHibp, make_client: _ClientFactory
) -> None:
    hibp.answer(Canned(body=email_body((EMAIL_SUFFIX.lower(), ["Adobe"]))))

    assert make_client().email_range(EMAIL_PREFIX) == {EMAIL_SUFFIX: ("Adobe",)}


def test_an_email_body_that_begins_with_a_bom_is_read(
    hibp: FakeHibp, make_client: _ClientFactory
) -> None:
    hibp.answer(Canned(body=BOM + email_body((EMAIL_SUFFIX, ["Adobe"])).encode()))

    assert make_client().email_range(EMAIL_PREFIX) == {EMAIL_SUFFIX: ("Adobe",)}


def test_email_404_means_nothing_found(hibp: FakeHibp, make_client: _ClientFactory) -> None:
    hibp.answer(Canned(404))

    assert make_client().email_range(EMAIL_PREFIX) == {}


@pytest.mark.parametrize("status", [401, 403])
def test_a_rejected_api_key_fails_at_once_without_retry(
    hibp: FakeHibp, make_client: _ClientFactory, sleeps: SleepRecorder, status: int
) -> None:
    hibp.always(Canned(status, body='{"statusCode": 401, "message": "Access denied"}'))

    with pytest.raises(BreachSourceError, match="API key") as caught:
        make_client().email_range(EMAIL_PREFIX)

    assert len(hibp.received) == 1
    assert sleeps.calls == []
    assert API_KEY not in str(caught.value)


@pytest.mark.parametrize("api_key", [None, ""])
def test_without_an_api_key_no_email_request_is_made(
    hibp: FakeHibp, make_client: _ClientFactory, api_key: str | None
) -> None:
    with pytest.raises(BreachSourceError, match="API key"):
        make_client(api_key=api_key).email_range(EMAIL_PREFIX)

    assert hibp.received == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        '{"hashSuffix": "x"}',
        json.dumps([{"hashSuffix": "XYZ", "websites": []}]),
        json.dumps([{"hashSuffix": EMAIL_SUFFIX}]),
        json.dumps([{"hashSuffix": EMAIL_SUFFIX, "websites": "Adobe"}]),
        json.dumps([{"hashSuffix": EMAIL_SUFFIX, "websites": [1]}]),
        json.dumps(["oops"]),
    ],
)
def test_a_malformed_email_body_is_a_breach_source_error(
    hibp: FakeHibp, make_client: _ClientFactory, body: str
) -> None:
    hibp.answer(Canned(body=body))

    with pytest.raises(BreachSourceError):
        make_client().email_range(EMAIL_PREFIX)


@pytest.mark.parametrize("prefix", ["5BAA6", "5BAA61E", "ZZZZZZ"])
def test_an_invalid_email_prefix_is_a_caller_bug(
    hibp: FakeHibp, make_client: _ClientFactory, prefix: str
) -> None:
    with pytest.raises(ValueError, match="6 hex"):
        make_client().email_range(prefix)
    assert hibp.received == []


# -- rate limiting and retries ---------------------------------------------------------------


def test_429_retry_after_is_honoured_then_the_answer_is_used(
    hibp: FakeHibp, make_client: _ClientFactory, sleeps: SleepRecorder
) -> None:
    hibp.answer(
        Canned(429, body='{"statusCode": 429}', headers={"Retry-After": "1"}),
        Canned(body=email_body((EMAIL_SUFFIX, ["Adobe"]))),
    )

    assert make_client().email_range(EMAIL_PREFIX) == {EMAIL_SUFFIX: ("Adobe",)}
    assert sleeps.calls == [1.0]
    assert len(hibp.received) == 2


def test_429_without_retry_after_falls_back_to_backoff(
    hibp: FakeHibp, make_client: _ClientFactory, sleeps: SleepRecorder
) -> None:
    hibp.answer(Canned(429), Canned(body=f"{OTHER_SUFFIX}:1"))

    make_client(backoff=0.25).password_range(PASSWORD_PREFIX)

    assert sleeps.calls == [0.25]


def test_a_retry_after_beyond_the_limit_fails_fast_without_sleeping(
    hibp: FakeHibp, make_client: _ClientFactory, sleeps: SleepRecorder
) -> None:
    hibp.always(Canned(429, headers={"Retry-After": "3600"}))

    started = time.monotonic()
    with pytest.raises(BreachSourceError, match="429"):
        make_client(max_retry_after=10).email_range(EMAIL_PREFIX)

    assert time.monotonic() - started < 1.0
    assert sleeps.calls == []
    assert len(hibp.received) == 1


def test_5xx_is_retried_with_backoff_then_succeeds(
    hibp: FakeHibp, make_client: _ClientFactory, sleeps: SleepRecorder
) -> None:
    hibp.answer(Canned(503), Canned(502), Canned(body=f"{OTHER_SUFFIX}:4"))

    assert make_client(backoff=0.5).password_range(PASSWORD_PREFIX) == {OTHER_SUFFIX: 4}
    assert sleeps.calls == [0.5, 1.0]


def test_5xx_forever_gives_up_after_retries_plus_one_requests(
    hibp: FakeHibp, make_client: _ClientFactory, sleeps: SleepRecorder
) -> None:
    hibp.always(Canned(503, body="Service Unavailable"))

    with pytest.raises(BreachSourceError, match="503") as caught:
        make_client(retries=3, backoff=0.5).password_range(PASSWORD_PREFIX)

    assert len(hibp.received) == 4
    assert sleeps.calls == [0.5, 1.0, 2.0]
    assert f"/range/{PASSWORD_PREFIX}" in str(caught.value)


def test_other_4xx_fail_at_once(
    hibp: FakeHibp, make_client: _ClientFactory, sleeps: SleepRecorder
) -> None:
    hibp.always(Canned(400, body="Bad request"))

    with pytest.raises(BreachSourceError, match="400"):
        make_client().password_range(PASSWORD_PREFIX)

    assert len(hibp.received) == 1
    assert sleeps.calls == []


def test_redirects_are_not_followed_so_the_key_cannot_leak(
    hibp: FakeHibp, make_client: _ClientFactory
) -> None:
    hibp.always(Canned(302, headers={"Location": f"{hibp.url}/elsewhere"}))

    with pytest.raises(BreachSourceError, match="302"):
        make_client().email_range(EMAIL_PREFIX)

    assert [r.path for r in hibp.received] == [f"/api/v3/breachedaccount/range/{EMAIL_PREFIX}"]


def test_retry_warnings_are_logged_without_the_api_key(
    hibp: FakeHibp,
    make_client: _ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hibp.answer(Canned(500), Canned(404))

    with caplog.at_level(logging.WARNING, logger="auth.breach.hibp"):
        assert make_client().email_range(EMAIL_PREFIX) == {}

    assert "500" in caplog.text
    assert API_KEY not in caplog.text


# -- never hang ------------------------------------------------------------------------------


def test_a_server_slower_than_read_timeout_fails_instead_of_hanging(
    hibp: FakeHibp, make_client: _ClientFactory, sleeps: SleepRecorder
) -> None:
    hibp.always(Canned(body=f"{OTHER_SUFFIX}:1", delay=5.0))

    started = time.monotonic()
    with pytest.raises(BreachSourceError, match="timed out"):
        make_client(read_timeout=0.2, retries=1).password_range(PASSWORD_PREFIX)

    assert time.monotonic() - started < 3.0
    assert len(hibp.received) == 2
    assert len(sleeps.calls) == 1


def test_a_trickling_body_is_cut_off_at_the_read_deadline(
    hibp: FakeHibp, make_client: _ClientFactory
) -> None:
    # Each byte arrives well within read_timeout, but the whole body would take ~4 s.
    hibp.always(Canned(body=f"{OTHER_SUFFIX}:1\r\n" * 2, trickle=0.05))

    started = time.monotonic()
    with pytest.raises(BreachSourceError, match="read_timeout"):
        make_client(read_timeout=0.2, retries=0).password_range(PASSWORD_PREFIX)

    assert time.monotonic() - started < 3.0


def test_connection_refused_is_a_breach_source_error(
    sleeps: SleepRecorder, clock: FakeClock
) -> None:
    with socket.socket() as probe:  # find a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = HibpSettings(
        passwords_url=f"http://127.0.0.1:{port}", connect_timeout=0.5, retries=2
    )
    client = HibpClient(settings, clock=clock, sleep=sleeps)

    started = time.monotonic()
    with pytest.raises(BreachSourceError, match="connection failed"):
        client.password_range(PASSWORD_PREFIX)
    client.close()

    assert time.monotonic() - started < 3.0
    assert sleeps.calls == [0.5, 1.0]


def test_a_server_that_hangs_up_without_answering_is_retried_then_a_breach_source_error(
    hibp: FakeHibp, make_client: _ClientFactory, sleeps: SleepRecorder
) -> None:
    hibp.always(Canned(hang_up=True))

    with pytest.raises(BreachSourceError, match="connection failed"):
        make_client(retries=2, backoff=0.5).password_range(PASSWORD_PREFIX)

    assert len(hibp.received) == 3
    assert sleeps.calls == [0.5, 1.0]


# -- cache -----------------------------------------------------------------------------------


def test_a_cached_answer_is_reused_within_the_ttl(
    hibp: FakeHibp, make_client: _ClientFactory, clock: FakeClock
) -> None:
    hibp.always(Canned(body=f"{OTHER_SUFFIX}:1"))
    client = make_client(cache_ttl=300)

    first = client.password_range(PASSWORD_PREFIX)
    clock.now += 299
    second = client.password_range(PASSWORD_PREFIX.lower())

    assert first == second == {OTHER_SUFFIX: 1}
    assert len(hibp.received) == 1


def test_the_cache_asks_again_once_the_ttl_has_passed(
    hibp: FakeHibp, make_client: _ClientFactory, clock: FakeClock
) -> None:
    hibp.answer(Canned(body=f"{OTHER_SUFFIX}:1"), Canned(body=f"{OTHER_SUFFIX}:2"))
    client = make_client(cache_ttl=300)

    assert client.password_range(PASSWORD_PREFIX) == {OTHER_SUFFIX: 1}
    clock.now += 300
    assert client.password_range(PASSWORD_PREFIX) == {OTHER_SUFFIX: 2}
    assert len(hibp.received) == 2


def test_email_not_found_is_cached_like_any_answer(
    hibp: FakeHibp, make_client: _ClientFactory
) -> None:
    hibp.always(Canned(404))
    client = make_client()

    assert client.email_range(EMAIL_PREFIX) == {}
    assert client.email_range(EMAIL_PREFIX) == {}
    assert len(hibp.received) == 1


def test_failures_are_not_cached(hibp: FakeHibp, make_client: _ClientFactory) -> None:
    hibp.answer(Canned(503), Canned(body=f"{OTHER_SUFFIX}:1"))
    client = make_client(retries=0)

    with pytest.raises(BreachSourceError):
        client.password_range(PASSWORD_PREFIX)
    assert client.password_range(PASSWORD_PREFIX) == {OTHER_SUFFIX: 1}


def test_password_and_email_answers_are_cached_separately(
    hibp: FakeHibp, make_client: _ClientFactory
) -> None:
    prefix = "ABCDEF"
    hibp.answer(Canned(body=f"{OTHER_SUFFIX}:1"), Canned(404))
    client = make_client()

    assert client.password_range(prefix[:5]) == {OTHER_SUFFIX: 1}
    assert client.email_range(prefix) == {}
    assert len(hibp.received) == 2


def test_the_cache_is_bounded_and_drops_the_least_recently_used(
    hibp: FakeHibp, make_client: _ClientFactory
) -> None:
    hibp.always(Canned(body=f"{OTHER_SUFFIX}:1"))
    client = make_client(cache_size=2)

    client.password_range("AAAAA")
    client.password_range("BBBBB")
    client.password_range("AAAAA")  # AAAAA is now the most recently used
    client.password_range("CCCCC")  # evicts BBBBB
    client.password_range("AAAAA")
    client.password_range("BBBBB")

    assert [r.path for r in hibp.received] == [
        "/range/AAAAA",
        "/range/BBBBB",
        "/range/CCCCC",
        "/range/BBBBB",
    ]


def test_callers_cannot_corrupt_the_cache_by_mutating_an_answer(
    hibp: FakeHibp, make_client: _ClientFactory
) -> None:
    hibp.always(Canned(body=f"{OTHER_SUFFIX}:1"))
    client = make_client()

    client.password_range(PASSWORD_PREFIX).clear()

    assert client.password_range(PASSWORD_PREFIX) == {OTHER_SUFFIX: 1}


# -- session ---------------------------------------------------------------------------------


def test_look_ups_reuse_one_pooled_connection(hibp: FakeHibp, make_client: _ClientFactory) -> None:
    hibp.always(Canned(body=f"{OTHER_SUFFIX}:1"))
    client = make_client()

    client.password_range("AAAAA")
    client.password_range("BBBBB")
    client.password_range("CCCCC")

    assert len({r.client_port for r in hibp.received}) == 1


def test_an_injected_session_is_used_and_left_open(
    hibp: FakeHibp, sleeps: SleepRecorder, clock: FakeClock
) -> None:
    hibp.always(Canned(body=f"{OTHER_SUFFIX}:1"))
    session = requests.Session()
    session.headers["X-Request-Id"] = "trace-1"
    client = HibpClient(HibpSettings(passwords_url=hibp.url), session=session, sleep=sleeps)

    client.password_range(PASSWORD_PREFIX)
    client.close()
    session.get(f"{hibp.url}/range/{PASSWORD_PREFIX}", timeout=2).close()  # still usable
    session.close()

    assert hibp.received[0].headers["x-request-id"] == "trace-1"
    assert hibp.received[0].headers["user-agent"].startswith("breachguard/")
    assert len(hibp.received) == 2
