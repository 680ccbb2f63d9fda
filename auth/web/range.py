"""HIBP-compatible k-anonymity ranges served from the local corpus.

`GET /range/{5 hex}` is byte-compatible with api.pwnedpasswords.com: 35-character
uppercase suffixes, `SUFFIX:COUNT` joined by CRLF, `Add-Padding: true` pads with count-0
entries to a random 800-1,000 lines; open to any browser origin (CORS), cacheable
(ETag, Last-Modified, 304), compressed when asked. `GET /api/v3/breachedaccount/range/{6
hex}` is HIBP's e-mail range search, which names who was breached, so it needs a
security-role key and is open to no browser origin.
https://haveibeenpwned.com/API/v3#SearchingPwnedPasswordsByRange
"""

from __future__ import annotations

import hashlib
import secrets

from flask import Blueprint, Response, jsonify, request
from flask_compress import Compress

from auth.breach import store
from auth.breach.hashing import EMAIL_PREFIX_LEN, PASSWORD_PREFIX_LEN, parse_prefix
from auth.web.context import services
from auth.web.keys import require

bp = Blueprint("range", __name__)
# Separate, so its rate limit (it takes an API key) costs nothing on the public /range/.
accounts_bp = Blueprint("breachedaccount", __name__)
# Compression only for these answers, never for pages: a page compressed with a secret
# (its CSRF token) beside text an attacker chose leaks the secret through its size (BREACH).
compress = Compress()

PAD_MIN, PAD_MAX = 800, 1000
PREFLIGHT_MAX_AGE = 86400


def padded(lines: dict[str, int], *, rand: secrets.SystemRandom | None = None) -> dict[str, int]:
    """Add PAD_MIN to PAD_MAX count-0 entries with random suffixes to every answer, however
    many real entries it holds (as HIBP does), so its size says nothing."""
    rand = rand or secrets.SystemRandom()
    out = dict(lines)
    target = len(lines) + rand.randint(PAD_MIN, PAD_MAX)
    while len(out) < target:
        out.setdefault(f"{rand.getrandbits(140):035X}", 0)
    return out


def at_least_one(lines: dict[str, int], prefix: str) -> dict[str, int]:
    """HIBP's corpus has an entry under every prefix, and some clients fail on an empty
    body: a prefix the local corpus lacks answers one count-0 line, the same one every
    time (so the answer, and its ETag, change only when the corpus does)."""
    if lines:
        return lines
    filler = hashlib.sha256(b"breachguard empty range " + prefix.encode()).hexdigest()
    return {filler[:35].upper(): 0}


def content_tag(entries: dict[str, int]) -> str:
    """An entity tag that changes exactly when a range's real entries change."""
    digest = hashlib.sha256()
    for suffix, count in sorted(entries.items()):
        digest.update(f"{suffix}:{count}\n".encode())
    return digest.hexdigest()[:32]


def _bad_prefix(message: str) -> Response:  # a bad request, answered as HIBP does: text
    response = Response(message + "\n", status=400, mimetype="text/plain")
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/range/<prefix>", provide_automatic_options=False)
@compress.compressed()
def password_range(prefix: str) -> Response:
    try:
        prefix = parse_prefix(prefix, PASSWORD_PREFIX_LEN)
    except ValueError as exc:
        return _bad_prefix(str(exc))
    if request.args.get("mode", "sha1").lower() != "sha1":
        return _bad_prefix("mode: this service serves SHA-1 ranges only (no NTLM)")
    found = store.password_range(services().db, prefix)
    entries = {digest.hex().upper()[PASSWORD_PREFIX_LEN:]: n for digest, n in found.rows}
    tag = content_tag(entries)
    pad = request.headers.get("Add-Padding", "").lower() == "true"
    if pad:
        entries = padded(entries)
    entries = at_least_one(entries, prefix)
    body = "\r\n".join(f"{s}:{c}" for s, c in sorted(entries.items()))
    response = Response(body, mimetype="text/plain")
    response.headers["Cache-Control"] = f"public, max-age={services().settings.range_cache_seconds}"
    response.headers["Vary"] = "Add-Padding"
    response.headers["Access-Control-Allow-Origin"] = "*"
    # Padded answers differ byte for byte on every call: their tag is weak (same entries).
    response.set_etag(tag + ("-padded" if pad else ""), weak=pad)
    response.last_modified = found.changed
    response.make_conditional(request)  # 304 for a client whose copy is still right
    return response


@bp.route("/range/<prefix>", methods=["OPTIONS"])
def password_range_preflight(prefix: str) -> Response:
    """CORS preflight, as HIBP answers it: any origin may GET a range, with Add-Padding."""
    response = Response(status=204)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Add-Padding"
    response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return response


@accounts_bp.get("/api/v3/breachedaccount/range/<prefix>")
@require("range:email")
@compress.compressed()
def email_range(prefix: str) -> Response:
    try:
        prefix = parse_prefix(prefix, EMAIL_PREFIX_LEN)
    except ValueError as exc:
        return _bad_prefix(str(exc))
    with services().db.connection() as conn:
        found = store.email_range(conn, prefix)
    if not found:
        return Response(status=404)
    response = jsonify(
        [
            {"hashSuffix": digest.hex().upper()[EMAIL_PREFIX_LEN:], "websites": names}
            for digest, names in found.items()
        ]
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response
