"""The incident's second door, replayed: robots on taken-over accounts, professionals at
work, and a password-spray wave, against the activity guard and the sign-in risk rules.

Everything runs in process against a real database and a real Redis (as a portal using
breachguard's Python API would), on a simulated clock: the reports carry their `at`, so a
working morning is played in minutes. The same code paths answer POST /api/v1/activity and
POST /api/v1/hook/login (bench/activity_latency.py measures the HTTP answer's latency).

The cast (seeded, made up: addresses under example domains, documentation networks):
  * professionals (1,980 by default) at work for --hours: sessions of look-ups with human
    spacing (a few tens an hour, log-normal gaps, now and then a quick run while a queue
    waits at the counter), from their office or their phone's network, both known; a few
    (--new-network-share) work one session from a network they never used, after signing
    in there with their password and authenticator app;
  * 19 accounts taken over (their owners are away): each signed in with its leaked
    password from one of three attacker addresses, then a robot chaining look-ups at 2 per
    second with little jitter, signing in again when its session is refused;
  * a password-spray wave: one wrong password tried on --spray accounts from 25 networks.

The portal obeys the guard: on `block` it ends the session; on `step_up` it asks for the
second factor (a professional passes it with their app; a robot cannot, and its session
ends, so it signs in again).

Printed per attacked account: the look-ups served before it was stopped (target <= 100,
against about 27,000 in the incident), how it was stopped, the time from the attack's first
look-up to the first alert; among the professionals: false blocks (target 0) and step-ups
(target <= 1 %); for the spray: the attempts before its alert and the accounts that must
now use a second factor.

    .venv/bin/python bench/robot_drill.py                       # SQLite + Redis
    .venv/bin/python bench/robot_drill.py --db postgres
    .venv/bin/python bench/robot_drill.py --professionals 100 --robots 3 --spray 40 --json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import heapq
import itertools
import json
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyotp
import redis
from _common import BENCH_KEY, bench_db, table, verdict, workdir
from sqlalchemy import func, select, text

from auth import accounts, audit
from auth.activity.guard import ActivityReport, Guard
from auth.activity.policy import Decision
from auth.config import Argon2Params, load_settings
from auth.mfa import factors
from auth.models import Account, Alert, AlertKind
from auth.services import Services, build
from auth.signin.flow import SignIn

ROBOTS_PER_SECOND = 2.0
SERVED_TARGET = 100
STEP_UP_TARGET = 0.01
ATTACKERS = ("198.51.100.23", "198.51.100.181", "203.0.113.66")
SPRAY_ADDRESSES = [f"198.18.{i}.7" for i in range(25)]  # 25 networks: a botnet, not one office
PASSWORD = "Bench-Only-Passw0rd!"
SPRAYED = "Printemps2026!"
ACTION = "patient_lookup"
CHEAP = Argon2Params(time_cost=1, memory_cost=1024, parallelism=1)


# --- the cast ---------------------------------------------------------------------------------


@dataclass
class Person:
    number: int
    email: str
    office: str  # an address in the office's network
    phone: str  # an address in the phone carrier's network
    account_id: int = 0
    secret: str = ""  # TOTP


@dataclass
class Tally:
    lookups: int = 0
    new_network_sign_ins: int = 0  # professionals signing in from a network new to them
    failed_second_steps: int = 0  # a second step a professional gave and was refused
    stepped_up_people: set[int] = field(default_factory=set)
    blocked_people: set[int] = field(default_factory=set)


@dataclass
class RobotTally:
    served: int = 0
    sessions: int = 0
    stopped_by: str = ""  # "block: reasons", or "step_up: reasons" when it never got further
    blocked: bool = False
    first_lookup_at: dt.datetime | None = None
    stopped_at: dt.datetime | None = None

    @property
    def seconds_to_stop(self) -> float | None:
        if self.first_lookup_at is None or self.stopped_at is None:
            return None
        return (self.stopped_at - self.first_lookup_at).total_seconds()


def email_of(n: int) -> str:
    return f"pro{n:05d}@sante.example.org"


def office_of(n: int) -> str:
    # 10.x.y.0/24 networks: one per group of 20 colleagues (a practice, a pharmacy)
    group = n // 20
    return f"10.{group // 250}.{group % 250}.{10 + n % 20}"


def phone_of(n: int) -> str:
    return f"100.64.{n % 250}.{(n // 250) % 250 + 1}"  # a carrier's pool, /24 per 250 people


def professional(
    person: Person, rng: random.Random, start: dt.datetime, hours: float, new_network: bool
) -> Iterator[tuple[dt.datetime, str, str]]:
    """(time, session, address) of each look-up of a working morning, in order; a session
    from a network the person never used is marked by an address outside both networks."""
    t = start + dt.timedelta(minutes=rng.uniform(0, 45))
    end = start + dt.timedelta(hours=hours)
    odd_session = rng.randrange(3) if new_network else -1
    for s in itertools.count():
        if t >= end:
            return
        if s == odd_session:
            address = f"172.16.{person.number % 250}.{rng.randrange(2, 250)}"  # a hotel's wifi
        else:
            address = person.office if rng.random() < 0.8 else person.phone
        session = f"pro-{person.number}-{s}-{rng.getrandbits(32):08x}"
        for _ in range(rng.randint(5, 40)):
            yield t, session, address
            if rng.random() < 0.05:  # a queue at the counter: quick look-ups for a while
                gap = rng.uniform(12, 40)
            else:
                gap = min(900.0, rng.lognormvariate(math.log(90), 0.8))
            t += dt.timedelta(seconds=max(3.0, gap))
            if t >= end:
                return
        t += dt.timedelta(minutes=rng.uniform(10, 60))  # between two sessions


# --- the run ----------------------------------------------------------------------------------


def setup(services: Services, n: int, rng: random.Random, now: dt.datetime) -> list[Person]:
    people = [Person(i, email_of(i), office_of(i), phone_of(i)) for i in range(n)]
    actor = audit.Actor.cli("robot-drill")
    with services.db.session() as s:
        for p in people:
            account = accounts.create(
                s,
                email=p.email,
                name=f"Pro {p.number}",
                password=PASSWORD,
                hasher=services.hasher,
                actor=actor,
                now=now,
            )
            s.flush()
            p.account_id = account.id
    return people


def enroll(services: Services, person: Person, now: dt.datetime) -> None:
    with services.db.session() as s:
        account = s.get(Account, person.account_id)
        assert account is not None
        pending = factors.start_totp(
            s, account=account, name="Phone", keys=services.keys, issuer="bench", now=now
        )
        factors.confirm_totp(
            s,
            account=account,
            factor_id=pending.factor_id,
            code=pyotp.TOTP(pending.secret).at(now),
            keys=services.keys,
            window=1,
            actor=audit.Actor.cli("robot-drill"),
            now=now,
        )
    person.secret = pending.secret


def know_networks(services: Services, people: list[Person], since: dt.datetime) -> None:
    """Months of work before the drill: each person's office and phone networks are known."""
    from auth.activity.networks import network_of

    rows = [
        {"a": p.account_id, "n": network_of(ip), "t": since}
        for p in people
        for ip in (p.office, p.phone)
    ]
    with services.db.session() as s:
        s.execute(
            text(
                "INSERT INTO account_networks (account_id, network, first_at, last_at) "
                "VALUES (:a, :n, :t, :t)"
            ),
            rows,
        )


