"""auth.prepared: Core statements on the DBAPI cursor store and match values as SQLAlchemy does."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, select, update

from auth import accounts, audit
from auth.models import Account, table
from auth.prepared import Prepared
from auth.services import Services

A = table(Account)
_TOUCH = Prepared(
    update(A)
    .where(A.c.id == bindparam("account"), A.c.updated_at < bindparam("at"))
    .values(updated_at=bindparam("at"), mfa_required=bindparam("required"))
    .returning(A.c.id, A.c.email)
)
_BY_EMAIL = Prepared(select(A.c.id, A.c.mfa_required).where(A.c.email == bindparam("email")))
# literal values become anonymous parameters, which need their bind processors too
_RESET = Prepared(update(A).where(A.c.id == bindparam("account")).values(mfa_required=False))


def test_prepared_statements_bind_like_sqlalchemy(registry: Services, now: dt.datetime) -> None:
    with registry.db.session() as session:
        account = accounts.create(
            session,
            email="ana@example.org",
            name="Ana",
            hasher=registry.hasher,
            actor=audit.Actor.cli("tester"),
            now=now,
        )
    a = account.id
    later = now + dt.timedelta(microseconds=1)
    with registry.db.engine.begin() as conn:
        # the stored datetime compares with a bound one: the text formats are the same
        assert _TOUCH.rows(conn, {"account": a, "at": now, "required": True}) == []
        assert _TOUCH.rows(conn, {"account": a, "at": later, "required": True}) == [
            (a, "ana@example.org")
        ]
        assert _TOUCH.rowcount(conn, {"account": a, "at": later, "required": False}) == 0
        ((account_id, required),) = _BY_EMAIL.rows(conn, {"email": "ana@example.org"})
        assert (account_id, bool(required)) == (a, True)
        assert _RESET.rowcount(conn, {"account": a}) == 1
        assert bool(_BY_EMAIL.rows(conn, {"email": "ana@example.org"})[0][1]) is False
    with registry.db.session() as session:  # read back through the ORM
        row = session.get(Account, a)
        assert row is not None and (row.updated_at, row.mfa_required) == (later, False)
