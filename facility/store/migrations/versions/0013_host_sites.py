"""The hosts directory and host notifications belong to a site.

A host is someone visitors come to see at one office, so `hosts.site_id` (NOT NULL, default 1:
every existing entry joins the default site) and a name is unique per site (`uq_hosts_site_name_key`
replaces `uq_hosts_name_key`); `host_notifications.site_id` is the visit's site (existing rows: 1).
Each table's clock index takes its site first, as the purge of one site walks it.

On SQLite both tables are copied (batch mode; `facility.store.db.upgrade` turns foreign keys off
meanwhile, so copying `hosts` does not cascade to the notifications that point at it); on
PostgreSQL they are altered in place.

Revision ID: 0013_host_sites
Revises: 0012_kiosk_sites
Create Date: 2027-01-20 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_host_sites"
down_revision = "0012_kiosk_sites"
branch_labels = None
depends_on = None

TABLES = ("hosts", "host_notifications")


def _site_column() -> sa.Column[int]:
    return sa.Column("site_id", sa.Integer(), nullable=False, server_default=sa.text("1"))


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_index(f"ix_{table}_retain_from")
            if table == "hosts":
                batch_op.drop_index("uq_hosts_name_key")
            batch_op.add_column(_site_column())
            batch_op.create_foreign_key(f"fk_{table}_site_id_sites", "sites", ["site_id"], ["id"])
            batch_op.create_index(f"ix_{table}_site_retain_from", ["site_id", "retain_from"])
            if table == "hosts":
                batch_op.create_index(
                    "uq_hosts_site_name_key", ["site_id", "name_key"], unique=True
                )


def downgrade() -> None:
    raise NotImplementedError(
        "0013_host_sites cannot be undone: two sites' hosts of one name would collide"
    )
