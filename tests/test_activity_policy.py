"""The activity guard's rules as a table (pure: no database, no clock), the policy's
parsing, and properties of the defaults: a robot at 2 per second is blocked within its
first few dozen look-ups; a person's irregular pace never is."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auth.activity.policy import (
    DEFAULT_ROW,
    FIELDS,
    ActionPolicy,
    Counts,
    Decision,
    Facts,
    decide,
    parse_policy,
)
from auth.config import load_settings
from auth.errors import InvalidInput

NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
T = NOW.timestamp()
P = ActionPolicy()


def counts(minute: int = 1, hour: int = 1, day: int = 1) -> Counts:
    return Counts(minute, hour, day)


def spaced(gaps: list[float]) -> tuple[float, ...]:
    """The session's times ending now, with these gaps between them."""
    times = [T]
    for gap in reversed(gaps):
        times.insert(0, times[0] - gap)
    return tuple(times)


CASES = [
    ("a first look-up", Facts(account=counts(), session=counts()), "allow", ()),
    ("20 in a minute is still allowed", Facts(account=counts(20, 20, 20)), "allow", ()),
    ("21 in a minute asks", Facts(account=counts(21, 21, 21)), "step_up", ("rate_minute",)),
    ("41 in a minute blocks", Facts(account=counts(41, 41, 41)), "block", ("rate_minute",)),
    (
        "the session's count counts as much as the account's",
        Facts(session=counts(41, 41, 41)),
        "block",
        ("rate_minute",),
    ),
    ("151 in an hour asks", Facts(account=counts(5, 151, 151)), "step_up", ("rate_hour",)),
    ("401 in an hour blocks", Facts(account=counts(5, 401, 401)), "block", ("rate_hour",)),
    ("601 in a day asks", Facts(account=counts(5, 100, 601)), "step_up", ("rate_day",)),
    ("1501 in a day blocks", Facts(account=counts(5, 100, 1501)), "block", ("rate_day",)),
    (
        "151 distinct subjects in an hour ask",
        Facts(account=counts(5, 100, 151), subjects_hour=151),
        "step_up",
        ("distinct_subjects",),
    ),
    (
        "301 distinct subjects in an hour block",
        Facts(account=counts(5, 150, 301), subjects_hour=301),
        "block",
        ("distinct_subjects",),
    ),
    (
        "16 even gaps of half a second block",
        Facts(account=counts(17, 17, 17), recent=spaced([0.5] * 16)),
        "block",
        ("regular_spacing",),
    ),
    (
        "15 even gaps are not yet enough",
        Facts(account=counts(16, 16, 16), recent=spaced([0.5] * 15)),
        "allow",
        (),
    ),
    (
        "17 look-ups at the same instant block",
        Facts(account=counts(17, 17, 17), recent=spaced([0.0] * 16)),
        "block",
        ("regular_spacing",),
    ),
    (
        "even gaps at a person's pace are not a robot's",
        Facts(account=counts(1, 17, 17), recent=spaced([60.0] * 16)),
        "allow",
        (),
    ),
    (
        "uneven fast gaps are not regular",
        Facts(account=counts(17, 17, 17), recent=spaced([0.5, 3.0, 1.0, 4.5] * 4)),
        "allow",
        (),
    ),
    ("a network the account never used asks", Facts(new_network=True), "step_up", ("new_network",)),
    (
        "a session that made its second step is not asked for its network",
        Facts(new_network=True, stepped_up=True),
        "allow",
        (),
    ),
    (
        "11 accounts new to one network within ten minutes ask",
        Facts(network_accounts=11),
        "step_up",
        ("network_burst",),
    ),
    (
        "a block names every rule that fired",
        Facts(account=counts(41, 41, 41), recent=spaced([0.5] * 16), new_network=True),
        "block",
        ("rate_minute", "regular_spacing", "new_network"),
    ),
]


@pytest.mark.parametrize(("case", "facts", "decision", "reasons"), CASES, ids=[c[0] for c in CASES])
def test_the_rules(case: str, facts: Facts, decision: str, reasons: tuple[str, ...]) -> None:
    verdict = decide(facts, P, NOW)

    assert (verdict.decision.value, verdict.reasons) == (decision, reasons)


