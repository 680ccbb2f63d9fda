"""Reset reasons as codes, worded in the reader's language

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

A forced reset kept its reason as one English sentence (the sign-in's "password found in
a breach corpus at sign-in"), which the French e-mail then quoted. Now accounts, resets
and notices keep a code (auth/models/reset.py: ResetReason) that pages and e-mails word
in the reader's language; the text column keeps only a person's own words (an operator's
--reason), quoted as such. Existing rows get the code their text or actor implies.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGN_IN = "password found in a breach corpus at sign-in"  # what 0010's code wrote

_ACCOUNTS = sa.table(
    "accounts",
    sa.column("status", sa.String),
    sa.column("reset_reason", sa.Text),
    sa.column("reset_reason_code", sa.String),
)
_RESETS = sa.table(
    "resets",
    sa.column("actor", sa.String),
    sa.column("reason", sa.Text),
    sa.column("reason_code", sa.String),
)
_NOTICES = sa.table("notices", sa.column("reason", sa.Text), sa.column("reason_code", sa.String))


def _code(reason: sa.ColumnClause[str]) -> sa.Case[str]:
    """The code a stored reason text implies: the sign-in's sentence, nothing, or a note."""
    return sa.case(
        (reason == SIGN_IN, "password_breached"),
        (sa.or_(reason.is_(None), reason == ""), "possible_exposure"),
        else_="security_team",
    )


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("reset_reason_code", sa.String(length=32), nullable=True))
    for name in ("resets", "notices"):
        with op.batch_alter_table(name) as batch:
            batch.add_column(
                sa.Column(
                    "reason_code",
                    sa.String(length=32),
                    server_default="possible_exposure",
                    nullable=False,
                )
            )
    accounts, resets, notices = _ACCOUNTS.c, _RESETS.c, _NOTICES.c
    op.execute(
        _ACCOUNTS.update()
        .where(accounts.status == "reset_required")
        .values(reset_reason_code=_code(accounts.reset_reason))
    )
    op.execute(
        _RESETS.update().values(
            reason_code=sa.case(
                (resets.actor == "policy:login", "password_breached"), else_=_code(resets.reason)
            )
        )
    )
    op.execute(_NOTICES.update().values(reason_code=_code(notices.reason)))
    op.execute(_ACCOUNTS.update().where(accounts.reset_reason == SIGN_IN).values(reset_reason=None))
    for table in (_RESETS, _NOTICES):
        op.execute(
            table.update().where(table.c.reason_code == "password_breached").values(reason="")
        )


def downgrade() -> None:
    accounts = _ACCOUNTS.c
    op.execute(
        _ACCOUNTS.update()
        .where(accounts.reset_reason_code == "password_breached")
        .values(reset_reason=SIGN_IN)
    )
    for name, table in (("resets", _RESETS), ("notices", _NOTICES)):
        op.execute(
            table.update().where(table.c.reason_code == "password_breached").values(reason=SIGN_IN)
        )
        with op.batch_alter_table(name) as batch:
            batch.drop_column("reason_code")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("reset_reason_code")
