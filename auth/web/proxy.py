"""The client's address and scheme behind reverse proxies (TRUSTED_PROXIES).

Behind a proxy every request's peer is the proxy. Each proxy appends its own peer's
address to X-Forwarded-For (or an element to Forwarded, RFC 7239), so the right-hand end
of the header was written by the nearest proxy and everything to its left by whoever sent
the request to that proxy, the client included. The walk therefore starts at the peer and
steps left only while it stands on a trusted proxy: the first address that is not one is
the client's. Whatever a client writes lies left of its own address, where the walk never
goes.

`ProxyHeaders` sets REMOTE_ADDR (read by the rate limits, bans, the audit trail, the
access log and the metrics' loopback rule) and wsgi.url_scheme (Secure cookies, HSTS)
before the app sees the request. Host is left as the proxy sends it: links in e-mails are
built from PUBLIC_URL, never from a request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from auth.config import TrustedProxies
from auth.logs import StartResponse, Wsgi

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SCHEMES = ("http", "https")


def client_address(peer: str, forwarded_hops: Sequence[str], trusted: TrustedProxies) -> str:
    """The client's address: `peer` (the socket's) when it is no trusted proxy, otherwise
    the first of `forwarded_hops` (as the headers list them, the client first and the
    nearest proxy's peer last) that is no trusted proxy, walking from the right. A hop that
    is no address ("unknown", an obfuscated name) ends the walk where it stands."""
    return _walk(peer, forwarded_hops, trusted)[0]


def _walk(peer: str, hops: Sequence[str], trusted: TrustedProxies) -> tuple[str, int]:
    """The client's address, and how many hops from the right the walk took to it."""
    client, standing, steps = peer, _address(peer), 0
    while steps < len(hops) and _trusts(trusted, steps, standing):
        hop = _address(hops[-1 - steps])
        if hop is None:
            break
        client, standing, steps = str(hop), hop, steps + 1
    return client, steps


def _trusts(trusted: TrustedProxies, position: int, address: IPAddress | None) -> bool:
    """Whether the hop at `position` (0: the peer) is a trusted proxy."""
    if position < trusted.count:
        return True
    return address is not None and any(address in network for network in trusted.networks)


def _address(text: str) -> IPAddress | None:
    """An address as forwarding headers write it: bare, quoted, with a port, IPv6 in
    brackets (`"[2001:db8::17]:4711"`); an IPv4-mapped IPv6 address is its IPv4 address."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port; IPv6 has two colons at least
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _forwarding(environ: dict[str, Any]) -> tuple[list[str], list[str | None]]:
    """The hops and, aligned with them from the right, the schemes the headers record.

    X-Forwarded-For (with X-Forwarded-Proto) is read when present, Forwarded otherwise:
    proxies append to the header they write and pass the other on untouched, and
    X-Forwarded-For is the one nginx, HAProxy's `forwardfor`, Apache and the cloud load
    balancers write. A proxy that writes Forwarded must drop any X-Forwarded-For.

    Values are split on every comma and semicolon, quotes or not: a client's unbalanced
    quote must not swallow the element a proxy appended after it."""
    listed = environ.get("HTTP_X_FORWARDED_FOR")
    if listed is not None:
        protos = environ.get("HTTP_X_FORWARDED_PROTO")
        schemes: list[str | None] = [] if protos is None else protos.split(",")
        return [hop.strip() for hop in listed.split(",")], schemes
    forwarded = environ.get("HTTP_FORWARDED")
    if forwarded is None:
        return [], []
    elements = [_pairs(element) for element in forwarded.split(",")]
    return [pairs.get("for", "") for pairs in elements], [pairs.get("proto") for pairs in elements]


def _pairs(element: str) -> dict[str, str]:
    """`for=192.0.2.60;proto=https;by=203.0.113.43` as a dict; names are case-insensitive."""
    pairs = {}
    for pair in element.split(";"):
        name, sep, value = pair.partition("=")
        if sep:
            pairs[name.strip().lower()] = value.strip().strip('"')
    return pairs


def _scheme(schemes: Sequence[str | None], steps: int) -> str | None:
    """The scheme recorded by the hop that gave the client's address, when it is one."""
    recorded = (schemes[-steps] or "").strip().lower() if 0 < steps <= len(schemes) else ""
    return recorded if recorded in SCHEMES else None


class ProxyHeaders:
    """WSGI middleware: REMOTE_ADDR and wsgi.url_scheme as the outermost trusted proxy saw
    the client. Headers from a peer that is no trusted proxy change nothing."""

    def __init__(self, app: Wsgi, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        hops, schemes = _forwarding(environ)
        client, steps = _walk(environ.get("REMOTE_ADDR", ""), hops, self.trusted)
        if steps:
            environ["REMOTE_ADDR"] = client
        scheme = _scheme(schemes, steps)
        if scheme is not None:
            environ["wsgi.url_scheme"] = scheme
        return self.app(environ, start_response)
