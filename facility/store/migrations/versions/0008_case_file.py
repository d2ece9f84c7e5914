"""The case file: evidence copies of held footage, and the register of exports handed over.

Revision ID: 0008_case_file
Revises: 0007_scan_state
Create Date: 2026-12-06 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_case_file"
down_revision = "0007_scan_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_copies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("method", sa.String(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=True),
        sa.Column("preserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["segment_id"], ["camera_segments.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("path"),
    )
    with op.batch_alter_table("evidence_copies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evidence_copies_segment_id"), ["segment_id"], unique=False
        )
    op.create_table(
        "case_exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hold_id", sa.Integer(), nullable=False),
        sa.Column("location", sa.String(), nullable=False),
        sa.Column("device", sa.BigInteger(), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("manifest_sha256", sa.String(), nullable=True),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("exported_by", sa.String(), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handed_over_by", sa.String(), nullable=True),
        sa.Column("handed_over_to", sa.String(), nullable=True),
        sa.Column("handover_reference", sa.String(), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removal", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["hold_id"], ["holds.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_exports_hold_id"), ["hold_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_case_exports_removed_at"), ["removed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("case_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_exports_removed_at"))
        batch_op.drop_index(batch_op.f("ix_case_exports_hold_id"))
    op.drop_table("case_exports")
    with op.batch_alter_table("evidence_copies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_copies_segment_id"))
    op.drop_table("evidence_copies")
