"""Behind reverse proxies (auth/web/proxy.py): the client's address comes from forwarding
headers only through trusted hops, walking from the right, so no client chooses its own
address; TRUSTED_PROXIES is parsed strictly; the app's limits, cookies, HSTS and /metrics
follow the address and scheme the middleware settles. Through a real nginx:
tests/test_behind_nginx.py."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from auth.config import Settings, TrustedProxies, load_settings
from auth.errors import InvalidInput
from auth.services import Services
from auth.signin import bans
from auth.web.factory import create_app
from auth.web.proxy import ProxyHeaders, client_address
from tests.site_helpers import site_with_account

NOBODY = TrustedProxies()
ONE = TrustedProxies(count=1)
TWO = TrustedProxies(count=2)
NGINX_HERE = TrustedProxies(networks=(ipaddress.ip_network("127.0.0.1/32"),))
NGINX_AND_LB = TrustedProxies(
    networks=(ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))
)
CLIENT = "203.0.113.7"
FORGED = "198.51.100.66"


# --- the walk: client_address(peer, forwarded_hops, trusted) ------------------------------


def test_trusting_nobody_the_peer_is_the_client_whatever_the_headers_say() -> None:
    assert client_address("127.0.0.1", [CLIENT], NOBODY) == "127.0.0.1"
    assert client_address("192.0.2.1", [FORGED, CLIENT], NOBODY) == "192.0.2.1"


def test_one_proxy_the_address_it_appended_is_the_client() -> None:
    assert client_address("127.0.0.1", [CLIENT], ONE) == CLIENT
    assert client_address("127.0.0.1", [], ONE) == "127.0.0.1"  # sent to the proxy's port


def test_a_client_that_sends_its_own_x_forwarded_for_through_the_proxy_gets_its_real_address() -> (
    None
):
    for trusted in (ONE, NGINX_HERE):
        assert client_address("127.0.0.1", [FORGED, CLIENT], trusted) == CLIENT
        assert client_address("127.0.0.1", ["1.1.1.1", FORGED, CLIENT], trusted) == CLIENT


def test_a_client_that_is_no_trusted_proxy_cannot_name_an_address() -> None:
    # Straight to the service, with a header of its own: its peer address is not trusted.
    assert client_address("127.0.0.2", [FORGED], NGINX_HERE) == "127.0.0.2"
    assert client_address("192.0.2.1", [FORGED, "127.0.0.1"], NGINX_HERE) == "192.0.2.1"


def test_two_proxies_are_walked_over_by_count_or_by_network() -> None:
    # client -> load balancer (10.0.0.5 saw the client) -> nginx (127.0.0.1 saw 10.0.0.5)
    assert client_address("127.0.0.1", [CLIENT, "10.0.0.5"], TWO) == CLIENT
    assert client_address("127.0.0.1", [FORGED, CLIENT, "10.0.0.5"], TWO) == CLIENT
    assert client_address("127.0.0.1", [CLIENT, "10.0.0.5"], NGINX_AND_LB) == CLIENT
    assert client_address("127.0.0.1", [FORGED, CLIENT, "10.0.0.5"], NGINX_AND_LB) == CLIENT


def test_by_count_fewer_hops_than_proxies_stop_at_the_first_hop() -> None:
    # The request reached nginx without the load balancer: nginx's note is still true.
    assert client_address("127.0.0.1", [CLIENT], TWO) == CLIENT


def test_by_network_the_walk_stops_at_the_first_address_outside_every_trusted_network() -> None:
    assert client_address("127.0.0.1", [FORGED, CLIENT, "127.0.0.1"], NGINX_HERE) == CLIENT
    # A host inside a trusted network is taken for a proxy: trust the proxies' networks only.
    assert client_address("127.0.0.1", [FORGED, "10.9.9.9"], NGINX_AND_LB) == FORGED
    assert client_address("127.0.0.1", ["10.9.9.9"], NGINX_AND_LB) == "10.9.9.9"


@pytest.mark.parametrize("note", ["unknown", "_hidden", "", "not-an-address", "999.1.1.1"])
def test_a_hop_that_is_no_address_ends_the_walk_at_the_proxy_that_wrote_it(note: str) -> None:
    assert client_address("127.0.0.1", [note], ONE) == "127.0.0.1"
    assert client_address("127.0.0.1", [FORGED, note], NGINX_HERE) == "127.0.0.1"
    assert client_address("127.0.0.1", [note, "10.0.0.5"], NGINX_AND_LB) == "10.0.0.5"


@pytest.mark.parametrize(
    ("written", "address"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ('"203.0.113.7"', "203.0.113.7"),
        ("203.0.113.7:4711", "203.0.113.7"),
        ('"[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
        ("[2001:db8:cafe::17]", "2001:db8:cafe::17"),
        ("2001:DB8:CAFE::17", "2001:db8:cafe::17"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
    ],
)
def test_addresses_are_read_as_proxies_write_them(written: str, address: str) -> None:
    assert client_address("127.0.0.1", [written], ONE) == address


def test_an_ipv4_mapped_or_ipv6_peer_is_matched_against_the_trusted_networks() -> None:
    assert client_address("::ffff:127.0.0.1", [CLIENT], NGINX_HERE) == CLIENT
    here_v6 = TrustedProxies(networks=(ipaddress.ip_network("::1/128"),))
    assert client_address("::1", [CLIENT], here_v6) == CLIENT
    assert client_address("::2", [CLIENT], here_v6) == "::2"


def test_a_peer_that_is_no_address_is_trusted_by_count_only() -> None:
    # gunicorn on a unix socket behind nginx; a network cannot hold such a peer.
    assert client_address("", [CLIENT], ONE) == CLIENT
    assert client_address("", [CLIENT], NGINX_HERE) == ""


# --- properties ---------------------------------------------------------------------------

ipv4 = st.ip_addresses(v=4).map(str)
anything = st.one_of(st.ip_addresses().map(str), st.text(max_size=40))
outside = ipv4.filter(
    lambda a: not any(ipaddress.ip_address(a) in n for n in NGINX_AND_LB.networks)
)
trusts = st.sampled_from([ONE, NGINX_HERE, NGINX_AND_LB])


@given(forged=st.lists(anything, max_size=6), client=outside, trusted=trusts)
def test_whatever_a_client_writes_before_the_proxy_appends_its_address_is_ignored(
    forged: list[str], client: str, trusted: TrustedProxies
) -> None:
    assert client_address("127.0.0.1", [*forged, client], trusted) == client


@given(peer=outside, hops=st.lists(anything, max_size=6), trusted=trusts.filter(lambda t: t != ONE))
def test_the_headers_of_a_peer_that_is_no_trusted_proxy_change_nothing(
    peer: str, hops: list[str], trusted: TrustedProxies
) -> None:
    assert client_address(peer, hops, trusted) == peer


@given(peer=anything, hops=st.lists(anything, max_size=6))
def test_trusting_nobody_is_todays_behaviour(peer: str, hops: list[str]) -> None:
    assert client_address(peer, hops, NOBODY) == peer


@given(peer=ipv4, hops=st.lists(anything, max_size=6), trusted=trusts)
def test_the_answer_is_the_peer_or_an_address_the_headers_hold(
    peer: str, hops: list[str], trusted: TrustedProxies
) -> None:
    found = client_address(peer, hops, trusted)
    # Each hop as an address (a peer that is none stands for "not an address").
    written = {client_address("-", [hop], ONE) for hop in hops} - {"-"}
    assert found == peer or found in written


# --- the middleware: headers in, REMOTE_ADDR and wsgi.url_scheme out ----------------------


def seen(trusted: TrustedProxies, peer: str, headers: dict[str, str]) -> tuple[str, str]:
    """(REMOTE_ADDR, wsgi.url_scheme) as the app behind ProxyHeaders sees them."""
    found: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        found.update(environ)
        return [b""]

    environ = {"REMOTE_ADDR": peer, "wsgi.url_scheme": "http"}
    environ |= {"HTTP_" + name.upper().replace("-", "_"): v for name, v in headers.items()}
    ProxyHeaders(app, trusted)(environ, lambda *a: None)
    return found["REMOTE_ADDR"], found["wsgi.url_scheme"]


def test_x_forwarded_for_and_proto_from_a_trusted_proxy_set_the_address_and_scheme() -> None:
    headers = {"X-Forwarded-For": f"{FORGED}, {CLIENT}", "X-Forwarded-Proto": "https"}
    assert seen(NGINX_HERE, "127.0.0.1", headers) == (CLIENT, "https")
    assert seen(ONE, "127.0.0.1", headers) == (CLIENT, "https")


def test_forwarding_headers_from_an_untrusted_peer_change_nothing() -> None:
    headers = {"X-Forwarded-For": FORGED, "X-Forwarded-Proto": "https", "Forwarded": "for=1.1.1.1"}
    assert seen(NGINX_HERE, "127.0.0.2", headers) == ("127.0.0.2", "http")
    assert seen(NOBODY, "127.0.0.1", headers) == ("127.0.0.1", "http")


def test_rfc_7239_forwarded_gives_the_address_and_the_scheme_of_the_same_hop() -> None:
    forwarded = (
        f'for={FORGED};proto=http, For="{CLIENT}:4711";Proto=HTTPS;by=10.0.0.5, '
        "for=10.0.0.5;proto=http"
    )
    assert seen(NGINX_AND_LB, "127.0.0.1", {"Forwarded": forwarded}) == (CLIENT, "https")
    assert seen(ONE, "127.0.0.1", {"Forwarded": forwarded}) == ("10.0.0.5", "http")
    v6 = 'for="[2001:db8:cafe::17]:4711";proto=https'
    assert seen(ONE, "127.0.0.1", {"Forwarded": v6}) == ("2001:db8:cafe::17", "https")


def test_a_client_quote_cannot_swallow_the_element_the_proxy_appended() -> None:
    forwarded = f'for="{FORGED}, for={CLIENT};proto=https'
    assert seen(ONE, "127.0.0.1", {"Forwarded": forwarded}) == (CLIENT, "https")


def test_x_forwarded_for_is_read_before_a_forwarded_header_the_proxy_passed_on() -> None:
    # nginx appends to X-Forwarded-For and passes a client's Forwarded on untouched.
    headers = {"Forwarded": f"for={FORGED};proto=https", "X-Forwarded-For": CLIENT}
    assert seen(ONE, "127.0.0.1", headers) == (CLIENT, "http")


def test_the_scheme_is_the_one_recorded_with_the_address_or_none() -> None:
    two = {"X-Forwarded-For": f"{CLIENT}, 10.0.0.5", "X-Forwarded-Proto": "https, http"}
    assert seen(NGINX_AND_LB, "127.0.0.1", two) == (CLIENT, "https")
    # Only nginx's own note (it replaces the header): too short for two hops, so no scheme.
    replaced = {"X-Forwarded-For": f"{CLIENT}, 10.0.0.5", "X-Forwarded-Proto": "https"}
    assert seen(NGINX_AND_LB, "127.0.0.1", replaced) == (CLIENT, "http")
    for odd in ("ftp", "", "https://"):
        assert seen(ONE, "127.0.0.1", {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": odd}) == (
            CLIENT,
            "http",
        )
    # A trusted proxy's scheme without an address to go with it: the peer is the client.
    assert seen(ONE, "127.0.0.1", {"X-Forwarded-Proto": "https"}) == ("127.0.0.1", "http")


# --- TRUSTED_PROXIES ----------------------------------------------------------------------


def trusted_from(raw: str) -> TrustedProxies:
    return load_settings({"SECRET_KEY": "k", "TRUSTED_PROXIES": raw, **KEYS}).trusted_proxies


KEYS = {"MFA_ENCRYPTION_KEYS": "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdC0"}


def test_trusted_proxies_is_a_count_or_networks_and_unset_trusts_nobody() -> None:
    assert load_settings({"SECRET_KEY": "k", **KEYS}).trusted_proxies == NOBODY
    assert trusted_from("") == NOBODY
    assert trusted_from("0") == NOBODY
    assert trusted_from(" 1 ") == ONE
    assert trusted_from("127.0.0.1/32, 10.0.0.0/8") == NGINX_AND_LB
    assert trusted_from("127.0.0.1") == NGINX_HERE
    assert trusted_from("::1,fd00::/8").networks == (
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("fd00::/8"),
    )


@pytest.mark.parametrize(
    "raw", ["one", "-1", "1.5", "1,10.0.0.0/8", "10.0.0.7/8", "10.0.0.0/33", "localhost"]
)
def test_a_bad_trusted_proxies_names_the_variable_and_the_value(raw: str) -> None:
    with pytest.raises(InvalidInput, match="TRUSTED_PROXIES") as refused:
        trusted_from(raw)
    assert "e.g. 1" in str(refused.value)


@pytest.mark.parametrize("raw", ["0.0.0.0/0", "::/0", "127.0.0.1/32,0.0.0.0/0"])
def test_trusting_every_address_is_refused(raw: str) -> None:
    with pytest.raises(InvalidInput, match=r"TRUSTED_PROXIES: .* trusts every address"):
        trusted_from(raw)


# --- the app behind it --------------------------------------------------------------------

EMAIL, PASSWORD = "claire@example.fr", "Correct-Horse-Battery-42"
NGINX = {"REMOTE_ADDR": "127.0.0.1"}


@pytest.fixture
def behind(settings: Settings) -> Iterator[tuple[Flask, Services]]:
    """The app behind a proxy on 127.0.0.1 it trusts; PUBLIC_URL left at http://."""
    registry = site_with_account(
        settings,
        email=EMAIL,
        password=PASSWORD,
        trusted_proxies=NGINX_HERE,
        login_rate_limit="3 per minute",
        ip_ban_after=3,
    )
    yield create_app(registry=registry), registry
    registry.close()


