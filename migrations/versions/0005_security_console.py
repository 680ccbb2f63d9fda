"""security console: monitoring state, finding actions, coverage history, admins

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Continuous monitoring keeps its cursors in `monitor_state` and marks each breach import
it has checked (`breaches.checked_at`); findings record the one action taken on them
(policy table or console); `coverage_daily` keeps second-factor coverage per day;
`accounts.admin` opens the console; audit events get an index on their time.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "monitor_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_monitor_state")),
    )
    op.create_table(
        "coverage_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("none", sa.Integer(), nullable=False),
        sa.Column("totp", sa.Integer(), nullable=False),
        sa.Column("webauthn", sa.Integer(), nullable=False),
        sa.Column("both", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_coverage_daily")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("admin", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("breaches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("action", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("acted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("acted_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_column("note")
        batch_op.drop_column("acted_by")
        batch_op.drop_column("acted_at")
        batch_op.drop_column("action")
    with op.batch_alter_table("breaches", schema=None) as batch_op:
        batch_op.drop_column("checked_at")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("admin")
    op.drop_table("coverage_daily")
    op.drop_table("monitor_state")
