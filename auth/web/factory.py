"""create_app(): the Flask application, configured from Settings."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from flask import Flask, Response, has_request_context, jsonify, render_template, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from auth import logs
from auth.config import REDIS_TIMEOUTS, Settings, load_settings
from auth.console import views as admin_pages
from auth.i18n import N_
from auth.services import Services, build
from auth.web import (
    activity_api,
    api,
    hibp_notify,
    hook_api,
    i18n,
    json_api,
    limit_storage,
    metrics_view,
    mfa_api,
    not_me_pages,
    outage,
    pages,
    proxy,
    reset_pages,
)
from auth.web import range as range_views
from auth.web.context import EXTENSION, LIMITER
from auth.web.i18n import gettext
from auth.web.keys import holds_a_valid_key, presented_token

# static/ in a checkout (pyproject.toml); the folder's name is also its URL's, /static/.
STATIC = Path(str(resources.files("auth.static")))
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


# Pages run no inline script or style, and may not be framed (clickjacking).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# Over HTTPS only (a browser ignores it over http): a year, the portal's subdomains too.
HSTS = "max-age=31536000; includeSubDomains"


# The site's error pages (error.html): a title and what the reader can do, in their language.
ERROR_PAGES = {
    403: {
        "title": N_("Access refused"),
        "explanation": N_("Your account cannot open this page."),
    },
    404: {
        "title": N_("Page not found"),
        "explanation": N_(
            "There is no page at this address: the link may be mistyped or out of date."
        ),
    },
    500: {
        "title": N_("Something went wrong"),
        "explanation": N_(
            "The problem is on our side and has been recorded. Try again in a moment; if it "
            "keeps happening, contact your organisation's IT or security support."
        ),
    },
}


def _by_address() -> str:
    return "ip:" + get_remote_address()


def _limit_key() -> str:
    """Authenticated calls are limited per key id (never the secret), the rest per address."""
    token = presented_token()
    if token and token.count("_") >= 2:
        return "key:" + token.split("_", 2)[1]
    return "ip:" + get_remote_address()


class _SessionCookie(SecureCookieSessionInterface):
    """The session cookie is Secure when PUBLIC_URL is https (SESSION_COOKIE_SECURE), and
    whenever the request came over HTTPS (directly, or as a trusted proxy says)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        configured = bool(super().get_cookie_secure(app))
        return configured or (has_request_context() and request.is_secure)


