"""How `breachguard serve` listens: every worker on its own socket (SO_REUSEPORT), so a
client's kept-alive pool is spread across the workers rather than held by one, and an
address already taken is refused by name before anything starts.

Real servers on loopback; the connections each worker holds are read from /proc (Linux).
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers_server import CLI, ServeProcess, closed_port


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **cli_env}


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


ESTABLISHED, LISTEN = "01", "0A"  # the states of /proc/net/tcp


def _sockets_on(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets in `state` whose local port is `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                found.add(fields[9])
    return found


def _wait_listening(port: int, sockets: int, seconds: float = 10) -> None:
    """Until `sockets` sockets listen on the port: each worker binds its own once booted,
    and the first answers /healthz before the others are up."""
    deadline = time.monotonic() + seconds
    while len(_sockets_on(port, LISTEN)) < sockets:
        assert time.monotonic() < deadline, f"{sockets} workers never listened on {port}"
        time.sleep(0.05)


def _sockets_of(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


@pytest.fixture
def pool() -> Iterator[list[http.client.HTTPConnection]]:
    connections: list[http.client.HTTPConnection] = []
    yield connections
    for connection in connections:
        connection.close()


def test_a_kept_alive_pool_is_spread_across_the_workers(
    env: dict[str, str], tmp_path: Path, pool: list[http.client.HTTPConnection]
) -> None:
    """On one shared listening socket, the worker that wins the accepts took all 32 of a
    pool's connections and served them alone. Sixteen connections all on one of two
    workers by chance: one time in 32,768."""
    port = closed_port()
    server = ServeProcess(env, port, tmp_path / "serve.log", "--workers", "2", "--threads", "1")
    try:
        server.wait_up()
        _wait_listening(port, 2)
        for _ in range(16):  # opened together, as a pool opens when its client starts
            pool.append(http.client.HTTPConnection("127.0.0.1", port, timeout=5))
            pool[-1].connect()
        for connection in pool:
            connection.request("GET", "/healthz")
            assert connection.getresponse().read() == b"ok\n"
        workers = _children(server.proc.pid)
        assert len(workers) == 2
        established = _sockets_on(port, ESTABLISHED)
        held = [len(_sockets_of(worker) & established) for worker in workers]
        assert sum(held) == 16
        assert min(held) >= 1, f"connections per worker: {held}"
    finally:
        server.stop()


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "SO_REUSEPORT"])
def test_serve_refuses_an_address_already_in_use_by_name(
    env: dict[str, str], tmp_path: Path, reuse_port: bool
) -> None:
    """Another program on the port, or another breachguard (whose workers bind with
    SO_REUSEPORT, and would otherwise share this one's connections): exit 1 at once."""
    with socket.socket() as taken:
        if reuse_port:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(CLI), "serve", "--port", str(port), "--workers", "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, result.stderr
    assert f"cannot serve: 127.0.0.1:{port} is already in use\n" in result.stderr
    assert "Booting worker" not in result.stderr


def test_serve_says_why_it_cannot_listen_on_an_address_of_another_machine(
    env: dict[str, str],
) -> None:
    """192.0.2.1 (TEST-NET-1) is no address of this machine: refused, and not as "in use"."""
    result = subprocess.run(
        [str(CLI), "serve", "--host", "192.0.2.1", "--port", str(closed_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "cannot serve: 192.0.2.1:" in result.stderr
    assert "Cannot assign requested address" in result.stderr
    assert "in use" not in result.stderr
