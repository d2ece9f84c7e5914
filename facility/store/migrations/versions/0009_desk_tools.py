"""The reception desk's tools: expected visitors, the hosts directory, host notifications, kiosks.

Four new tables; no existing row changes. The three that name people are record kinds with their
own retention (`expected`, `hosts`, `notifications`); `facility init` seeds their policies.

Revision ID: 0009_desk_tools
Revises: 0008_case_file
Create Date: 2026-12-08 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_desk_tools"
down_revision = "0008_case_file"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "expected_visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("name_key", sa.String(), nullable=False),
        sa.Column("company", sa.String(), nullable=True),
        sa.Column("host", sa.String(), nullable=True),
        sa.Column("badge", sa.String(), nullable=True),
        sa.Column("expected_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("retain_from", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("expected_visits", schema=None) as batch_op:
        batch_op.create_index("ix_expected_visits_day", ["expected_on", "name_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_expected_visits_name_key"), ["name_key"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_expected_visits_retain_from"), ["retain_from"], unique=False
        )

    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("name_key", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("webhook", sa.String(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retain_from", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hosts_retain_from"), ["retain_from"], unique=False)
        batch_op.create_index("uq_hosts_name_key", ["name_key"], unique=True)

    op.create_table(
        "host_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("visitor", sa.String(), nullable=False),
        sa.Column("visitor_key", sa.String(), nullable=False),
        sa.Column("company", sa.String(), nullable=True),
        sa.Column("signed_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("retain_from", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    with op.batch_alter_table("host_notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_host_notifications_host_id"), ["host_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_host_notifications_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_host_notifications_retain_from"), ["retain_from"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_host_notifications_visitor_key"), ["visitor_key"], unique=False
        )

    op.create_table(
        "kiosks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("pairing_hash", sa.String(), nullable=True),
        sa.Column("pairing_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("device_hash", sa.String(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(), nullable=False),
        sa.Column("paired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_hash"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("pairing_hash"),
    )


def downgrade() -> None:
    op.drop_table("kiosks")
    with op.batch_alter_table("host_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_host_notifications_visitor_key"))
        batch_op.drop_index(batch_op.f("ix_host_notifications_retain_from"))
        batch_op.drop_index(batch_op.f("ix_host_notifications_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_host_notifications_host_id"))
    op.drop_table("host_notifications")
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_index("uq_hosts_name_key")
        batch_op.drop_index(batch_op.f("ix_hosts_retain_from"))
    op.drop_table("hosts")
    with op.batch_alter_table("expected_visits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_expected_visits_retain_from"))
        batch_op.drop_index(batch_op.f("ix_expected_visits_name_key"))
        batch_op.drop_index("ix_expected_visits_day")
    op.drop_table("expected_visits")
