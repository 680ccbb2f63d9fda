"""reset_job_targets: a job's accounts, so that a bulk reset goes in account order

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

A job from an e-mail list longer than one batch first resolves the list into this table,
then resets its accounts in id order. In list order, each batch's rows landed on pages
spread over every index keyed by account and over the accounts table, and each commit
wrote them all (auth/reset/job.py has the figures). Rows are keyed by run (two runs of one
job do not page through each other's) and live while their run does; a killed run's
are removed by any run that ends 6 hours later.
No foreign key to accounts: an account deleted while its job runs is skipped.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
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


def downgrade() -> None:
    op.drop_table("reset_job_targets")
