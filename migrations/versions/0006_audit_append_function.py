"""audit: a PostgreSQL function that appends one event to the chain

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

`audit_append` takes the head row's lock, hashes and inserts the event and moves the head,
inside one statement on the server, so a sign-in confirms its account and records its
decision in one round trip and holds the head row's lock for no round trip at all
(auth/audit.py, `guarded_append`). The hash is that of auth/audit.py's `event_hash`: the
caller sends the JSON of the event's own fields (`tail`) and the function wraps it with the
sequence number and the previous hash, so no JSON is encoded in SQL. SQLite has no such
function; there the same steps run from Python.

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE FUNCTION audit_append(
    p_at timestamptz, p_actor text, p_action text, p_target text, p_details text, p_tail text
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_seq bigint;
    v_prev text;
    v_hash text;
BEGIN
    SELECT seq + 1, hash INTO v_seq, v_prev FROM audit_head WHERE id = 1 FOR UPDATE;
    -- auth/audit.py event_hash: JSON [seq, at, actor, action, target, details, prev]
    v_hash := encode(
        sha256(convert_to('[' || v_seq || ',' || p_tail || ',"' || v_prev || '"]', 'UTF8')),
        'hex'
    );
    INSERT INTO audit_events (seq, at, actor, action, target, details, prev_hash, hash)
    VALUES (v_seq, p_at, p_actor, p_action, p_target, p_details, v_prev, v_hash);
    UPDATE audit_head SET seq = v_seq, hash = v_hash WHERE id = 1;
    RETURN v_seq;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS audit_append(timestamptz, text, text, text, text, text)"
        )
