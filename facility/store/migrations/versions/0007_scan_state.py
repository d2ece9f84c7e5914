"""Camera scan state: each directory under the recordings root with the stamp it was last read at.

A new table only; every existing row stays. On PostgreSQL, when `camera_segments.path` is ordered
by a collation that is not code-point order, an index on `path COLLATE "C"` is added so that the
scanner can read one directory's rows as a range of paths; under a code-point collation (and on
SQLite) the unique index on `path` already serves.

Revision ID: 0007_scan_state
Revises: 0006_audit_chain
Create Date: 2026-12-06 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_scan_state"
down_revision = "0006_audit_chain"
branch_labels = None
depends_on = None

_BINARY_COLLATIONS = ("C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic")


def upgrade() -> None:
    op.create_table(
        "camera_dirs",
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("stamp", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("path"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and not _binary_paths(bind):
        op.execute('CREATE INDEX ix_camera_segments_path_c ON camera_segments (path COLLATE "C")')


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_camera_segments_path_c")
    op.drop_table("camera_dirs")


def _binary_paths(bind: sa.Connection) -> bool:
    column = bind.execute(
        sa.text(
            "SELECT collation_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = 'camera_segments' AND column_name = 'path'"
        )
    ).scalar()
    if column:
        return column in _BINARY_COLLATIONS
    collate, provider = bind.execute(
        sa.text(
            "SELECT datcollate, to_jsonb(d) ->> 'datlocprovider' FROM pg_database d "
            "WHERE datname = current_database()"
        )
    ).one()
    return provider in (None, "c", "b") and collate in _BINARY_COLLATIONS
