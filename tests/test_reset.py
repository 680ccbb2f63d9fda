"""Forced resets: what one reset does, bulk runs, idempotency, dry runs, and a run killed
with SIGKILL then finished by running the same command again."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, insert, select, text

from auth import accounts, apikeys, audit
from auth.breach.hashing import email_sha1
from auth.cli import main
from auth.models import (
    Account,
    ApiKey,
    AuditEvent,
    Finding,
    Notice,
    Reset,
    ResetToken,
)
from auth.services import Services

ALICE = audit.Actor.cli("alice")


def make_accounts(registry: Services, n: int, *, start: int = 0) -> list[str]:
    now = dt.datetime.now(dt.UTC)
    emails = [f"pro{i}@example.fr" for i in range(start, start + n)]
    with registry.db.session() as s:
        s.execute(
            insert(Account),
            [
                {
                    "email": e,
                    "email_sha1": email_sha1(e),
                    "name": e,
                    "created_at": now,
                    "updated_at": now,
                }
                for e in emails
            ],
        )
    return emails


def count(registry: Services, model: type) -> int:
    with registry.db.session() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def write(tmp_path: Path, lines: list[str], name: str = "emails.txt") -> str:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_a_forced_reset_does_everything_to_one_account_at_once(
    registry: Services, runner: CliRunner, tmp_path: Path, now: dt.datetime
) -> None:
    with registry.db.session() as s:
        account = accounts.create(
            s,
            email="claire@example.fr",
            password="Soleil2019!xx",
            hasher=registry.hasher,
            actor=ALICE,
            now=now,
        )
        s.add(
            ApiKey(
                id="k1", role="hook", secret_sha256="0" * 64, account_id=account.id, created_at=now
            )
        )
    result = runner.invoke(
        main,
        [
            "reset",
            "--emails",
            write(tmp_path, ["claire@example.fr"]),
            "--reason",
            "leaked in Webmail2022",
            "--no-send",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "reset 1, already reset 0, unknown 0, failed 0" in result.output
    with registry.db.session() as s:
        acct = s.get(Account, account.id)
        assert acct is not None
        assert acct.status == "reset_required" and acct.reset_reason == "leaked in Webmail2022"
        assert acct.reset_reason_code == "security_team"  # an operator's words: a note
        assert acct.session_epoch == 1 and acct.mfa_required
        assert s.get(ApiKey, "k1").revoked_at is not None  # type: ignore[union-attr]
        token = s.execute(select(ResetToken)).scalar_one()
        notice = s.execute(select(Notice)).scalar_one()
        reset = s.execute(select(Reset)).scalar_one()
        event = s.execute(
            select(AuditEvent).where(AuditEvent.action == "account:reset:forced")
        ).scalar_one()
    assert token.account_id == account.id and token.expires_at is None
    assert notice.idempotency_key == f"reset:{account.id}:{reset.reset_key}"
    assert notice.token_id == token.id
    assert notice.status == "queued" and notice.kind == "reset_forced"
    details = json.loads(event.details)
    assert event.actor.startswith("cli:") and details["reason"] == "security_team"
    assert details["note"] == "leaked in Webmail2022"
    # The password no longer signs in: the page refuses a reset_required account.
    assert not registry.hasher.verify(None, "Soleil2019!xx").ok


def test_running_the_same_command_twice_resets_nobody_twice(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    emails = make_accounts(registry, 30)
    args = ["reset", "--emails", write(tmp_path, emails), "--no-send"]
    assert "reset 30," in runner.invoke(main, args).output
    again = runner.invoke(main, args)
    assert again.exit_code == 0 and "reset 0, already reset 30" in again.output
    assert count(registry, Reset) == count(registry, Notice) == 30


def test_unknown_emails_are_listed_not_fatal(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    emails = make_accounts(registry, 2)
    result = runner.invoke(
        main, ["reset", "--emails", write(tmp_path, [*emails, "ghost@example.fr"]), "--no-send"]
    )
    assert result.exit_code == 0
    assert "unknown: ghost@example.fr" in result.output and "unknown 1" in result.output


def test_a_pipe_is_refused_since_a_rerun_reads_the_list_again(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    fifo = tmp_path / "emails.fifo"
    os.mkfifo(fifo)
    result = runner.invoke(main, ["reset", "--emails", str(fifo), "--no-send"])
    assert result.exit_code == 2 and "not a regular file" in result.output
    assert count(registry, Reset) == 0


def test_a_file_with_a_bad_address_is_refused_and_nothing_changes(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    emails = make_accounts(registry, 2)
    result = runner.invoke(
        main, ["reset", "--emails", write(tmp_path, [emails[0], "not-an-address"]), "--no-send"]
    )
    assert result.exit_code == 2 and "line 2" in result.output
    assert count(registry, Reset) == 0


def test_a_reason_with_a_control_character_is_refused_and_nothing_changes(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    emails = make_accounts(registry, 1)
    args = ["reset", "--emails", write(tmp_path, emails), "--reason", "leak\x1b[2J", "--no-send"]
    result = runner.invoke(main, args)
    assert result.exit_code == 2 and "reason: no control characters" in result.output
    assert count(registry, Reset) == 0


def test_emails_may_come_as_a_csv_column(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    make_accounts(registry, 2)
    csv_text = ["name,email", "A,pro0@example.fr", "B,PRO1@example.fr"]
    result = runner.invoke(
        main, ["reset", "--emails", write(tmp_path, csv_text, "x.csv"), "--no-send"]
    )
    assert "reset 2," in result.output


@pytest.mark.parametrize(
    ("lines", "cells"),
    [
        (["a@x.fr", "", "  b@x.fr  "], [(1, "a@x.fr"), (3, "b@x.fr")]),
        (["Email", "a@x.fr"], [(2, "a@x.fr")]),
        (["email", "a@x.fr,other"], [(2, "a@x.fr")]),
        (["name,email", "A,a@x.fr", "B,"], [(2, "a@x.fr"), (3, "")]),
        (["note,a@x.fr", "b@x.fr"], [(1, "a@x.fr"), (2, "b@x.fr")]),
    ],
)
def test_the_address_cell_of_each_line_is_found(
    tmp_path: Path, lines: list[str], cells: list[tuple[int, str]]
) -> None:
    from auth.reset.sources import email_cells

    with Path(write(tmp_path, lines, "e.csv")).open(newline="") as stream:
        assert list(email_cells(stream)) == cells


def test_the_same_list_and_reason_name_the_same_job(tmp_path: Path) -> None:
    from auth.reset.sources import read_email_file

    first, bad = read_email_file(Path(write(tmp_path, ["A@x.fr", "b@x.fr"], "e.txt")))
    again, _ = read_email_file(Path(write(tmp_path, ["a@x.fr", "b@x.fr", "B@X.fr"], "f.txt")))
    assert bad == [] and again.addresses == ["a@x.fr", "b@x.fr"]
    assert first.fingerprint(None, "leak") == again.fingerprint(None, "leak")  # type: ignore[arg-type]
    assert first.fingerprint(None, "other") != first.fingerprint(None, "leak")  # type: ignore[arg-type]


def test_every_bad_line_of_a_file_is_named(tmp_path: Path) -> None:
    from auth.reset.sources import read_email_file

    path = Path(write(tmp_path, ["a@x.fr", "not an address", "b@x.fr", "@", "c@x.fr"], "e.txt"))
    addresses, bad = read_email_file(path)
    assert [number for number, _ in bad] == [2, 4]
    assert addresses.addresses == ["a@x.fr", "b@x.fr", "c@x.fr"]


def test_each_row_of_a_jobs_batch_holds_what_a_forced_reset_stores(registry: Services) -> None:
    """Every column of a job's tokens, notices and audit events, with an account already
    waiting for a reset in the middle of a batch."""
    import json as json_module

    from auth.models import Account as AccountRow
    from auth.reset import job, sources, tokens

    emails = make_accounts(registry, 5)
    with registry.db.session() as s:
        waiting = s.execute(select(AccountRow).where(AccountRow.email == emails[1])).scalar_one()
        waiting.status = "reset_required"
    report = job.run(
        registry.db,
        sources.Addresses(emails, "test"),
        reason="leak",
        actor=ALICE,
        secret_key=registry.settings.secret_key,
        require_mfa=True,
        batch=2,
    )
    assert report.summary() == {"reset": 4, "already_reset": 1, "unknown": 0, "failed": 0}
    key = f"job:{report.job_id}"
    with registry.db.session() as s:
        ids = {e: i for e, i in s.execute(select(AccountRow.email, AccountRow.id)).all()}
        reset_ids = sorted(ids[e] for e in emails if e != emails[1])
        rows = s.execute(select(ResetToken).order_by(ResetToken.account_id)).scalars().all()
        assert [t.account_id for t in rows] == reset_ids
        secret = registry.settings.secret_key
        for t in rows:
            assert t.token_sha256 == tokens.digest(tokens.derive(secret, t.id))
            assert t.reset_id is None and t.revoked_at is None and t.used_at is None
            assert t.created_at is not None and t.expires_at is None
        by_token = {t.account_id: t.id for t in rows}
        notices = s.execute(select(Notice).order_by(Notice.account_id)).scalars().all()
        assert [
            (n.account_id, n.kind, n.idempotency_key, n.token_id, n.reason, n.status, n.attempts)
            for n in notices
        ] == [
            (a, "reset_forced", f"reset:{a}:{key}", by_token[a], "leak", "queued", 0)
            for a in reset_ids
        ]
        assert all(n.next_attempt_at == n.created_at is not None for n in notices)
        events = (
            s.execute(select(AuditEvent).where(AuditEvent.action == "account:reset:forced"))
            .scalars()
            .all()
        )
        assert sorted(e.target for e in events) == sorted(f"account:{a}" for a in reset_ids)
        assert {e.actor for e in events} == {str(ALICE)}
        assert [json_module.loads(e.details) for e in events] == [
            {
                "findings": [],
                "job": report.job_id,
                "reason": "security_team",
                "note": "leak",
                "reset_key": key,
            }
        ] * 4
        assert audit.verify(s).ok


def test_a_list_longer_than_a_batch_is_resolved_first_then_reset_in_account_order(
    registry: Services, tmp_path: Path
) -> None:
    """Unknown addresses come out first, in list order; then the accounts are reset in
    account order, an address listed twice once."""
    from auth.reset import job, sources

    emails = make_accounts(registry, 7)
    listed = [emails[i] for i in (5, 2, 6, 0, 3)] + ["ghost@example.fr", emails[2], emails[1]]
    rows: list[tuple[str, int | None, object, str]] = []
    report = job.run(
        registry.db,
        sources.read_email_file(Path(write(tmp_path, listed)))[0],
        reason="leak",
        actor=ALICE,
        secret_key=registry.settings.secret_key,
        require_mfa=False,
        batch=2,
        sink=rows.extend,
    )
    with registry.db.session() as s:
        by_reset = s.execute(select(Reset.account_id).order_by(Reset.id)).scalars().all()
    assert report.summary() == {"reset": 6, "already_reset": 0, "unknown": 1, "failed": 0}
    assert [r[0] for r in rows] == ["ghost@example.fr"] + [emails[i] for i in (0, 1, 2, 3, 5, 6)]
    assert [r[2] for r in rows] == ["unknown"] + ["reset"] * 6  # the duplicate, once
    assert by_reset == [r[1] for r in rows[1:]] == sorted(by_reset)


def test_token_ids_start_with_the_time_and_end_with_80_random_bits() -> None:
    from auth.reset import tokens

    first = tokens.new_ids(500)
    time.sleep(0.002)
    later = tokens.new_ids(1)[0]
    assert all(len(i) == 32 and set(i) <= set("0123456789abcdef") for i in first)
    assert len({i[:12] for i in first}) == 1 and len(set(first)) == 500
    assert later > max(first) and later[:12] > first[0][:12]
    assert abs(int(later[:12], 16) - time.time() * 1000) < 60_000


def test_a_link_is_the_token_id_then_its_hmac_sha256_under_the_secret_key() -> None:
    """The link's format: links already sent must keep opening after an upgrade."""
    import base64
    import hashlib
    import hmac

    from auth.reset import tokens

    (token_id,) = tokens.new_ids(1)
    mac = hmac.new(b"clef-secrete", b"reset-token:" + token_id.encode(), hashlib.sha256)
    expected = token_id + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()
    assert tokens.derive("clef-secrete", token_id) == expected
    assert len(expected) == tokens.TOKEN_CHARS


