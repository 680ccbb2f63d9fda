"""The audit trail is append-only and hash-chained: any edit or deletion is detected."""

import datetime as dt
import json
import threading
from collections.abc import Callable

from click.testing import CliRunner
from sqlalchemy import bindparam, func, select, text, update

from auth import audit
from auth.cli import main
from auth.models import Account, AuditEvent, table
from auth.prepared import Prepared
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


def test_a_bulk_append_hashes_exactly_as_the_chains_definition(now: dt.datetime) -> None:
    """The bulk path hashes from precomputed parts; it must equal event_hash byte for byte,
    awkward text included."""
    odd = {"r": 'quote " back \\ tab \t é 漢 🙂', "n": None, "l": [1, 2], "t": now}
    events = [
        audit.Event(ALICE, audit.Action.ACCOUNT_RESET_FORCED, 'account:"7"', odd),
        audit.Event(audit.Actor.cli("zoë"), audit.Action.ACCOUNT_CREATED, "account:8", {}),
        audit.Event(ALICE, audit.Action.ACCOUNT_RESET_FORCED, "account:9 ✓", odd),  # a shape again
    ]
    rows = audit._chain(41, "ab" * 32, audit._stage(events, now), now)
    prev = "ab" * 32
    for seq, at, actor, action, target, details, prev_hash, digest in rows:
        assert prev_hash == prev
        assert digest == audit.event_hash(seq, at, actor, action, target, details, prev)
        prev = digest
    assert [r[0] for r in rows] == [42, 43, 44]


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


# A sign-in's guard: it matches while the account is as it was read.
_GUARD = Prepared(
    update(table(Account))
    .where(table(Account).c.id == bindparam("account"), table(Account).c.session_epoch == 0)
    .values(failed_logins=0)
)


def test_a_guarded_append_records_the_event_only_when_its_guard_matches(
    registry: Services, now: dt.datetime
) -> None:
    """On PostgreSQL the chain is extended by the audit_append function (migration 0006),
    from JSON made here: the Python verifier must agree with it on awkward text too."""
    with registry.db.session() as s:
        account = Account(email="guard@example.org", email_sha1=b"\x00" * 20, name="G")
        s.add(account)
        s.flush()
        account_id = account.id
    _append(registry, 2, now)  # Python-side appends before and after: one chain
    awkward = {"note": 'quote " backslash \\ newline \n tab \t é ü 漢字 😀 \x01', "n": [1, 2.5]}
    for at in (now, now.replace(microsecond=123456), now + dt.timedelta(hours=5)):
        event = audit.Event(ALICE, audit.Action.LOGIN_DECIDED, f"account:{account_id}", awkward)
        assert audit.guarded_append(registry.db, (_GUARD, {"account": account_id}), event, now=at)
        _append(registry, 1, at)
    missing = audit.Event(ALICE, audit.Action.LOGIN_DECIDED, "account:none", {})
    assert not audit.guarded_append(registry.db, (_GUARD, {"account": 0}), missing, now=now)
    report = _verify(registry)
    assert report.ok and report.events == 2 + 3 * 2, report
    with registry.db.session() as s:
        kept = s.execute(select(AuditEvent).where(AuditEvent.seq == 3)).scalar_one()
        assert json.loads(kept.details) == awkward and kept.at == now
        none = select(func.count()).where(AuditEvent.target == "account:none")
        assert s.execute(none).scalar() == 0


def test_guarded_appends_from_many_threads_keep_one_unbroken_chain(
    registry: Services, now: dt.datetime
) -> None:
    with registry.db.session() as s:
        account = Account(email="many@example.org", email_sha1=b"\x01" * 20, name="M")
        s.add(account)
        s.flush()
        account_id = account.id

    def work() -> None:
        for _ in range(15):
            event = audit.Event(ALICE, audit.Action.LOGIN_DECIDED, "account:x", {"ok": True})
            guard = (_GUARD, {"account": account_id})
            assert audit.guarded_append(registry.db, guard, event, now=now)
            _append(registry, 1, now)

    _in_threads(work)
    report = _verify(registry)
    assert report.ok and report.events == 4 * 15 * 2, report


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
