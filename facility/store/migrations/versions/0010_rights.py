"""Data-subject rights: the requests register, restrictions, objections to wifi recording, the
guarded shortening of a policy, and the clocks a correction moves.

Only additions: three tables, the pending shortening of a policy, and `known_at` on visits and
badge loans (NULL on every existing row: known when it happened). Every existing row stays as it
is.

Revision ID: 0010_rights
Revises: 0009_desk_tools
Create Date: 2026-12-12 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_rights"
down_revision = "0009_desk_tools"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("subject_kind", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("subject_key", sa.String(), nullable=False),
        sa.Column("contact", sa.String(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("extended_months", sa.Integer(), nullable=False),
        sa.Column("extension_reason", sa.String(), nullable=True),
        sa.Column("opened_by", sa.String(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("retain_from", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_requests_subject_key"), ["subject_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_requests_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_requests_retain_from"), ["retain_from"], unique=False)
    op.create_table(
        "restrictions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_kind", sa.String(), nullable=False),
        sa.Column("subject_key", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("restricted_by", sa.String(), nullable=False),
        sa.Column("restricted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subject_kind", "subject_key", name="uq_restrictions_subject"),
    )
    op.create_table(
        "ignored_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mac", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("ignored_by", sa.String(), nullable=False),
        sa.Column("ignored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("leases_ignored", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mac", name="uq_ignored_devices_mac"),
    )
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_seconds", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("pending_from", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("pending_by", sa.String(), nullable=True))
    for table in ("visits", "badge_loans"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("known_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in ("badge_loans", "visits"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("known_at")
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.drop_column("pending_by")
        batch_op.drop_column("pending_from")
        batch_op.drop_column("pending_seconds")
    op.drop_table("ignored_devices")
    op.drop_table("restrictions")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requests_retain_from"))
        batch_op.drop_index(batch_op.f("ix_requests_due_at"))
        batch_op.drop_index(batch_op.f("ix_requests_subject_key"))
    op.drop_table("requests")