def code_at(person: Person, at: dt.datetime, used: dict[int, int]) -> str:
    """The app's code at `at`, never one this factor already used (a later step's)."""
    totp = pyotp.TOTP(person.secret)
    step = int(at.timestamp()) // 30
    if used.get(person.account_id, -1) >= step:
        step = used[person.account_id] + 1
    used[person.account_id] = step
    return totp.at(step * 30)


@dataclass
class Outcome:
    robots: list[tuple[str, RobotTally]]
    first_alert_after: float | None
    pros: Tally
    professionals: int
    spray_attempts_to_alert: int | None
    spray_mfa_accounts: int
    spray_banned: int
    seconds: float
    events: int


def play(
    services: Services,
    people: list[Person],
    victims: list[Person],
    *,
    hours: float,
    new_network_share: float,
    spray: int,
    seed: int,
    start: dt.datetime,
) -> Outcome:
    rng = random.Random(seed)
    guard = Guard(services)
    flow = SignIn(services, sleep=lambda _s: None)
    used_codes: dict[int, int] = {}
    pros = Tally()
    robots = {v.email: RobotTally() for v in victims}
    attack_start = start + dt.timedelta(hours=min(1.0, hours / 3))
    spray_start = start + dt.timedelta(hours=min(2.0, 2 * hours / 3))

    # One queue of what happens next, in time order: (time, order, kind, state).
    queue: list[tuple[dt.datetime, int, str, Any]] = []
    order = itertools.count()
    odd = set(rng.sample(range(len(people)), round(new_network_share * len(people))))
    for p in people:
        if p in victims:
            continue  # their owners are away: only the robots use these accounts
        stream = professional(p, random.Random(rng.getrandbits(64)), start, hours, p.number in odd)
        first = next(stream, None)
        if first is not None:
            heapq.heappush(queue, (first[0], next(order), "pro", (p, stream, first)))
    for k, v in enumerate(victims):
        ip = ATTACKERS[k % len(ATTACKERS)]
        at = attack_start + dt.timedelta(seconds=k * 7)
        heapq.heappush(queue, (at, next(order), "robot_sign_in", (v, ip, 0)))
    targets = rng.sample([p for p in people if p not in victims], min(spray, len(people)))
    for k, p in enumerate(targets):
        at = spray_start + dt.timedelta(seconds=k * 600 / max(1, len(targets)))
        heapq.heappush(queue, (at, next(order), "spray", (p, SPRAY_ADDRESSES[k % 25], k + 1)))

    spray_alert_after: int | None = None
    spray_banned = 0  # spray attempts refused at a banned network, before any hashing
    signed_in: set[tuple[int, str]] = set()  # (person, network) a pro signed in from today
    events = 0
    began = time.perf_counter()
    end = start + dt.timedelta(hours=hours)
    while queue:
        at, _, kind, state = heapq.heappop(queue)
        if at > end and kind != "robot":
            continue
        events += 1
        if kind == "pro":
            person, stream, (t, session, ip) = state
            if ip.startswith("172.16.") and (person.number, ip) not in signed_in:
                # a network the person never used: they sign in there, password then app
                answer = flow.login(person.email, PASSWORD, ip=ip, now=t)
                if answer.decision == "mfa_required" and answer.continuation:
                    answer = flow.second_step(
                        answer.continuation, code=code_at(person, t, used_codes), ip=ip, now=t
                    )
                pros.new_network_sign_ins += 1
                pros.failed_second_steps += answer.decision != "allow"
                signed_in.add((person.number, ip))
            ruling = guard.report(
                ActivityReport(person.email, session, ip, ACTION, f"s{rng.getrandbits(40):x}", t),
                now=t,
            )
            pros.lookups += 1
            if ruling.decision is Decision.BLOCK:
                pros.blocked_people.add(person.number)
                continue  # the portal ends the session; the person calls the help desk
            if ruling.decision is Decision.STEP_UP:
                pros.stepped_up_people.add(person.number)
                if ruling.continuation:
                    proof = flow.second_step(
                        ruling.continuation, code=code_at(person, t, used_codes), ip=ip, now=t
                    )
                    pros.failed_second_steps += proof.decision != "allow"
            nxt = next(stream, None)
            if nxt is not None:
                heapq.heappush(queue, (nxt[0], next(order), "pro", (person, stream, nxt)))
        elif kind == "robot_sign_in":
            victim, ip, attempt = state
            tally = robots[victim.email]
            answer = flow.login(victim.email, PASSWORD, ip=ip, now=at)
            if answer.decision != "allow":
                tally.stopped_by = tally.stopped_by or f"sign-in: {answer.decision}"
                continue  # a second factor or a reset stands in the way: the robot gives up
            tally.sessions += 1
            session = f"robot-{victim.number}-{attempt}"
            heapq.heappush(queue, (at, next(order), "robot", (victim, ip, session, attempt)))
        elif kind == "robot":
            victim, ip, session, attempt = state
            tally = robots[victim.email]
            tally.first_lookup_at = tally.first_lookup_at or at
            ruling = guard.report(
                ActivityReport(victim.email, session, ip, ACTION, f"r{rng.getrandbits(40):x}", at),
                now=at,
            )
            gap = dt.timedelta(seconds=rng.uniform(0.45, 0.55) / (ROBOTS_PER_SECOND / 2))
            if ruling.decision is Decision.ALLOW:
                tally.served += 1
                if tally.served >= 10 * SERVED_TARGET:  # never stopped: say so, and end
                    tally.stopped_by = "never stopped"
                    continue
                heapq.heappush(queue, (at + gap, next(order), "robot", state))
                continue
            why = f"{ruling.decision.value}: {', '.join(ruling.reasons)}"
            tally.stopped_at = tally.stopped_at or at
            if ruling.decision is Decision.BLOCK:
                tally.blocked, tally.stopped_by = True, why
                continue
            tally.stopped_by = why  # step_up: no second factor to give; sign in again later
            if attempt < 20:
                later = at + dt.timedelta(seconds=60)
                heapq.heappush(
                    queue, (later, next(order), "robot_sign_in", (victim, ip, attempt + 1))
                )
        elif kind == "spray":
            person, ip, k = state
            answer = flow.login(person.email, SPRAYED, ip=ip, now=at)
            spray_banned += "ip_banned" in answer.verdict.reasons
            if spray_alert_after is None and _alerts(services, AlertKind.PASSWORD_SPRAY):
                spray_alert_after = k
    seconds = time.perf_counter() - began

    victim_ids = {v.account_id for v in victims}
    with services.db.session() as s:
        alerts = s.execute(
            select(Alert.first_at, Alert.accounts).where(Alert.first_at >= attack_start)
        ).all()
        mfa = s.execute(
            select(func.count()).where(
                Account.id.in_([p.account_id for p in targets]), Account.mfa_required.is_(True)
            )
        ).scalar_one()
    first_alert = min((a for a, ids in alerts if victim_ids & set(ids or ())), default=None)
    first_after = (first_alert - attack_start).total_seconds() if first_alert else None
    return Outcome(
        sorted(robots.items()),
        first_after,
        pros,
        len(people) - len(victims),
        spray_alert_after,
        int(mfa),
        spray_banned,
        seconds,
        events,
    )


