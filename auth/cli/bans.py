"""Commands for the login flow: `breachguard ban add/remove/list`."""

from __future__ import annotations

import datetime as dt
import json
import re

import click

from auth.cli.common import actor, handle_errors, services
from auth.errors import InvalidInput
from auth.models import utcnow
from auth.signin import bans

_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(raw: str) -> dt.timedelta | None:
    """`30m`, `12h`, `7d`; `forever` (or `0`) for a ban that stays until removed."""
    if raw.strip().lower() in ("forever", "0"):
        return None
    match = _DURATION.match(raw.strip().lower())
    if not match:
        raise InvalidInput(f"--for: {raw!r} is not a duration like 30m, 12h, 7d or forever")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@click.group("ban")
def ban() -> None:
    """Ban client addresses or networks from signing in (every instance, at once)."""


@ban.command("add")
@click.argument("network")
@click.option("--for", "length", default="24h", show_default=True, help="30m, 12h, 7d, forever")
@click.option("--reason", default="", help="Why (kept in the audit trail).")
@click.pass_context
def ban_add(ctx: click.Context, network: str, length: str, reason: str) -> None:
    registry = services(ctx)
    now = utcnow()
    with handle_errors(), registry.db.session() as session:
        duration = parse_duration(length)
        added = bans.add(
            session,
            network,
            reason=reason,
            expires_at=now + duration if duration else None,
            actor=actor(),
            now=now,
        )
        until = f"until {added.expires_at:%Y-%m-%d %H:%M}Z" if added.expires_at else "until removed"
        click.echo(f"banned {added.network} {until}")


@ban.command("remove")
@click.argument("network")
@click.pass_context
def ban_remove(ctx: click.Context, network: str) -> None:
    registry = services(ctx)
    with handle_errors(), registry.db.session() as session:
        bans.remove(session, network, actor=actor(), now=utcnow())
    click.echo(f"ban lifted: {bans.parse_network(network)}")


@ban.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def ban_list(ctx: click.Context, as_json: bool) -> None:
    """Active bans, automatic ones included."""
    registry = services(ctx)
    with registry.db.session() as session:
        rows = bans.active(session, now=utcnow())
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "network": r.network,
                        "reason": r.reason,
                        "automatic": r.automatic,
                        "created_by": r.created_by,
                        "created_at": r.created_at.isoformat(),
                        "expires_at": r.expires_at.isoformat() if r.expires_at else None,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        click.echo("no active bans")
    for r in rows:
        until = f"{r.expires_at:%Y-%m-%d %H:%M}Z" if r.expires_at else "removed by hand"
        kind = "auto" if r.automatic else "manual"
        click.echo(f"{r.network:20} {kind:6} until {until:17}  {r.reason}")
