"""The case file in the web app: one hold's records and timeline, its exports and their download.

`/holds/{case}` shows what the hold keeps (the same listing as `facility hold records`), a
timeline per camera with its segments as spans (each opens the footage viewer) and the door
events as ticks, and the hold's exports. `POST /exports` writes an export into the evidence
directory's `exports/` folder; `/exports/{id}/download` hands it out as one zip file (stored, not
compressed: the footage is compressed already), read file by file without following a link, and
audited.
"""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.datastructures import FormData
from starlette.responses import Response, StreamingResponse

from facility.errors import FacilityError, InputError
from facility.retention import casefile, evidence, handover, holds
from facility.store import kinds as registry
from facility.store.models import Hold
from facility.timefmt import hold_status
from facility.trail import audit
from facility.web import timeline
from facility.web.auth import Account, csrf_form, permit, permitted
from facility.web.context import Web, web_of
from facility.web.inputs import PathText, RecordId
from facility.web.terminal import Office
from facility.web.views import flash, page, redirect

router = APIRouter(include_in_schema=False)
PAGE_ROWS = 500  # records listed per kind on the page; the CLI and the API list them all
CHUNK = 1024 * 1024


def hold_here(request: Request, account: Account, case: str, action: str) -> None:
    """Go on with hold `case` at this terminal: 404 for a hold of another office (not shown
    here), and an organisation's hold needs the role for the whole organisation (403, audited).
    A case that names no hold goes on: the action says there is none."""
    web = web_of(request)
    with web.reading() as session:
        hold = holds.find(session, case)
    if hold is not None:
        _at_this_office(request, account, hold, action)


def _at_this_office(request: Request, account: Account, hold: Hold, action: str) -> None:
    if hold.site_id is None:
        permit(request, account, action, organisation=True)
    elif hold.site_id != account.site.id:
        raise HTTPException(404, f"there is no hold {hold.case!r} at {account.site.name}")


def preserve_now(web: Web, account: Account, case: str) -> str | None:
    """Preserve at once the footage hold `case` keeps; a line to show, if anything happened."""
    done = evidence.preserve(
        web.engine, web.settings, now=web.now(), actor=account.actor, case=case
    )
    if done.done or done.missing or done.refused or done.failed:
        return done.summary()
    return None


@router.get("/holds/{case:path}")
def hold_page(
    request: Request, case: PathText, account: Account = Depends(permitted("hold.records"))
) -> Response:
    """One hold: its records, a timeline per camera, its exports."""
    web = web_of(request)
    here = account.site
    hold_here(request, account, case, "hold.records")
    now, grace, zone = web.now(), web.settings.holds.release_grace, here.zone
    with web.reading() as session:
        found = casefile.case_file(session, case, now=now, grace=grace, roles=account.roles)
        exports = handover.listing(session, include_removed=True, case=found.hold.case)
    hold = found.hold
    until = None if hold.released_at is None else hold.released_at + grace
    drawn = timeline.build(
        hold.window_from,
        hold.window_to,
        found.records.get("camera", []),
        found.records.get("door_events", []),
        label=here.local,
    )
    tables = []
    for name, rows in found.records.items():
        kind = registry.get(name)
        columns = [("id", "id"), *kind.listed] + (
            [("evidence", "evidence")] if name == "camera" else []
        )
        shown = [[_cell(here, row[c]) for c, _ in columns] for row in rows[:PAGE_ROWS]]
        ids = [row["id"] for row in rows[:PAGE_ROWS]]
        tables.append(
            (
                name,
                kind.label,
                [h for _, h in columns],
                shown,
                ids,
                found.totals[name],
                found.withheld.get(name, 0),
            )
        )
    return page(
        request,
        "hold.html",
        title=f"Hold {hold.case}",
        hold=hold,
        window=f"{here.local(hold.window_from)} to {here.local(hold.window_to)}",
        state=hold_status(hold.released_at, until, now=now, site_zone=zone),
        protects=holds.is_active(hold, now=now, grace=grace),
        scopes=[f"{s.kind}: {s.selector}" if s.selector else f"all {s.kind}" for s in found.scopes],
        timeline=drawn,
        tables=tables,
        page_rows=PAGE_ROWS,
        exports=[_export_view(here, row) for row in exports],
        can_export=evidence.exports_root(web.settings) is not None,
    )


