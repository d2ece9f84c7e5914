"""Sites: every record, roll call, rejection and job run belongs to an office; policies per site.

A `sites` table, with the default site (id 1, code `main`) that every existing row is put in: its
time zone and country are the configuration's (`facility init` passes them as the alembic
attributes `site_timezone` and `site_country`), else Europe/Amsterdam and NL. `site_id` (NOT
NULL, default 1) on the record tables, `musters`, `rejections`, `job_runs`, `source_positions`
and the camera scanner's `camera_dirs` (the last three now keyed by site too; 0007's code-point
path index on PostgreSQL takes the site first); `holds.site_id` (NULL: the whole organisation;
existing holds keep their site's records, so they get site 1) and `web_sessions.site_id` (the
site a terminal serves; NULL on existing sessions). Expected visits are announced at one office
too. The hosts directory and host notifications stay the organisation's. Natural keys become per site (door event id,
segment path, lease address, the open loan of a badge) and each kind's clock is indexed with its
site. `site_policies` holds a site's own policy of a kind (the `policies` rows stay the
organisation's); `legal_ceilings` the longest a country allows, seeded for camera images in the
Netherlands and Belgium.

Nothing is removed but indexes and unique constraints that the per-site ones replace. On SQLite
the tables whose unique constraint or primary key changes are copied (batch mode); the others get
their column in place, with foreign keys off for the migration (`facility.store.db.upgrade`),
since SQLite adds a column with a REFERENCES clause and a default only so, and copying a table
with foreign keys on would run the ON DELETE actions of the rows pointing at it.

Revision ID: 0011_sites
Revises: 0010_rights
Create Date: 2027-01-10 10:00:00
"""

import warnings
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import context, op

from facility.store.models import UTCDateTime

revision = "0011_sites"
down_revision = "0010_rights"
branch_labels = None
depends_on = None

DEFAULT_ZONE = "Europe/Amsterdam"
DEFAULT_COUNTRY = "NL"
# Tables whose rows simply gain a site.
PLAIN = ("visits", "badge_loans", "musters", "rejections", "expected_visits")
# Clock columns indexed alone before, with their site from here on.
CLOCKS = {
    "visits": "retain_from",
    "badge_loans": "retain_from",
    "door_events": "retain_from",
    "camera_segments": "retain_from",
    "wifi_leases": "retain_from",
    "rejections": "at",
    "expected_visits": "retain_from",
}
CEILINGS = (
    (
        "NL",
        "camera",
        timedelta(days=28),
        "Autoriteit Persoonsgegevens: camera images are kept at most 4 weeks",
    ),
    (
        "BE",
        "camera",
        timedelta(days=31),
        "Belgian camera law (Wet van 21 maart 2007), art. 6 §3: at most one month",
    ),
)
# The names SQLite's inline UNIQUE constraints get when batch mode reflects them, to drop them.
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
_OPEN_LOAN = "returned_at IS NULL AND NOT lost"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    now = datetime.now(UTC)
    attributes = context.config.attributes
    _create_tables()
    _seed(
        now,
        attributes.get("site_timezone") or DEFAULT_ZONE,
        attributes.get("site_country") or DEFAULT_COUNTRY,
    )
    for table, clock in CLOCKS.items():
        op.drop_index(f"ix_{table}_{clock}", table_name=table)
    op.drop_index("uq_badge_loans_open", table_name="badge_loans")
    op.drop_index("ix_door_events_badge_at", table_name="door_events")
    op.drop_index("ix_expected_visits_day", table_name="expected_visits")
    for table in PLAIN:
        _add_site(table)
    _add_site("holds", nullable=True)
    op.execute("UPDATE holds SET site_id = 1")  # existing holds keep what they kept
    _add_site("web_sessions", nullable=True)
    _rekey("door_events", old_unique=("event_id",), new_unique=("event_id",))
    _rekey("camera_segments", old_unique=("path",), new_unique=("path",))
    _rekey(
        "wifi_leases",
        old_unique=("source", "mac", "ip", "starts"),
        new_unique=("source", "mac", "ip", "starts"),
        named="uq_wifi_leases",
    )
    _rekey("job_runs", key=("job",))
    _rekey("source_positions", key=("path",))
    _rekey("camera_dirs", key=("path",))
    _path_index_with_site()
    for table, clock in CLOCKS.items():
        op.create_index(f"ix_{table}_site_{clock}", table, ["site_id", clock])
    op.create_index(
        "ix_door_events_site_badge_at", "door_events", ["site_id", "badge", "at"], unique=False
    )
    op.create_index(
        "ix_expected_visits_site_day", "expected_visits", ["site_id", "expected_on", "name_key"]
    )
    op.create_index(
        "uq_badge_loans_open",
        "badge_loans",
        ["site_id", "badge"],
        unique=True,
        sqlite_where=sa.text(_OPEN_LOAN),
        postgresql_where=sa.text(_OPEN_LOAN),
    )