def _alerts(services: Services, kind: AlertKind) -> int:
    with services.db.session() as s:
        return int(s.execute(select(func.count()).where(Alert.kind == kind.value)).scalar_one())


# --- the report -------------------------------------------------------------------------------


def drill(args: argparse.Namespace, work: Path) -> Outcome:
    with bench_db(args.db, work, "robots") as db:
        instance = work / "instance"
        instance.mkdir(exist_ok=True)
        r = redis.Redis.from_url(args.redis) if args.redis else None
        prefix = f"robot-drill-{int(time.time() * 1000)}"
        env = {
            "BREACHGUARD_INSTANCE": str(instance),
            "DATABASE_URL": db.url,
            "REDIS_URL": args.redis or "",
            "RATELIMIT_KEY_PREFIX": prefix,
            "MFA_ENCRYPTION_KEYS": BENCH_KEY,
            "SECRET_KEY": "robot-drill",
            "LOG_LEVEL": "WARNING",
        }
        settings = dataclasses.replace(load_settings(env), argon2=CHEAP)
        services = build(settings)
        try:
            rng = random.Random(args.seed)
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            people = setup(services, args.professionals + args.robots, rng, now)
            victims = people[-args.robots :] if args.robots else []
            for p in people[: args.professionals]:
                enroll(services, p, now)
            know_networks(services, people, now - dt.timedelta(days=90))
            return play(
                services,
                people,
                victims,
                hours=args.hours,
                new_network_share=args.new_network_share,
                spray=args.spray,
                seed=args.seed,
                start=now + dt.timedelta(minutes=5),
            )
        finally:
            services.close()
            for key in r.scan_iter(f"{prefix}:*") if r is not None else ():
                r.delete(key)