def test_a_dry_run_prints_what_would_happen_and_changes_nothing(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    emails = make_accounts(registry, 3)

    def snapshot() -> list[object]:
        with registry.db.engine.connect() as c:
            return [
                c.execute(text(f"SELECT * FROM {t} ORDER BY 1")).all()  # noqa: S608 (fixed names)
                for t in ("accounts", "resets", "notices", "reset_tokens", "audit_events")
            ]

    before = snapshot()
    result = runner.invoke(
        main, ["reset", "--emails", write(tmp_path, [*emails, "x@example.fr"]), "--dry-run"]
    )
    assert result.exit_code == 0
    assert (
        "would reset: pro0@example.fr" in result.output and "unknown: x@example.fr" in result.output
    )
    assert "dry run, nothing changed: would reset 3" in result.output
    assert snapshot() == before


def test_from_scan_resets_each_exposed_account_once_per_finding(
    registry: Services, runner: CliRunner, now: dt.datetime
) -> None:
    make_accounts(registry, 3)
    with registry.db.session() as s:
        ids = list(s.execute(select(Account.id).order_by(Account.id)).scalars())
        for kind, breach in (("valid_credential", "A"), ("email_in_breach", "B")):
            s.add(
                Finding(
                    account_id=ids[0],
                    kind=kind,
                    source="local",
                    breach=breach,
                    first_seen=now,
                    last_seen=now,
                )
            )
        s.add(
            Finding(
                account_id=ids[1],
                kind="email_in_breach",
                source="local",
                breach="B",
                first_seen=now,
                last_seen=now,
            )
        )
    only_valid = runner.invoke(
        main, ["reset", "--from-scan", "--kind", "valid_credential", "--no-send"]
    )
    assert "reset 1," in only_valid.output
    everything = runner.invoke(main, ["reset", "--from-scan", "--no-send"])
    assert "reset 1, already reset 1" in everything.output  # ids[0] waits for its reset already
    with registry.db.session() as s:
        assert (
            s.execute(
                select(func.count()).select_from(Finding).where(Finding.reset_id.is_(None))
            ).scalar()
            == 1
        )
    third = runner.invoke(main, ["reset", "--from-scan", "--no-send"])
    assert "reset 0" in third.output


def test_the_report_file_lists_every_account_as_csv_or_json(
    registry: Services, runner: CliRunner, tmp_path: Path
) -> None:
    emails = make_accounts(registry, 2)
    path = write(tmp_path, [*emails, "ghost@example.fr"])
    runner.invoke(
        main, ["reset", "--emails", path, "--no-send", "--report", str(tmp_path / "r.json")]
    )
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"] == {"reset": 2, "already_reset": 0, "unknown": 1, "failed": 0}
    runner.invoke(
        main, ["reset", "--emails", path, "--no-send", "--report", str(tmp_path / "r.csv")]
    )
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0] == "email,account_id,outcome,detail" and len(lines) == 4
    assert any(line.startswith("pro0@example.fr,") and ",already_reset," in line for line in lines)


