"""When each ingested record became known, and lease clocks that had started in the future.

`known_at` (nullable: rows stored before this revision have no such time, and the report treats
them as known long ago) on door_events, camera_segments and wifi_leases.

A lease whose scheduled end is still ahead has no retention clock yet (`facility.retention.limits` starts
it when the end passes); rows stored before this revision carry that end as their clock, so those
clocks are cleared here. Every row is kept.

Revision ID: 0003_known_at
Revises: 0002_privacy
Create Date: 2026-12-05 23:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_known_at"
down_revision = "0002_privacy"
branch_labels = None
depends_on = None

TABLES = ("door_events", "camera_segments", "wifi_leases")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("known_at", sa.DateTime(timezone=True), nullable=True))
    # SQLite keeps times as 'YYYY-MM-DD HH:MM:SS.ffffff' UTC text, comparable with
    # CURRENT_TIMESTAMP's UTC 'YYYY-MM-DD HH:MM:SS' (a clock within this second is cleared too,
    # and the next run of the limits starts it again).
    op.execute("UPDATE wifi_leases SET retain_from = NULL WHERE retain_from > CURRENT_TIMESTAMP")


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("known_at")
