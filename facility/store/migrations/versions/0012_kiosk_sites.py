"""Kiosks belong to a site: a tablet signs visitors in and out at its own office.

`kiosks.site_id` (NOT NULL, default 1): every kiosk paired before sites existed stands at the
default site, which is where it signed visitors in until now. The column is added in place on
both engines (SQLite takes a REFERENCES clause with a default while foreign keys are off, as
`facility.store.db.upgrade` runs migrations), so no kiosk is copied and no device has to pair
again.

Revision ID: 0012_kiosk_sites
Revises: 0011_sites
Create Date: 2027-01-20 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_kiosk_sites"
down_revision = "0011_sites"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE kiosks ADD COLUMN site_id INTEGER NOT NULL DEFAULT 1 REFERENCES sites (id)"
        )
    else:
        op.add_column(
            "kiosks",
            sa.Column(
                "site_id",
                sa.Integer(),
                sa.ForeignKey("sites.id"),
                nullable=False,
                server_default=sa.text("1"),
            ),
        )


def downgrade() -> None:
    with op.batch_alter_table("kiosks") as batch_op:
        batch_op.drop_column("site_id")
