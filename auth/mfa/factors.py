"""Managing an account's second factors: TOTP enrollment, listing, renaming, removal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from auth import audit
from auth.errors import InvalidInput, NotFound, one_line
from auth.mfa import totp
from auth.mfa.crypto import KeyRing
from auth.models import Account, FactorKind, MfaFactor, table


class FactorRefused(InvalidInput):
    """A change to the factors that policy forbids; the message says why."""


def context(account_id: int) -> str:
    """Associated data binding an encrypted secret to its account."""
    return f"totp:account:{account_id}"


def clean_name(name: str, default: str) -> str:
    name = one_line(name, "name") or default
    if len(name) > 100:
        raise InvalidInput("name: at most 100 characters")
    return name


def active(session: Session, account_id: int, kind: str | None = None) -> Sequence[MfaFactor]:
    query = select(MfaFactor).where(
        MfaFactor.account_id == account_id, MfaFactor.confirmed_at.is_not(None)
    )
    if kind:
        query = query.where(MfaFactor.kind == kind)
    return session.execute(query.order_by(MfaFactor.created_at, MfaFactor.id)).scalars().all()


def kinds(session: Session, account_id: int) -> list[str]:
    return sorted({f.kind for f in active(session, account_id)})


@dataclass(frozen=True)
class PendingTotp:
    factor_id: int
    secret: str
    uri: str


def start_totp(
    session: Session, *, account: Account, name: str, keys: KeyRing, issuer: str, now: dt.datetime
) -> PendingTotp:
    """A new, unconfirmed TOTP factor; it counts only once a code from it is typed."""
    session.execute(
        delete(MfaFactor).where(
            MfaFactor.account_id == account.id,
            MfaFactor.kind == FactorKind.TOTP,
            MfaFactor.confirmed_at.is_(None),
        )
    )
    secret = totp.new_secret()
    factor = MfaFactor(
        account_id=account.id,
        kind=FactorKind.TOTP,
        name=clean_name(name, "Authenticator app"),
        created_at=now,
        secret_enc=keys.encrypt(secret, context=context(account.id)),
    )
    session.add(factor)
    session.flush()
    uri = totp.provisioning_uri(secret, account_name=account.email, issuer=issuer)
    return PendingTotp(factor.id, secret, uri)


def pending_totp(session: Session, *, account_id: int, factor_id: int) -> MfaFactor:
    factor = session.get(MfaFactor, factor_id)
    if (
        factor is None
        or factor.account_id != account_id
        or factor.kind != FactorKind.TOTP
        or factor.confirmed_at is not None
    ):
        raise NotFound("this enrollment has expired; start again")
    return factor


def confirm_totp(
    session: Session,
    *,
    account: Account,
    factor_id: int,
    code: str,
    keys: KeyRing,
    window: int,
    actor: audit.Actor,
    now: dt.datetime,
) -> totp.TotpCheck:
    """Activate a pending TOTP factor when `code` comes from it."""
    factor = pending_totp(session, account_id=account.id, factor_id=factor_id)
    secret = keys.decrypt(factor.secret_enc or "", context=context(account.id))
    result = totp.check(secret, code, now=now.timestamp(), last_step=None, window=window)
    if result.status is totp.TotpStatus.OK:
        factor.confirmed_at = now
        factor.last_step = result.step
        audit.append(
            session,
            [
                audit.Event(
                    actor,
                    audit.Action.MFA_ENROLLED,
                    f"account:{account.id}",
                    {"kind": "totp", "factor": factor.id, "name": factor.name},
                )
            ],
            now=now,
        )
    return result


_T = table(MfaFactor)
_ACTIVE_TOTP = (
    select(_T.c.id, _T.c.secret_enc, _T.c.last_step)
    .where(
        _T.c.account_id == bindparam("account"),
        _T.c.kind == FactorKind.TOTP.value,
        _T.c.confirmed_at.is_not(None),
    )
    .order_by(_T.c.created_at, _T.c.id)
)
# Stores the step only if it is newer than the stored one: of two requests racing with
# one code, only one passes.
_STORE_STEP = (
    update(_T)
    .where(
        _T.c.id == bindparam("factor"),
        or_(_T.c.last_step.is_(None), _T.c.last_step < bindparam("accepted")),
    )
    .values(last_step=bindparam("accepted"), last_used_at=bindparam("used_at"))
)


def verify_totp(
    conn: Connection,
    *,
    account_id: int,
    code: str,
    keys: KeyRing,
    window: int,
    now: dt.datetime,
) -> tuple[totp.TotpCheck, int | None]:
    """Check a code against the account's active TOTP factors; remember the step on success.

    Returns the result and the id of the factor that accepted the code; of two requests
    racing with one code, the one that loses is told REPLAYED.
    """
    best = totp.TotpCheck(totp.TotpStatus.INVALID)
    for factor_id, secret_enc, last_step in conn.execute(_ACTIVE_TOTP, {"account": account_id}):
        secret = keys.decrypt(secret_enc or "", context=context(account_id))
        result = totp.check(secret, code, now=now.timestamp(), last_step=last_step, window=window)
        if result.status is totp.TotpStatus.OK:
            stored = conn.execute(
                _STORE_STEP, {"factor": factor_id, "accepted": result.step, "used_at": now}
            ).rowcount
            if stored == 1:
                return result, factor_id
            result = totp.TotpCheck(totp.TotpStatus.REPLAYED, result.step)  # lost a race
        if result.status is totp.TotpStatus.REPLAYED:
            best = result
    return best, None


def _owned(session: Session, account_id: int, factor_id: int) -> MfaFactor:
    factor = session.get(MfaFactor, factor_id)
    if factor is None or factor.account_id != account_id or factor.confirmed_at is None:
        raise NotFound("no such factor on this account")
    return factor


def rename(
    session: Session,
    *,
    account_id: int,
    factor_id: int,
    name: str,
    actor: audit.Actor,
    now: dt.datetime,
) -> MfaFactor:
    factor = _owned(session, account_id, factor_id)
    old, factor.name = factor.name, clean_name(name, factor.name)
    audit.append(
        session,
        [
            audit.Event(
                actor,
                audit.Action.MFA_RENAMED,
                f"account:{account_id}",
                {"factor": factor_id, "from": old, "to": factor.name},
            )
        ],
        now=now,
    )
    return factor


def remove(
    session: Session,
    *,
    account: Account,
    factor_id: int,
    required_by_policy: bool,
    actor: audit.Actor,
    now: dt.datetime,
) -> None:
    """Remove a factor, unless it is the last one and a second factor is required."""
    factor = _owned(session, account.id, factor_id)
    if len(active(session, account.id)) == 1 and (account.mfa_required or required_by_policy):
        raise FactorRefused(
            "this is your last second factor and your account must keep one: "
            "add another before removing this one"
        )
    session.delete(factor)
    audit.append(
        session,
        [
            audit.Event(
                actor,
                audit.Action.MFA_REMOVED,
                f"account:{account.id}",
                {"factor": factor_id, "kind": factor.kind, "name": factor.name},
            )
        ],
        now=now,
    )


def rotate_keys(session: Session, *, keys: KeyRing, actor: audit.Actor, now: dt.datetime) -> int:
    """Re-encrypt every TOTP secret not under the current key; returns how many."""
    changed = 0
    for factor in session.execute(
        select(MfaFactor).where(
            MfaFactor.kind == FactorKind.TOTP, MfaFactor.secret_enc.is_not(None)
        )
    ).scalars():
        token = factor.secret_enc or ""
        if keys.needs_rotation(token):
            ctx = context(factor.account_id)
            factor.secret_enc = keys.encrypt(keys.decrypt(token, context=ctx), context=ctx)
            changed += 1
    audit.append(
        session,
        [
            audit.Event(
                actor, audit.Action.MFA_KEYS_ROTATED, "mfa_factors", {"re_encrypted": changed}
            )
        ],
        now=now,
    )
    return changed
