"""The network an address belongs to, as the rules compare them: a /24 for IPv4 (one
office, one mobile carrier's pool), a /48 for IPv6 (one site)."""

from __future__ import annotations

import ipaddress

from auth.errors import InvalidInput
from auth.signin import bans

IPV4_PREFIX = 24
IPV6_PREFIX = 48


def network_of(ip: str) -> str:
    """`203.0.113.7` -> `203.0.113.0/24`; `2001:db8:1:2::5` -> `2001:db8:1::/48`; an
    IPv4-mapped IPv6 address counts as its IPv4 address. An unparsable value is returned as
    it is (the caller validated it; the rules then treat it as a network of its own)."""
    try:
        address = bans.parse_ip(ip)
    except InvalidInput:
        return ip
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