def test_a_block_says_when_its_evidence_begins() -> None:
    regular = decide(Facts(recent=spaced([0.5] * 16)), P, NOW)
    by_rate = decide(Facts(account=counts(41, 41, 41)), P, NOW)
    after_step_up = decide(Facts(account=counts(41, 41, 41), floor=T - 10), P, NOW)

    assert regular.since == T - 8
    assert by_rate.since == T - 60
    assert after_step_up.since == T - 10  # nothing before the second step counts


def test_a_limit_of_zero_is_off() -> None:
    off = dataclasses.replace(P, block_per_minute=0, step_up_per_minute=0)

    verdict = decide(Facts(account=counts(500, 500, 500)), off, NOW)

    assert verdict.reasons == ("rate_hour",)


def test_the_policy_is_read_over_the_defaults() -> None:
    table = parse_policy("patient_lookup.block_per_minute=30,*.step_up_per_hour=100")

    assert table.row("patient_lookup").block_per_minute == 30
    assert table.row("patient_lookup").step_up_per_hour == 100  # from the * row
    assert table.row("prescription").block_per_minute == P.block_per_minute
    assert table.row("prescription").step_up_per_hour == 100
    assert parse_policy("").row("x") == P
    assert parse_policy("*.regular_cv=0.2,*.new_network_step_up=false").row(DEFAULT_ROW) == (
        dataclasses.replace(P, regular_cv=0.2, new_network_step_up=False)
    )


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("patient_lookup.per_minute=30", "FIELD one of " + ", ".join(FIELDS)),
        ("block_per_minute=30", "ACTION.FIELD=VALUE"),
        ("x.block_per_minute", "ACTION.FIELD=VALUE"),
        ("x.block_per_minute=lots", "block_per_minute takes a int"),
        ("x.new_network_step_up=yes", "(true or false)"),
        ("x.block_per_hour=-1", "cannot be negative"),
    ],
)
def test_a_bad_item_is_refused_naming_it(raw: str, says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        load_settings({"ACTIVITY_POLICY": f"*.block_per_day=900,{raw}", "SECRET_KEY": "k"})

    assert f"item 2 ({raw!r})" in str(refused.value)
    assert says in str(refused.value)


# --- the defaults against a robot and a person --------------------------------------------


def run(gaps: list[float], policy: ActionPolicy = P) -> list[Decision]:
    """Decisions for one session whose look-ups come with these gaps, counted as the
    counters would (per minute, hour and day, and the latest times)."""
    times: list[float] = []
    decisions = []
    at = T
    for gap in gaps:
        at += gap
        times.append(at)
        within = [sum(1 for t in times if t > at - w) for w in (60, 3600, 86400)]
        facts = Facts(
            account=Counts(*within),
            session=Counts(*within),
            subjects_hour=within[1],
            recent=tuple(times[-(policy.regular_intervals + 1) :]),
        )
        now = dt.datetime.fromtimestamp(at, dt.UTC)
        decisions.append(decide(facts, policy, now).decision)
        if decisions[-1] is Decision.BLOCK:
            break
    return decisions


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from(["even", "jitter", "exponential"]))
def test_a_robot_at_two_per_second_is_blocked_within_forty_one_look_ups(
    seed: int, style: str
) -> None:
    rng = random.Random(seed)
    gap = {
        "even": lambda: 0.5,
        "jitter": lambda: rng.uniform(0.4, 0.6),
        "exponential": lambda: rng.expovariate(2.0),
    }[style]

    decisions = run([gap() for _ in range(200)])

    assert decisions[-1] is Decision.BLOCK and len(decisions) <= 41


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.integers(20, 100))
def test_a_person_at_up_to_a_hundred_an_hour_is_never_blocked_nor_asked(
    seed: int, per_hour: int
) -> None:
    rng = random.Random(seed)

    decisions = run([rng.expovariate(per_hour / 3600) for _ in range(per_hour * 3)])

    assert set(decisions) == {Decision.ALLOW}
