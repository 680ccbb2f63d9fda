"""The notice queue drained in a background thread of the server (gunicorn's master)."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

from auth.config import Settings
from auth.db import Database
from auth.notify.mailers import mailer_from_settings
from auth.notify.queue import drain

# Log lines keep the logger name they had before the split (JSON logs show it).
log = logging.getLogger("auth.notify")


class BackgroundDrain:
    """The drain's thread, and the way to stop it."""

    def __init__(self, thread: threading.Thread, stopping: threading.Event) -> None:
        self.thread = thread
        self._stopping = stopping

    def stop(self, *, timeout: float) -> bool:
        """Claim no more notices and let the ones in hand finish: each is sent and marked,
        so no lease is left held and nothing goes twice. False when they outlast `timeout`:
        those keep their leases, and go again (same Message-ID) once the leases expire."""
        self._stopping.set()
        self.thread.join(timeout)
        return not self.thread.is_alive()


def start_background(
    settings: Settings,
    *,
    interval: float = 10.0,
    idle: Callable[[Database], object] | None = None,
) -> BackgroundDrain:
    """Drain the notices, then the alerts' deliveries (auth/activity/deliveries.py), every
    `interval` seconds (at once, too) in a daemon thread that never raises: a mail or
    database outage is logged and retried, the server it lives in carries on. `idle` runs
    when the queue is empty (other housekeeping, under the same fork guard). The server
    stops it before it exits (BackgroundDrain.stop): a daemon thread is otherwise cut
    wherever it stands, which may be between a claim and its sending.

    The thread lives in gunicorn's master, which forks workers. A fork in the middle of a
    database call would give the child a C-level lock (SQLite's) that nobody will release,
    and the worker hangs. So a fork waits for the notices in hand (SMTP_CONNECTIONS of
    them, sent at once, so at most one SMTP exchange's time) and for at most one alert
    push (a webhook's timeout at worst), and the child drops its
    copies of our connections without closing them, which would break them for the master.
    """
    from auth.activity import deliveries, push  # it imports this package's queue

    db = Database(settings.database_url)
    mailer = mailer_from_settings(settings)
    webhook = push.webhook_from_settings(settings)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    guard = threading.Lock()

    def in_child() -> None:
        guard.release()
        db.engine.dispose(close=False)

    os.register_at_fork(
        before=guard.acquire, after_in_parent=guard.release, after_in_child=in_child
    )

    stopping = threading.Event()

    def loop() -> None:
        while not stopping.is_set():
            handled = 0
            try:
                with guard:
                    report = drain(
                        db,
                        mailer=mailer,
                        settings=settings,
                        worker=worker,
                        limit=settings.smtp_connections,
                        parallel=settings.smtp_connections,
                    )
                    handled = report.sent + report.retrying + report.failed + report.skipped
                    # One push a pass: a webhook may take its whole timeout, and a fork waits.
                    handled += deliveries.drain(
                        db, settings=settings, mailer=mailer, webhook=webhook, limit=1
                    ).handled
                    if not handled and idle is not None:
                        idle(db)
            except Exception:
                log.exception("notice drain failed; trying again in %s s", interval)
            # A short pause even when busy: a fork waiting for the guard gets it first.
            stopping.wait(0.01 if handled else interval)
        mailer.close()
        webhook.close()

    thread = threading.Thread(target=loop, name="notice-drain", daemon=True)
    thread.start()
    return BackgroundDrain(thread, stopping)
