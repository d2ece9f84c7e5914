"""Keyed audit chain: entries from here on are signed with a key kept outside the database.

No table changes. The revision itself is the change: code at 0001 writes entries chained with
plain SHA-256, and would break the keyed chain with every entry it added; at this revision it refuses to
run (the schema is not its head) until that host is upgraded too. `facility init`, which holds the
key, seals the entries written before with a keyed `audit.seal` entry once the upgrade is done.
Every existing row stays as it is and keeps verifying.

Revision ID: 0006_audit_chain
Revises: 0005_web_sessions
Create Date: 2026-11-26 10:00:00
"""

revision = "0006_audit_chain"
down_revision = "0005_web_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