def test_exactly_one_target_option_is_required(runner: CliRunner) -> None:
    result = runner.invoke(main, ["reset"])
    assert result.exit_code == 2 and "exactly one of" in result.output


def test_the_api_resets_with_a_security_key_and_refuses_a_hook_key(
    registry: Services,
    client,
    now: dt.datetime,  # type: ignore[no-untyped-def]
) -> None:
    emails = make_accounts(registry, 2)
    with registry.db.session() as s:
        security = apikeys.create(s, role="security", name="soc", actor=ALICE, now=now).token
        hook = apikeys.create(s, role="hook", name="portal", actor=ALICE, now=now).token
    body = {"emails": [*emails, "ghost@example.fr"], "reason": "incident 2026-11"}
    denied = client.post("/api/v1/resets", json=body, headers={"Authorization": f"Bearer {hook}"})
    assert denied.status_code == 403
    done = client.post("/api/v1/resets", json=body, headers={"Authorization": f"Bearer {security}"})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["summary"] == {"reset": 2, "already_reset": 0, "unknown": 1, "failed": 0}
    with registry.db.session() as s:
        actors = set(
            s.execute(
                select(AuditEvent.actor).where(AuditEvent.action == "account:reset:forced")
            ).scalars()
        )
    assert actors == {f"api_key:{security.split('_')[1]}"}
    bad = client.post(
        "/api/v1/resets", json={"emails": ["nope"]}, headers={"Authorization": f"Bearer {security}"}
    )
    assert bad.status_code == 400 and bad.get_json()["field"] == "emails"
    unreadable = client.post(
        "/api/v1/resets",
        json={"emails": emails, "reason": "incident\x00 2026-11"},  # PostgreSQL: no NUL
        headers={"Authorization": f"Bearer {security}"},
    )
    assert unreadable.status_code == 400, unreadable.get_json()
    assert unreadable.get_json()["field"] == "reason"
    assert "no control characters" in unreadable.get_json()["error"]