def _create_tables() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("timezone", sa.String(), nullable=False),
        sa.Column("country", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "site_policies",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("changed_by", sa.String(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pending_seconds", sa.BigInteger(), nullable=True),
        sa.Column("pending_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pending_by", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"]),
        sa.PrimaryKeyConstraint("site_id", "kind"),
    )
    op.create_table(
        "legal_ceilings",
        sa.Column("country", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("max_seconds", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("country", "kind"),
    )


def _seed(now: datetime, zone: str, country: str) -> None:
    sites = sa.table(
        "sites",
        sa.column("id", sa.Integer()),
        sa.column("code", sa.String()),
        sa.column("name", sa.String()),
        sa.column("timezone", sa.String()),
        sa.column("country", sa.String()),
        sa.column("created_at", UTCDateTime()),
        sa.column("created_by", sa.String()),
    )
    op.bulk_insert(
        sites,
        [
            {
                "id": 1,
                "code": "main",
                "name": "Main site",
                "timezone": zone,
                "country": country,
                "created_at": now,
                "created_by": "facility init",
            }
        ],
    )
    if not _sqlite():  # the id was given: the sequence must move past it
        op.execute("SELECT setval(pg_get_serial_sequence('sites', 'id'), 1)")
    ceilings = sa.table(
        "legal_ceilings",
        sa.column("country", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("max_seconds", sa.BigInteger()),
        sa.column("source", sa.Text()),
        sa.column("changed_by", sa.String()),
        sa.column("changed_at", UTCDateTime()),
    )
    op.bulk_insert(
        ceilings,
        [
            {
                "country": cc,
                "kind": kind,
                "max_seconds": int(longest.total_seconds()),
                "source": source,
                "changed_by": "facility init",
                "changed_at": now,
            }
            for cc, kind, longest, source in CEILINGS
        ],
    )


def _site_column(*, nullable: bool, referring: bool = True) -> sa.Column[int]:
    references = [sa.ForeignKey("sites.id")] if referring else []
    return sa.Column(
        "site_id",
        sa.Integer(),
        *references,
        nullable=nullable,
        server_default=None if nullable else sa.text("1"),
    )


def _add_site(table: str, *, nullable: bool = False) -> None:
    """The column in place: no copy of the table on either engine."""
    if _sqlite():
        default = "" if nullable else " NOT NULL DEFAULT 1"
        op.execute(f"ALTER TABLE {table} ADD COLUMN site_id INTEGER{default} REFERENCES sites (id)")
    else:
        op.add_column(table, _site_column(nullable=nullable))


def _rekey(
    table: str,
    *,
    old_unique: tuple[str, ...] = (),
    new_unique: tuple[str, ...] = (),
    named: str | None = None,
    key: tuple[str, ...] = (),
) -> None:
    """Add the site to a table whose unique constraint or primary key takes it in.

    SQLite copies the table; PostgreSQL alters it in place.
    """
    sqlite = _sqlite()
    with (
        warnings.catch_warnings(),
        op.batch_alter_table(
            table, recreate="always" if sqlite else "auto", naming_convention=_SQLITE_NAMES
        ) as batch_op,
    ):
        # SQLAlchemy warns that the copy's primary key differs from the reflected one: the point.
        warnings.filterwarnings("ignore", "Table '_alembic_tmp_", sa.exc.SAWarning)
        batch_op.add_column(_site_column(nullable=False, referring=False))
        batch_op.create_foreign_key(f"fk_{table}_site_id_sites", "sites", ["site_id"], ["id"])
        if old_unique:
            if named:
                old = named
            elif sqlite:
                old = f"uq_{table}_{old_unique[0]}"
            else:
                old = f"{table}_{old_unique[0]}_key"  # PostgreSQL's own name for it
            batch_op.drop_constraint(old, type_="unique")
            new = named or f"uq_{table}_site_{new_unique[0]}"
            batch_op.create_unique_constraint(new, ["site_id", *new_unique])
        if key:
            if not sqlite:
                batch_op.drop_constraint(f"{table}_pkey", type_="primary")
            batch_op.create_primary_key(f"{table}_pkey", ["site_id", *key])


def _path_index_with_site() -> None:
    """0007's code-point path index (PostgreSQL under another collation) takes the site first:
    the scanner reads one site's paths as ranges."""
    if _sqlite():
        return
    op.execute(
        "DO $$ BEGIN IF to_regclass('ix_camera_segments_path_c') IS NOT NULL THEN "
        "DROP INDEX ix_camera_segments_path_c; "
        'CREATE INDEX ix_camera_segments_path_c ON camera_segments (site_id, path COLLATE "C"); '
        "END IF; END $$"
    )


def downgrade() -> None:
    raise NotImplementedError(
        "0011_sites cannot be undone: rows of several sites would collide in the old keys"
    )
