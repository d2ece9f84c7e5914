"""The on-site snapshot: `onsite.html` and `onsite.csv` written atomically beside the database.

If the database dies during an evacuation, the last snapshot still lists who was on site. Each file
is written private (0600) to a temporary name in the same folder, flushed to disk, then renamed
over the old one, so a reader (or a printer) never sees half a list; a failed write leaves the previous files as
they were, so a database that is gone leaves the last good list in place.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from facility.files import write_private
from facility.store import db
from facility.store.models import DEFAULT_SITE
from facility.visitors import onsite

FILES = ("onsite.html", "onsite.csv")
# A temporary older than this belongs to a writer that died (another daemon's live one is seconds old).
STALE = timedelta(minutes=10)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that readers see the old or the new file, never a mix.

    The folder is created private if missing; the file is 0600 and never written through a
    symlink (`files.write_private`): the list names everyone on site.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, text, what="snapshot.dir")


def write_snapshot(
    engine: Engine,
    folder: Path,
    zone_name: str,
    *,
    now: datetime,
    site_id: int = DEFAULT_SITE,
    site_name: str | None = None,
) -> dict[str, int]:
    """Write both snapshot files of the site (its name in the header); return how many are on site."""
    with db.read_scope(engine) as session:  # never waits for a writer
        listing = onsite.on_site(session, now=now, site_id=site_id, site_name=site_name)
    for name in FILES:
        path = folder / name
        write_atomically(path, onsite.render(listing, path.suffix[1:], zone_name))
        _remove_stale(path, now)
    return {"on_site": len(listing.people)}


def _remove_stale(path: Path, now: datetime) -> None:
    """Remove temporaries a killed writer left: they hold names, and nothing else would purge them."""
    cutoff = (now - STALE).timestamp()
    for leftover in path.parent.glob(f".{path.name}.*"):
        with contextlib.suppress(OSError):  # gone already, or not ours to remove
            if leftover.lstat().st_mtime < cutoff:
                leftover.unlink()
