"""GET /metrics for Prometheus: from a loopback address (a scraper on the same host), or
with an admin-role API key. A presented key is always checked, even from loopback.

A reverse proxy on the same host makes every visitor look like loopback, so a request
that carries forwarding headers is never taken for a local scraper."""

from __future__ import annotations

import ipaddress

from flask import Blueprint, Response, current_app, request

from auth import metrics
from auth.web.context import LIMITER, services
from auth.web.keys import presented_token, require

bp = Blueprint("metrics", __name__)


# Headers a proxy or a CDN adds on the way; any X-Forwarded-* counts as well.
PROXY_HEADERS = frozenset({"forwarded", "via", "x-real-ip", "cf-connecting-ip", "true-client-ip"})


def _relayed() -> bool:
    names = (name.lower() for name, _ in request.headers.items())
    return any(name in PROXY_HEADERS or name.startswith("x-forwarded-") for name in names)


def _loopback(address: str | None) -> bool:
    if _relayed():
        return False
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def _redis_up() -> bool | None:
    """Whether the rate limits' Redis answers now; None when there is no Redis."""
    if not services().settings.redis_url:
        return None
    return bool(current_app.extensions[LIMITER].storage.check())


def _scrape() -> Response:
    exposition = metrics.exposition(services().db, redis_up=_redis_up())
    response = Response(exposition, content_type=metrics.CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response


_with_admin_key = require("admin")(_scrape)


@bp.get("/metrics")
def scrape() -> Response:
    if presented_token() is None and _loopback(request.remote_addr):
        return _scrape()
    answer: Response = _with_admin_key()
    return answer