def sign_in(web: Flask, client_ip: str, password: str) -> int:
    """A sign-in by the client at `client_ip`, relayed by the proxy: the POST's status."""
    person = web.test_client()
    headers = {"X-Forwarded-For": client_ip}
    page = person.get("/login", headers=headers, environ_base=NGINX).get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert token, page[:300]
    form = {"email": EMAIL, "password": password, "csrf_token": token.group(1)}
    return person.post("/login", data=form, headers=headers, environ_base=NGINX).status_code


def test_each_client_behind_the_proxy_has_its_own_sign_in_budget(
    behind: tuple[Flask, Services],
) -> None:
    web, _ = behind
    assert [sign_in(web, CLIENT, "wrong") for _ in range(3)] == [401, 401, 401]
    assert sign_in(web, CLIENT, PASSWORD) == 429  # this client's budget is spent...
    assert sign_in(web, "203.0.113.8", PASSWORD) == 302  # ...not the next one's


def test_a_ban_falls_on_the_client_behind_the_proxy_not_on_the_proxy(
    behind: tuple[Flask, Services],
) -> None:
    web, registry = behind
    for _ in range(3):
        assert sign_in(web, CLIENT, "wrong") == 401
    with registry.db.session() as s:
        banned = [b.network for b in bans.active(s, now=dt.datetime.now(dt.UTC))]
    assert banned == [f"{CLIENT}/32"]
    assert sign_in(web, "203.0.113.8", PASSWORD) == 302


