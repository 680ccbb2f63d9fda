"""`breachguard audit export` filters by time window and account, streams in seq order,
and refuses bad filter values with exit 2 naming the option."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

from click.testing import CliRunner

from auth import accounts, audit
from auth.cli import main
from auth.services import Services

ALICE = audit.Actor.cli("alice")
T0 = dt.datetime(2026, 11, 27, 23, 0, tzinfo=dt.UTC)


def _seed(registry: Services) -> tuple[int, int]:
    """Two accounts created on the 27th at 23:00 (seq 1, 2); updates at 01:00 and 02:00 on
    the 28th (seq 3, 4), 01:00 on the 29th (seq 5) and midnight on the 30th (seq 6)."""
    with registry.db.session() as s:
        a = accounts.create(s, email="a@example.org", hasher=registry.hasher, actor=ALICE, now=T0)
        b = accounts.create(s, email="b@example.org", hasher=registry.hasher, actor=ALICE, now=T0)
        ids = (a.id, b.id)
    for hours, target in ((2, ids[0]), (3, ids[1]), (26, ids[0]), (49, ids[1])):
        with registry.db.session() as s:
            event = audit.Event(ALICE, audit.Action.ACCOUNT_UPDATED, f"account:{target}", {})
            audit.append(s, [event], now=T0 + dt.timedelta(hours=hours))
    return ids


def _jsonl(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines()]


def test_since_and_until_keep_the_events_of_the_window_in_seq_order(
    registry: Services, runner: CliRunner
) -> None:
    _seed(registry)
    result = runner.invoke(
        main, ["audit", "export", "--since", "2026-11-28", "--until", "2026-11-28"]
    )
    assert result.exit_code == 0, result.output
    events = _jsonl(result.output)
    assert [e["seq"] for e in events] == [3, 4]  # 01:00 and 02:00 on the 28th
    assert events[0]["at"] == "2026-11-28T01:00:00+00:00"


def test_a_date_time_bound_is_exact_and_until_excludes_its_instant(
    registry: Services, runner: CliRunner
) -> None:
    _seed(registry)
    result = runner.invoke(
        main, ["audit", "export", "--since", "2026-11-28T02:00:00Z", "--until", "2026-11-29T01:00"]
    )
    assert [e["seq"] for e in _jsonl(result.output)] == [4]


def test_account_by_email_or_id_keeps_only_its_events(
    registry: Services, runner: CliRunner
) -> None:
    a, b = _seed(registry)
    by_email = _jsonl(runner.invoke(main, ["audit", "export", "--account", "A@Example.org"]).output)
    assert {e["target"] for e in by_email} == {f"account:{a}"}
    assert [e["seq"] for e in by_email] == [1, 3, 5]  # created, then two updates
    by_id = runner.invoke(main, ["audit", "export", "--account", str(b), "--since", "2026-11-28"])
    assert [e["seq"] for e in _jsonl(by_id.output)] == [4, 6]


def test_csv_has_a_header_and_the_filtered_rows(registry: Services, runner: CliRunner) -> None:
    _seed(registry)
    result = runner.invoke(main, ["audit", "export", "--format", "csv", "--since", "2026-11-30"])
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["seq"] for r in rows] == ["6"]
    assert rows[0]["at"] == "2026-11-30T00:00:00+00:00" and rows[0]["details"] == "{}"


def test_export_streams_across_batches(registry: Services, runner: CliRunner) -> None:
    with registry.db.session() as s:
        events = [
            audit.Event(ALICE, audit.Action.ACCOUNT_UPDATED, f"account:{i % 3}", {"i": i})
            for i in range(120)
        ]
        audit.append(s, events, now=T0)
    with registry.db.session() as s:
        seqs = [e.seq for e in audit.iter_events(s, batch=7, target="account:1")]
    assert seqs == list(range(2, 121, 3))


def test_a_bad_since_exits_2_naming_the_option(registry: Services, runner: CliRunner) -> None:
    result = runner.invoke(main, ["audit", "export", "--since", "yesterday"])
    assert result.exit_code == 2
    assert "--since" in result.output and "'yesterday' is not an ISO date" in result.output


def test_until_before_since_exits_2(registry: Services, runner: CliRunner) -> None:
    result = runner.invoke(
        main, ["audit", "export", "--since", "2026-11-29", "--until", "2026-11-28T12:00"]
    )
    assert result.exit_code == 2 and "--until" in result.output


def test_an_unknown_account_exits_2_naming_it(registry: Services, runner: CliRunner) -> None:
    _seed(registry)
    for raw in ("nobody@example.org", "9999"):
        result = runner.invoke(main, ["audit", "export", "--account", raw])
        assert result.exit_code == 2, result.output
        assert "--account" in result.output and raw in result.output
