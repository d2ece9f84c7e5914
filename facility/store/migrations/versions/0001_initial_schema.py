"""Initial schema: every table of DESIGN.md, and the append-only audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 11:33:11.386764
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# The audit trail is append-only: the database itself refuses to change or remove an entry.
SQLITE_AUDIT_TRIGGERS = (
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
)
POSTGRES_AUDIT_TRIGGERS = (
    """CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$""",
    """CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
       FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
)


def _audit_triggers() -> None:
    name = op.get_bind().dialect.name
    for statement in SQLITE_AUDIT_TRIGGERS if name == "sqlite" else POSTGRES_AUDIT_TRIGGERS:
        op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_action"), ["action"], unique=False)

    op.create_table(
        "blocked_devices",
        sa.Column("mac", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("blocked_by", sa.String(), nullable=False),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mac"),
    )
    op.create_table(
        "camera_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("camera", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retain_from", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("path"),
    )
    with op.batch_alter_table("camera_segments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_camera_segments_camera"), ["camera"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_camera_segments_retain_from"), ["retain_from"], unique=False
        )

    op.create_table(
        "door_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("door", sa.String(), nullable=False),
        sa.Column("badge", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("retain_from", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("door_events", schema=None) as batch_op:
        batch_op.create_index("ix_door_events_badge_at", ["badge", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_door_events_door"), ["door"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_door_events_retain_from"), ["retain_from"], unique=False
        )

    op.create_table(
        "holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("window_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("placed_by", sa.String(), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("review_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(), nullable=True),
        sa.Column("release_reason", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case"),
    )
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_holds_released_at"), ["released_at"], unique=False)

    op.create_table(
        "job_runs",
        sa.Column("job", sa.String(), nullable=False),
        sa.Column("last_success", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("last_detail", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("job"),
    )
    op.create_table(
        "musters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "policies",
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("changed_by", sa.String(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind"),
    )
    op.create_table(
        "rejections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rejections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rejections_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_rejections_source"), ["source"], unique=False)

    op.create_table(
        "source_positions",
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("header", sa.String(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("path"),
    )
    op.create_table(
        "users",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("roles", sa.String(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("name_key", sa.String(), nullable=False),
        sa.Column("company", sa.String(), nullable=True),
        sa.Column("host", sa.String(), nullable=True),
        sa.Column("signed_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(), nullable=True),
        sa.Column("retain_from", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visits_name_key"), ["name_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_visits_retain_from"), ["retain_from"], unique=False)

    op.create_table(
        "wifi_leases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("mac", sa.String(), nullable=False),
        sa.Column("ip", sa.String(), nullable=False),
        sa.Column("hostname", sa.String(), nullable=True),
        sa.Column("client_id", sa.String(), nullable=True),
        sa.Column("starts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retain_from", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "mac", "ip", "starts", name="uq_wifi_leases"),
    )
    with op.batch_alter_table("wifi_leases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wifi_leases_mac"), ["mac"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_wifi_leases_retain_from"), ["retain_from"], unique=False
        )

    op.create_table(
        "badge_loans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("badge", sa.String(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lost", sa.Boolean(), nullable=False),
        sa.Column("retain_from", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("badge_loans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_badge_loans_badge"), ["badge"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_badge_loans_retain_from"), ["retain_from"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_badge_loans_visit_id"), ["visit_id"], unique=False)
        batch_op.create_index(
            "uq_badge_loans_open",
            ["badge"],
            unique=True,
            sqlite_where=sa.text("returned_at IS NULL AND NOT lost"),
            postgresql_where=sa.text("returned_at IS NULL AND NOT lost"),
        )

    op.create_table(
        "hold_scopes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hold_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("selector", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["hold_id"], ["holds.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("hold_scopes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hold_scopes_hold_id"), ["hold_id"], unique=False)
        batch_op.create_index("ix_hold_scopes_kind_selector", ["kind", "selector"], unique=False)

    op.create_table(
        "muster_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("muster_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("marked_by", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["muster_id"], ["musters.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("muster_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_muster_entries_muster_id"), ["muster_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_muster_entries_visit_id"), ["visit_id"], unique=False)

    _audit_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    with op.batch_alter_table("muster_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_muster_entries_visit_id"))
        batch_op.drop_index(batch_op.f("ix_muster_entries_muster_id"))

    op.drop_table("muster_entries")
    with op.batch_alter_table("hold_scopes", schema=None) as batch_op:
        batch_op.drop_index("ix_hold_scopes_kind_selector")
        batch_op.drop_index(batch_op.f("ix_hold_scopes_hold_id"))

    op.drop_table("hold_scopes")
    with op.batch_alter_table("badge_loans", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_badge_loans_open",
            sqlite_where=sa.text("returned_at IS NULL AND NOT lost"),
            postgresql_where=sa.text("returned_at IS NULL AND NOT lost"),
        )
        batch_op.drop_index(batch_op.f("ix_badge_loans_visit_id"))
        batch_op.drop_index(batch_op.f("ix_badge_loans_retain_from"))
        batch_op.drop_index(batch_op.f("ix_badge_loans_badge"))

    op.drop_table("badge_loans")
    with op.batch_alter_table("wifi_leases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wifi_leases_retain_from"))
        batch_op.drop_index(batch_op.f("ix_wifi_leases_mac"))

    op.drop_table("wifi_leases")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visits_retain_from"))
        batch_op.drop_index(batch_op.f("ix_visits_name_key"))

    op.drop_table("visits")
    op.drop_table("users")
    op.drop_table("source_positions")
    with op.batch_alter_table("rejections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rejections_source"))
        batch_op.drop_index(batch_op.f("ix_rejections_at"))

    op.drop_table("rejections")
    op.drop_table("policies")
    op.drop_table("musters")
    op.drop_table("job_runs")
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_holds_released_at"))

    op.drop_table("holds")
    with op.batch_alter_table("door_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_door_events_retain_from"))
        batch_op.drop_index(batch_op.f("ix_door_events_door"))
        batch_op.drop_index("ix_door_events_badge_at")

    op.drop_table("door_events")
    with op.batch_alter_table("camera_segments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_camera_segments_retain_from"))
        batch_op.drop_index(batch_op.f("ix_camera_segments_camera"))

    op.drop_table("camera_segments")
    op.drop_table("blocked_devices")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_action"))

    op.drop_table("audit_log")
