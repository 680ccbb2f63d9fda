"""Drop reset_job_targets: a job sorts its list outside the service's database

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29

A bulk reset on SQLite now sorts its resolved accounts in a private temporary database
(auth/reset/ordering.py), which the operating system removes with the process: staging
them here cost 0.9 s of a 5.7 s reset of 1e5 accounts, and a killed run's rows waited
6 hours. Rows left by a killed run of an earlier version are dropped with the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("reset_job_targets")


def downgrade() -> None:
    op.create_table(
        "reset_job_targets",
        sa.Column("run", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["reset_jobs.id"],
            name=op.f("fk_reset_job_targets_job_id_reset_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run", "account_id", name=op.f("pk_reset_job_targets")),
        sqlite_with_rowid=False,
    )
