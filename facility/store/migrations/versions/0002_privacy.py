"""Privacy: accent-folded name keys, and when a released hold's personal selectors were pseudonymised.

`visits.name_key` and the selectors of visitor hold scopes are recomputed with the current
`names.name_key` (which now folds accents and drops invisible characters), so every row stored
under the old key stays matchable by holds, sign-out and data-subject requests. Nothing is
removed; only keys change.

Revision ID: 0002_privacy
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from facility.names import name_key

revision = "0002_privacy"
down_revision = "0001"
branch_labels = None
depends_on = None

_BATCH = 5_000


def upgrade() -> None:
    with op.batch_alter_table("hold_scopes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pseudonymised_at", sa.DateTime(timezone=True), nullable=True)
        )
    bind = op.get_bind()
    _rekey(
        bind,
        "SELECT id, name, name_key FROM visits",
        "UPDATE visits SET name_key = :k WHERE id = :i",
    )
    # A visitor scope's selector is a name key; the old key folds to the new one.
    _rekey(
        bind,
        "SELECT id, selector, selector FROM hold_scopes WHERE kind = 'visits' AND selector IS NOT NULL",
        "UPDATE hold_scopes SET selector = :k WHERE id = :i",
    )


def _rekey(bind: sa.Connection, select_sql: str, update_sql: str) -> None:
    changed = []
    for row_id, source, old in bind.execute(sa.text(select_sql)):
        new = name_key(source)
        if new != old:
            changed.append({"i": row_id, "k": new})
    for start in range(0, len(changed), _BATCH):
        bind.execute(sa.text(update_sql), changed[start : start + _BATCH])


def downgrade() -> None:
    # The old keys cannot be told apart from the new ones; the column goes, the keys stay folded.
    with op.batch_alter_table("hold_scopes", schema=None) as batch_op:
        batch_op.drop_column("pseudonymised_at")
