"""login flow: lockout, bans, continuations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

The login flow: consecutive wrong passwords on accounts (backoff, lock) and the start of
an MFA grace period; IP bans and per-address failure counts (automatic bans); hashed,
single-use continuation tokens between the password and the second factor.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "ip_bans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=49), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_bans")),
    )
    with op.batch_alter_table("ip_bans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ip_bans_network"), ["network"], unique=False)

    op.create_table(
        "ip_failures",
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ip", name=op.f("pk_ip_failures")),
    )
    op.create_table(
        "login_continuations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("challenge_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_login_continuations_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_continuations")),
    )
    with op.batch_alter_table("login_continuations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_continuations_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_login_continuations_expires_at"), ["expires_at"], unique=False
        )

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("last_failed_login_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("mfa_grace_from", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("mfa_grace_from")
        batch_op.drop_column("last_failed_login_at")
        batch_op.drop_column("failed_logins")

    with op.batch_alter_table("login_continuations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_continuations_expires_at"))
        batch_op.drop_index(batch_op.f("ix_login_continuations_account_id"))

    op.drop_table("login_continuations")
    op.drop_table("ip_failures")
    with op.batch_alter_table("ip_bans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ip_bans_network"))

    op.drop_table("ip_bans")
