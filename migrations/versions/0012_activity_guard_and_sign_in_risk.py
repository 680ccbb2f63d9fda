"""Activity guard and sign-in risk: alerts, exposed subjects, account networks, sign-ins,
activity events

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

Issue #25: the portal reports sensitive actions and breachguard answers allow / step_up /
block. Alerts group repeats of one cause; exposed_subjects keep the portal's opaque
subject keys a blocked account touched (never a patient identifier); account_networks and
sign_ins tell a new network from a known one; activity_events are the counters when there
is no Redis, kept no longer than the longest window.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "activity_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("session", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("network", sa.String(length=49), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_events")),
    )
    with op.batch_alter_table("activity_events", schema=None) as batch_op:
        batch_op.create_index("ix_activity_events_account_at", ["account_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_activity_events_at"), ["at"], unique=False)
        batch_op.create_index("ix_activity_events_network_at", ["network", "at"], unique=False)
        batch_op.create_index("ix_activity_events_session_at", ["session", "at"], unique=False)

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("cause", sa.String(length=200), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("accounts", sa.JSON(), nullable=False),
        sa.Column("addresses", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("suspected_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_first_at"), ["first_at"], unique=False)
        batch_op.create_index("ix_alerts_kind_cause", ["kind", "cause", "last_at"], unique=False)

    op.create_table(
        "account_networks",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=49), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_networks_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "network", name=op.f("pk_account_networks")),
    )
    op.create_table(
        "exposed_subjects",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kept_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_exposed_subjects_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", "subject", name=op.f("pk_exposed_subjects")),
    )
    with op.batch_alter_table("exposed_subjects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exposed_subjects_kept_at"), ["kept_at"], unique=False)

    op.create_table(
        "sign_ins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("network", sa.String(length=49), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("new_network", sa.Boolean(), nullable=False),
        sa.Column("via", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_sign_ins_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_ins")),
    )
    with op.batch_alter_table("sign_ins", schema=None) as batch_op:
        batch_op.create_index("ix_sign_ins_account_at", ["account_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sign_ins_at"), ["at"], unique=False)

    op.create_table(
        "activity_sessions",
        sa.Column("session", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("stepped_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session", name=op.f("pk_activity_sessions")),
    )
    with op.batch_alter_table("activity_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_activity_sessions_account_id"), ["account_id"])
        batch_op.create_index(batch_op.f("ix_activity_sessions_seen_at"), ["seen_at"])

    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_deliveries_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_deliveries_alert_id"), ["alert_id"])
        batch_op.create_index("ix_alert_deliveries_due", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("alert_deliveries")
    op.drop_table("activity_sessions")

    with op.batch_alter_table("sign_ins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_ins_at"))
        batch_op.drop_index("ix_sign_ins_account_at")

    op.drop_table("sign_ins")
    with op.batch_alter_table("exposed_subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exposed_subjects_kept_at"))

    op.drop_table("exposed_subjects")
    op.drop_table("account_networks")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_kind_cause")
        batch_op.drop_index(batch_op.f("ix_alerts_first_at"))

    op.drop_table("alerts")
    with op.batch_alter_table("activity_events", schema=None) as batch_op:
        batch_op.drop_index("ix_activity_events_session_at")
        batch_op.drop_index("ix_activity_events_network_at")
        batch_op.drop_index(batch_op.f("ix_activity_events_at"))
        batch_op.drop_index("ix_activity_events_account_at")

    op.drop_table("activity_events")
