"""The audit trail is append-only and hash-chained: any edit or deletion is detected."""

import datetime as dt
import json
import threading
from collections.abc import Callable

from click.testing import CliRunner
from sqlalchemy import bindparam, select, text, update

from auth import audit
from auth.cli import main
from auth.models import Account, AuditEvent, table
from auth.services import Services

ALICE = audit.Actor.cli("alice")


def _append(registry: Services, n: int, now: dt.datetime) -> None:
    with registry.db.session() as s:
        audit.append(
            s,
            [
                audit.Event(ALICE, audit.Action.ACCOUNT_CREATED, f"account:{i}", {"i": i})
                for i in range(n)
            ],
            now=now,
        )


def _verify(registry: Services) -> audit.ChainReport:
    with registry.db.session() as s:
        return audit.verify(s)


def test_an_untouched_trail_verifies(registry: Services, now: dt.datetime) -> None:
    _append(registry, 3, now)
    _append(registry, 2, now + dt.timedelta(seconds=1))
    report = _verify(registry)
    assert report.ok and report.events == 5


def test_awkward_text_and_times_are_kept_as_given_and_verify(
    registry: Services, now: dt.datetime
) -> None:
    awkward = {"note": 'quote " backslash \\ newline \n tab \t é ü 漢字 😀 \x01', "n": [1, 2.5]}
    times = (now, now.replace(microsecond=123456), now + dt.timedelta(hours=5))
    for at in times:
        with registry.db.session() as s:
            event = audit.Event(ALICE, audit.Action.LOGIN_DECIDED, 'account:"7" ✓', awkward)
            audit.append(s, [event], now=at)
    report = _verify(registry)
    assert report.ok and report.events == 3, report
    with registry.db.session() as s:
        kept = s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
    assert [json.loads(e.details) for e in kept] == [awkward] * 3
    assert [e.at for e in kept] == list(times)


def test_an_append_rolled_back_with_its_transaction_leaves_no_trace(
    registry: Services, now: dt.datetime
) -> None:
    _append(registry, 2, now)
    try:
        with registry.db.session() as s:
            audit.append(
                s, [audit.Event(ALICE, audit.Action.ACCOUNT_CREATED, "account:x")], now=now
            )
            raise RuntimeError("the rest of the transaction failed")
    except RuntimeError:
        pass
    _append(registry, 1, now)
    report = _verify(registry)
    assert report.ok and report.events == 3


def test_a_guarded_event_is_appended_only_when_its_guard_matches(
    registry: Services, now: dt.datetime
) -> None:
    """append_if: the sign-in's confirmation (on PostgreSQL one statement with the
    audit_append function) records the event only while the account stands as read."""
    accounts = table(Account)
    with registry.db.session() as s:
        account = Account(email="guard@example.org", email_sha1=b"\x00" * 20, name="G")
        s.add(account)
        s.flush()
        account_id = account.id
    guard = (
        update(accounts)
        .where(accounts.c.id == bindparam("account"), accounts.c.session_epoch == 0)
        .values(failed_logins=0)
    )
    event = audit.Event(ALICE, audit.Action.LOGIN_DECIDED, f"account:{account_id}", {"n": 1})
    _append(registry, 2, now)
    assert audit.append_if(registry.db, guard, {"account": account_id}, event, now=now)
    assert not audit.append_if(registry.db, guard, {"account": account_id + 1}, event, now=now)
    _append(registry, 1, now)
    report = _verify(registry)
    assert report.ok and report.events == 4, report


def test_an_edited_event_is_named(registry: Services, now: dt.datetime) -> None:
    _append(registry, 5, now)
    with registry.db.engine.begin() as c:
        c.execute(text("UPDATE audit_events SET target = 'account:999' WHERE seq = 3"))
    report = _verify(registry)
    assert not report.ok and report.first_bad_seq == 3 and "altered" in (report.problem or "")


def test_a_deleted_event_in_the_middle_is_named(registry: Services, now: dt.datetime) -> None:
    _append(registry, 5, now)
    with registry.db.engine.begin() as c:
        c.execute(text("DELETE FROM audit_events WHERE seq = 2"))
    report = _verify(registry)
    assert not report.ok and report.first_bad_seq == 2 and "missing" in (report.problem or "")


def test_a_deleted_last_event_is_detected_by_the_head(registry: Services, now: dt.datetime) -> None:
    _append(registry, 4, now)
    with registry.db.engine.begin() as c:
        c.execute(text("DELETE FROM audit_events WHERE seq = 4"))
    assert not _verify(registry).ok


def test_a_rewritten_chain_with_recomputed_hashes_still_fails_at_the_head(
    registry: Services, now: dt.datetime
) -> None:
    _append(registry, 2, now)
    with registry.db.engine.begin() as c:
        c.execute(text("DELETE FROM audit_events WHERE seq = 2"))
    assert "head" in (_verify(registry).problem or "")


def _in_threads(work: Callable[[], None], threads: int = 4) -> None:
    """Run `work` in several threads at once; any exception fails the test."""
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            work()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    running = [threading.Thread(target=guarded) for _ in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    assert not errors


def test_concurrent_appenders_keep_one_unbroken_chain(registry: Services, now: dt.datetime) -> None:
    def work() -> None:
        for _ in range(10):
            _append(registry, 3, now)

    _in_threads(work)
    report = _verify(registry)
    assert report.ok and report.events == 120


def test_audit_verify_cli_exits_1_on_a_broken_trail(
    registry: Services, runner: CliRunner, now: dt.datetime
) -> None:
    _append(registry, 3, now)
    ok = runner.invoke(main, ["audit", "verify"])
    assert ok.exit_code == 0 and "intact: 3 events" in ok.output
    with registry.db.engine.begin() as c:
        c.execute(text("UPDATE audit_events SET actor = 'cli:mallory' WHERE seq = 1"))
    bad = runner.invoke(main, ["audit", "verify"])
    assert bad.exit_code == 1 and "event 1 was altered" in bad.output


def test_audit_export_writes_every_event_as_json_lines(
    registry: Services, runner: CliRunner, now: dt.datetime
) -> None:
    import json

    _append(registry, 3, now)
    result = runner.invoke(main, ["audit", "export"])
    events = [json.loads(line) for line in result.output.splitlines()]
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert events[0]["actor"] == "cli:alice" and events[2]["details"] == {"i": 2}
    assert events[1]["prev_hash"] == events[0]["hash"]