def create_app(
    settings: Settings | None = None, registry: Services | None = None, *, processes: int = 1
) -> Flask:
    """processes: how many processes serve the same address (gunicorn's workers). Without
    Redis each counts its own limits, so each enforces its share of every budget."""
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
        # Secure follows the configured address people use, never the Host a client sends:
        # plain http only for a development PUBLIC_URL (the default http://localhost:5000),
        # and then only for requests that did not come over HTTPS (_SessionCookie).
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="bg_session",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session cookie
        # Over HTTPS Flask-WTF also wants a Referer from this host, which pages never send
        # (Referrer-Policy: no-referrer keeps reset links out of logs and other sites): every
        # form would fail. The token stays mandatory; Secure cookies, SameSite=Lax and HSTS
        # stand against the planted cookie that check guards against.
        WTF_CSRF_SSL_STRICT=False,
    )
    app.session_interface = _SessionCookie()
    app.extensions[EXTENSION] = registry
    logs.init_app(app, log_format=settings.log_format, level=settings.log_level)
    # Outermost: the client's address and scheme are settled before anything reads them.
    behind = proxy.ProxyHeaders(app.wsgi_app, settings.trusted_proxies)
    app.wsgi_app = behind  # type: ignore[method-assign]

    limiter = Limiter(
        _limit_key,
        app=app,
        storage_uri=settings.redis_url or f"{limit_storage.SCHEME}://",
        key_prefix=settings.ratelimit_key_prefix,
        headers_enabled=True,
        strategy="moving-window",
        # Redis down: the same limits, counted in this process until Redis answers again
        # (one warning per outage), rather than a 500 on every sign-in. A hung Redis costs
        # at most a second, and only when the limiter tries it again.
        in_memory_fallback_enabled=bool(settings.redis_url),
        storage_options={**REDIS_TIMEOUTS} if settings.redis_url else {},
    )
    app.extensions[LIMITER] = limiter
    budget = limit_storage.Budgets.per_process(
        settings, processes=1 if settings.redis_url else processes
    )
    # Each valid key has its own budget; requests without one are counted per address.
    limiter.limit(budget.api)(api.bp)
    # A wrong key is a guess at a secret: guesses cost from a small budget per address,
    # which a request holding a valid key neither spends nor is refused by.
    for guarded in (
        activity_api.bp,
        api.bp,
        range_views.accounts_bp,
        hook_api.bp,
        metrics_view.bp,
        hibp_notify.bp,
    ):
        limiter.limit(
            budget.secret,
            key_func=_by_address,
            deduct_when=lambda r: r.status_code == 401,
            exempt_when=holds_a_valid_key,
        )(guarded)
    # The hook: the portal's key has a large budget (it speaks for everyone); each person's
    # address (the `ip` in the body) has the same budget as on breachguard's own pages, per
    # route. A blueprint limit, so that all of them are counted in one pass of the limiter
    # (route decorators would make a second pass on every sign-in).
    limiter.limit(budget.hook)(hook_api.bp)

    # The portal's activity reports have no budget of their own: at HOOK_RATE_LIMIT they
    # would be refused long before a busy portal's pace, and the guard counts every report
    # itself (a wrong key still spends the address's budget of guesses, above).
    per_person = {
        "hook_api.login": budget.login,
        "hook_api.mfa": budget.mfa_ip,
        "hook_api.webauthn_options": budget.mfa_ip,
    }
    limiter.limit(
        lambda: per_person.get(request.endpoint or "", budget.mfa_ip),
        key_func=hook_api.limit_key,
    )(hook_api.bp)

    # Sign-in and second-factor checks take secrets: a budget per address (failures per
    # account are counted in the database as well, see auth/mfa/throttle.py).
    limiter.limit(budget.login, methods=["POST"], key_func=_by_address)(pages.bp)
    limiter.limit(budget.mfa_ip, methods=["POST"], key_func=_by_address)(mfa_api.bp)
    # Reset links: asking for one sends an e-mail and revokes the previous link, so it is
    # limited per network address and per e-mail address; using one takes a password.
    limiter.limit(budget.forgot, methods=["POST"], key_func=_by_address)(reset_pages.forgot_bp)
    limiter.limit(budget.forgot, methods=["POST"], key_func=reset_pages.forgot_email_key)(
        reset_pages.forgot_bp
    )
    limiter.limit(budget.login, methods=["POST"], key_func=_by_address)(reset_pages.reset_bp)

    # /api/: strict JSON bodies, checked after the rate limits and before any view;
    # errors in JSON.
    json_api.init_app(app)
    app.config.update(COMPRESS_REGISTER=False, COMPRESS_ALGORITHM=["br", "gzip"])
    range_views.compress.init_app(app)  # the range answers only (see range.py)
    outage.init_app(app)  # the database down: 503 and Retry-After, one log line a minute

    csrf = CSRFProtect(app)
    for keyed in (
        activity_api.bp,
        api.bp,
        hook_api.bp,
        range_views.accounts_bp,
        hibp_notify.bp,  # HIBP's callback: a bearer token
    ):  # API keys, no cookies: nothing to forge
        csrf.exempt(keyed)

    app.register_blueprint(range_views.bp)
    app.register_blueprint(range_views.accounts_bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(metrics_view.bp)  # /metrics: loopback or an admin key
    app.register_blueprint(hook_api.bp)
    app.register_blueprint(activity_api.bp)  # POST /api/v1/activity
    app.register_blueprint(hibp_notify.bp)  # HIBP's breach callback
    app.register_blueprint(pages.bp)
    app.register_blueprint(pages.account_bp)
    app.register_blueprint(admin_pages.bp)  # /admin: the security console
    app.register_blueprint(mfa_api.bp)
    app.register_blueprint(not_me_pages.bp)  # "this wasn't me"
    app.register_blueprint(reset_pages.forgot_bp)
    app.register_blueprint(reset_pages.reset_bp)
    i18n.init_app(app, settings)  # the language of each page, and /language to switch it

    @app.context_processor
    def signed_in() -> dict[str, bool]:
        return {"signed_in": "sid" in session}

    @app.errorhandler(CSRFError)
    def csrf_failed(exc: CSRFError) -> Response | tuple[str, int]:
        if request.blueprint == mfa_api.bp.name:  # JSON for the browser's WebAuthn calls
            message = gettext("CSRF check failed: reload the page and try again.")
            response = jsonify({"error": message, "detail": str(exc.description)})
            response.status_code = 403  # refused, as a request without its credentials
            return response
        error = gettext("This form has expired: go back, reload the page and try again.")
        return render_template("base.html", error=error), 400

    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(500)
    def error_page(exc: HTTPException) -> Response | tuple[str, int]:
        """A page in the reader's language for the site; /api/ keeps its JSON. A 500 says
        only that something failed on our side: the exception is logged, never shown."""
        if request.path.startswith(json_api.PREFIX):
            return json_api.error_response(exc)
        code = exc.code if exc.code in ERROR_PAGES else 500
        try:
            return render_template("error.html", code=code, **ERROR_PAGES[code]), code
        except Exception:  # the page itself failed (its session, its language): plain text
            logging.getLogger(__name__).exception("the error page could not be rendered")
            return Response("Error\n", status=code, mimetype="text/plain")

    @app.errorhandler(429)
    def too_many(exc: Exception) -> Response | tuple[str, int]:
        if request.blueprint == "pages":
            error = gettext("Too many attempts from your network: wait a minute.")
            return render_template("login.html", error=error), 429
        if request.path.startswith("/api/v3/"):  # HIBP's own API: its body and Retry-After
            wait = limit_storage.seconds_to_wait(limiter.current_limit)
            response = jsonify(
                {
                    "statusCode": 429,
                    "message": f"Rate limit is exceeded. Try again in {wait} seconds.",
                }
            )
            response.status_code = 429
            response.headers["Retry-After"] = str(wait)
            return response
        response = jsonify({"error": f"too many requests: {getattr(exc, 'description', '')}"})
        response.status_code = 429
        return response

    @app.after_request
    def baseline_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("Cache-Control", "no-store")
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response

    @app.get("/")
    def index() -> str:
        with registry.db.connection() as conn:
            # Per-breach totals kept by the importer: a COUNT over the corpus would scan it.
            digests = conn.execute(text("SELECT SUM(password_entries) FROM breaches")).scalar() or 0
        return render_template("index.html", password_digests=digests)

    @app.get("/favicon.ico")
    def favicon() -> Response:
        """Browsers ask for it whatever the page links: the site's icon, not a 404."""
        return app.send_static_file("favicon.svg")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.get("/readyz")
    def readyz() -> Response:
        """Whether this instance can serve (200) or not (503): the database must answer,
        and Redis too when REDIS_URL is set. Without its Redis an instance still serves
        (the limits fall back to its own memory), but every instance then counts alone:
        a load balancer should prefer one whose Redis answers. The body names what is down."""
        try:
            registry.db.run(text("SELECT 1"))
            database = "up"
        except SQLAlchemyError:
            database = "down"
        redis = "not used"
        if settings.redis_url:
            redis = "up" if limiter.storage.check() else "down"
        response = jsonify({"database": database, "redis": redis})
        response.status_code = 503 if "down" in (database, redis) else 200
        response.headers["Cache-Control"] = "no-store"
        return response

    return app
