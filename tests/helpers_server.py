"""breachguard served over real sockets on 127.0.0.1.

`Served` runs werkzeug's threaded server in a thread and records every request path (a WSGI
middleware in front of the app), so tests can count what a client (HibpClient) really asked
for. `ServeProcess` runs the real `breachguard serve` (gunicorn) as a child process, and
`Nginx` runs Debian's nginx in front of it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
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


CLI = Path(sys.executable).parent / "breachguard"


class ServeProcess:
    """`breachguard serve` on a port, in its own process group, its output in `log`: the
    project's own command unless `cli` names another (an installed wheel's), run in `cwd`
    when given."""

    def __init__(
        self,
        env: dict[str, str],
        port: int,
        log: Path,
        *args: str,
        cli: Path = CLI,
        cwd: Path | None = None,
    ) -> None:
        self.port, self.base, self.log = port, f"http://127.0.0.1:{port}", log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(cli), "serve", "--port", str(port), *args],
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_up(self, seconds: float = 30) -> None:
        """Until /healthz answers 200; fails with the server's log if it does not."""
        deadline = time.monotonic() + seconds
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                if requests.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise AssertionError("serve did not come up:\n" + self.log.read_text(errors="replace"))

    def stop(self) -> None:
        """SIGTERM to the process group (SIGKILL after 20 s); its log is complete after."""
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)


NGINX_BIN = shutil.which("nginx", path="/usr/sbin:/usr/bin:/sbin:/bin")


class Nginx:
    """Debian's nginx in the foreground, everything it writes under `folder` (its config,
    pid, logs, temp files), serving `sites` (nginx `server` blocks, as text) on loopback."""

    def __init__(self, folder: Path, *sites: str) -> None:
        assert NGINX_BIN, "nginx is not installed"
        self.folder = folder
        self.error_log = folder / "error.log"
        included = []
        for n, site in enumerate(sites):
            (folder / f"site-{n}.conf").write_text(site)
            included.append(f"    include {folder}/site-{n}.conf;")
        temps = "\n".join(
            f"    {kind}_temp_path {folder}/{kind}_temp;"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = pwd.getpwuid(os.getuid()).pw_name  # as root, workers stay this user too
        (folder / "nginx.conf").write_text(
            f"user {user};\nworker_processes 1;\npid {folder}/nginx.pid;\n"
            f"error_log {self.error_log} info;\nevents {{ worker_connections 128; }}\n"
            f"http {{\n    access_log {folder}/access.log;\n{temps}\n"
            + "\n".join(included)
            + "\n}\n"
        )
        self.proc = subprocess.Popen(
            [NGINX_BIN, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_up(self, *ports: int, seconds: float = 10) -> None:
        """Until every port accepts connections; fails with nginx's error log if not."""
        deadline = time.monotonic() + seconds
        waiting = list(ports)
        while waiting and self.proc.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", waiting[0]), timeout=1).close()
                waiting.pop(0)
            except OSError:
                time.sleep(0.05)
        if waiting:
            log = self.error_log.read_text() if self.error_log.exists() else "(no error log)"
            raise AssertionError(f"nginx is not listening on {waiting}:\n{log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
