"""HIBP clients nobody here wrote, pointed at a live `breachguard serve` on loopback, must read
the counts of imported passwords exactly and 0 for any other password, with and without
`Add-Padding`, as they would from api.pwnedpasswords.com.

Each client is pointed at the server by the smallest hook it offers, never by editing it:

* npm `hibp`: its documented `baseUrl` and `addPadding` options (tests/js/hibp_counts.mjs).
* `pyhibp`: its module constant `pyhibp.pwnedpasswords.PWNED_PASSWORDS_API_BASE_URI`;
  padding through its `add_padding` argument.
* `pwnedpasswords`: every URL is built by `PwnedPasswordsAPI.url`, so the test wraps it to
  swap HIBP's origin for the server's. It has no way to send `Add-Padding` (its request
  headers are a literal inside `PwnedPasswordsAPI.request`), so it is tried without only.
* `hibpwned`: https://api.pwnedpasswords.com/range/ is a literal inside each method, with
  no option, constant or attribute to change it; the one hook is the module's name
  `requests`, which the test replaces by the real `requests` with GETs to that origin sent
  to the server instead (anything else fails the test). Its parsing runs unchanged. It has
  no padding option either; the padded case puts `Add-Padding` into the instance's own
  `header` dict (set in its `__init__`, absent from its type stub), which it sends as is.

Passwords carry a token of this run and go into a breach of this run, so the counts are
exact whatever an earlier run left in a shared PostgreSQL database. A client that did not
reach the server (wrong base URL) fails: it cannot know these counts.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import hibpwned
import pyhibp  # type: ignore[import-untyped]
import pyhibp.pwnedpasswords  # type: ignore[import-untyped]
import pytest
import requests
from click.testing import CliRunner
from pwnedpasswords.pwnedpasswords import (  # type: ignore[import-untyped]
    Password as PwnedPasswordsPassword,
)
from pwnedpasswords.pwnedpasswords import PwnedPasswordsAPI

from auth.cli import main
from tests.conftest import CHEAP_ARGON2, PG_URL, REDIS_URL, TEST_MFA_KEY
from tests.helpers_server import ServeProcess, closed_port

HIBP_PASSWORDS = "https://api.pwnedpasswords.com/"
USER_AGENT = "breachguard-tests (third-party client check)"
PAD_MIN = 800  # HIBP pads every range to 800-1,000 lines
JS = Path(__file__).parent / "js"
NODE = shutil.which("node")

RUN = secrets.token_hex(4)
IMPORTED = {  # several counts, a one, a large one, non-ASCII (hashed as UTF-8, as HIBP)
    f"Tr0ub4dor&3 {RUN}": 1,
    f"correct horse battery staple {RUN}": 7,
    f"Passwort-mit-Umlauten-äöü {RUN}": 4_321,
    f"1234567890 {RUN}": 37_359_195,
}
NEIGHBOURED = f"not leaked, but its range is not empty {RUN}"
ALONE = f"not leaked, nothing else in its range {RUN}"
EXPECTED = {**IMPORTED, NEIGHBOURED: 0, ALONE: 0}
RANGE_OF = f"correct horse battery staple {RUN}"  # a range holding one real entry


def sha1hex(password: str) -> str:
    return hashlib.sha1(password.encode("utf-8")).hexdigest().upper()  # noqa: S324 - HIBP's


def neighbour(digest: str) -> str:
    """Another digest in the same range: a client must match the whole suffix."""
    return digest[:-1] + ("0" if digest[-1] != "0" else "1")


def corpus_lines() -> str:
    lines = {sha1hex(p): n for p, n in IMPORTED.items()}
    lines[neighbour(sha1hex(NEIGHBOURED))] = 99
    return "".join(f"{digest}:{n}\n" for digest, n in sorted(lines.items()))


@dataclass(frozen=True)
class Asked:
    padded: bool  # whether the client asked for padding
    counts: dict[str, int]  # what the client said of each password in EXPECTED
    range_lines: int  # how many entries the client's own range call returned for RANGE_OF


# --- the clients, each asked as an application would ask HIBP --------------------------


def ask_pyhibp(base: str, padded: bool) -> Asked:
    with (
        mock.patch.dict(pyhibp.pyHIBP_HEADERS),  # set_user_agent and add_padding write it
        mock.patch.object(pyhibp.pwnedpasswords, "PWNED_PASSWORDS_API_BASE_URI", base + "/"),
    ):
        pyhibp.set_user_agent(ua=USER_AGENT)
        counts = {
            p: pyhibp.pwnedpasswords.is_password_breached(password=p, add_padding=padded)
            for p in EXPECTED
        }
        suffixes = pyhibp.pwnedpasswords.suffix_search(
            hash_prefix=sha1hex(RANGE_OF)[:5], add_padding=padded
        )
    return Asked(padded, counts, len(suffixes))


def ask_pwnedpasswords(base: str, padded: bool) -> Asked:
    assert not padded, "pwnedpasswords cannot send Add-Padding"
    library_url = PwnedPasswordsAPI.url

    def url(*components: str, **query: str) -> str:
        value: str = library_url(*components, **query)
        assert value.startswith(HIBP_PASSWORDS), value
        return base + "/" + value.removeprefix(HIBP_PASSWORDS)

    with mock.patch.object(PwnedPasswordsAPI, "url", staticmethod(url)):
        counts = {p: PwnedPasswordsPassword(p, plain_text=True).check(timeout=10) for p in EXPECTED}
        entries = PwnedPasswordsPassword(RANGE_OF, plain_text=True).range(timeout=10)
    return Asked(padded, counts, len(entries))


class RequestsToLoopback:
    """The `requests` module as hibpwned sees it here: GETs to Pwned Passwords go to `base`."""

    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, url: str, *, headers: dict[str, str], timeout: float) -> requests.Response:
        assert url.startswith(HIBP_PASSWORDS), f"hibpwned asked for {url}"
        local = self.base + "/" + url.removeprefix(HIBP_PASSWORDS)
        return requests.get(local, headers=headers, timeout=timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(requests, name)


def ask_hibpwned(base: str, padded: bool) -> Asked:
    pwned = hibpwned.Pwned("nobody@example.org", USER_AGENT, "no-key-needed-for-ranges")
    pwned.timeout = 10  # type: ignore[attr-defined]  # its default is 300 s
    if padded:
        pwned.header["Add-Padding"] = "true"  # type: ignore[attr-defined]
    counts: dict[str, int] = {}
    with mock.patch.object(hibpwned, "requests", RequestsToLoopback(base)):
        for password in EXPECTED:
            found = pwned.search_password(password)  # the count as text, or an HTTP status
            assert isinstance(found, str), f"hibpwned got HTTP {found}"
            counts[password] = int(found)
        body = pwned.search_hashes(sha1hex(RANGE_OF)[:5])
    assert isinstance(body, str), f"hibpwned got HTTP {body}"
    return Asked(padded, counts, len(body.splitlines()))


def ask_npm_hibp(base: str, padded: bool) -> Asked:
    assert NODE is not None
    assert (JS / "node_modules" / "hibp").is_dir(), (
        "tests/js/node_modules has no `hibp`: `make test` installs it "
        "(or run `npm ci --prefix tests/js`)"
    )
    prefix = sha1hex(RANGE_OF)[:5]
    question = {"baseUrl": base, "addPadding": padded, "passwords": list(EXPECTED)}
    done = subprocess.run(
        [NODE, str(JS / "hibp_counts.mjs")],
        input=json.dumps({**question, "prefixes": [prefix]}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"npm hibp failed:\n{done.stderr}"
    answer = json.loads(done.stdout)
    return Asked(padded, answer["counts"], answer["rangeSizes"][prefix])


Ask = Callable[[str, bool], Asked]
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed: npm `hibp` cannot run")
CASES = [
    pytest.param((ask_pyhibp, False), id="pyhibp"),
    pytest.param((ask_pyhibp, True), id="pyhibp-padded"),
    pytest.param((ask_pwnedpasswords, False), id="pwnedpasswords"),
    pytest.param((ask_hibpwned, False), id="hibpwned"),
    pytest.param((ask_hibpwned, True), id="hibpwned-padded"),
    pytest.param((ask_npm_hibp, False), id="npm-hibp", marks=needs_node),
    pytest.param((ask_npm_hibp, True), id="npm-hibp-padded", marks=needs_node),
]


# --- the server ---------------------------------------------------------------------------


def _database(template: str, folder: Path) -> str:
    """The suite's database: PostgreSQL as it is, or a copy of the migrated SQLite file."""
    if PG_URL:
        return PG_URL
    shutil.copy(template, folder / "clients.db")
    return f"sqlite:///{folder / 'clients.db'}"


