"""The on-site snapshot: `onsite.html` and `onsite.csv` written atomically beside the database.

If the database dies during an evacuation, the last snapshot still lists who was on site. Each file
is written to a temporary name in the same folder, flushed to disk, then renamed over the old one,
so a reader (or a printer) never sees half a list.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from facility import db, onsite


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o640)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_snapshot(
    engine: Engine, folder: Path, zone_name: str, *, now: datetime
) -> dict[str, int]:
    """Write both snapshot files; return the number of people on site."""
    with db.session_scope(engine) as session:
        listing = onsite.on_site(session, now=now)
    write_atomically(folder / "onsite.html", onsite.render(listing, "html", zone_name))
    write_atomically(folder / "onsite.csv", onsite.render(listing, "csv", zone_name))
    return {"on_site": len(listing.people)}