def _cell(here: Office, value: object) -> object:
    return here.local(value) if isinstance(value, datetime) else value


def _export_view(here: Office, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "location": row["location"],
        "exported": f"{here.local(row['exported_at'])} by {row['exported_by']}",
        "handed_over": (
            f"{here.local(row['handed_over_at'])} to {row['handed_over_to']} "
            f"({row['handover_reference']})"
            if row["handed_over_at"]
            else ""
        ),
        "removed": here.local(row["removed_at"]) if row["removed_at"] else "",
        "complete": row["manifest_sha256"] is not None,
        "files": row["files"],
        "size": row["size"],
    }


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@router.post("/exports")
def export_case(
    request: Request,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("hold.export")),
) -> Response:
    """Write an export of the hold into the evidence directory's exports folder."""
    web = web_of(request)
    case = str(form.get("case", "")).strip()
    hold_here(request, account, case, "hold.export")
    back = f"/holds/{case}" if case else "/holds"
    folder = evidence.exports_root(web.settings)
    if folder is None:
        flash(request, "set [evidence] root to export from the web app", "error")
        return redirect(back)
    now = web.now()
    try:
        folder.parent.mkdir(mode=0o700, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
        name = f"{_UNSAFE.sub('_', case)}-{now:%Y%m%dT%H%M%SZ}"
        written = handover.export_case(
            web.engine,
            web.settings,
            case=case,
            output=folder / name,
            now=now,
            actor=account.actor,
            roles=account.roles,
        )
    except (InputError, OSError) as err:
        flash(request, f"export of {case}: {err}", "error")
        return redirect(back)
    flash(
        request,
        f"export {written.export_id} written: {written.files} files, {written.size} bytes; "
        "download it below, and record the hand-over with facility export handed-over",
    )
    return redirect(f"/holds/{written.case}")


@router.get("/exports/{export_id}/download")
def download(
    request: Request,
    export_id: RecordId,
    account: Account = Depends(permitted("export.download")),
) -> Response:
    """The export as one zip file, audited."""
    web = web_of(request)
    with web.reading() as session:
        export = handover.get(session, export_id)
        hold = holds.get_by_id(session, export.hold_id)
    _at_this_office(request, account, hold, "export.download")
    case = hold.case
    with web.session() as session:
        export = handover.get(session, export_id)
        if export.manifest_sha256 is None or export.removed_at is not None:
            raise InputError(f"export {export_id} is not on disk (incomplete or deleted)")
        location = Path(export.location)
        try:
            same = handover.is_ours(location, export.device, export.inode, export.manifest_sha256)
        except OSError:
            same = False
        if not same:
            raise FacilityError(f"export {export_id}: {location} is no longer the export's folder")
        files = _files(location)
        audit.append(
            session,
            now=web.now(),
            actor=account.actor,
            action="export.download",
            export=export_id,
            case=case,
            files=len(files),
        )
    prefix = f"{_UNSAFE.sub('_', case)}-export-{export_id}"
    return StreamingResponse(
        _zipped(location, files, prefix),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{prefix}.zip"'},
    )


def _files(root: Path) -> list[str]:
    """The regular files below `root`, relative, sorted; links are never followed nor sent."""
    found = []
    for folder, _subfolders, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(folder) / name
            if stat.S_ISREG(os.lstat(path).st_mode):
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


class _Sink(io.RawIOBase):
    """Where zipfile writes: the bytes wait here until the response takes them."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.chunks.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        out, self.chunks = b"".join(self.chunks), []
        return out


def _zipped(root: Path, files: list[str], prefix: str) -> Iterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for relpath in files:
            fd = os.open(root / relpath, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                found = os.fstat(fd)
                info = zipfile.ZipInfo(
                    f"{prefix}/{relpath}", datetime.fromtimestamp(found.st_mtime).timetuple()[:6]
                )
                info.file_size = found.st_size
                with archive.open(info, "w", force_zip64=found.st_size > 2**31) as out:
                    while chunk := os.read(fd, CHUNK):
                        out.write(chunk)
                        yield sink.drain()
            finally:
                os.close(fd)
            yield sink.drain()
    yield sink.drain()
