"""resets, findings, reset tokens: drop three indexes that no query needs

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

- `ix_resets_account_id` and `ix_findings_account_id`: the unique constraints of both
  tables start with account_id, and serve every look-up by account.
- `uq_reset_tokens_token_sha256`: a presented token now starts with its row's id, so it is
  found by primary key and its digest compared in constant time (auth/reset/tokens.py).
  The digests were random keys: in a bulk reset of 1e5 accounts on SQLite, the tokens
  INSERT took 1.1-1.7 s less without this index.

Links sent before this revision carry no id and no longer open (the reset page says the
link does not work; /forgot sends a new one). Links of notices still queued are made when
they are sent, in the new form.

On SQLite, dropping the unique constraint rebuilds the table; migrations/env.py turns
foreign keys off around it, or dropping the old table would null `notices.token_id`.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_resets_account_id", table_name="resets")
    op.drop_index("ix_findings_account_id", table_name="findings")
    with op.batch_alter_table("reset_tokens", schema=None) as batch_op:
        batch_op.drop_constraint("uq_reset_tokens_token_sha256", type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("reset_tokens", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_reset_tokens_token_sha256", ["token_sha256"])
    op.create_index("ix_findings_account_id", "findings", ["account_id"], unique=False)
    op.create_index("ix_resets_account_id", "resets", ["account_id"], unique=False)
