"""`breachguard serve`: gunicorn in-process, so one command works without a config file."""

from __future__ import annotations

import errno
import functools
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from auth import logs, metrics
from auth.config import load_settings
from auth.web.factory import create_app

if TYPE_CHECKING:
    from auth.notify import BackgroundDrain

NOTICE_DRAIN_SECONDS = 10.0
# How long a stop waits for the notices in hand: longer than one SMTP exchange at the
# default timeout. Past it the server exits and those notices keep their leases.
NOTICE_STOP_SECONDS = 30.0
_drain_started = threading.Lock()  # held for good once the master has its drain thread
_drains: list[BackgroundDrain] = []  # the master's, once started


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app(processes=self.options["workers"])


_RESET_LINK = re.compile(r"/reset/[^/?#\s\"]+")


_gunicorn_format = {"format": "text"}  # run() sets LOG_FORMAT's value before gunicorn starts


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's own lines in LOG_FORMAT, and its access log (when one is configured:
    `serve` leaves it to the app's access line) without reset tokens: a live link in a log
    file is a live key."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if logs.REDACT_RESET_LINKS not in self.error_log.filters:  # setup reruns on reload
            self.error_log.addFilter(logs.REDACT_RESET_LINKS)
        if _gunicorn_format["format"] == "json":
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(logs.JsonFormatter())

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for name, value in atoms.items():  # the request line, path, referer, raw environ
            if isinstance(value, str) and "/reset/" in value:
                atoms[name] = _RESET_LINK.sub("/reset/[redacted]", value)
        return atoms


def _purge_expired(db: Any, *, retention_days: int) -> None:
    """Spent and expired WebAuthn challenges, sign-in continuations and page sessions, and
    stale per-address failure counts, would otherwise pile up for ever; so would exposed
    subjects and sign-in records kept past `retention_days` (EXPOSURE_RETENTION_DAYS)."""
    from auth.activity import exposure
    from auth.mfa.webauthn import purge_expired_challenges
    from auth.models import utcnow
    from auth.signin import bans, continuations
    from auth.web import session

    now = utcnow()
    purge_expired_challenges(db, now=now)
    with db.connection() as conn:
        continuations.purge(conn, now=now)
        bans.purge_failures(conn, now=now)
        session.purge(conn, now=now)
        # Exposed subjects and sign-in records past the retention, activity past the windows.
        exposure.purge(conn, now=now, retention_days=retention_days)


COVERAGE_EVERY = 3600.0  # seconds between counts of second-factor coverage
_last_coverage: list[float] = []


def _housekeeping(
    db: Any, *, retention_days: int, clock: Callable[[], float] = time.monotonic
) -> None:
    """What the server does between notices: purge what expired and, once an hour, count
    second-factor coverage into today's row (the console's chart and the incident report
    read that history, even on days nobody opens the dashboard)."""
    from auth.mfa import census
    from auth.models import utcnow

    _purge_expired(db, retention_days=retention_days)
    if _last_coverage and clock() - _last_coverage[0] < COVERAGE_EVERY:
        return
    _last_coverage[:] = [clock()]
    with db.connection() as conn:
        census.snapshot(conn, utcnow().date())


def _start_notice_drain(server: Any) -> None:
    """gunicorn's `when_ready` hook: the master, which outlives its workers, drains the
    notice queue in a daemon thread. Nothing here may stop the server from serving."""
    if not _drain_started.acquire(blocking=False):
        return
    try:
        from auth import notify
        from auth.config import load_settings

        settings = load_settings()
        idle = functools.partial(_housekeeping, retention_days=settings.exposure_retention_days)
        _drains.append(notify.start_background(settings, interval=NOTICE_DRAIN_SECONDS, idle=idle))
    except Exception:
        server.log.exception("notices will not be sent by this server: the drain did not start")


def _on_exit(server: Any, metrics_folder: Path) -> None:
    """gunicorn's `on_exit` hook, once the workers have finished their requests: the drain
    sends and marks the notices in hand and claims no more, before the interpreter exits
    (which would cut the daemon thread wherever it stands, a claim's lease held)."""
    for drain in _drains:
        if drain.stop(timeout=NOTICE_STOP_SECONDS):
            server.log.info("notice drain stopped: no notice left in hand")
        else:
            server.log.warning(
                "notice drain still sending at exit: its notices go again (same Message-ID) "
                "when their leases expire"
            )
    shutil.rmtree(metrics_folder, ignore_errors=True)


_stop_before_boot: list[int] = []  # in a new worker: the signals that arrived too early


def _post_fork(server: Any, worker: Any) -> None:
    """In a new worker, until gunicorn installs the worker's own handlers. Seen here (2
    stops in 8, SIGTERM at the first "Booting worker" line): a worker forked just before a
    stop lost its SIGTERM and served on until the master's graceful timeout. The handlers
    set here remember the signal, and _post_worker_init then ends the worker. A signal
    that arrives before this hook runs can still be lost: graceful_timeout bounds that."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, lambda signum, _frame: _stop_before_boot.append(signum))


def _post_worker_init(worker: Any) -> None:
    if _stop_before_boot:
        worker.log.info("worker %s stops: the server stopped while it booted", worker.pid)
        worker.alive = False


class CannotListen(OSError):
    """`serve` cannot listen on the address it was given: taken, or not this machine's."""


def check_free(host: str, port: int) -> None:
    """CannotListen when host:port cannot be bound, naming why. The workers bind with
    SO_REUSEPORT, which would let a second breachguard started on the same port by mistake
    share its connections, and turns any other conflict into a worker that fails to boot:
    a plain bind first says which address is taken, before anything starts."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise CannotListen(f"{host}:{port}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CannotListen(f"{host}:{port} is already in use") from None
            raise CannotListen(f"{host}:{port}: {exc.strerror}") from None


def run(*, host: str, port: int, workers: int, threads: int) -> None:
    check_free(host, port)
    settings = load_settings()
    _gunicorn_format["format"] = settings.log_format
    logs.configure(settings.log_format, settings.log_level)
    # Before the workers fork: each writes its counters here, and any of them answers a
    # scrape with the sum. A fresh folder per server, removed when it stops.
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="metrics-", dir=settings.instance_path))
    metrics.enable_multiprocess(folder)
    _Gunicorn(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            # Each worker listens on its own socket (SO_REUSEPORT) and the kernel spreads new
            # connections across them. On one shared socket, the worker that wins the accepts
            # takes a client's whole kept-alive pool (the portal's, nginx's upstream one) and
            # serves it alone while the others idle.
            "reuse_port": True,
            "accesslog": None,  # the app writes one access line per request (auth/logs.py)
            "loglevel": settings.log_level.lower(),
            "logger_class": "auth.web.server.RedactingLogger",
            "timeout": 30,
            # A stop waits this long for requests in flight (a sign-in is far shorter), then
            # kills: it also bounds the rare worker that misses the stop signal (below).
            "graceful_timeout": 5,
            # gunicorn 27's control socket: unused here, and one path
            # (~/.gunicorn/gunicorn.ctl) for every instance on the host.
            "control_socket_disable": True,
            # gunicorn trusts X-Forwarded-Proto from 127.0.0.1 unless told otherwise; proxies
            # are trusted by TRUSTED_PROXIES alone (auth/web/proxy.py).
            "forwarded_allow_ips": "",
            "when_ready": _start_notice_drain,
            "post_fork": _post_fork,
            "post_worker_init": _post_worker_init,
            "on_exit": lambda server: _on_exit(server, folder),
        }
    ).run()
