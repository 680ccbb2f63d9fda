"""Drop the audit_append function: the chain is extended from Python on every database

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

auth/audit.py `append` is now the one place that hashes and inserts events, for single
events and bulk alike, on SQLite and PostgreSQL; the PL/pgSQL copy of the chain's
definition (migration 0006) is no longer called. The downgrade creates it again.
"""

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS audit_append(timestamptz, text, text, text, text, text)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        created = importlib.import_module("migrations.versions.0006_audit_append_function")
        op.execute(created.FUNCTION)
