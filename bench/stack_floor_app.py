"""The floor of bench/mfa_http.py: the web stack breachguard's second step is built on, and
nothing else, served by gunicorn the same way.

POST /login/mfa here does what every page POST pays for in breachguard, with the settings
auth/web/factory.py gives these parts: Flask-WTF's CSRF check, a Flask-Limiter moving-window
limit per address (memory storage, rate-limit headers on), the signed session cookie read,
cleared and written anew, and a 302 to /account/security. No database, no TOTP, no audit
event. GET /healthz is the same trivial endpoint as breachguard's. The cookies and tokens
posted are made by bench/mfa_http.py's prepare(), as for breachguard.

    gunicorn -k gthread -w 2 --threads 4 --chdir bench stack_floor_app:app
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, redirect, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

SECRET_KEY = "bench-stack-floor-key-0123456789abcdef"  # a throw-away app's
NO_LIMIT = "1000000 per second"

app = Flask(__name__)
app.config.update(
    SECRET_KEY=SECRET_KEY,
    SESSION_COOKIE_HTTPONLY=True,
    SESSION_COOKIE_SAMESITE="Lax",
    SESSION_COOKIE_NAME="bg_session",
    WTF_CSRF_TIME_LIMIT=None,
)
pages = Blueprint("pages", __name__)


@pages.post("/login/mfa")
def second_step() -> Response | tuple[str, int]:
    pending = session.get("pending")
    if not isinstance(pending, dict):
        return "no pending sign-in", 400
    session.clear()
    session["aid"], session["epoch"], session["mfa"] = pending["aid"], pending["epoch"], True
    return redirect("/account/security")


def _by_address() -> str:
    return "ip:" + get_remote_address()


limiter = Limiter(
    _by_address,
    app=app,
    storage_uri="memory://",
    headers_enabled=True,
    strategy="moving-window",
)
limiter.limit(NO_LIMIT, methods=["POST"], key_func=_by_address)(pages)
CSRFProtect(app)
app.register_blueprint(pages)


@app.get("/healthz")
def healthz() -> Response:
    return Response("ok\n", mimetype="text/plain")