@pytest.fixture(scope="module")
def server(_template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `breachguard serve` for the module, its corpus imported by the CLI first."""
    folder = tmp_path_factory.mktemp("third_party_clients")
    env = {
        **os.environ,
        "BREACHGUARD_INSTANCE": str(folder / "instance"),
        "DATABASE_URL": _database(_template_db, folder),
        "REDIS_URL": REDIS_URL or "",
        "RATELIMIT_KEY_PREFIX": f"bgtest-{uuid.uuid4().hex[:12]}",
        "SECRET_KEY": "test-secret-key",
        "MFA_ENCRYPTION_KEYS": TEST_MFA_KEY,
        "ARGON2_TIME_COST": str(CHEAP_ARGON2.time_cost),
        "ARGON2_MEMORY_COST": str(CHEAP_ARGON2.memory_cost),
        "BREACH_SOURCES": "local",
    }
    corpus = folder / "pwned-passwords.txt"
    corpus.write_text(corpus_lines())
    breach = f"ThirdPartyClients{RUN}"
    imported = CliRunner(env=env).invoke(
        main,
        [
            "corpus",
            "import",
            str(corpus),
            "--type",
            "passwords",
            "--breach",
            breach,
            "--no-monitor",
        ],
    )
    assert imported.exit_code == 0, imported.output

    served = ServeProcess(
        env, closed_port(), folder / "serve.log", "--host", "127.0.0.1", "--workers", "1"
    )
    try:
        served.wait_up()
        yield served.base
    finally:
        served.stop()


@pytest.fixture(scope="module", params=CASES)
def asked(request: pytest.FixtureRequest, server: str) -> Asked:
    """What one client, with or without padding, answered (asked once for the module)."""
    ask, padded = request.param
    answer: Asked = ask(server, padded)
    return answer


# --- the rules ----------------------------------------------------------------------------


def test_a_client_reads_imported_counts_exactly_and_zero_for_other_passwords(
    asked: Asked,
) -> None:
    assert asked.counts == EXPECTED


def test_a_client_gets_padding_only_when_it_asks_for_it(asked: Asked) -> None:
    """A range holding one real entry comes back padded past HIBP's 800 lines when the
    client sends `Add-Padding: true`, and without padding when it does not."""
    if asked.padded:
        assert asked.range_lines > PAD_MIN
    else:
        assert 1 <= asked.range_lines < PAD_MIN
