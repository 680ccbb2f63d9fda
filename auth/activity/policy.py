"""The activity guard's rules: facts about a reported action in, a verdict out.

Pure: the counters (auth/activity/counters.py) gather the facts, the guard
(auth/activity/guard.py) carries the verdict out. Each action the portal reports (e.g.
`patient_lookup`) has a row of thresholds; an action without a row of its own uses the
`*` row. A limit of 0 is off.

The defaults are set so that a robot chaining look-ups at 2 per second is blocked within
its first few dozen (regular spacing after REGULAR_INTERVALS look-ups, or the per-minute
limit), while a person (tens of look-ups an hour, irregular spacing, a busy hour of 100)
meets no block and seldom a step-up.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

from auth.errors import InvalidInput

MINUTE, HOUR, DAY = 60, 3600, 86400
NETWORK_WINDOW = 600  # a burst across accounts from one network counts over this long
LONGEST_WINDOW = DAY  # nothing is kept longer than this
DEFAULT_ROW = "*"


class Decision(enum.StrEnum):
    ALLOW = "allow"
    STEP_UP = "step_up"
    BLOCK = "block"


class Reason(enum.StrEnum):
    """Short, stable codes the portal and the alerts read."""

    RATE_MINUTE = "rate_minute"
    RATE_HOUR = "rate_hour"
    RATE_DAY = "rate_day"
    DISTINCT_SUBJECTS = "distinct_subjects"
    REGULAR_SPACING = "regular_spacing"
    NEW_NETWORK = "new_network"
    NETWORK_BURST = "network_burst"
    BLOCKED = "blocked"  # the account or the session was blocked earlier


@dataclass(frozen=True)
class ActionPolicy:
    """Thresholds for one action. Counts include the action being reported; "more than
    the limit" trips a rule. Windows: the last minute, hour and day, for the account and
    for the session alike (since the session's second step, when it made one)."""

    step_up_per_minute: int = 20
    block_per_minute: int = 40
    step_up_per_hour: int = 150
    block_per_hour: int = 400
    step_up_per_day: int = 600
    block_per_day: int = 1500
    step_up_subjects_per_hour: int = 150  # distinct subjects for the account
    block_subjects_per_hour: int = 300
    # Machine-regular spacing: the last `regular_intervals` gaps of a session vary less
    # than `regular_cv` (standard deviation over mean) at a pace faster than one look-up
    # every `regular_max_interval` seconds, which a person does not keep up.
    regular_intervals: int = 16
    regular_cv: float = 0.3
    regular_max_interval: float = 5.0
    new_network_step_up: bool = True  # a network the account never used asks for a step-up
    # Distinct accounts working within NETWORK_WINDOW from one network that is new to each
    # of them (a hospital's many people behind its one known address do not count); a
    # session that made its second step is not held to it.
    network_accounts_step_up: int = 10
    network_accounts_block: int = 0


FIELDS = tuple(f.name for f in fields(ActionPolicy))


@dataclass(frozen=True)
class ActivityPolicy:
    """The table: a row per action, and the `*` row for every other action."""

    rows: Mapping[str, ActionPolicy] = field(default_factory=lambda: {DEFAULT_ROW: ActionPolicy()})

    def row(self, action: str) -> ActionPolicy:
        return self.rows.get(action) or self.rows[DEFAULT_ROW]


def parse_policy(raw: str) -> ActivityPolicy:
    """ACTIVITY_POLICY: `action.field=value,...` over the defaults, e.g.
    `patient_lookup.block_per_minute=40,*.step_up_per_hour=150`. A named action's row
    starts from the `*` row (with its overrides), then takes its own."""
    changes: dict[str, dict[str, object]] = {}
    for n, item in enumerate((i.strip() for i in raw.split(",") if i.strip()), 1):
        target, sep, value = (p.strip() for p in item.partition("="))
        action, dot, name = target.rpartition(".")
        if not sep or not dot or not action or name not in FIELDS:
            raise InvalidInput(
                f"ACTIVITY_POLICY item {n} ({item!r}) must be ACTION.FIELD=VALUE with ACTION an "
                f"action name or * and FIELD one of {', '.join(FIELDS)}"
            )
        changes.setdefault(action, {})[name] = _value(n, item, name, value)
    default = replace(ActionPolicy(), **changes.pop(DEFAULT_ROW, {}))  # type: ignore[arg-type]
    rows = {DEFAULT_ROW: default}
    for action, values in changes.items():
        rows[action] = replace(default, **values)  # type: ignore[arg-type]
    return ActivityPolicy(rows)


def _value(n: int, item: str, name: str, raw: str) -> object:
    kind = type(getattr(ActionPolicy(), name))
    try:
        if kind is bool:
            if raw not in ("true", "false"):
                raise ValueError
            return raw == "true"
        value = kind(raw)
    except ValueError:
        raise InvalidInput(
            f"ACTIVITY_POLICY item {n} ({item!r}): {name} takes a {kind.__name__}"
            + (" (true or false)" if kind is bool else "")
        ) from None
    if value < 0:
        raise InvalidInput(f"ACTIVITY_POLICY item {n} ({item!r}): {name} cannot be negative")
    return value


@dataclass(frozen=True)
class Counts:
    minute: int = 0
    hour: int = 0
    day: int = 0


@dataclass(frozen=True)
class Facts:
    """What the counters know once the action is recorded (it is counted in)."""

    account: Counts = Counts()
    session: Counts = Counts()
    subjects_hour: int = 0  # distinct subjects the account touched in the last hour
    recent: tuple[float, ...] = ()  # the session's latest times (epoch seconds), ascending
    network_accounts: int = 0  # distinct accounts new to this network in NETWORK_WINDOW
    new_network: bool = False  # the account never used this network
    stepped_up: bool = False  # the session made a second step: windows count from then
    floor: float = 0.0  # windows start no earlier than this (a step-up, a block)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reasons: tuple[str, ...] = ()
    # For a block or a step-up: when the evidence of the rules that fired begins (epoch
    # seconds), the start of what the account touched under suspicion.
    since: float | None = None


ALLOW = Verdict(Decision.ALLOW)


def decide(facts: Facts, policy: ActionPolicy, now: dt.datetime) -> Verdict:
    """The strongest decision any rule reaches, with every rule that reached it."""
    t = now.timestamp()
    fired: list[tuple[Decision, Reason, float]] = []

    def limit(count: int, step_up: int, block: int, reason: Reason, window: int) -> None:
        start = max(t - window, facts.floor)
        if block and count > block:
            fired.append((Decision.BLOCK, reason, start))
        elif step_up and count > step_up:
            fired.append((Decision.STEP_UP, reason, start))

    p = policy
    for reason, window, step_up, block, pick in (
        (Reason.RATE_MINUTE, MINUTE, p.step_up_per_minute, p.block_per_minute, "minute"),
        (Reason.RATE_HOUR, HOUR, p.step_up_per_hour, p.block_per_hour, "hour"),
        (Reason.RATE_DAY, DAY, p.step_up_per_day, p.block_per_day, "day"),
    ):
        count = max(getattr(facts.account, pick), getattr(facts.session, pick))
        limit(count, step_up, block, reason, window)
    limit(
        facts.subjects_hour,
        p.step_up_subjects_per_hour,
        p.block_subjects_per_hour,
        Reason.DISTINCT_SUBJECTS,
        HOUR,
    )
    regular_since = _regular(facts.recent, p)
    if regular_since is not None:
        fired.append((Decision.BLOCK, Reason.REGULAR_SPACING, regular_since))
    if not facts.stepped_up:
        limit(
            facts.network_accounts,
            p.network_accounts_step_up,
            p.network_accounts_block,
            Reason.NETWORK_BURST,
            NETWORK_WINDOW,
        )
        if facts.new_network and p.new_network_step_up:
            fired.append((Decision.STEP_UP, Reason.NEW_NETWORK, t))
    if not fired:
        return ALLOW
    decision = Decision.BLOCK if any(d is Decision.BLOCK for d, _, _ in fired) else Decision.STEP_UP
    return Verdict(
        decision,
        tuple(r.value for _, r, _ in fired),
        min(start for d, _, start in fired if d is decision),
    )


def _regular(times: tuple[float, ...], policy: ActionPolicy) -> float | None:
    """When the regular run began, if the session's latest gaps are machine-regular."""
    n = policy.regular_intervals
    if n < 2 or len(times) < n + 1:
        return None
    run = times[-(n + 1) :]
    gaps = [b - a for a, b in itertools.pairwise(run)]
    mean = statistics.fmean(gaps)
    if mean > policy.regular_max_interval:
        return None
    if mean <= 0 or statistics.pstdev(gaps) / mean <= policy.regular_cv:
        return run[0]
    return None