def summary(o: Outcome) -> dict[str, Any]:
    served = [t.served for _, t in o.robots]
    return {
        "attacked_accounts": len(o.robots),
        "served_max": max(served, default=0),
        "served_total": sum(served),
        "blocked": sum(t.blocked for _, t in o.robots),
        "first_alert_after_s": o.first_alert_after,
        "professionals": o.professionals,
        "professional_lookups": o.pros.lookups,
        "false_blocks": len(o.pros.blocked_people),
        "step_ups": len(o.pros.stepped_up_people),
        "step_up_share": len(o.pros.stepped_up_people) / max(1, o.professionals),
        "new_network_sign_ins": o.pros.new_network_sign_ins,
        "failed_second_steps": o.pros.failed_second_steps,
        "spray_attempts_to_alert": o.spray_attempts_to_alert,
        "spray_accounts_needing_mfa": o.spray_mfa_accounts,
        "spray_refused_at_a_ban": o.spray_banned,
        "events": o.events,
        "seconds": round(o.seconds, 1),
        "robots": {
            email: {
                "served": t.served,
                "sessions": t.sessions,
                "stopped_by": t.stopped_by,
                "blocked": t.blocked,
                "seconds_to_stop": t.seconds_to_stop,
            }
            for email, t in o.robots
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    ap.add_argument(
        "--no-redis",
        dest="redis",
        action="store_const",
        const=None,
        help="counters in the database and in memory, as without REDIS_URL",
    )
    ap.add_argument("--professionals", type=int, default=1980)
    ap.add_argument("--robots", type=int, default=19)
    ap.add_argument("--spray", type=int, default=500, help="accounts the spray wave tries")
    ap.add_argument("--hours", type=float, default=3.0, help="the simulated morning's length")
    ap.add_argument("--new-network-share", type=float, default=0.005)
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--json", action="store_true", help="the outcome as JSON, nothing else")
    args = ap.parse_args()

    with workdir() as work:
        r = summary(drill(args, work))
    if args.json:
        print(json.dumps(r))
        return
    where = f"{args.db}, {'Redis' if args.redis else 'no Redis'}"
    print(f"\n{r['events']:,} events in {r['seconds']} s ({where})")
    rows = [
        (
            email,
            t["served"],
            t["sessions"],
            t["stopped_by"] or "-",
            "-" if t["seconds_to_stop"] is None else f"{t['seconds_to_stop']:.1f} s",
        )
        for email, t in r["robots"].items()
    ]
    print(table(["attacked account", "look-ups served", "sessions", "stopped by", "after"], rows))
    ok = (
        r["served_max"] <= SERVED_TARGET
        and r["false_blocks"] == 0
        and r["step_up_share"] <= STEP_UP_TARGET
    )
    first = r["first_alert_after_s"]
    print()
    print(
        table(
            [
                "served max",
                "served total",
                "1st alert",
                "false blocks",
                "pro step-ups",
                "spray alert at",
                "spray mfa",
                "spray banned",
                "targets",
            ],
            [
                (
                    r["served_max"],
                    r["served_total"],
                    "-" if first is None else f"{first:.1f} s",
                    r["false_blocks"],
                    f"{r['step_ups']} of {r['professionals']} ({r['step_up_share']:.2%})",
                    r["spray_attempts_to_alert"] or "-",
                    r["spray_accounts_needing_mfa"],
                    r["spray_refused_at_a_ban"],
                    verdict(ok),
                )
            ],
        )
    )
    print(
        f"targets: <= {SERVED_TARGET} look-ups served per attacked account (the incident: about "
        "27,000), 0 false blocks, step-ups <= 1 % of the professionals. Spray: the attempt "
        "that raised its alert, the accounts it tried that must now use a second factor, and "
        "the attempts refused at a network banned for stuffing (never hashed)"
    )


if __name__ == "__main__":
    main()
