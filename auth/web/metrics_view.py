"""GET /metrics for Prometheus: from a loopback address (a scraper on the same host), or
with an admin-role API key. A presented key is always checked, even from loopback.

A reverse proxy on the same host makes every visitor look like loopback, so a request
that carries forwarding headers is never taken for a local scraper."""

from __future__ import annotations

import ipaddress

from flask import Blueprint, Response, request

from auth import metrics
from auth.web.context import services
from auth.web.keys import presented_token, require

bp = Blueprint("metrics", __name__)


PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def _loopback(address: str | None) -> bool:
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def _scrape() -> Response:
    response = Response(metrics.exposition(services().db), content_type=metrics.CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response


_with_admin_key = require("admin")(_scrape)


@bp.get("/metrics")
def scrape() -> Response:
    if presented_token() is None and _loopback(request.remote_addr):
        return _scrape()
    answer: Response = _with_admin_key()
    return answer
