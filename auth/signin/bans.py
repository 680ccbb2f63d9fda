"""IP bans, by hand (`breachguard ban add/remove/list`) or automatic: an address that sends
too many wrong passwords within a window is banned for a while.

Bans live in the database, so every instance enforces the same ones at once; the table
stays small (active bans), so each sign-in reads it whole and matches networks here.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, case, delete, func, literal, or_, select, update
from sqlalchemy.orm import Session

from auth import audit
from auth.db import dialect_insert
from auth.errors import InvalidInput, NotFound, one_line
from auth.models import IpBan, IpFailure, UTCDateTime, table

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(raw: str) -> Network:
    """An address or a CIDR network; host bits are ignored (10.0.0.7/8 is 10.0.0.0/8)."""
    try:
        return ipaddress.ip_network(raw.strip(), strict=False)
    except ValueError:
        raise InvalidInput(f"network: {raw!r} is not an IP address or CIDR network") from None


def parse_ip(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        raise InvalidInput(f"ip: {raw!r} is not an IP address") from None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:1.2.3.4 is 1.2.3.4
    return mapped or address


_B = table(IpBan)
_LIVE = (
    _B.c.removed_at.is_(None),
    or_(_B.c.expires_at.is_(None), _B.c.expires_at > bindparam("now")),
)
# The active bans' networks as one space-separated value, for a statement that reads them
# together with other facts (the sign-in's); parse it with networks_of().
ACTIVE_NETWORKS = select(func.aggregate_strings(_B.c.network, " ")).where(*_LIVE).scalar_subquery()


def networks_of(listed: str | None) -> list[str]:
    return listed.split() if listed else []


def banned_by(ip: str, networks: Iterable[str]) -> bool:
    """Whether the address lies in one of the active bans' networks."""
    try:
        address = parse_ip(ip)
    except InvalidInput:
        return False
    return any(address in ipaddress.ip_network(network) for network in networks)


def add(
    session: Session,
    raw: str,
    *,
    reason: str,
    expires_at: dt.datetime | None,
    actor: audit.Actor,
    now: dt.datetime,
    automatic: bool = False,
) -> IpBan:
    network = parse_network(raw)
    ban = IpBan(
        network=str(network),
        reason=one_line(reason, "reason"),
        automatic=automatic,
        created_by=str(actor),
        created_at=now,
        expires_at=expires_at,
    )
    session.add(ban)
    session.flush()
    details = {"network": ban.network, "reason": ban.reason, "automatic": automatic}
    details["expires_at"] = expires_at.isoformat() if expires_at else None
    audit.append(
        session, [audit.Event(actor, audit.Action.IP_BANNED, f"ip:{ban.network}", details)], now=now
    )
    return ban


def remove(session: Session, raw: str, *, actor: audit.Actor, now: dt.datetime) -> int:
    """Lift every active ban on exactly this network (or address); returns how many."""
    network = str(parse_network(raw))
    lifted = session.execute(
        update(_B)
        .where(_B.c.network == network, _B.c.removed_at.is_(None))
        .values(removed_at=now)
        .returning(_B.c.id)
    ).all()
    if not lifted:
        raise NotFound(f"no active ban on {network}")
    audit.append(
        session,
        [audit.Event(actor, audit.Action.IP_UNBANNED, f"ip:{network}", {"bans": len(lifted)})],
        now=now,
    )
    return len(lifted)


@dataclass(frozen=True)
class BanRow:
    network: str
    reason: str
    automatic: bool
    created_by: str
    created_at: dt.datetime
    expires_at: dt.datetime | None


def active(session: Session, *, now: dt.datetime) -> Sequence[BanRow]:
    rows = session.execute(
        select(IpBan)
        .where(IpBan.removed_at.is_(None), or_(IpBan.expires_at.is_(None), IpBan.expires_at > now))
        .order_by(IpBan.created_at)
    ).scalars()
    return [
        BanRow(b.network, b.reason, b.automatic, b.created_by, b.created_at, b.expires_at)
        for b in rows
    ]


@dataclass(frozen=True)
class AutoBan:
    after: int  # wrong passwords from one address...
    window: dt.timedelta  # ...within this long...
    length: dt.timedelta  # ...ban it this long (zero: never)


def record_failure(
    session: Session, ip: str, *, policy: AutoBan, actor: audit.Actor, now: dt.datetime
) -> bool:
    """Count a wrong password from `ip`; ban the address when it crosses the line.

    Returns True when this failure set a ban.
    """
    if not policy.length or policy.after <= 0:
        return False
    try:
        address = str(parse_ip(ip))
    except InvalidInput:
        return False
    t = table(IpFailure)
    fresh = t.c.window_start <= now - policy.window
    insert = dialect_insert(session)(t).values(ip=address, failures=1, window_start=now)
    upsert = insert.on_conflict_do_update(
        index_elements=[t.c.ip],
        set_={
            "failures": case((fresh, 1), else_=t.c.failures + 1),
            "window_start": case((fresh, literal(now, UTCDateTime)), else_=t.c.window_start),
        },
    ).returning(t.c.failures)
    failures = session.execute(upsert).scalar_one()
    if failures < policy.after:
        return False
    session.execute(update(t).where(t.c.ip == address).values(failures=0, window_start=now))
    add(
        session,
        address,
        reason=f"{failures} wrong passwords within {int(policy.window.total_seconds())} s",
        expires_at=now + policy.length,
        actor=actor,
        now=now,
        automatic=True,
    )
    return True


def purge_failures(conn: Session | Connection, *, now: dt.datetime) -> int:
    """Forget per-address counts older than a day (every window is shorter than that)."""
    t = table(IpFailure)
    result = conn.execute(delete(t).where(t.c.window_start < now - dt.timedelta(days=1)))
    return int(result.rowcount)  # type: ignore[attr-defined]
