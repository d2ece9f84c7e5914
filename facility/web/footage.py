"""Watching footage in the web app: gated, audited per viewing, served with range requests.

Security staff open a segment from a hold that keeps it (`/footage/{id}?case=CASE`), or any
segment still within retention after giving a case reference and a reason (the form on the same
page). Either way one `footage.view` audit entry is written, naming the account, the case, the
camera, the segment's window and whether a hold keeps it (the reason too, for a segment no hold
keeps: say why without naming anyone), and a grant is issued: a signed token naming the account,
the segment and the case, valid for GRANT_AGE. The player and every range request of its video
carry the grant, so one viewing is one entry however often the player seeks. Other roles are
refused (403) and the refusal is audited, as for every route.

The bytes come from the recordings root, or from the evidence copy once the recorder deleted its
file (`evidence.open_footage`), read through the purge's path checks: nothing outside the roots,
nothing through a symlink.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from itsdangerous import BadSignature
from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.responses import Response, StreamingResponse

from facility.errors import InputError, NotPermitted
from facility.names import clean_text
from facility.retention import camera_files, casefile, evidence, holds, policies
from facility.store import kinds as registry
from facility.timefmt import utc_text
from facility.trail import audit
from facility.web import ranges
from facility.web.auth import Account, csrf_form, permitted, route_of
from facility.web.cases import hold_here
from facility.web.context import Web, web_of
from facility.web.inputs import RecordId
from facility.web.refusals import audit_once
from facility.web.views import page, redirect

router = APIRouter(include_in_schema=False)
GRANT_AGE = timedelta(hours=1)
_SALT = "facility footage grant"
_CHUNK = 256 * 1024
_C = registry.get("camera").table


def _segment(web: Web, account: Account, segment_id: int) -> dict[str, Any]:
    """The segment, if it is this terminal's office's (another office's is not found: 404)."""
    with web.reading() as session:
        row = session.execute(select(_C).where(_C.c.id == segment_id)).mappings().first()
    if row is None:
        raise InputError(f"there is no camera segment {segment_id} (purged, or never indexed)")
    if row["site_id"] != account.site.id:
        raise HTTPException(404, f"there is no camera segment {segment_id} at {account.site.name}")
    return dict(row)


def _grant(web: Web, account: Account, segment_id: int, case: str) -> str:
    return web.signer.dumps({"a": account.name, "s": segment_id, "c": case}, salt=_SALT)


def _granted(request: Request, account: Account, segment_id: int, grant: str | None) -> str:
    """The case of a valid grant for this account and segment; else audit and refuse (403)."""
    web = web_of(request)
    if grant:
        try:
            data = web.signer.loads(grant, salt=_SALT, max_age=int(GRANT_AGE.total_seconds()))
        except BadSignature:
            data = None
        if isinstance(data, dict) and data.get("a") == account.name and data.get("s") == segment_id:
            return str(data.get("c"))
    audit_once(
        web,
        now=web.now(),
        actor=account.actor,
        action="refused",
        command=route_of(request),
        needs=["footage grant"],
    )
    raise NotPermitted(
        "open the footage from its hold, or give a case reference and a reason first "
        f"(a viewing lasts {int(GRANT_AGE.total_seconds() // 60)} minutes)"
    )


def _viewed(
    web: Web,
    account: Account,
    segment: dict[str, Any],
    case: str,
    *,
    held: bool,
    reason: str | None,
) -> str:
    """Audit one viewing; the grant for it."""
    details: dict[str, Any] = {
        "case": case,
        "camera": segment["camera"],
        "window_from": utc_text(segment["start"]),
        "window_to": utc_text(segment["end"]),
        "segment": segment["id"],
        "held": held,
    }
    if reason is not None:
        details["reason"] = reason
    with web.session() as session:
        audit.append(session, now=web.now(), actor=account.actor, action="footage.view", **details)
    return _grant(web, account, segment["id"], case)


@router.get("/footage/{segment_id}")
def footage(
    request: Request,
    segment_id: RecordId,
    case: str | None = None,
    grant: str | None = None,
    account: Account = Depends(permitted("footage.view")),
) -> Response:
    """The player (with a grant), a viewing of a segment `case` keeps, or the form asking why."""
    web = web_of(request)
    segment = _segment(web, account, segment_id)
    if grant is not None:
        granted = _granted(request, account, segment_id, grant)
        return _player(request, web, account, segment, granted, grant)
    if case:
        hold_here(request, account, case.strip(), "footage.view")
        now, grace = web.now(), web.settings.holds.release_grace
        with web.reading() as session:
            kept = casefile.keeps_segment(session, case, segment_id, now=now, grace=grace)
        if kept:
            token = _viewed(web, account, segment, case.strip(), held=True, reason=None)
            return redirect(f"/footage/{segment_id}?grant={quote(token)}")
    return _form(request, account, segment, case or "", "")


def _form(
    request: Request,
    account: Account,
    segment: dict[str, Any],
    case: str,
    reason: str,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return page(
        request,
        "footage.html",
        status=status,
        title=f"Footage {segment['camera']}",
        segment=segment,
        window=f"{account.site.local(segment['start'])} to {account.site.local(segment['end'])}",
        video=None,
        case=case,
        reason=reason,
        error=error,
    )


@router.post("/footage/{segment_id}")
def footage_open(
    request: Request,
    segment_id: RecordId,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("footage.view")),
) -> Response:
    """Open a segment for a case: one a hold keeps, or one within retention given a reason."""
    web = web_of(request)
    segment = _segment(web, account, segment_id)
    typed_case, typed_reason = str(form.get("case", "")), str(form.get("reason", ""))
    now, grace = web.now(), web.settings.holds.release_grace
    try:
        case = holds.case_reference(typed_case)
        hold_here(request, account, case, "footage.view")
        with web.reading() as session:
            kept = casefile.keeps_segment(session, case, segment_id, now=now, grace=grace)
            policy = policies.current(session).get("camera")
        reason = clean_text(typed_reason, what="reason", limit=300)
        if not kept:
            if not reason:
                raise InputError(
                    f"reason: hold {case} does not keep this segment; say why you need to watch it"
                )
            if policy is None or segment["retain_from"] is None:
                raise InputError(
                    "this segment has no retention policy in force; it cannot be opened"
                )
            if segment["retain_from"] + policy <= now:
                raise InputError(
                    "this segment is past its retention and awaits the purge; only a hold that "
                    "keeps it lets it be watched"
                )
    except InputError as err:
        return _form(
            request, account, segment, typed_case, typed_reason, error=str(err), status=400
        )
    token = _viewed(web, account, segment, case, held=kept, reason=None if kept else reason)
    return redirect(f"/footage/{segment_id}?grant={quote(token)}")


def _player(
    request: Request,
    web: Web,
    account: Account,
    segment: dict[str, Any],
    case: str,
    grant: str,
) -> Response:
    try:
        fd, source = evidence.open_footage(web.settings, segment["path"])
    except (FileNotFoundError, camera_files.PathRefused):
        source = None
    else:
        os.close(fd)
    return page(
        request,
        "footage.html",
        title=f"Footage {segment['camera']}",
        segment=segment,
        window=f"{account.site.local(segment['start'])} to {account.site.local(segment['end'])}",
        video=f"/footage/{segment['id']}/video?grant={quote(grant)}" if source else None,
        source=source,
        case=case,
        reason="",
    )


@router.get("/footage/{segment_id}/video")
def footage_video(
    request: Request,
    segment_id: RecordId,
    grant: str | None = None,
    account: Account = Depends(permitted("footage.view")),
) -> Response:
    """The segment's bytes for the player, whole or the range it asks for."""
    web = web_of(request)
    _granted(request, account, segment_id, grant)
    segment = _segment(web, account, segment_id)
    try:
        fd, _source = evidence.open_footage(web.settings, segment["path"])
    except FileNotFoundError:
        return Response("the file is gone", status_code=404, media_type="text/plain")
    except camera_files.PathRefused:
        return Response(
            "refused: not a plain file in the recordings", status_code=403, media_type="text/plain"
        )
    size = os.fstat(fd).st_size
    media = mimetypes.guess_type(segment["path"])[0] or "application/octet-stream"
    headers = {"Accept-Ranges": "bytes"}
    try:
        span = ranges.requested(request.headers.get("range"), size)
    except ranges.Unsatisfiable:
        os.close(fd)
        return Response(status_code=416, headers=headers | {"Content-Range": f"bytes */{size}"})
    if span is None:
        span, status = ranges.Span(0, size - 1), 200
    else:
        status = 206
        headers["Content-Range"] = span.content_range(size)
    headers["Content-Length"] = str(max(0, span.length))
    return StreamingResponse(_read(fd, span), status_code=status, media_type=media, headers=headers)


def _read(fd: int, span: ranges.Span) -> Iterator[bytes]:
    try:
        offset, left = span.start, span.length
        while left > 0:
            chunk = os.pread(fd, min(_CHUNK, left), offset)
            if not chunk:
                return
            yield chunk
            offset, left = offset + len(chunk), left - len(chunk)
    finally:
        os.close(fd)
