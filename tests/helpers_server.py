"""A breachguard app served over real sockets on 127.0.0.1, for HibpClient to talk to.

`Served` runs werkzeug's threaded server in a thread and records every request path (a WSGI
middleware in front of the app), so tests can count what a client really asked for.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from auth.breach.hibp import HibpClient, HibpSettings

StartResponse = Callable[..., Any]


class _Recorder:
    """WSGI middleware: remembers (path, headers) of each request, then passes it on."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        with self._lock:
            self.paths.append(environ.get("PATH_INFO", ""))
            self.headers.append(
                {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k[:5] == "HTTP_"}
            )
        return self.app(environ, start_response)


class Served:
    def __init__(self, app: Flask) -> None:
        self.recorder = _Recorder(app)
        self._server = make_server("127.0.0.1", 0, self.recorder, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def paths(self) -> list[str]:
        return list(self.recorder.paths)

    def client(self, api_key: str | None = None, **overrides: Any) -> HibpClient:
        """A HibpClient pointed at this server, as it would point at HIBP."""
        options: dict[str, Any] = {"connect_timeout": 1.0, "read_timeout": 5.0, "retries": 0}
        options.update(overrides)
        return HibpClient(
            HibpSettings(
                passwords_url=self.url,
                api_url=f"{self.url}/api/v3",
                api_key=api_key,
                **options,
            )
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def serving(app: Flask) -> Iterator[Served]:
    served = Served(app)
    served.start()
    try:
        yield served
    finally:
        served.stop()


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
