from pathlib import Path

from click.testing import CliRunner

from auth.cli import main


def test_demo_then_scan_reports_the_seeded_exposures(runner: CliRunner) -> None:
    assert runner.invoke(main, ["demo"]).exit_code == 0
    result = runner.invoke(main, ["scan", "--format", "csv"])
    assert result.exit_code == 1, result.output
    assert "luc.bernard@infirmier-exemple.fr,valid_credential,local,Webmail2022" in result.output


def test_demo_checks_its_imports_and_applies_the_finding_policy(runner: CliRunner) -> None:
    """As `corpus import` does: the leaked combos force resets, breached e-mails require a
    second factor, without waiting for a scan or a monitor run."""
    result = runner.invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "Finding policy: 2 account(s) must reset their password, 4 must add" in result.output
    again = runner.invoke(main, ["demo"])
    assert "Finding policy: 0 account(s) must reset their password, 0 must add" in again.output


def test_serve_answers_over_http_under_gunicorn(cli_env: dict[str, str]) -> None:
    """`breachguard serve` really serves: health, a range, and a 400 on a bad prefix."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request
    from pathlib import Path

    env = {**os.environ, **cli_env}
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "breachguard", "demo"], env=env, check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [bin_dir / "breachguard", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        from auth.breach.hashing import password_sha1, sha1_hex

        digest = sha1_hex(password_sha1("azerty123"))  # in the demo corpus
        body = urllib.request.urlopen(f"{base}/range/{digest[:5]}", timeout=5).read().decode()
        assert f"{digest[5:]}:" in body
        try:
            urllib.request.urlopen(f"{base}/range/XYZ", timeout=5)
            raise AssertionError("a bad prefix must be refused")
        except urllib.error.HTTPError as exc:
            assert exc.code == 400
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_front_page_lists_the_endpoints_with_its_stylesheet(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/")
    assert page.status_code == 200
    assert b"/range/" in page.data and b"openapi.json" in page.data
    css = client.get("/static/style.css")
    assert css.status_code == 200 and b"breachguard" in css.data


def test_the_access_log_never_shows_a_reset_token() -> None:
    import datetime as dt
    from types import SimpleNamespace

    from gunicorn.config import Config

    from auth.web.server import RedactingLogger

    logger = RedactingLogger(Config())
    req = SimpleNamespace(
        method="GET",
        path="/reset/SECRET-TOKEN",
        query="",
        version=(1, 1),
        headers=[],
        uri="/reset/SECRET-TOKEN",
    )
    resp = SimpleNamespace(status="200 OK", sent=10, headers=[], response_length=10)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/reset/SECRET-TOKEN",
        "PATH_INFO": "/reset/SECRET-TOKEN",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    atoms = logger.atoms(resp, req, environ, dt.timedelta(seconds=0.01))
    assert "SECRET-TOKEN" not in repr(atoms)
    assert atoms["U"] == "/reset/[redacted]"


def test_serve_stops_at_once_on_sigterm_right_after_starting(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """A SIGTERM while the workers boot stops the server at once: a worker forked just
    before it does not serve on until the master's graceful timeout (30 s). And gunicorn's
    control socket, one shared path for every instance, is off."""
    import os
    import signal
    import time

    from tests.helpers_server import ServeProcess, closed_port

    env = {**os.environ, **cli_env}
    for _ in range(5):
        server = ServeProcess(env, closed_port(), tmp_path / "serve.log", "--workers", "2")
        deadline = time.monotonic() + 30
        while "Booting worker" not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(server.proc.pid, signal.SIGTERM)
        started = time.monotonic()
        server.proc.wait(timeout=20)
        assert time.monotonic() - started < 10
        log = (tmp_path / "serve.log").read_text()
        assert "Control socket" not in log, log
