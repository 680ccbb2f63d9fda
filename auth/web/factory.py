"""create_app(): the Flask application, configured from Settings."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, Response, jsonify, render_template
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy import text

from auth.config import Settings, load_settings
from auth.services import Services, build
from auth.web import api
from auth.web import range as range_views
from auth.web.context import EXTENSION
from auth.web.keys import presented_token

STATIC = Path(__file__).resolve().parents[2] / "static"
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def _limit_key() -> str:
    """Authenticated calls are limited per key id (never the secret), the rest per address."""
    token = presented_token()
    if token and token.count("_") >= 2:
        return "key:" + token.split("_", 2)[1]
    return "ip:" + get_remote_address()


def create_app(settings: Settings | None = None, registry: Services | None = None) -> Flask:
    settings = settings or (registry.settings if registry else load_settings())
    registry = registry or build(settings)
    app = Flask(
        __name__,
        instance_path=str(settings.instance_path),
        static_folder=str(STATIC),
        template_folder=str(TEMPLATES),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=64 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.extensions[EXTENSION] = registry
    logging.basicConfig(level=settings.log_level)

    limiter = Limiter(
        _limit_key,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        key_prefix=settings.ratelimit_key_prefix,
        headers_enabled=True,
        strategy="moving-window",
    )
    limiter.limit(settings.api_rate_limit)(api.bp)
    # A wrong key is a guess at a secret: guesses cost from a small budget per address.
    limiter.limit(
        settings.secret_rate_limit,
        key_func=lambda: "ip:" + get_remote_address(),
        deduct_when=lambda r: r.status_code == 401,
    )(api.bp)
    limiter.limit(
        settings.secret_rate_limit,
        key_func=lambda: "ip:" + get_remote_address(),
        deduct_when=lambda r: r.status_code == 401,
    )(range_views.accounts_bp)

    app.register_blueprint(range_views.bp)
    app.register_blueprint(range_views.accounts_bp)
    app.register_blueprint(api.bp)

    @app.errorhandler(429)
    def too_many(exc: Exception) -> Response:
        response = jsonify({"error": f"too many requests: {getattr(exc, 'description', '')}"})
        response.status_code = 429
        return response

    @app.after_request
    def baseline_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    @app.get("/")
    def index() -> str:
        with registry.db.engine.connect() as conn:
            # Per-breach totals kept by the importer: a COUNT over the corpus would scan it.
            digests = conn.execute(text("SELECT SUM(password_entries) FROM breaches")).scalar() or 0
        return render_template("index.html", password_digests=digests)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    return app