def test_https_at_the_proxy_makes_the_cookie_secure_and_sends_hsts(
    behind: tuple[Flask, Services],
) -> None:
    web, _ = behind
    over_https = web.test_client().get(
        "/login",
        headers={"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"},
        environ_base=NGINX,
    )
    assert "; Secure" in over_https.headers["Set-Cookie"]
    max_age = over_https.headers["Strict-Transport-Security"].split(";")[0]
    assert max_age.startswith("max-age=") and int(max_age.split("=")[1]) >= 365 * 86400

    over_http = web.test_client().get(
        "/login",
        headers={"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "http"},
        environ_base=NGINX,
    )
    assert "Secure" not in over_http.headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in over_http.headers


def test_https_claimed_by_an_untrusted_peer_is_not_believed(
    behind: tuple[Flask, Services],
) -> None:
    web, _ = behind
    claimed = web.test_client().get(
        "/login",
        headers={"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": "192.0.2.1"},
    )
    assert "Secure" not in claimed.headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in claimed.headers


def test_a_form_posted_over_https_needs_its_token_and_no_referer(
    behind: tuple[Flask, Services],
) -> None:
    # Pages send no Referer (Referrer-Policy: no-referrer): over HTTPS the token decides.
    web, _ = behind
    https = {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"}
    person = web.test_client()
    page = person.get("/login", headers=https, environ_base=NGINX).get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert token
    form = {"email": EMAIL, "password": PASSWORD}
    refused = person.post("/login", data=form, headers=https, environ_base=NGINX)
    assert refused.status_code == 400
    form["csrf_token"] = token.group(1)
    signed_in = person.post("/login", data=form, headers=https, environ_base=NGINX)
    assert signed_in.status_code == 302
    assert "; Secure" in signed_in.headers["Set-Cookie"]


def test_hsts_is_sent_over_https_and_never_over_plain_http(app: Flask) -> None:
    assert "Strict-Transport-Security" not in app.test_client().get("/healthz").headers
    direct = app.test_client().get("/healthz", base_url="https://localhost")
    assert direct.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_a_client_relayed_by_the_trusted_proxy_is_no_local_scraper_of_metrics(
    behind: tuple[Flask, Services],
) -> None:
    web, _ = behind
    assert web.test_client().get("/metrics", environ_base=NGINX).status_code == 200
    for client in (CLIENT, "127.0.0.1", "::1"):
        relayed = web.test_client().get(
            "/metrics", headers={"X-Forwarded-For": client}, environ_base=NGINX
        )
        assert relayed.status_code == 401, client
