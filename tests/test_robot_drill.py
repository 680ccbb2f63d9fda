"""The incident's second door, small: bench/robot_drill.py with 100 professionals, 3 robots
and a spray over 40 accounts, against the real guard and sign-in flow (SQLite or
PostgreSQL as the suite runs, and Redis when TEST_REDIS_URL is set, else memory counters
in the database). The robots are stopped within the issue's budget, nobody at work is
blocked, and the spray is noticed and answered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG_URL, REDIS_URL

DRILL = Path(__file__).resolve().parent.parent / "bench" / "robot_drill.py"


@pytest.fixture(scope="module")
def outcome() -> dict[str, Any]:
    args = ["--professionals", "100", "--robots", "3", "--spray", "40", "--hours", "1.5"]
    args += ["--new-network-share", "0.05"]  # five people work from a network new to them
    args += ["--db", "postgres" if PG_URL else "sqlite", "--json"]
    if REDIS_URL:
        args += ["--redis", REDIS_URL]
    else:
        args += ["--no-redis"]
    run = subprocess.run(
        [sys.executable, str(DRILL), *args], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout))


def test_every_robot_is_stopped_within_a_hundred_look_ups(
    outcome: dict[str, Any],
) -> None:
    assert outcome["attacked_accounts"] == 3
    assert outcome["blocked"] == 3, outcome["robots"]
    assert 0 < outcome["served_max"] <= 100


def test_an_alert_comes_as_the_attack_starts(outcome: dict[str, Any]) -> None:
    assert outcome["first_alert_after_s"] is not None
    assert outcome["first_alert_after_s"] < 60


def test_nobody_at_work_is_blocked_and_few_are_asked_again(
    outcome: dict[str, Any],
) -> None:
    assert outcome["professional_lookups"] > 1000
    assert outcome["false_blocks"] == 0
    assert outcome["step_up_share"] <= 0.01
    assert outcome["new_network_sign_ins"] > 0  # the path a new network takes, taken
    assert outcome["failed_second_steps"] == 0


def test_the_spray_is_alerted_at_its_threshold_and_its_accounts_need_a_second_factor(
    outcome: dict[str, Any],
) -> None:
    assert outcome["spray_attempts_to_alert"] == 20  # SPRAY_ACCOUNTS
    assert outcome["spray_accounts_needing_mfa"] == 40