def _breachguard() -> str:
    return str(Path(sys.executable).parent / "breachguard")


@pytest.mark.parametrize("attempt", [1])
def test_a_run_killed_with_sigkill_is_finished_by_running_it_again(
    registry: Services, cli_env: dict[str, str], tmp_path: Path, attempt: int
) -> None:
    """No account is reset twice, no notice queued twice, none lost, each sent once."""
    total = 3000
    emails = make_accounts(registry, total)
    path = write(tmp_path, emails)
    env = {**os.environ, **cli_env, "RESET_BATCH": "10"}
    proc = subprocess.Popen(
        [_breachguard(), "reset", "--emails", path, "--reason", "incident"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    done_at_kill = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done_at_kill = count(registry, Reset)
        if done_at_kill >= 200:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert 0 < done_at_kill < total, "the run must be killed in the middle"
    assert count(registry, Reset) < total

    rerun = subprocess.run(
        [_breachguard(), "reset", "--emails", path, "--reason", "incident"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "failed 0" in rerun.stdout
    with registry.db.session() as s:
        per_account = s.execute(
            select(Reset.account_id, func.count()).group_by(Reset.account_id)
        ).all()
        notices = s.execute(
            select(Notice.account_id, func.count()).group_by(Notice.account_id)
        ).all()
        statuses = set(s.execute(select(Notice.status)).scalars())
        jobs = s.execute(text("SELECT COUNT(*) FROM reset_jobs")).scalar()
    assert len(per_account) == total and {n for _, n in per_account} == {1}
    assert len(notices) == total and {n for _, n in notices} == {1}
    assert statuses == {"sent"} and jobs == 1
    outbox = Path(cli_env["BREACHGUARD_INSTANCE"]) / "outbox"
    assert len(list(outbox.glob("*.eml"))) == total
