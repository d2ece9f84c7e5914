"""Roll calls keep late arrivals and leavers: when an entry joined an open roll call, when it left.

Both columns are NULL on every existing row (people on the list from the start, still on site),
which is what those rows mean.

Revision ID: 0004_muster_arrivals
Revises: 0003_known_at
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_muster_arrivals"
down_revision = "0003_known_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("muster_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("left_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("muster_entries", schema=None) as batch_op:
        batch_op.drop_column("left_at")
        batch_op.drop_column("joined_at")
