"""The case file in the web app, in-process: the hold page and its timeline, footage gated by role
and grant and audited per viewing, range requests, the export and its zip download.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from connectors import camera as scanner
from facility.privacy import report
from facility.retention import evidence, manifest
from facility.store import db
from facility.store.models import AuditEntry, CameraSegment
from facility.web import create_app, ranges
from tests import footage
from tests.conftest import Cli
from tests.factories import NOW, H, add, door, place
from tests.webapp import SECRET, Clock, add_user, login

pytestmark = pytest.mark.usefixtures("fast_hashes")
START = NOW - 3 * H


@pytest.fixture
def site(db_url, tmp_path):
    settings = footage.settings(tmp_path, database_url=db_url)
    paths = footage.record(settings.camera.root, "dock", START, 4)
    footage.record(settings.camera.root, "yard", START, 1)
    engine = db.make_engine(db_url)
    scanner.scan(engine, settings, now=NOW)
    add(engine, door("dock", "B17", START + timedelta(seconds=15)))
    place(engine, "INC-1", [("camera", "dock"), ("door_events", "dock")], START, START + H, now=NOW)
    evidence.preserve(engine, settings, now=NOW, actor="tests", case="INC-1")
    add_user(engine, "rita", "reception")
    add_user(engine, "sam", "security")
    app = create_app(settings, clock=Clock(NOW), engine=engine, secret=SECRET)
    yield app, settings, engine, paths
    engine.dispose()


def _client(app, name: str) -> TestClient:
    client = TestClient(app)
    assert login(client, name).status_code == 303
    return client


def _segment_id(engine, path: str) -> int:
    with db.session_scope(engine) as session:
        return session.execute(
            select(CameraSegment.id).where(CameraSegment.path == path)
        ).scalar_one()


def _entries(engine, action: str) -> list[tuple[str, dict]]:
    with db.session_scope(engine) as session:
        rows = session.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars()
        return [(e.actor, json.loads(e.details)) for e in rows]


def test_a_reception_account_is_refused_the_footage_and_the_refusal_is_audited(site):
    app, _settings, engine, paths = site
    rita = _client(app, "rita")
    segment = _segment_id(engine, paths[0])
    page = rita.get(f"/footage/{segment}?case=INC-1", follow_redirects=False)
    assert page.status_code == 403 and "needs role security" in page.text
    video = rita.get(f"/footage/{segment}/video", follow_redirects=False)
    assert video.status_code == 403 and video.headers["content-type"].startswith("text/html")
    assert rita.get("/holds/INC-1").status_code == 403
    refused = [details["command"] for actor, details in _entries(engine, "refused")]
    assert "GET /footage/{segment_id}" in refused and "GET /footage/{segment_id}/video" in refused
    assert _entries(engine, "footage.view") == []


def test_watching_a_held_segment_is_audited_once_and_served_by_ranges(site, tmp_path):
    app, settings, engine, paths = site
    sam = _client(app, "sam")
    segment = _segment_id(engine, paths[1])
    opened = sam.get(f"/footage/{segment}?case=INC-1", follow_redirects=False)
    assert opened.status_code == 303 and "grant=" in opened.headers["location"]
    player = sam.get(opened.headers["location"])
    assert player.status_code == 200
    src = (
        re.search(r'<video id="footage"[^>]* src="([^"]+)"', player.text)
        .group(1)
        .replace("&amp;", "&")
    )
    data = (settings.camera.root / paths[1]).read_bytes()
    first = sam.get(src, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206 and first.content == data[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{len(data)}"
    assert (
        first.headers["accept-ranges"] == "bytes" and first.headers["content-type"] == "video/mp4"
    )
    tail = sam.get(src, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    whole = sam.get(src)
    assert whole.status_code == 200 and whole.content == data
    beyond = sam.get(src, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"
    ((actor, details),) = _entries(engine, "footage.view")  # seeking is not another viewing
    assert actor == "web:sam"
    assert details == {
        "case": "INC-1",
        "camera": "dock",
        "window_from": details["window_from"],
        "window_to": details["window_to"],
        "segment": segment,
        "held": True,
    }
    assert details["window_from"].endswith("Z") and "B17" not in json.dumps(details)
    shown = Cli(engine.url.render_as_string(hide_password=False), tmp_path)
    listed = json.loads(
        shown("audit", "show", "--action", "footage.view", "--format", "json").stdout
    )
    assert [(e["actor"], e["details"]["case"]) for e in listed] == [("web:sam", "INC-1")]
    with db.session_scope(engine) as session:
        built = report.build(session, now=NOW, interval=H / 4, grace=settings.holds.release_grace)
    assert built.case_files.footage_views == {"INC-1": 1}
    assert built.case_files.evidence["link"] == 4


def test_a_video_without_a_grant_of_this_account_for_this_segment_is_refused(site):
    app, _settings, engine, paths = site
    sam = _client(app, "sam")
    one, other = _segment_id(engine, paths[0]), _segment_id(engine, paths[1])
    grant = sam.get(f"/footage/{one}?case=INC-1", follow_redirects=False).headers["location"]
    token = grant.split("grant=")[1]
    assert sam.get(f"/footage/{other}/video?grant={token}").status_code == 403
    assert sam.get(f"/footage/{one}/video").status_code == 403
    assert sam.get(f"/footage/{one}/video?grant=forged").status_code == 403
    needs = [d["needs"] for _a, d in _entries(engine, "refused")]
    assert ["footage grant"] in needs


def test_a_segment_no_hold_keeps_needs_a_case_and_a_reason_within_retention(site):
    app, _settings, engine, _paths = site
    sam = _client(app, "sam")
    with db.session_scope(engine) as session:
        yard = session.execute(
            select(CameraSegment).where(CameraSegment.camera == "yard")
        ).scalar_one()
        yard_id = yard.id
    form = sam.get(f"/footage/{yard_id}?case=INC-1")
    assert form.status_code == 200 and 'name="reason"' in form.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    bare = sam.post(f"/footage/{yard_id}", data={"csrf_token": token, "case": "INC-1"})
    assert bare.status_code == 400 and "say why" in bare.text
    typed = {"csrf_token": token, "case": "INC-9", "reason": "a van seen at the gate"}
    opened = sam.post(f"/footage/{yard_id}", data=typed, follow_redirects=False)
    assert opened.status_code == 303
    ((_actor, details),) = _entries(engine, "footage.view")
    assert details["held"] is False and details["case"] == "INC-9" and details["camera"] == "yard"
    assert details["reason"] == "a van seen at the gate"
    with db.session_scope(engine) as session:
        session.get(CameraSegment, yard_id).retain_from = NOW - timedelta(days=15)
    expired = sam.post(f"/footage/{yard_id}", data=typed)
    assert expired.status_code == 400 and "past its retention" in expired.text


def test_the_footage_comes_from_the_evidence_copy_once_the_recorder_deleted_it(site):
    app, settings, engine, paths = site
    data = (settings.camera.root / paths[2]).read_bytes()
    (settings.camera.root / paths[2]).unlink()
    sam = _client(app, "sam")
    segment = _segment_id(engine, paths[2])
    player = sam.get(f"/footage/{segment}?case=INC-1")
    assert "the evidence copy" in player.text
    src = (
        re.search(r'src="(/footage/[^"]+/video[^"]+)"', player.text).group(1).replace("&amp;", "&")
    )
    assert sam.get(src).content == data


def test_the_hold_page_draws_the_timeline_and_exports_for_download(site, tmp_path):
    app, settings, engine, paths = site
    sam = _client(app, "sam")
    page = sam.get("/holds/INC-1")
    assert page.status_code == 200
    assert page.text.count('<rect class="segment preserved"') == 4  # dock only, all preserved
    assert page.text.count('<line class="door"') >= 1
    assert "/footage/" in page.text and "Export INC-1 for hand-over" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    made = sam.post("/exports", data={"csrf_token": token, "case": "INC-1"})
    assert made.status_code == 200 and "export 1 written" in made.text
    download = sam.get("/exports/1/download")
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    unpacked = tmp_path / "unzipped"
    zipfile.ZipFile(io.BytesIO(download.content)).extractall(unpacked)
    (folder,) = list(unpacked.iterdir())
    assert manifest.verify(folder).ok
    assert (folder / "footage" / paths[0]).read_bytes() == (
        settings.camera.root / paths[0]
    ).read_bytes()
    ((actor, details),) = _entries(engine, "export.download")
    assert actor == "web:sam" and details == {
        "case": "INC-1",
        "export": 1,
        "files": details["files"],
    }
    listed = sam.get("/holds/INC-1").text
    assert "Download" in listed and str(settings.evidence.root / "exports") in listed


@given(size=st.integers(0, 10_000), start=st.integers(0, 12_000), end=st.integers(0, 12_000))
def test_a_range_is_always_within_the_file_or_refused(size, start, end):
    for header in (f"bytes={start}-{end}", f"bytes={start}-", f"bytes=-{end}"):
        try:
            span = ranges.requested(header, size)
        except ranges.Unsatisfiable:
            assert size == 0 or start >= size or header.startswith("bytes=-")
            continue
        if span is not None:
            assert 0 <= span.start <= span.end < size
    assert ranges.requested("bytes=0-1,5-6", 100) is None  # several: the whole file
    assert ranges.requested("items=0-1", 100) is None
